"""PDF pages to pixels, words and graphics with pymupdf (pure: no Ray).

``inspect_pdf`` validates an upload before anything is rendered; ``render_document_page`` renders one page
of an open document and extracts its words and graphics (``PageContent``) in the rendered page's
coordinates; ``text_in_box`` reads the words inside a region.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymupdf

from serve_app.core.errors import InvalidInput, LimitExceeded
from serve_app.core.layout import Box, box_area, box_overlap

# MuPDF reports every repair of a damaged file ("trying to repair broken xref", ...) by printing to stdout.
# Bad uploads are expected here and answered with a typed error, so keep the logs quiet (process-wide).
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

logger = logging.getLogger(__name__)

PDF_HEADER = b"%PDF-"
HEADER_WINDOW = 1024  # bytes in which the header must appear (the PDF spec tolerates leading junk)
MAX_PAGE_POINTS = 14_400.0  # PDF spec limit on a page side: 200 inches
MIN_IMAGE_SIDE = 16.0  # points: smaller embedded images (icons, bullets) are no graphics of their own
RULE_WIDTH = 2.0  # points: a vector path this thin or thinner is a rule (table lines, separators), no graphic
MAX_GRAPHIC_SHARE = 0.8  # of the page's area: a larger path is a page background or frame
# Horizontal rules (at least 40 pt long) a page needs before pymupdf's table finder runs on it: the finder
# costs about as much as the detection (median 0.17 s a page on real pages), and a ruled table has three.
MIN_TABLE_RULES = 3
# Graphics a page gives at most: beyond, they are merged on a grid (``fewer_boxes``), so arranging a page of
# thousands of paths (a scatter plot) stays fast (it clusters them pairwise).
MAX_PAGE_GRAPHICS = 1000
GRAPHICS_GAP = 6.0
# Font names of bold faces (besides pymupdf's bold flag): Computer Modern's cmbx/cmb/cmssbx, and the usual
# weight words of other families.
BOLD_FONT = re.compile(r"(bold|cmbx|cmb\b|cmssbx|black|heavy|semibold|demi|\.b\b|-b$|bx\d)", re.I)
# Font names of monospaced faces (besides pymupdf's monospaced flag): code, typewriter text.
MONO_FONT = re.compile(
    r"(mono|courier|cmtt|sftt|lmtt|inconsolata|typewriter|txtt|beramono|dejavusansmono)", re.I
)
# Producers and creators (PDF metadata) that set a list's label in a box of its own, so that it is a text
# span of its own: TeX's engines and drivers (pdfTeX, XeTeX, LuaTeX, "LaTeX with hyperref", dvips,
# dvipdfmx). A browser sets an ordered list's "1." in one span with the item's text.
LABELS_APART = re.compile(r"TeX|dvips|dvipdfm")

# What pymupdf raises on damaged input: FileDataError/EmptyFileError are RuntimeErrors, "bad xref" is a
# ValueError, and errors from the MuPDF bindings derive from FzErrorBase.
_PYMUPDF_ERRORS: tuple[type[Exception], ...] = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)

_DAMAGED = "the PDF is damaged or truncated and cannot be read; export or download it again and re-upload it"


@dataclass(frozen=True)
class PageInfo:
    """One page as it will be rendered: 1-based number and size in points after /Rotate."""

    number: int
    width_pt: float
    height_pt: float


@dataclass(frozen=True)
class Word:
    """One word of a page's text layer.

    The box is in PDF points with a top-left origin on the rendered (rotated, cropped) page, so
    multiplying it by ``dpi / 72`` gives pixels of the image from ``render_page_at``.
    ``block``, ``line`` and ``index`` give the reading order. ``size`` (points), ``bold`` and ``mono``
    (monospaced) are the font of the text span the word lies in (0.0, False, False where unknown).
    ``run_on``: that span holds more text than the word, so the word is not set apart from what follows
    it: "5. The use" typed in running text (a footnote, a date, "D. Arcis") is one span, while a list's
    label is put in a box of its own and so a span of its own. Only told in PDFs made by TeX
    (``LABELS_APART``); False elsewhere and where unknown.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    block: int
    line: int
    index: int
    size: float = 0.0
    bold: bool = False
    mono: bool = False
    run_on: bool = False


