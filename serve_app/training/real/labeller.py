"""Label a real born-digital PDF page with PubLayNet's five classes from the PDF's own structure.

No model is involved: the labels come from what the PDF says about itself (pymupdf's text lines with
their fonts and sizes, embedded images, vector drawings, ruled tables). PubLayNet's conventions:

- document titles and section headings are ``title``; captions, footnotes and code are ``text``;
- a whole list (all its items, nested items included) is one ``list`` region;
- running headers, footers and page numbers are not labelled;
- text inside a figure (axis labels, tikz node text) belongs to the figure.

Pages the rules cannot label with confidence are refused with a reason (``PageLabels.refused``) rather
than labelled badly: landscape pages (slides), pages without a text layer, rotated text outside figures,
framed or shaded boxes around text, text that a figure only half covers, too little content, tables of
contents (with dot leaders, or without: bare numbers set apart at the ends of rows, which catches unruled
tables of figures too), fonts scaled so small by a transform that no body size can be read.
A refused page is left out of the data sets; the reasons are counted in the build report.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymupdf

from serve_app.core.arrange import (
    BULLETS,
    DASHES,
    ENUMERATOR,
    LINE_NUMBER,
    PAGE_NUMBER,
    heading_block,
    is_heading,
)
from serve_app.core.layout import Box, box_area, box_overlap, box_union, cluster_boxes
from serve_app.core.pdf import path_kind, ruled_tables, span_font

NUMBER_LABEL = re.compile(r"^([0-9]{1,2}|[A-Z])(\.[0-9]{1,2}){0,3}\.?$")
LEADERS = re.compile(r"(\. ?){5,}|…{2,}")
NUMBER_REACH = 6.0  # body sizes a listing's line number may stand from its (indented) line
MIN_BODY_SIZE = 4.0  # points; below it the sizes are unreadable (fonts scaled down by a transform)


MAX_GRAPHICS = 300  # vector paths (not rules) on a page beyond which it is refused
MAX_RULES = 600


@dataclass(frozen=True)
class LabelledRegion:
    """A labelled region: PubLayNet label and box in PDF points (top-left origin, unrotated page)."""

    label: str
    box: Box


@dataclass(frozen=True)
class PageLabels:
    """The labels of one page, or why the page was refused (then ``regions`` is empty)."""

    regions: tuple[LabelledRegion, ...] = ()
    refused: str | None = None


@dataclass
class TextLine:
    """One text line as pymupdf reads it, with the style facts the rules use."""

    box: Box
    text: str
    size: float
    bold: float  # fraction of characters in a bold font
    mono: float  # fraction of characters in a monospaced font
    first: str  # text of the first span (a bullet or an enumerator when the line starts an item)
    first_x1: float  # right edge of the first span
    first_size: float  # font size of the first span (a footnote mark is smaller than its text)
    block: int
    horizontal: bool


@dataclass
class Paragraph:
    lines: list[TextLine] = field(default_factory=list)

    @property
    def box(self) -> Box:
        return box_union(*(line.box for line in self.lines))


@dataclass(frozen=True)
class Style:
    """Facts about a whole document: the body text size (the most common size by characters) and its
    running headers and footers (the first or last rows of pages that repeat, digits left out)."""

    body_size: float
    running: frozenset[str] = frozenset()


def normalised(text: str) -> str:
    """Text compared across pages for running headers: lower case, no digits, single spaces."""
    return " ".join(re.sub(r"[0-9]+", " ", text.lower()).split())


def inside_fraction(inner: Box, outer: Box) -> float:
    """The fraction of ``inner``'s area that lies in ``outer`` (0 for an inner box without area)."""
    a = box_area(inner)
    return box_overlap(inner, outer) / a if a > 0 else 0.0


def document_style(doc: pymupdf.Document, *, max_pages: int = 40) -> Style:
    """The body text size of ``doc`` (the size carrying the most characters over its first pages) and
    its running headers and footers (first or last rows met on two pages or more)."""
    counts: dict[float, int] = {}
    edges: dict[str, int] = {}
    for page in doc.pages(0, min(max_pages, doc.page_count)):
        lines = text_lines(page)
        for line in lines:
            size = round(line.size * 2) / 2
            counts[size] = counts.get(size, 0) + len(line.text)
        if lines:
            top = min(ln.box[1] for ln in lines)
            bottom = max(ln.box[3] for ln in lines)
            found = {
                normalised(" ".join(ln.text for ln in lines if ln.box[1] <= top + 3)),
                normalised(" ".join(ln.text for ln in lines if ln.box[3] >= bottom - 3)),
            }
            for text in found - {""}:
                edges[text] = edges.get(text, 0) + 1
    return Style(
        body_size=max(counts, key=lambda s: counts[s]) if counts else 10.0,
        running=frozenset(text for text, n in edges.items() if n >= 2),
    )