@dataclass(frozen=True)
class PageContent:
    """What a page's content stream holds besides its pixels, in points on the rendered page.

    ``words``: its text layer (``Word``). ``graphics``: the boxes of its embedded images (sides of at least
    ``MIN_IMAGE_SIDE``) and of its vector paths, without rules (``RULE_WIDTH``), white fills, images or
    paths over ``MAX_GRAPHIC_SHARE`` of the page (backgrounds, a scan's page image), and rectangles around
    a text line (frames and shading of text boxes): what a figure is drawn with. ``tables``: the boxes of
    its ruled tables (``ruled_tables``). A scan has none of these.
    """

    words: list[Word]
    graphics: list[Box]
    tables: list[Box]


def render_page(page: pymupdf.Page, *, dpi: int) -> np.ndarray:
    """Render ``page`` at ``dpi`` to a writable H x W x 3 uint8 RGB array."""
    pix = page.get_pixmap(dpi=dpi, alpha=False, colorspace=pymupdf.csRGB)
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, 3).copy()


def render_pdf(pdf: bytes, *, dpi: int) -> list[np.ndarray]:
    """Render every page of an in-memory PDF (see ``render_page``)."""
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return [render_page(page, dpi=dpi) for page in doc]


def page_pixels(width_pt: float, height_pt: float, *, dpi: int) -> tuple[int, int]:
    """Width and height in pixels of a ``width_pt`` x ``height_pt`` page at ``dpi``, rounded as MuPDF does."""
    zoom = dpi / 72
    irect = (pymupdf.Rect(0, 0, width_pt, height_pt) * pymupdf.Matrix(zoom, zoom)).irect
    return irect.width, irect.height


def inspect_pdf(
    pdf: bytes,
    *,
    dpi: int,
    max_pages: int,
    max_page_pixels: int,
    max_page_points: float = MAX_PAGE_POINTS,
) -> list[PageInfo]:
    """Check an uploaded PDF without rendering it and return its pages.

    Raises ``InvalidInput`` for bytes that are not a PDF, a damaged or truncated file, an encrypted file that
    needs a password, a PDF without pages, or a page with an invalid size or a side over ``max_page_points``;
    ``LimitExceeded`` for more than ``max_pages`` pages or a page over ``max_page_pixels`` pixels at ``dpi``.
    MuPDF silently repairs many damaged files (broken cross-reference tables, a missing tail); such a file
    passes when every page object is present, otherwise the first missing page is reported.
    """
    _check_dpi(dpi)
    with _open(pdf) as doc:
        try:
            count = doc.page_count
        except _PYMUPDF_ERRORS as exc:  # e.g. a page tree whose /Kids were cut off
            raise InvalidInput(_DAMAGED) from exc
        if count == 0:
            raise InvalidInput("the PDF has no pages; upload a PDF with at least one page")
        if count > max_pages:
            raise LimitExceeded(
                f"the PDF has {count} pages, more than the limit of {max_pages}; "
                f"split it into files of at most {max_pages} pages"
            )
        pages = [_inspect_page(doc, i, count=count, max_page_points=max_page_points) for i in range(count)]
    for page in pages:
        width_px, height_px = page_pixels(page.width_pt, page.height_pt, dpi=dpi)
        pixels = width_px * height_px
        if pixels > max_page_pixels:
            raise LimitExceeded(
                f"page {page.number} would be {width_px} x {height_px} = {pixels:,} pixels at {dpi} dpi, "
                f"more than the limit of {max_page_pixels:,}; "
                + _lower_dpi_hint(page, dpi=dpi, max_page_pixels=max_page_pixels)
            )
    return pages


def render_page_at(pdf: bytes, index: int, *, dpi: int) -> tuple[np.ndarray, PageContent]:
    """Render page ``index`` (0-based) of ``pdf`` and extract its content (see ``render_document_page``)."""
    with _open(pdf) as doc:
        return render_document_page(doc, index, dpi=dpi)


def render_document_page(doc: pymupdf.Document, index: int, *, dpi: int) -> tuple[np.ndarray, PageContent]:
    """Render page ``index`` (0-based) of an open document and extract its words and graphics.

    Returns the H x W x 3 uint8 RGB image (see ``render_page``) and the page's content (``PageContent``)
    with boxes in points on the rendered page, so they line up with the image on rotated and cropped pages
    too. A page without a text layer (a scan) gives no words. Render workers keep ``doc`` open across pages
    (``open_document``), so a document is parsed once per worker, not once per page.
    """
    _check_dpi(dpi)
    try:
        count = doc.page_count
        if not 0 <= index < count:
            raise InvalidInput(f"page index {index} is out of range: the PDF has {count} pages")
        page = doc.load_page(index)
        image = render_page(page, dpi=dpi)
        to_rendered = page.rotation_matrix  # unrotated page space -> rendered page space
        textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_WORDS)
        raw = textpage.extractWORDS()
        try:
            fonts = word_fonts(raw, textpage.extractDICT()["blocks"])
            if not labels_apart(doc):
                fonts = [(size, bold, mono, False) for size, bold, mono, _ in fonts]
        except Exception:  # the fonts only tell headings and items: a page is never lost for them
            logger.warning("page %d: the fonts of its words could not be read", index + 1, exc_info=True)
            fonts = [(0.0, False, False, False)] * len(raw)
        words = []
        for (x0, y0, x1, y1, text, block, line, word), font in zip(raw, fonts, strict=True):
            box = pymupdf.Rect(x0, y0, x1, y1) * to_rendered
            words.append(Word(box.x0, box.y0, box.x1, box.y1, text, block, line, word, *font))
        try:
            graphics, tables = page_drawings(page, raw)
        except Exception:  # they only refine the detections: a page is never lost for them
            logger.warning("page %d: its graphics and tables could not be read", index + 1, exc_info=True)
            graphics, tables = [], []
    except _PYMUPDF_ERRORS as exc:
        raise InvalidInput(f"page {index + 1} cannot be rendered: {_DAMAGED}") from exc
    finally:
        # With display off MuPDF still appends every message to a process-wide list; do not let it grow.
        pymupdf.TOOLS.reset_mupdf_warnings()
    return image, PageContent(words=words, graphics=graphics, tables=tables)


def word_fonts(
    words: Sequence[tuple[float, float, float, float, str, int, int, int]], blocks: Sequence[dict[str, Any]]
) -> list[tuple[float, bool, bool, bool]]:
    """The font size, boldness and monospacing of each word: those of the span of its line (the same text
    page's ``extractDICT``, numbered alike) that holds the word's centre, or lies nearest to it
    (``span_font``); and whether that span holds more text than the word (``Word.run_on``)."""
    fonts = []
    for x0, _, x1, _, text, block, line, _ in words:
        try:
            spans = blocks[block]["lines"][line]["spans"]
        except (IndexError, KeyError):
            spans = []
        if not spans:
            fonts.append((0.0, False, False, False))
            continue
        cx = (x0 + x1) / 2
        span = min(spans, key=lambda s: max(s["bbox"][0] - cx, cx - s["bbox"][2], 0.0))
        fonts.append((*span_font(span), span["text"].strip() != text))
    return fonts


def labels_apart(doc: pymupdf.Document) -> bool:
    """Was ``doc`` made by a producer that sets a list's label as a text span of its own
    (``LABELS_APART``), so that a word run on in one span with the text after it is no label
    (``Word.run_on``)?"""
    metadata = doc.metadata or {}
    made_by = f"{metadata.get('producer') or ''} {metadata.get('creator') or ''}"
    return LABELS_APART.search(made_by) is not None