def _raw_lines(page: pymupdf.Page) -> Iterable[dict[str, Any]]:
    flags = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
    for block in page.get_text("dict", flags=flags)["blocks"]:
        if block["type"] == 0:
            for line in block["lines"]:
                yield {**line, "block": block["number"]}


def text_lines(page: pymupdf.Page) -> list[TextLine]:
    """The page's non-empty text lines with their style facts."""
    lines = []
    for raw in _raw_lines(page):
        spans = [s for s in raw["spans"] if s["text"].strip()]
        if not spans:
            continue
        fonts = [span_font(s) for s in spans]  # (size, bold, mono), read once per span
        styled = spans
        if len(spans) > 1 and LINE_NUMBER.match(spans[0]["text"].strip()) and fonts[0] != fonts[1]:
            # A listing's line number set in its line, in another font (docstrip's small roman beside
            # typewriter code): it weighs nothing in the line's style, as in rows().
            styled, fonts = spans[1:], fonts[1:]
        chars = sum(len(s["text"].strip()) for s in styled)
        bold = sum(len(s["text"].strip()) for s, (_, b, _) in zip(styled, fonts, strict=True) if b)
        mono = sum(len(s["text"].strip()) for s, (_, _, m) in zip(styled, fonts, strict=True) if m)
        sizes = [s["size"] for s in styled for _ in range(len(s["text"].strip()))]
        box = box_union(*(tuple(s["bbox"]) for s in spans))
        lines.append(
            TextLine(
                box=box,
                text=" ".join(s["text"].strip() for s in spans),
                size=statistics.median(sizes),
                bold=bold / chars,
                mono=mono / chars,
                first=spans[0]["text"].strip(),
                first_x1=spans[0]["bbox"][2],
                first_size=spans[0]["size"],
                block=raw["block"],
                horizontal=abs(raw["dir"][1]) < 1e-3 and raw["dir"][0] > 0,
            )
        )
    return lines


# ------------------------------------------------------------------------------------------- graphics


def image_boxes(page: pymupdf.Page, *, min_side: float = 16.0) -> list[Box]:
    """Boxes of the page's embedded images (clipped to the page), ignoring tiny ones."""
    rect = page.rect
    boxes = []
    for info in page.get_image_info():
        b = pymupdf.Rect(info["bbox"]) & rect
        if b.width >= min_side and b.height >= min_side:
            boxes.append((b.x0, b.y0, b.x1, b.y1))
    return boxes


@dataclass
class Drawing:
    box: Box
    items: int
    rect_only: bool  # only rectangles (a frame or a shaded background, not a picture)
    filled: bool


def drawings(page: pymupdf.Page) -> tuple[list[Drawing], list[Box]]:
    """The page's vector paths split into graphics (``Drawing``) and thin rules (lines of tables,
    separators, underlines). White fills and page-sized backgrounds are ignored."""
    graphics: list[Drawing] = []
    rules: list[Box] = []
    for path in page.get_drawings():
        r = path["rect"]
        box = (r.x0, r.y0, r.x1, r.y1)
        kind = path_kind(path, page.rect.get_area())
        if kind == "rule":
            rules.append(box)
        elif kind is not None:
            graphics.append(
                Drawing(
                    box=box,
                    items=len(path["items"]),
                    rect_only=kind == "rectangles",
                    filled=path.get("fill") is not None,
                )
            )
    return graphics, rules


# ---------------------------------------------------------------------------------------------- text


def is_item_start(line: TextLine) -> bool:
    """Does this line start a list item (a bullet or an enumerator set apart from the text)?"""
    token = line.first
    if not (token in BULLETS or ENUMERATOR.match(token)):
        return False
    # The item has text after its label, and the label is not a superscript (a footnote mark).
    return line.first_x1 < line.box[2] - 4 and line.first_size >= 0.8 * line.size