def span_font(span: dict[str, Any]) -> tuple[float, bool, bool]:
    """The font size of a text span of pymupdf's ``extractDICT`` / ``get_text("dict")``, whether it is bold
    (the bold flag, or ``BOLD_FONT``) and whether monospaced (the monospaced flag, or ``MONO_FONT``)."""
    flags, font = span["flags"], span["font"]
    bold = bool(flags & 16) or BOLD_FONT.search(font) is not None
    mono = bool(flags & 8) or MONO_FONT.search(font) is not None
    return float(span["size"]), bold, mono


def _line_boxes(words: Sequence[tuple[float, float, float, float, str, int, int, int]]) -> list[Box]:
    """The boxes of the text lines of pymupdf's words (``extractWORDS``), in the unrotated page's space."""
    lines: dict[tuple[int, int], Box] = {}
    for x0, y0, x1, y1, _, block, line, _ in words:
        b = lines.get((block, line))
        lines[block, line] = (
            (x0, y0, x1, y1) if b is None else (min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1))
        )
    return list(lines.values())


def page_drawings(
    page: pymupdf.Page, words: Sequence[tuple[float, float, float, float, str, int, int, int]] | None = None
) -> tuple[list[Box], list[Box]]:
    """The boxes of ``page``'s graphics and of its ruled tables (see ``PageContent``), on the rendered page.

    ``words``: its words as pymupdf's ``extractWORDS`` gives them, in the unrotated page's space (None: read
    here). Tables are looked for only on a page with ``MIN_TABLE_RULES`` horizontal rules or more.
    """
    if words is None:
        words = page.get_text("words")
    lines = _line_boxes(words)
    rect = page.rect  # the rendered (rotated, cropped) page, origin top-left
    to_rendered = page.rotation_matrix
    largest = MAX_GRAPHIC_SHARE * rect.get_area()
    graphics: list[pymupdf.Rect] = []
    boxes: list[pymupdf.Rect] = []  # rectangles only: a picture, or a frame or shading around text
    rules: list[Box] = []  # in the unrotated page's coordinates, as the table finder works
    for info in page.get_image_info():
        b = (pymupdf.Rect(info["bbox"]) * to_rendered) & rect
        if b.width >= MIN_IMAGE_SIDE and b.height >= MIN_IMAGE_SIDE and b.get_area() <= largest:
            graphics.append(b)
    for path in page.get_drawings():
        r = pymupdf.Rect(path["rect"])
        kind = path_kind(path, rect.get_area())
        if kind == "rule":
            rules.append((r.x0, r.y0, r.x1, r.y1))
        elif kind == "rectangles":
            boxes.append(r)
        elif kind == "drawing":
            graphics.append(r * to_rendered)
    framing = _holds_a_line([(r.x0, r.y0, r.x1, r.y1) for r in boxes], lines)
    graphics += [r * to_rendered for r, frame in zip(boxes, framing, strict=True) if not frame]
    drawn = fewer_boxes([(b.x0, b.y0, b.x1, b.y1) for b in graphics], MAX_PAGE_GRAPHICS, gap=GRAPHICS_GAP)
    tables: list[pymupdf.Rect] = []
    if len(_horizontal_rules(rules)) >= MIN_TABLE_RULES:
        boxes_of_words: list[Box] = [(w[0], w[1], w[2], w[3]) for w in words]
        tables = [pymupdf.Rect(t) * to_rendered for t in ruled_tables(page, rules, lines, boxes_of_words)]
    return drawn, [(b.x0, b.y0, b.x1, b.y1) for b in tables]


def path_kind(path: dict[str, Any], page_area: float) -> str | None:
    """What a vector path of ``page.get_drawings()`` is: None for a white fill or a path over
    ``MAX_GRAPHIC_SHARE`` of the page (a background); ``"rule"`` when it is ``RULE_WIDTH`` thin or thinner
    (table lines, separators, underlines); ``"rectangles"`` when it draws only rectangles (a picture, or a
    frame or shading around text); else ``"drawing"``. The real-page labeller sorts paths with this too."""
    fill = path.get("fill")
    if fill is not None and all(c > 0.97 for c in fill) and not path.get("color"):
        return None
    r = pymupdf.Rect(path["rect"])
    if r.get_area() > MAX_GRAPHIC_SHARE * page_area:
        return None
    if r.width <= RULE_WIDTH or r.height <= RULE_WIDTH:
        return "rule"
    return "rectangles" if {item[0] for item in path["items"]} <= {"re", "qu"} else "drawing"