def rows(lines: Sequence[TextLine], style: Style) -> list[TextLine]:
    """Join lines that sit side by side on one baseline (pymupdf splits formulas and tab stops into
    several lines) into one row; the row keeps the first line's label facts. A listing's line number
    joins its line's row; one alone (a blank line of the listing) is a row of code."""
    out: list[TextLine] = []
    for line in sorted(lines, key=lambda ln: (round(ln.box[1]), ln.box[0])):
        line_number = LINE_NUMBER.match(line.text) is not None
        for row in reversed(out[-6:]):
            row_number = LINE_NUMBER.match(row.text) is not None
            v = min(row.box[3], line.box[3]) - max(row.box[1], line.box[1])
            h = min(row.box[3] - row.box[1], line.box[3] - line.box[1])
            gap = line.box[0] - row.box[2]
            # Less than LaTeX's narrowest column gap (10pt at 10pt type), except after a section
            # number, a bullet or an enumerator.
            label = NUMBER_LABEL.match(row.text) or row.text in BULLETS or ENUMERATOR.match(row.text)
            # A listing's line number (met before or after its line) stands further off when the line
            # is indented.
            limit = (NUMBER_REACH if row_number else 2.5 if label else 0.8) * max(row.size, line.size)
            before = line_number and 0 <= row.box[0] - line.box[2] <= NUMBER_REACH * row.size
            if v >= 0.5 * h and (-2 <= gap <= limit or before) and row.horizontal == line.horizontal:
                # A line number weighs nothing in the row's style (its font is not the code's).
                n_row = 0 if row_number else len(row.text)
                n_line = 0 if line_number else len(line.text)
                n_row, n_line = (n_row, n_line) if n_row + n_line else (1, 1)
                total = n_row + n_line
                row.box = box_union(row.box, line.box)
                row.text = f"{line.text} {row.text}" if before else f"{row.text} {line.text}"
                row.bold = (row.bold * n_row + line.bold * n_line) / total
                row.mono = (row.mono * n_row + line.mono * n_line) / total
                row.size = max(row.size, line.size)
                break
        else:
            out.append(TextLine(**{k: getattr(line, k) for k in line.__dataclass_fields__}))
    for row in out:
        if LINE_NUMBER.match(row.text):
            row.mono = 1.0  # a line number alone: a listing's blank line, code like the lines around it
    return out


def wrapped_dash(row: TextLine, paragraph: Paragraph, rows_above: Sequence[TextLine]) -> bool:
    """Is ``row``'s leading dash a dash of the sentence that a justified paragraph wrapped to the line's
    start, not a list item's bullet? It is when the line above (``paragraph``'s last row and the rows
    beside it, which a wide justified space may have set apart) is full: it runs from the row's left edge
    to the paragraph's right edge, and neither starts an item nor introduces one (a colon)."""
    if row.first not in DASHES:
        return False
    last = paragraph.lines[-1]
    line = [
        r
        for r in rows_above
        if min(r.box[3], last.box[3]) - max(r.box[1], last.box[1]) > 0
        and r.box[2] > row.box[0]
        and r.box[0] < paragraph.box[2]  # not a margin note beside the line
    ]
    if not line:
        return False
    start, end = min(line, key=lambda r: r.box[0]), max(line, key=lambda r: r.box[2])
    return (
        abs(start.box[0] - row.box[0]) <= 2
        and end.box[2] >= paragraph.box[2] - 2
        and not is_item_start(start)
        and not end.text.endswith(":")
    )


def paragraphs(lines: Sequence[TextLine], style: Style) -> list[Paragraph]:
    """Group rows into paragraphs: a row continues the paragraph right above it (small gap, same
    column) unless a heading meets body text, a list item starts, or the row is an indented first line
    after a short last line (TeX's paragraph indentation)."""
    size = style.body_size
    open_: list[Paragraph] = []
    for row in rows(lines, style):
        best: Paragraph | None = None
        for para in open_[-8:]:
            last = para.lines[-1]
            gap = row.box[1] - last.box[3]
            x_overlap = min(row.box[2], para.box[2]) - max(row.box[0], para.box[0])
            narrow = min(row.box[2] - row.box[0], para.box[2] - para.box[0])
            # A tall glyph (an accent, a root) lifts a row into the one above; it still lies mostly below.
            below = gap >= -2 or (gap >= -0.4 * size and (row.box[1] + row.box[3]) / 2 > last.box[3])
            if below and gap <= 0.6 * size and x_overlap >= 0.5 * narrow:
                best = para
        if best is not None:
            last = best.lines[-1]
            box = best.box
            code = row.mono >= 0.8 and last.mono >= 0.8
            split = (
                is_heading(row, style.body_size) != is_heading(last, style.body_size)
                or (
                    is_item_start(row)
                    and not wrapped_dash(row, best, [r for p in open_[-8:] for r in p.lines])
                )
                or (row.mono >= 0.8) != (last.mono >= 0.8)
                or (not code and row.box[0] > box[0] + 5 and last.box[2] < box[2] - 0.1 * (box[2] - box[0]))
                or (code and row.box[0] < box[0] - 2)
            )
            if not split:
                best.lines.append(row)
                continue
        open_.append(Paragraph([row]))
    return open_


def classify(paragraph: Paragraph, style: Style) -> str:
    lines = paragraph.lines
    if heading_block(lines, style.body_size):  # the service's own heading rule (core.arrange)
        return "title"
    if is_item_start(lines[0]):
        return "list"
    return "text"


def merge_lists(labelled: list[tuple[str, Paragraph]], style: Style) -> list[tuple[str, Box]]:
    """Join consecutive list items, and the paragraphs indented under them, into one list region.

    An item, or a paragraph indented under the first item, joins a list that ends right above it in its
    column: it starts below the list's top and at most 1.6 body sizes below its bottom. Paragraphs beside
    the list (the other column of a two-column page, a margin note: no horizontal overlap) neither join it
    nor end it, although they come between its items in ``labelled``'s order (top to bottom); any other
    paragraph ends it."""
    out: list[tuple[str, Box]] = []
    open_: dict[int, float] = {}  # the index in ``out`` of each list still open: its first item's left edge
    for label, paragraph in labelled:
        box = paragraph.box
        joined = False
        for index, left in list(open_.items()):
            current = out[index][1]
            if min(box[2], current[2]) - max(box[0], current[0]) <= 0:
                continue  # beside the list
            below = current[1] < box[1] and box[1] - current[3] <= 1.6 * style.body_size
            close = below and box[0] < current[2] - 10
            fits = box[0] >= left - 3 if label == "list" else label == "text" and box[0] >= left + 4
            if not joined and close and fits:  # an item, or a continuation paragraph of one
                out[index] = ("list", box_union(current, box))
                joined = True
            else:
                del open_[index]
        if joined:
            continue
        if label == "list":
            open_[len(out)] = box[0]
        out.append((label, box))
    return out


def merge_overlapping(
    regions: list[tuple[str, Box]], style: Style, *, share: float = 0.05, row_gap: float = 0.6
) -> list[tuple[str, Box]]:
    """Merge text and list regions that overlap by more than ``share`` of the smaller one (pieces of
    one formula, a list and a paragraph inside it), or sit side by side on one row less than
    ``row_gap`` x the body size apart (less than LaTeX's narrowest column gap), until none do; a merged
    region is a list if any piece was."""
    changed = True
    while changed:
        changed = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                (la, a), (lb, b) = regions[i], regions[j]
                if la == "title" or lb == "title":
                    continue
                v = min(a[3], b[3]) - max(a[1], b[1])
                side_by_side = v >= 0.5 * min(a[3] - a[1], b[3] - b[1]) and (
                    max(a[0], b[0]) - min(a[2], b[2]) <= row_gap * style.body_size
                )
                if not side_by_side and box_overlap(a, b) <= share * min(box_area(a), box_area(b)):
                    continue
                label = "list" if "list" in (la, lb) else "text"
                regions[i] = (label, box_union(a, b))
                del regions[j]
                changed = True
                break
            if changed:
                break
    return regions


# ---------------------------------------------------------------------------------------------- page


def margins(
    lines: Sequence[TextLine], page_height: float, style: Style, *, band: float = 0.15, gap: float = 6.0
) -> set[int]:
    """Indices of running headers, footers and page numbers: the first and the last row of the page
    when it lies in the top or bottom ``band`` of the page, is set apart from the body by at least
    ``gap`` points, and repeats on other pages of the document (``Style.running``) or is a page number;
    and a lone page number anywhere outside the middle of the page."""
    out: set[int] = set()
    order = sorted(range(len(lines)), key=lambda i: lines[i].box[1])
    if len(order) < 2:
        return out

    def running(row: list[int]) -> bool:
        text = " ".join(lines[i].text for i in row)
        return normalised(text) in style.running or all(PAGE_NUMBER.match(lines[i].text) for i in row)

    first = [i for i in order if lines[i].box[1] <= lines[order[0]].box[1] + 3]
    rest_top = min((lines[i].box[1] for i in order if i not in first), default=page_height)
    if (
        max(lines[i].box[3] for i in first) <= band * page_height
        and rest_top - max(lines[i].box[3] for i in first) >= gap
        and running(first)
    ):
        out.update(first)
    bottom_y = max(lines[i].box[3] for i in order)
    last = [i for i in order if lines[i].box[3] >= bottom_y - 3]
    rest_bottom = max((lines[i].box[3] for i in order if i not in last), default=0.0)
    if (
        min(lines[i].box[1] for i in last) >= (1 - band) * page_height
        and min(lines[i].box[1] for i in last) - rest_bottom >= gap
        and running(last)
    ):
        out.update(last)
    for i in order:
        line = lines[i]
        if PAGE_NUMBER.match(line.text) and not (page_height * 0.2 < line.box[1] < page_height * 0.75):
            beside = [
                j
                for j in order
                if j != i and min(lines[j].box[3], line.box[3]) > max(lines[j].box[1], line.box[1])
            ]
            if not beside:
                out.add(i)
    return out