def _horizontal_rules(rules: Sequence[Box]) -> list[Box]:
    """The horizontal ones of ``rules``, at least 40 pt long: what a booktabs table is ruled with."""
    return [r for r in rules if r[3] - r[1] <= RULE_WIDTH and r[2] - r[0] >= 40]


def fewer_boxes(boxes: list[Box], limit: int, *, gap: float) -> list[Box]:
    """``boxes`` as they are when there are at most ``limit``; otherwise merged until there are: the boxes
    whose centres fall in one square cell of a grid become their union, the cell growing from ``gap`` and
    doubling each pass (linear, so a page of many thousands of paths stays fast)."""
    cell = gap
    while len(boxes) > limit:
        cells: dict[tuple[int, int], Box] = {}
        for b in boxes:
            key = (int((b[0] + b[2]) / 2 // cell), int((b[1] + b[3]) / 2 // cell))
            c = cells.get(key)
            cells[key] = (
                b if c is None else (min(c[0], b[0]), min(c[1], b[1]), max(c[2], b[2]), max(c[3], b[3]))
            )
        boxes = list(cells.values())
        cell *= 2
    return boxes


def _holds_a_line(boxes: Sequence[Box], lines: Sequence[Box]) -> list[bool]:
    """For each box, whether a text line lies (80% or more) inside it: a rectangle around text is its frame
    or shading, not a picture (the real-page labeller refuses such pages for the same reason)."""
    if not boxes or not lines:
        return [False] * len(boxes)
    ln = np.asarray(lines, dtype=np.float32)[None, :, :]
    area = (ln[..., 2] - ln[..., 0]) * (ln[..., 3] - ln[..., 1])
    out: list[bool] = []
    for start in range(0, len(boxes), 1024):  # bounded memory on pages of many thousands of paths
        b = np.asarray(boxes[start : start + 1024], dtype=np.float32)[:, None, :]
        w = np.clip(np.minimum(b[..., 2], ln[..., 2]) - np.maximum(b[..., 0], ln[..., 0]), 0, None)
        h = np.clip(np.minimum(b[..., 3], ln[..., 3]) - np.maximum(b[..., 1], ln[..., 1]), 0, None)
        out += [bool(v) for v in ((w * h > 0.8 * area) & (area > 0)).any(axis=1)]
    return out


def ruled_tables(
    page: pymupdf.Page, rules: Sequence[Box], lines: Sequence[Box], words: Sequence[Box] | None = None
) -> list[Box]:
    """Ruled tables, in the unrotated page's coordinates: pymupdf's table finder (full grids), plus
    booktabs-style tables (three or more horizontal rules of one width with text rows between them).

    ``rules``: the page's thin vector paths; ``lines``: its text lines' boxes; ``words``: its words' boxes
    (None: read from ``page`` when a booktabs group needs them). A grid of rules is a table
    when at least two of its rows have text in two cells or more (rules around a box or under headings also
    make grids, with one text cell per row). A booktabs group is no table when fewer than two of its rows
    hold two cells and a row of one cell spans most of it (``_cell_rows``): framed boxes drawn with thin
    lines and stacked down a page also give three rules of one width, with code and paragraphs between
    them. The real-page labeller labels tables with this too.
    """
    tables: list[Box] = []
    for table in page.find_tables(strategy="lines").tables:
        filled_rows = sum(
            1 for row in table.extract() if sum(1 for cell in row if cell and cell.strip()) >= 2
        )
        if table.col_count >= 2 and filled_rows >= 2:
            b = pymupdf.Rect(table.bbox) * page.derotation_matrix  # the finder answers on the rotated page
            tables.append((b.x0, b.y0, b.x1, b.y1))
    horizontal = sorted(_horizontal_rules(rules), key=lambda r: r[1])
    used = [False] * len(horizontal)
    for i, first in enumerate(horizontal):
        if used[i]:
            continue
        group = [first]
        for j in range(i + 1, len(horizontal)):
            other = horizontal[j]
            if (
                abs(other[0] - first[0]) <= 3
                and abs(other[2] - first[2]) <= 3
                and other[1] - group[-1][1] < 120
            ):
                group.append(other)
                used[j] = True
        if len(group) < 3:
            continue
        box = (first[0], first[1], first[2], group[-1][3])
        rows = [ln for ln in lines if box_area(ln) > 0 and box_overlap(ln, box) / box_area(ln) > 0.8]
        if len(rows) < 2 or any(box_overlap(box, t) > 0 for t in tables):
            continue
        if words is None:
            words = [(w[0], w[1], w[2], w[3]) for w in page.get_text("words")]
        cells, wide = _cell_rows(words, box)
        if cells >= 2 or not wide:
            tables.append(box)
    return tables


def _cell_rows(words: Sequence[Box], box: Box, *, wide: float = 0.6) -> tuple[int, bool]:
    """How many rows of the ``words`` inside ``box`` hold two cells or more: two words side by side at
    least the row's line height apart (a table's column gap; the words of a sentence or of code are a
    third of that apart); and whether a row of one cell spans ``wide`` of the box's width or more (a
    paragraph or a line of code, not a cell). Words sharing half their height are a row."""
    inside = sorted(
        (w for w in words if box_area(w) > 0 and box_overlap(w, box) / box_area(w) > 0.8), key=lambda w: w[1]
    )
    rows: list[list[Box]] = []
    for w in inside:
        for row in reversed(rows[-3:]):  # top to bottom: a word joins one of the last rows or starts one
            first = row[0]
            if min(first[3], w[3]) - max(first[1], w[1]) > 0.5 * min(first[3] - first[1], w[3] - w[1]):
                row.append(w)
                break
        else:
            rows.append([w])
    count, spanning = 0, False
    for row in rows:
        row.sort(key=lambda w: w[0])
        height = min(w[3] - w[1] for w in row)
        if any(b[0] - a[2] >= height for a, b in itertools.pairwise(row)):
            count += 1
        elif row[-1][2] - row[0][0] >= wide * (box[2] - box[0]):
            spanning = True
    return count, spanning


def text_in_box(
    words: Sequence[Word], box_pt: tuple[float, float, float, float], *, min_overlap: float = 0.5
) -> str:
    """The text of the words lying at least ``min_overlap`` (fraction of their area) inside ``box_pt``.

    Words come out in reading order (block, line, index), joined by spaces within a line and by newlines
    between lines. A word with no area counts when its centre lies in the box.
    """
    if not 0.0 <= min_overlap <= 1.0:
        raise InvalidInput(f"min_overlap must be between 0 and 1, got {min_overlap}")
    bx0, by0, bx1, by1 = box_pt
    inside = []
    for w in words:
        area = max(0.0, w.x1 - w.x0) * max(0.0, w.y1 - w.y0)
        if area > 0:
            overlap = max(0.0, min(w.x1, bx1) - max(w.x0, bx0)) * max(0.0, min(w.y1, by1) - max(w.y0, by0))
            keep = overlap > 0 and overlap >= min_overlap * area
        else:
            cx, cy = (w.x0 + w.x1) / 2, (w.y0 + w.y1) / 2
            keep = bx0 <= cx <= bx1 and by0 <= cy <= by1
        if keep:
            inside.append(w)
    inside.sort(key=lambda w: (w.block, w.line, w.index))
    lines: list[list[str]] = []
    last: tuple[int, int] | None = None
    for w in inside:
        if (w.block, w.line) != last:
            lines.append([])
            last = (w.block, w.line)
        lines[-1].append(w.text)
    return "\n".join(" ".join(line) for line in lines)


def table_markdown(doc: pymupdf.Document, number: int, box_pt: tuple[float, float, float, float]) -> str:
    """Markdown of the tables pymupdf finds inside ``box_pt`` (points, top-left origin on the displayed
    page, as region boxes are) on page ``number`` (1-based); "" when it finds none.

    Ruled tables are found from their lines; tables with few or no rules (booktabs) from the alignment
    of their words, tried second and only inside a region the model called a table.
    """
    page = doc[number - 1]
    rect = (pymupdf.Rect(box_pt) * page.derotation_matrix).normalize()  # the unrotated page's coordinates
    for strategy in ("lines", "text"):
        found = [t for t in page.find_tables(clip=rect, strategy=strategy).tables if t.row_count > 1]
        if found:
            tables = [t.to_markdown().strip().splitlines() for t in found]
            # Rows whose cells are all empty (spacing rows of ruled-off tables) are left out.
            return "\n\n".join("\n".join(r for r in rows if r.strip("| ")) for rows in tables)
    return ""


def _check_dpi(dpi: int) -> None:
    if dpi <= 0:
        raise InvalidInput(f"dpi must be a positive number, got {dpi}")


def open_document(pdf: bytes) -> pymupdf.Document:
    """Open ``pdf`` or raise ``InvalidInput``; refuses files that need a password. The caller closes it."""
    if not pdf:
        raise InvalidInput("the PDF is empty (0 bytes); upload a PDF file")
    if PDF_HEADER not in pdf[:HEADER_WINDOW]:
        raise InvalidInput(
            f"the upload is not a PDF (no {PDF_HEADER.decode()} header in its first {HEADER_WINDOW} bytes); "
            "upload a PDF file"
        )
    try:
        try:
            doc = pymupdf.open(stream=pdf, filetype="pdf")
        except _PYMUPDF_ERRORS as exc:
            raise InvalidInput(_DAMAGED) from exc
        if doc.needs_pass:
            doc.close()
            raise InvalidInput("the PDF is encrypted; remove the password and upload it again")
        return doc
    finally:
        pymupdf.TOOLS.reset_mupdf_warnings()


@contextmanager
def _open(pdf: bytes) -> Iterator[pymupdf.Document]:
    doc = open_document(pdf)
    try:
        with doc:
            yield doc
    finally:
        # With display off MuPDF still appends every message to a process-wide list; do not let it grow.
        pymupdf.TOOLS.reset_mupdf_warnings()


def _inspect_page(doc: pymupdf.Document, i: int, *, count: int, max_page_points: float) -> PageInfo:
    number = i + 1
    missing = InvalidInput(
        f"page {number} of {count} is missing or damaged (the PDF looks truncated or corrupt); "
        "export or download it again and re-upload it"
    )
    try:
        # MuPDF stands in a blank Letter page for a page object that is absent, so look at the object.
        xref = doc.page_xref(i)
        if not 0 < xref < doc.xref_length() or not doc.xref_get_keys(xref):
            raise missing
        rect = doc.load_page(i).rect  # after /Rotate, clipped to the CropBox: what gets rendered
    except _PYMUPDF_ERRORS as exc:
        raise missing from exc
    width, height = float(rect.width), float(rect.height)
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise InvalidInput(
            f"page {number} has an invalid size ({width} x {height} pt); "
            "fix the page's MediaBox or re-export the PDF"
        )
    if max(width, height) > max_page_points:
        raise InvalidInput(
            f"page {number} is {width:g} x {height:g} pt, larger than the {max_page_points:g} pt "
            f"({max_page_points / 72:g} in) allowed on a side; scale the page down and upload it again"
        )
    return PageInfo(number=number, width_pt=width, height_pt=height)


def _lower_dpi_hint(page: PageInfo, *, dpi: int, max_page_pixels: int) -> str:
    best = min(dpi - 1, math.floor(72 * math.sqrt(max_page_pixels / (page.width_pt * page.height_pt))))
    while best >= 1 and math.prod(page_pixels(page.width_pt, page.height_pt, dpi=best)) > max_page_pixels:
        best -= 1
    if best < 1:
        return "the page is too large to render within the limit at any dpi; scale the page down"
    return f"use a lower dpi (at most {best} dpi fits this page)"