def numbers_at_row_ends(lines: Sequence[TextLine]) -> int:
    """How many lines are a bare number (a page number in a table of contents set without leaders, a
    column of figures) ending their row, set apart at least one text size right of another line on their
    baseline (a listing's line number, left of its line, is not counted)."""
    count = 0
    for line in lines:
        if not PAGE_NUMBER.match(line.text.strip()) or not any(c.isalnum() for c in line.text):
            continue
        height = line.box[3] - line.box[1]
        row = [
            other
            for other in lines
            if other is not line
            and min(other.box[3], line.box[3]) - max(other.box[1], line.box[1]) >= 0.5 * height
        ]
        if any(line.box[0] - other.box[2] >= max(line.size, other.size) for other in row) and not any(
            other.box[0] > line.box[2] for other in row
        ):
            count += 1
    return count


def label_page(page: pymupdf.Page, style: Style, *, min_regions: int = 2) -> PageLabels:
    """PubLayNet labels for one page, or the reason it is refused (see the module docstring)."""
    rect = page.rect
    if rect.width > rect.height:
        return PageLabels(refused="landscape")
    if page.rotation:
        return PageLabels(refused="rotated page")
    lines = text_lines(page)
    if sum(len(ln.text) for ln in lines) < 200:
        return PageLabels(refused="little text")
    if sum(1 for ln in lines if LEADERS.search(ln.text)) >= 3:
        return PageLabels(refused="table of contents or index")
    if style.body_size < MIN_BODY_SIZE:
        return PageLabels(refused="no readable body size (fonts scaled by a transform)")
    if numbers_at_row_ends(lines) >= 5:
        return PageLabels(refused="numbers set apart at row ends (contents without leaders, unruled table)")

    graphics, rules = drawings(page)
    if len(graphics) > MAX_GRAPHICS or len(rules) > MAX_RULES:
        return PageLabels(refused="too many drawings")  # dense diagrams; clustering them is quadratic
    for d in graphics:
        if d.rect_only and any(inside_fraction(ln.box, d.box) > 0.8 for ln in lines):
            # A frame or shading around text (tcolorbox, coloured table cells): PubLayNet has no label
            # for the box, and whether it is a figure, a table or text is a judgement the rules avoid.
            return PageLabels(refused="framed or shaded text")
    figures: list[Box] = list(image_boxes(page))
    for group in cluster_boxes([d.box for d in graphics], gap=6.0):
        box = box_union(*(graphics[i].box for i in group))
        if box[2] - box[0] >= 24 and box[3] - box[1] >= 16:
            figures.append(box)
    # Logos and ornaments in the top or bottom margin are page furniture, like running headers.
    figures = [f for f in figures if 0.08 * rect.height < (f[1] + f[3]) / 2 < 0.92 * rect.height]
    figures = [box_union(*(figures[i] for i in g)) for g in cluster_boxes(figures, gap=4.0)]
    tables = ruled_tables(page, rules, [line.box for line in lines])
    figures = [f for f in figures if not any(inside_fraction(f, t) > 0.5 for t in tables)]

    skip = margins(lines, rect.height, style)
    body: list[TextLine] = []
    for i, line in enumerate(lines):
        if i in skip:
            continue
        held = max((inside_fraction(line.box, b) for b in [*figures, *tables]), default=0.0)
        if held >= 0.8:
            continue  # text of a figure or a table
        if held > 0.2:
            return PageLabels(refused="text partly inside a figure or table")
        if not line.horizontal:
            return PageLabels(refused="rotated text")
        body.append(line)

    labelled = [(classify(p, style), p) for p in paragraphs(body, style)]
    regions = [
        LabelledRegion(label, box) for label, box in merge_overlapping(merge_lists(labelled, style), style)
    ]
    regions += [LabelledRegion("table", t) for t in tables]
    regions += [LabelledRegion("figure", f) for f in figures]
    small = [
        r
        for r in regions
        if r.label == "text" and r.box[2] - r.box[0] < 60 and r.box[3] - r.box[1] < 2.5 * style.body_size
    ]
    if len(small) >= 4 and len(small) > 0.25 * sum(1 for r in regions if r.label == "text"):
        return PageLabels(refused="scattered text fragments (formulas, margin notes)")
    if len(regions) < min_regions:
        return PageLabels(refused="too few regions")
    return PageLabels(regions=tuple(regions))
