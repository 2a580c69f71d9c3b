"""Synthetic PubLayNet-style document pages for training the layout detector.

Every document is written as a real PDF with PyMuPDF (Base-14 fonts, vector graphics and embedded raster
images), each page is rendered to PNG, and ground-truth boxes for the five PubLayNet categories (text,
title, list, table, figure) are derived from what was actually written: the union of the words found in the
PDF text layer inside a region plus the extents of the graphics drawn for it. Running headers, footers and
page numbers are drawn as distractors and are not labelled, as in PubLayNet.

Everything is deterministic in the seed: all randomness flows from ``random.Random(seed)``.

CLI::

    python -m serve_app.training.synth --out DIR --seed 0 --docs 50 --pages 4 --dpi 72
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf

CATEGORIES: tuple[str, ...] = ("text", "title", "list", "table", "figure")
PAGE_SIZES: dict[str, tuple[float, float]] = {"letter": (612.0, 792.0), "a4": (595.0, 842.0)}
MIN_GAP = 4.0  # minimum distance in points between any two layout regions
PDF_DATE = "D:20240101000000Z"

Rect = tuple[float, float, float, float]
Color = tuple[float, float, float]
Point = tuple[float, float]

BLACK: Color = (0.0, 0.0, 0.0)
FONT_FAMILIES: dict[str, tuple[str, str, str]] = {
    "tiro": ("tiro", "tibo", "tiit"),
    "helv": ("helv", "hebo", "heit"),
    "cour": ("cour", "cobo", "coit"),
}
PALETTES: tuple[tuple[Color, ...], ...] = (
    ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.4, 0.74)),
    ((0.2, 0.2, 0.2), (0.45, 0.45, 0.45), (0.65, 0.65, 0.65), (0.82, 0.82, 0.82), (0.1, 0.1, 0.1)),
    ((0.27, 0.46, 0.71), (0.36, 0.72, 0.36), (0.94, 0.68, 0.31), (0.85, 0.33, 0.31), (0.5, 0.5, 0.75)),
)

_WORD_TEXT = """
    the of and to in is that for with as on by this are be from at an which or we it our not can these
    model data results method analysis system performance approach between each both however also used
    using based two three several first second new different large small significant important study
    process structure function value values sample samples table figure section shown observed reported
    measured estimated proposed previous recent general specific high low higher lower increase decrease
    effect effects response control group groups time period rate rates level levels number total average
    mean standard error distribution network training learning feature features layer layers input output
    document documents page pages text layout region regions detection accuracy precision recall score
    experiment experiments evaluation dataset datasets benchmark baseline baselines state art task tasks
    information knowledge language structure sequence temperature pressure energy surface material growth
    patients clinical treatment outcome outcomes survey population economic policy market cost costs price
    signal frequency image images resolution parameter parameters estimate theory model models framework
    design implementation algorithm algorithms efficient robust simple complex linear nonlinear optimal
    under over across within without during after before while when where because since therefore thus
    further more most less least often usually typically generally particularly respectively finally
    provide provides describe describes present presents demonstrate demonstrates suggest suggests indicate
    consider considered compare compared obtain obtained require required improve improved achieve achieved
    across range ranges condition conditions case cases example examples application applications
    community regional national global local individual collective physical chemical biological social
"""
WORDS: tuple[str, ...] = tuple(dict.fromkeys(_WORD_TEXT.split()))
SECTION_NAMES: tuple[str, ...] = (
    "Introduction",
    "Related Work",
    "Background",
    "Methods",
    "Materials and Methods",
    "Experimental Setup",
    "Data Collection",
    "Results",
    "Evaluation",
    "Analysis",
    "Discussion",
    "Limitations",
    "Conclusion",
    "Future Work",
    "Implementation Details",
    "Case Study",
)


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Region:
    """One labelled layout region; ``bbox_pt`` is (x0, y0, x1, y1) in PDF points, origin top-left."""

    label: str
    bbox_pt: Rect


@dataclass(frozen=True)
class SyntheticPage:
    """A generated page: geometry, labelled regions, unlabelled distractors and the rendered PNG."""

    index: int
    width_pt: float
    height_pt: float
    width_px: int
    height_px: int
    regions: tuple[Region, ...]
    distractors: tuple[Rect, ...]
    png: bytes


@dataclass(frozen=True)
class SyntheticDocument:
    """A generated multi-page PDF plus per-page ground truth."""

    seed: int
    dpi: int
    pdf: bytes
    pages: tuple[SyntheticPage, ...]


@dataclass(frozen=True)
class FontMetrics:
    """Ascender/descender and per-WinAnsi-byte advances (at size 1) of a Base-14 font."""

    code: str
    ascender: float
    descender: float
    advances: tuple[float, ...]

    def extent(self, size: float) -> float:
        """Height of a text line's glyph box (what the PDF text layer reports) at ``size``."""
        return (self.ascender - self.descender) * size


@dataclass(frozen=True)
class DocStyle:
    """Document-wide typographic and layout choices."""

    page_width: float
    page_height: float
    margin_left: float
    margin_right: float
    margin_top: float
    margin_bottom: float
    columns: int
    column_gap: float
    body_font: str
    bold_font: str
    italic_font: str
    body_size: float
    leading: float
    heading_font: str
    heading_size: float
    heading_color: Color
    title_font: str
    title_size: float
    caption_font: str
    caption_size: float
    justify: bool
    first_indent: float
    block_gap: float
    header_text: str
    header_size: float
    header_offset: float
    header_rule: bool
    header_on_first: bool
    footer_offset: float
    footer_align: str
    figure_prefix: str
    palette: tuple[Color, ...]

    @property
    def text_left(self) -> float:
        return self.margin_left

    @property
    def text_width(self) -> float:
        return self.page_width - self.margin_left - self.margin_right

    @property
    def column_width(self) -> float:
        return (self.text_width - (self.columns - 1) * self.column_gap) / self.columns

    @property
    def body_bottom(self) -> float:
        return self.page_height - self.margin_bottom


@dataclass(frozen=True)
class Line:
    """A laid-out line of text: offset from the block's left edge, natural width and word spacing."""

    text: str
    x: float
    width: float
    word_spacing: float = 0.0


@dataclass(frozen=True)
class Part:
    """A drawn region: its label (None for distractors), allotted rect and extents of drawn graphics."""

    label: str | None
    rect: Rect
    graphics: Rect | None


@dataclass(frozen=True)
class Block:
    """A laid-out unit that can be painted at a position; ``height`` includes any space above it."""

    width: float
    height: float
    paint: Callable[[PageCanvas, float, float], None]
    kind: str


@dataclass(frozen=True)
class Frame:
    """A column area of a page that blocks are stacked into."""

    x: float
    top: float
    bottom: float
    width: float


# ------------------------------------------------------------------------------------------ geometry


def union(a: Rect | None, b: Rect) -> Rect:
    if a is None:
        return b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def intersection_area(a: Rect, b: Rect) -> float:
    """Area of the intersection of two (x0, y0, x1, y1) rectangles."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def _clip(r: Rect, to: Rect) -> Rect:
    return (max(r[0], to[0]), max(r[1], to[1]), min(r[2], to[2]), min(r[3], to[3]))


def _grow(r: Rect, d: float) -> Rect:
    return (r[0] - d, r[1] - d, r[2] + d, r[3] + d)


def _points_box(points: Sequence[Point]) -> Rect:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


# --------------------------------------------------------------------------------------------- fonts


@cache
def font_metrics(code: str) -> FontMetrics:
    """Metrics of a Base-14 font (``helv``, ``tibo``, ...) for WinAnsi-encoded text."""
    font = pymupdf.Font(code)
    advances: list[float] = []
    for byte in range(256):
        char = bytes([byte]).decode("cp1252", errors="ignore")
        advances.append(float(font.glyph_advance(ord(char))) if char and byte >= 32 else 0.0)
    return FontMetrics(code, float(font.ascender), float(font.descender), tuple(advances))


@lru_cache(maxsize=1 << 16)
def _unit_width(code: str, text: str) -> float:
    advances = font_metrics(code).advances
    return sum(advances[b] for b in text.encode("cp1252"))


def text_width(text: str, font: str, size: float) -> float:
    """Advance width of ``text`` in points."""
    return _unit_width(font, text) * size


def _pdf_string(text: str) -> str:
    raw = text.encode("cp1252").decode("latin-1")
    return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


# -------------------------------------------------------------------------------------------- canvas


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _rgb(c: Color) -> str:
    return " ".join(_num(v) for v in c)


class PageCanvas:
    """Accumulates one page's PDF content stream (top-left coordinates) and its region parts."""

    def __init__(self, height: float) -> None:
        self.height = height
        self.ops: list[str] = []
        self.fonts: set[str] = set()
        self.images: list[tuple[Rect, pymupdf.Pixmap]] = []
        self.parts: list[Part] = []
        self._open: tuple[str | None, Rect] | None = None
        self._graphics: Rect | None = None

    def begin_part(self, label: str | None, rect: Rect) -> None:
        """Start a region; graphics drawn until the next call count towards its extents."""
        self._close()
        self._open = (label, rect)

    def finish(self) -> list[Part]:
        self._close()
        return self.parts

    def _close(self) -> None:
        if self._open is not None:
            self.parts.append(Part(self._open[0], self._open[1], self._graphics))
        self._open = None
        self._graphics = None

    def _mark(self, r: Rect) -> None:
        self._graphics = union(self._graphics, r)

    def _y(self, y: float) -> str:
        return _num(self.height - y)

    def text(
        self,
        x: float,
        baseline: float,
        text: str,
        font: str,
        size: float,
        *,
        color: Color = BLACK,
        word_spacing: float = 0.0,
    ) -> None:
        self.fonts.add(font)
        self.ops.append(
            f"BT /{font} {_num(size)} Tf {_num(word_spacing)} Tw {_rgb(color)} rg "
            f"1 0 0 1 {_num(x)} {self._y(baseline)} Tm ({_pdf_string(text)}) Tj ET"
        )

    def fill_rect(self, r: Rect, color: Color) -> None:
        self._mark(r)
        self.ops.append(
            f"q {_rgb(color)} rg {_num(r[0])} {self._y(r[3])} {_num(r[2] - r[0])} {_num(r[3] - r[1])} re f Q"
        )

    def stroke_rect(self, r: Rect, color: Color, width: float) -> None:
        """Stroke a rectangle so that the painted outline lies exactly inside ``r``."""
        self._mark(r)
        h = width / 2
        inner = (r[0] + h, r[1] + h, r[2] - h, r[3] - h)
        self.ops.append(
            f"q {_num(width)} w 0 j {_rgb(color)} RG {_num(inner[0])} {self._y(inner[3])} "
            f"{_num(inner[2] - inner[0])} {_num(inner[3] - inner[1])} re S Q"
        )

    def line(self, a: Point, b: Point, color: Color, width: float, dash: str = "") -> None:
        """Straight line with butt caps; its painted extents are tracked exactly for axis-aligned lines."""
        h = width / 2
        x0, x1 = sorted((a[0], b[0]))
        y0, y1 = sorted((a[1], b[1]))
        if y0 == y1:
            self._mark((x0, y0 - h, x1, y1 + h))
        elif x0 == x1:
            self._mark((x0 - h, y0, x1 + h, y1))
        else:
            self._mark((x0 - h, y0 - h, x1 + h, y1 + h))
        dash_op = f"[{dash}] 0 d " if dash else ""
        self.ops.append(
            f"q {_num(width)} w 0 J {dash_op}{_rgb(color)} RG {_num(a[0])} {self._y(a[1])} m "
            f"{_num(b[0])} {self._y(b[1])} l S Q"
        )

    def polyline(self, points: Sequence[Point], color: Color, width: float) -> None:
        self._mark(_grow(_points_box(points), width / 2))
        path = " ".join(f"{_num(x)} {self._y(y)} {'m' if i == 0 else 'l'}" for i, (x, y) in enumerate(points))
        self.ops.append(f"q {_num(width)} w 1 j 1 J {_rgb(color)} RG {path} S Q")

    def polygon(self, points: Sequence[Point], color: Color) -> None:
        self._mark(_points_box(points))
        path = " ".join(f"{_num(x)} {self._y(y)} {'m' if i == 0 else 'l'}" for i, (x, y) in enumerate(points))
        self.ops.append(f"q {_rgb(color)} rg {path} h f Q")

    def image(self, r: Rect, pixmap: pymupdf.Pixmap) -> None:
        self._mark(r)
        self.images.append((r, pixmap))

    def write_to(self, doc: pymupdf.Document, page: pymupdf.Page) -> None:
        """Attach the content stream, fonts and images to ``page``."""
        for font in sorted(self.fonts):
            page.insert_font(fontname=font)
        xref = doc.get_new_xref()
        doc.update_object(xref, "<<>>")
        doc.update_stream(xref, "\n".join(self.ops).encode("latin-1"))
        page.set_contents(xref)
        for rect, pixmap in self.images:
            page.insert_image(pymupdf.Rect(*rect), pixmap=pixmap, keep_proportion=False)


# ---------------------------------------------------------------------------------------------- text


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)


def _sentence(rng: random.Random, lo: int = 6, hi: int = 20) -> str:
    words = [_word(rng) for _ in range(rng.randint(lo, hi))]
    words[0] = words[0].capitalize()
    for i in range(2, len(words) - 2):
        roll = rng.random()
        if roll < 0.05:
            words[i] += ","
        elif roll < 0.07:
            words[i] = f"{rng.randint(2, 99)}.{rng.randint(0, 9)}%"
        elif roll < 0.085:
            words[i] = f"[{rng.randint(1, 48)}]"
    return " ".join(words) + "."


def _sentences(rng: random.Random, count: int) -> str:
    return " ".join(_sentence(rng) for _ in range(count))


def _title_case(rng: random.Random, n: int) -> str:
    small = {"of", "and", "to", "in", "for", "with", "on", "by", "the", "an", "at", "or", "from"}
    words = [_word(rng) for _ in range(n)]
    return " ".join(w if (i and w in small) else w.capitalize() for i, w in enumerate(words))


def wrap(
    text: str, font: str, size: float, width: float, *, justify: bool, indent: float = 0.0
) -> list[Line]:
    """Greedy line breaking; justified lines get PDF word spacing (``Tw``) to fill ``width``."""
    space = text_width(" ", font, size)
    lines: list[Line] = []
    current: list[str] = []
    current_w = 0.0
    for word in text.split():
        w = text_width(word, font, size)
        avail = width - (indent if not lines else 0.0)
        if current and current_w + space + w > avail:
            lines.append(_make_line(current, current_w, avail, indent if not lines else 0.0, justify))
            current, current_w = [], 0.0
        current_w = current_w + space + w if current else w
        current.append(word)
    if current:
        lines.append(_make_line(current, current_w, width, indent if not lines else 0.0, False))
    return lines


def _make_line(words: list[str], natural: float, avail: float, x: float, justify: bool) -> Line:
    gaps = len(words) - 1
    spacing = (avail - natural) / gaps if justify and gaps > 0 else 0.0
    return Line(" ".join(words), x, natural + spacing * gaps, spacing)


def _centered(lines: list[Line], width: float) -> list[Line]:
    return [Line(ln.text, (width - ln.width) / 2, ln.width) for ln in lines]


def text_block(
    kind: str,
    label: str,
    lines: Sequence[Line],
    font: str,
    size: float,
    leading: float,
    width: float,
    *,
    color: Color = BLACK,
    space_before: float = 0.0,
) -> Block:
    """A block of lines whose allotted rect is exactly the glyph-box extent of its lines."""
    metrics = font_metrics(font)
    body = (len(lines) - 1) * leading + metrics.extent(size)

    def paint(canvas: PageCanvas, x: float, y: float) -> None:
        top = y + space_before
        canvas.begin_part(label, (x, top, x + width, top + body))
        for i, line in enumerate(lines):
            baseline = top + metrics.ascender * size + i * leading
            canvas.text(
                x + line.x, baseline, line.text, font, size, color=color, word_spacing=line.word_spacing
            )

    return Block(width, space_before + body, paint, kind)


def _lines_fitting(n_lines: int, avail: float, font: str, size: float, leading: float) -> int:
    first = font_metrics(font).extent(size)
    if avail < first:
        return 0
    return min(n_lines, 1 + int((avail - first) // leading))


# -------------------------------------------------------------------------------------------- styles


def make_style(rng: random.Random) -> DocStyle:
    """Draw a document-wide style: page size, columns, fonts, sizes, margins, header/footer."""
    width, height = PAGE_SIZES[rng.choice(sorted(PAGE_SIZES))]
    columns = 2 if rng.random() < 0.6 else 1
    family = rng.choices(("tiro", "helv", "cour"), weights=(55, 35, 10))[0]
    regular, bold, italic = FONT_FAMILIES[family]
    heading_family = FONT_FAMILIES[rng.choice((family, "helv", "tiro"))]
    body_size = rng.choice((9.0, 9.5, 10.0)) if columns == 2 else rng.choice((10.0, 10.5, 11.0, 12.0))
    side = rng.uniform(48, 72) if columns == 2 else rng.uniform(60, 95)
    return DocStyle(
        page_width=width,
        page_height=height,
        margin_left=side,
        margin_right=side + rng.uniform(-6, 6),
        margin_top=rng.uniform(58, 85),
        margin_bottom=rng.uniform(58, 85),
        columns=columns,
        column_gap=rng.uniform(14, 28),
        body_font=regular,
        bold_font=bold,
        italic_font=italic,
        body_size=body_size,
        leading=body_size * rng.uniform(1.12, 1.35),
        heading_font=heading_family[1],
        heading_size=body_size + rng.choice((0.0, 1.0, 2.0, 3.0)),
        heading_color=rng.choice((BLACK, BLACK, (0.1, 0.2, 0.5), (0.45, 0.05, 0.05))),
        title_font=heading_family[1],
        title_size=rng.uniform(15, 22),
        caption_font=rng.choice((regular, italic)),
        caption_size=body_size - rng.choice((0.0, 0.5, 1.0)),
        justify=rng.random() < 0.65,
        first_indent=rng.choice((0.0, 0.0, 10.0, 15.0)),
        block_gap=rng.uniform(MIN_GAP + 2, 12),
        header_text=_header_text(rng),
        header_size=rng.uniform(7, 9),
        header_offset=rng.uniform(18, 30),
        header_rule=rng.random() < 0.4,
        header_on_first=rng.random() < 0.3,
        footer_offset=rng.uniform(22, 34),
        footer_align=rng.choice(("center", "right", "outer")),
        figure_prefix=rng.choice(("Figure", "Fig.")),
        palette=rng.choice(PALETTES),
    )


def _header_text(rng: random.Random) -> str:
    journal = _title_case(rng, rng.randint(2, 4))
    pages = f"{rng.randint(1, 99)}\u2013{rng.randint(100, 999)}"
    forms = (
        f"{journal} {rng.randint(1, 60)} ({rng.randint(1995, 2024)}) {pages}",
        f"{journal}, Vol. {rng.randint(1, 40)}, No. {rng.randint(1, 12)}",
        f"{_word(rng).capitalize()} et al.",
        _title_case(rng, rng.randint(3, 7)),
    )
    return rng.choice(forms)


def _column_frames(style: DocStyle, top: float) -> list[Frame]:
    width = style.column_width
    return [
        Frame(style.text_left + i * (width + style.column_gap), top, style.body_bottom, width)
        for i in range(style.columns)
    ]


# ------------------------------------------------------------------------------------ header, footer


def paint_header(canvas: PageCanvas, style: DocStyle, page_index: int) -> None:
    """Running header (text, optional page number and rule): unlabelled distractor."""
    if page_index == 0 and not style.header_on_first:
        return
    font, size = style.italic_font, style.header_size
    metrics = font_metrics(font)
    baseline = style.margin_top - style.header_offset
    even = page_index % 2 == 0
    items = [(style.header_text, "left" if even else "right")]
    if style.footer_align == "outer":
        items.append((str(page_index + 1), "right" if even else "left"))
    elif not even:
        items = [(style.header_text, "center")]
    for text, align in items:
        w = text_width(text, font, size)
        x = {
            "left": style.text_left,
            "center": style.text_left + (style.text_width - w) / 2,
            "right": style.text_left + style.text_width - w,
        }[align]
        canvas.begin_part(
            None, (x, baseline - metrics.ascender * size, x + w, baseline - metrics.descender * size)
        )
        canvas.text(x, baseline, text, font, size, color=(0.25, 0.25, 0.25))
    if style.header_rule:
        y = baseline - metrics.descender * size + 2.5
        canvas.begin_part(None, (style.text_left, y - 0.5, style.text_left + style.text_width, y + 0.5))
        canvas.line((style.text_left, y), (style.text_left + style.text_width, y), (0.3, 0.3, 0.3), 0.6)


def paint_footer(canvas: PageCanvas, style: DocStyle, page_index: int, num_pages: int) -> None:
    """Page number (and sometimes "Page n of m") at the foot of the page: unlabelled distractor."""
    if style.footer_align == "outer":
        return
    font, size = style.body_font, style.header_size + 1
    text = str(page_index + 1) if style.footer_align == "center" else f"Page {page_index + 1} of {num_pages}"
    w = text_width(text, font, size)
    x = style.text_left + (style.text_width - w) / 2
    if style.footer_align == "right":
        x = style.text_left + style.text_width - w
    metrics = font_metrics(font)
    baseline = style.body_bottom + style.footer_offset
    canvas.begin_part(
        None, (x, baseline - metrics.ascender * size, x + w, baseline - metrics.descender * size)
    )
    canvas.text(x, baseline, text, font, size)


# ------------------------------------------------------------------------------------- text blocks


class Flow:
    """Mutable document-level state: paragraph continuation, numbering, what came last."""

    def __init__(self) -> None:
        self.pending: list[Line] = []
        self.section = 0
        self.subsection = 0
        self.figures = 0
        self.tables = 0
        self.last_kind = ""
        self.queue: list[str] = []


def paragraph_lines(rng: random.Random, style: DocStyle, width: float) -> list[Line]:
    text = _sentences(rng, rng.randint(2, 7))
    return wrap(
        text, style.body_font, style.body_size, width, justify=style.justify, indent=style.first_indent
    )


def body_block(style: DocStyle, lines: Sequence[Line], width: float) -> Block:
    return text_block("paragraph", "text", lines, style.body_font, style.body_size, style.leading, width)


def heading_block(rng: random.Random, style: DocStyle, flow: Flow, width: float, text: str = "") -> Block:
    """Section or subsection heading (label: title)."""
    if not text:
        if flow.section and rng.random() < 0.35:
            flow.subsection += 1
            text = f"{flow.section}.{flow.subsection} {_title_case(rng, rng.randint(2, 5))}"
        else:
            flow.section += 1
            flow.subsection = 0
            name = rng.choice(SECTION_NAMES) if rng.random() < 0.6 else _title_case(rng, rng.randint(1, 4))
            text = f"{flow.section} {name}" if rng.random() < 0.8 else name.upper()
    size = style.heading_size if "." not in text.split()[0] else max(style.body_size, style.heading_size - 1)
    lines = wrap(text, style.heading_font, size, width, justify=False)
    return text_block(
        "heading",
        "title",
        lines,
        style.heading_font,
        size,
        size * 1.2,
        width,
        color=style.heading_color,
        space_before=style.block_gap * 0.8,
    )


def list_block(rng: random.Random, style: DocStyle, width: float) -> Block:
    """Bulleted or numbered list, one region for the whole list (label: list)."""
    font, size, leading = style.body_font, style.body_size, style.leading
    numbered = rng.random() < 0.45
    bullet = rng.choice(("\u2022", "\u2022", "\u2013", "*"))
    number_form = rng.choice(("{}.", "({})", "{})"))
    n_items = rng.randint(2, 6)
    markers = [number_form.format(i + 1) if numbered else bullet for i in range(n_items)]
    indent = rng.choice((0.0, 8.0, 14.0))
    text_x = indent + max(text_width(m, font, size) for m in markers) + rng.uniform(4, 8)
    item_gap = rng.choice((0.0, 0.0, 2.0, 3.0))
    items = [
        wrap(_sentences(rng, rng.randint(1, 2)), font, size, width - text_x, justify=style.justify)
        for _ in range(n_items)
    ]
    metrics = font_metrics(font)
    n_lines = sum(len(item) for item in items)
    height = (n_lines - 1) * leading + (n_items - 1) * item_gap + metrics.extent(size)

    def paint(canvas: PageCanvas, x: float, y: float) -> None:
        canvas.begin_part("list", (x, y, x + width, y + height))
        baseline = y + metrics.ascender * size
        for marker, item in zip(markers, items, strict=True):
            canvas.text(x + indent, baseline, marker, font, size)
            for line in item:
                canvas.text(x + text_x, baseline, line.text, font, size, word_spacing=line.word_spacing)
                baseline += leading
            baseline += item_gap

    return Block(width, height, paint, "list")


def caption_block(rng: random.Random, style: DocStyle, prefix: str, width: float) -> Block:
    """Figure/table caption (label: text, as in PubLayNet)."""
    text = f"{prefix} {_sentences(rng, rng.randint(1, 3))}"
    font, size = style.caption_font, style.caption_size
    lines = wrap(text, font, size, width, justify=style.justify)
    if len(lines) == 1 and rng.random() < 0.6:
        lines = _centered(lines, width)
    return text_block("caption", "text", lines, font, size, size * 1.18, width)


def front_matter(canvas: PageCanvas, rng: random.Random, style: DocStyle, top: float) -> float:
    """Paint the document title, authors and affiliation across the full text width; return next y."""
    width, x = style.text_width, style.text_left
    title = _title_case(rng, rng.randint(5, 14))
    lines = _centered(wrap(title, style.title_font, style.title_size, width * 0.85, justify=False), width)
    blocks = [
        text_block(
            "doc-title", "title", lines, style.title_font, style.title_size, style.title_size * 1.2, width
        )
    ]
    authors = ", ".join(
        f"{_word(rng)[0].upper()}. {_word(rng).capitalize()}" for _ in range(rng.randint(1, 5))
    )
    size = style.body_size + 1
    author_lines = _centered(wrap(authors, style.body_font, size, width * 0.9, justify=False), width)
    blocks.append(text_block("authors", "text", author_lines, style.body_font, size, size * 1.2, width))
    if rng.random() < 0.6:
        affil = f"{_title_case(rng, rng.randint(2, 5))}, {_title_case(rng, 1)}"
        affil_lines = _centered(wrap(affil, style.italic_font, style.body_size, width, justify=False), width)
        blocks.append(text_block("affil", "text", affil_lines, style.italic_font, style.body_size, 12, width))
    y = top
    for i, block in enumerate(blocks):
        block.paint(canvas, x, y)
        y += block.height + (rng.uniform(10, 16) if i == 0 else rng.uniform(5, 9))
    return y + rng.uniform(8, 18)


# --------------------------------------------------------------------------------------------- tables


def _cell_text(rng: random.Random, column: int, header: bool) -> str:
    if header:
        return _title_case(rng, rng.randint(1, 2)) if column == 0 or rng.random() < 0.7 else _word(rng)[:4]
    if column == 0:
        return _title_case(rng, rng.randint(1, 2))
    return rng.choice(
        (
            f"{rng.uniform(0, 100):.1f}",
            f"{rng.uniform(0, 1):.3f}",
            str(rng.randint(1, 9999)),
            f"{rng.uniform(0, 50):.2f} \u00b1 {rng.uniform(0, 3):.2f}",
            _word(rng),
        )
    )


def table_block(rng: random.Random, style: DocStyle, flow: Flow, width: float) -> Block | None:
    """A table (grid, booktabs, every-row rules or no rules) with its caption above or below it."""
    font, bold = style.body_font, style.bold_font
    size = max(7.0, style.body_size - rng.choice((0.0, 1.0, 1.5)))
    n_cols = rng.randint(2, 6)
    n_rows = rng.randint(3, 10)
    cells = [[_cell_text(rng, c, r == 0) for c in range(n_cols)] for r in range(n_rows)]
    pad = rng.uniform(5, 10)
    col_w = [
        max(text_width(cells[r][c], bold if r == 0 else font, size) for r in range(n_rows)) + 2 * pad
        for c in range(n_cols)
    ]
    while sum(col_w) > width and len(col_w) > 2:
        col_w.pop()
        cells = [row[:-1] for row in cells]
    if sum(col_w) > width:
        return None
    if rng.random() < 0.5:
        extra = (width * rng.uniform(0.85, 1.0) - sum(col_w)) / len(col_w)
        col_w = [w + max(extra, 0.0) for w in col_w]
    rules = rng.choice(("grid", "booktabs", "hlines", "none"))
    metrics = font_metrics(bold)
    row_h = max(size * rng.uniform(1.4, 1.9), metrics.extent(size) + 1.5)
    table_w, table_h = sum(col_w), row_h * len(cells)
    flow.tables += 1
    caption = caption_block(rng, style, f"Table {flow.tables}:", width)
    gap = rng.uniform(MIN_GAP + 2, 9)
    caption_above = rng.random() < 0.75

    def paint(canvas: PageCanvas, x: float, y: float) -> None:
        tx = x + (width - table_w) / 2
        table_y = y + caption.height + gap if caption_above else y
        if caption_above:
            caption.paint(canvas, x, y)
        canvas.begin_part("table", (tx, table_y, tx + table_w, table_y + table_h))
        _paint_table_cells(canvas, cells, col_w, row_h, (tx, table_y), (font, bold, size))
        _paint_table_rules(canvas, rules, col_w, row_h, len(cells), (tx, table_y))
        if not caption_above:
            caption.paint(canvas, x, table_y + table_h + gap)

    return Block(width, table_h + gap + caption.height, paint, "table")


def _paint_table_cells(
    canvas: PageCanvas,
    cells: list[list[str]],
    col_w: list[float],
    row_h: float,
    origin: Point,
    fonts: tuple[str, str, float],
) -> None:
    font, bold, size = fonts
    for r, row in enumerate(cells):
        face = bold if r == 0 else font
        metrics = font_metrics(face)
        baseline = origin[1] + r * row_h + row_h / 2 + (metrics.ascender + metrics.descender) * size / 2
        x = origin[0]
        for c, text in enumerate(row):
            w = text_width(text, face, size)
            slack = col_w[c] - w
            tx = x + (slack / 2 if c else min(slack / 2, 4.0))
            canvas.text(tx, baseline, text, face, size)
            x += col_w[c]


def _paint_table_rules(
    canvas: PageCanvas, rules: str, col_w: list[float], row_h: float, n_rows: int, origin: Point
) -> None:
    x0, y0 = origin
    x1, y1 = x0 + sum(col_w), y0 + row_h * n_rows
    color, lw = (0.0, 0.0, 0.0), 0.6
    if rules == "grid":
        canvas.stroke_rect((x0, y0, x1, y1), color, lw)
        xs = [x0 + sum(col_w[: i + 1]) for i in range(len(col_w) - 1)]
        for x in xs:
            canvas.line((x, y0), (x, y1), color, lw)
        for r in range(1, n_rows):
            canvas.line((x0, y0 + r * row_h), (x1, y0 + r * row_h), color, lw)
    elif rules == "booktabs":
        canvas.line((x0, y0 + 0.5), (x1, y0 + 0.5), color, 1.0)
        canvas.line((x0, y0 + row_h), (x1, y0 + row_h), color, 0.5)
        canvas.line((x0, y1 - 0.5), (x1, y1 - 0.5), color, 1.0)
    elif rules == "hlines":
        for r in range(n_rows + 1):
            y = min(max(y0 + r * row_h, y0 + 0.3), y1 - 0.3)
            canvas.line((x0, y), (x1, y), (0.35, 0.35, 0.35), 0.6)


# -------------------------------------------------------------------------------------------- figures


def figure_block(rng: random.Random, style: DocStyle, flow: Flow, width: float, max_h: float) -> Block | None:
    """A vector chart, diagram or raster image (label: figure) with a caption below (label: text)."""
    fraction = rng.uniform(0.55, 1.0) if width < 300 else rng.uniform(0.4, 0.8)
    fig_w = width * fraction
    fig_h = min(fig_w * rng.uniform(0.45, 0.8), max_h * 0.6)
    if fig_h < 50:
        return None
    flow.figures += 1
    caption = caption_block(rng, style, f"{style.figure_prefix} {flow.figures}.", width)
    gap = rng.uniform(MIN_GAP + 2, 10)
    painter = rng.choices(
        (bar_chart, line_chart, scatter_chart, pie_chart, diagram, raster), (4, 4, 2, 2, 2, 6)
    )[0]
    seed = rng.getrandbits(32)

    def paint(canvas: PageCanvas, x: float, y: float) -> None:
        fx = x + (width - fig_w) / 2
        rect = (fx, y, fx + fig_w, y + fig_h)
        canvas.begin_part("figure", rect)
        painter(canvas, random.Random(seed), style, rect)
        caption.paint(canvas, x, y + fig_h + gap)

    return Block(width, fig_h + gap + caption.height, paint, "figure")


def _centered_text(canvas: PageCanvas, cx: float, baseline: float, text: str, font: str, size: float) -> None:
    canvas.text(cx - text_width(text, font, size) / 2, baseline, text, font, size)


def _axes(canvas: PageCanvas, rng: random.Random, rect: Rect, x_labels: Sequence[str]) -> Rect:
    """Draw y ticks/labels, x labels and the two axes; return the plot area."""
    font, size = "helv", 6.5
    metrics = font_metrics(font)
    scale = rng.choice((1, 10, 100, 1000))
    ticks = [f"{v * scale / 4:g}" for v in range(5)]
    label_w = max(text_width(t, font, size) for t in ticks)
    ext = metrics.extent(size)
    left, right = rect[0] + label_w + 4, rect[2] - 2
    top, bottom = rect[1] + ext / 2 + 1, rect[3] - ext - 3
    if rng.random() < 0.4:
        title = _title_case(rng, rng.randint(2, 4))
        if text_width(title, "hebo", 7) < rect[2] - rect[0]:
            _centered_text(canvas, (rect[0] + rect[2]) / 2, rect[1] + metrics.ascender * 7, title, "hebo", 7)
            top += ext + 4
    for i, tick in enumerate(ticks):
        y = bottom - i * (bottom - top) / 4
        baseline = y + (metrics.ascender + metrics.descender) * size / 2
        canvas.text(left - 3 - text_width(tick, font, size), baseline, tick, font, size)
        if i and rng.random() < 0.5:
            canvas.line((left, y), (right, y), (0.8, 0.8, 0.8), 0.4, dash="2 2")
    step = (right - left) / len(x_labels)
    for i, label in enumerate(x_labels):
        cx = left + (i + 0.5) * step
        half = text_width(label, font, size) / 2
        cx = min(max(cx, rect[0] + half), rect[2] - half)
        _centered_text(canvas, cx, rect[3] + metrics.descender * size, label, font, size)
    canvas.line((left, top), (left, bottom), BLACK, 0.7)
    canvas.line((left, bottom), (right, bottom), BLACK, 0.7)
    return (left, top, right, bottom)


def _x_labels(rng: random.Random, n: int, room: float) -> list[str]:
    kind = rng.choice(("year", "letter", "word"))
    if kind == "year":
        start = rng.randint(1990, 2015)
        labels = [str(start + i) for i in range(n)]
    elif kind == "word":
        labels = [_word(rng)[:5] for _ in range(n)]
    else:
        labels = [chr(65 + i) for i in range(n)]
    if max(text_width(label, "helv", 6.5) for label in labels) > room * 0.9:
        labels = [str(i + 1) for i in range(n)]
    return labels


def bar_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    n, series = rng.randint(3, 8), rng.choice((1, 1, 2, 3))
    labels = _x_labels(rng, n, (rect[2] - rect[0] - 20) / n)
    left, top, right, bottom = _axes(canvas, rng, rect, labels)
    group = (right - left) / n
    bar_w = group * rng.uniform(0.5, 0.8) / series
    for i in range(n):
        for s in range(series):
            h = (bottom - top) * rng.uniform(0.1, 1.0)
            x = left + i * group + (group - bar_w * series) / 2 + s * bar_w
            canvas.fill_rect((x, bottom - h, x + bar_w, bottom), style.palette[s])


def line_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    n = rng.randint(5, 12)
    labels = _x_labels(rng, n, (rect[2] - rect[0] - 20) / n)
    left, top, right, bottom = _axes(canvas, rng, rect, labels)
    step = (right - left) / n
    for s in range(rng.randint(1, 3)):
        level = rng.uniform(0.2, 0.8)
        points: list[Point] = []
        for i in range(n):
            level = min(max(level + rng.uniform(-0.15, 0.15), 0.05), 0.95)
            points.append((left + (i + 0.5) * step, bottom - level * (bottom - top)))
        color = style.palette[s]
        canvas.polyline(points, color, 1.2)
        if rng.random() < 0.6:
            for px, py in points:
                canvas.fill_rect((px - 1.6, py - 1.6, px + 1.6, py + 1.6), color)


def scatter_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    labels = [f"{v:g}" for v in range(0, 6)]
    left, top, right, bottom = _axes(canvas, rng, rect, labels)
    for s in range(rng.randint(1, 2)):
        cx, cy = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
        for _ in range(rng.randint(20, 60)):
            px = left + 3 + (right - left - 6) * min(max(rng.gauss(cx, 0.18), 0.0), 1.0)
            py = bottom - 3 - (bottom - top - 6) * min(max(rng.gauss(cy, 0.18), 0.0), 1.0)
            canvas.fill_rect((px - 1.3, py - 1.3, px + 1.3, py + 1.3), style.palette[s])


def pie_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    font, size = "helv", 6.5
    labels = [_word(rng)[:8].capitalize() for _ in range(rng.randint(3, 5))]
    legend_w = max(text_width(label, font, size) for label in labels) + 12
    radius = min((rect[3] - rect[1]) / 2 - 1, (rect[2] - rect[0] - legend_w) / 2 - 6)
    if radius < 10:
        bar_chart(canvas, rng, style, rect)
        return
    cx, cy = rect[0] + radius + 1, (rect[1] + rect[3]) / 2
    shares = [rng.uniform(1, 4) for _ in labels]
    angle = -math.pi / 2
    for i, share in enumerate(shares):
        sweep = 2 * math.pi * share / sum(shares)
        steps = max(2, int(sweep * 12))
        arc = [
            (
                cx + radius * math.cos(angle + sweep * k / steps),
                cy + radius * math.sin(angle + sweep * k / steps),
            )
            for k in range(steps + 1)
        ]
        canvas.polygon([(cx, cy), *arc], style.palette[i % len(style.palette)])
        angle += sweep
    metrics = font_metrics(font)
    lx = cx + radius + 12
    y = cy - len(labels) * 10 / 2
    for i, label in enumerate(labels):
        canvas.fill_rect((lx, y + 1, lx + 6, y + 7), style.palette[i % len(style.palette)])
        canvas.text(lx + 9, y + 4 + (metrics.ascender + metrics.descender) * size / 2, label, font, size)
        y += 10


def diagram(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    """A left-to-right flow diagram: labelled boxes joined by arrows."""
    font, size = "helv", 7.0
    metrics = font_metrics(font)
    labels = [_word(rng).capitalize() for _ in range(rng.randint(2, 5))]
    widths = [text_width(label, font, size) + 10 for label in labels]
    arrow = (rect[2] - rect[0] - sum(widths)) / max(len(labels) - 1, 1)
    if arrow < 12:
        line_chart(canvas, rng, style, rect)
        return
    box_h = min(rect[3] - rect[1], rng.uniform(22, 40))
    top = (rect[1] + rect[3]) / 2 - box_h / 2
    x = rect[0]
    for i, (label, w) in enumerate(zip(labels, widths, strict=True)):
        box = (x, top, x + w, top + box_h)
        canvas.fill_rect(box, _tint(style.palette[i % len(style.palette)]))
        canvas.stroke_rect(box, BLACK, 0.8)
        baseline = top + box_h / 2 + (metrics.ascender + metrics.descender) * size / 2
        canvas.text(x + 5, baseline, label, font, size)
        if i < len(labels) - 1:
            mid = top + box_h / 2
            canvas.line((x + w + 2, mid), (x + w + arrow - 6, mid), BLACK, 0.8)
            tip = x + w + arrow - 2
            canvas.polygon([(tip, mid), (tip - 5, mid - 3), (tip - 5, mid + 3)], BLACK)
        x += w + arrow


def raster(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    """One to three embedded raster panels (gradients, blobs and noise), optionally with sub-labels."""
    panels = rng.choice((1, 1, 2, 3))
    gap = 6.0
    sublabels = panels > 1 and rng.random() < 0.6
    font, size = "helv", 7.0
    metrics = font_metrics(font)
    label_h = metrics.extent(size) + 3 if sublabels else 0.0
    panel_w = (rect[2] - rect[0] - gap * (panels - 1)) / panels
    border = rng.random() < 0.3
    for i in range(panels):
        x0 = rect[0] + i * (panel_w + gap)
        box = (x0, rect[1], x0 + panel_w, rect[3] - label_h)
        canvas.image(box, _raster_pixmap(rng, box))
        if border:
            canvas.stroke_rect(box, BLACK, 0.6)
        if sublabels:
            _centered_text(
                canvas, x0 + panel_w / 2, rect[3] + metrics.descender * size, f"({chr(97 + i)})", font, size
            )


def _tint(color: Color) -> Color:
    return (0.75 + 0.25 * color[0], 0.75 + 0.25 * color[1], 0.75 + 0.25 * color[2])


def _raster_pixmap(rng: random.Random, box: Rect) -> pymupdf.Pixmap:
    width = int(min(max((box[2] - box[0]) * 0.6, 32), 192))
    height = int(min(max((box[3] - box[1]) * 0.6, 24), 192))
    gen = np.random.default_rng(rng.getrandbits(32))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx /= width
    yy /= height
    c0, c1 = gen.uniform(0, 1, 3), gen.uniform(0, 1, 3)
    img = c0[None, None, :] * (1 - xx[..., None]) + c1[None, None, :] * yy[..., None]
    for _ in range(int(gen.integers(2, 7))):
        cx, cy, sigma = gen.uniform(0, 1), gen.uniform(0, 1), gen.uniform(0.05, 0.3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        img += blob[..., None] * gen.uniform(-0.6, 0.6, 3)[None, None, :]
    img += gen.normal(0, gen.uniform(0.01, 0.12), img.shape)
    if gen.uniform() < 0.3:
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    pixels = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return pymupdf.Pixmap(pymupdf.csRGB, width, height, pixels.tobytes(), 0)


# --------------------------------------------------------------------------------------------- layout


def _pick_kind(rng: random.Random, flow: Flow) -> str:
    if flow.queue:
        return flow.queue.pop(0)
    if flow.last_kind == "heading":
        return "paragraph"
    kinds = ("paragraph", "heading", "list", "table", "figure")
    return rng.choices(kinds, weights=(50, 11, 9, 9, 13))[0]


def next_block(rng: random.Random, style: DocStyle, flow: Flow, frame: Frame, avail: float) -> Block | None:
    """The next block of the flow that fits in ``avail`` points, or None (numbering is then unchanged)."""
    counters = (flow.section, flow.subsection, flow.figures, flow.tables)
    block = _make_block(rng, style, flow, frame, avail)
    if block is None:
        flow.section, flow.subsection, flow.figures, flow.tables = counters
    return block


def _make_block(rng: random.Random, style: DocStyle, flow: Flow, frame: Frame, avail: float) -> Block | None:
    if flow.pending:
        return _paragraph_part(style, flow, flow.pending, frame.width, avail, min_lines=1)
    kind = _pick_kind(rng, flow)
    if kind in ("heading", "abstract-heading"):
        block = heading_block(rng, style, flow, frame.width, "Abstract" if kind == "abstract-heading" else "")
        metrics = font_metrics(style.body_font)
        room_after = style.block_gap + metrics.extent(style.body_size) + 2 * style.leading
        return block if block.height + room_after <= avail else None
    if kind == "paragraph":
        lines = paragraph_lines(rng, style, frame.width)
        return _paragraph_part(style, flow, lines, frame.width, avail, min_lines=2)
    if kind == "list":
        made: Block | None = list_block(rng, style, frame.width)
    elif kind == "table":
        made = table_block(rng, style, flow, frame.width)
    else:
        made = figure_block(rng, style, flow, frame.width, frame.bottom - frame.top)
    return made if made is not None and made.height <= avail else None


def _paragraph_part(
    style: DocStyle, flow: Flow, lines: list[Line], width: float, avail: float, *, min_lines: int
) -> Block | None:
    """As many of ``lines`` as fit (at least ``min_lines``); the rest continues in the next column."""
    n = _lines_fitting(len(lines), avail, style.body_font, style.body_size, style.leading)
    if n == 0 or n < min(min_lines, len(lines)):
        return None
    flow.pending = lines[n:]
    return body_block(style, lines[:n], width)


def fill_frame(canvas: PageCanvas, rng: random.Random, style: DocStyle, flow: Flow, frame: Frame) -> None:
    """Stack blocks into a column until it is full."""
    y, failures = frame.top, 0
    while failures < 4:
        block = next_block(rng, style, flow, frame, frame.bottom - y)
        if block is None:
            if flow.pending:
                return
            failures += 1
            continue
        block.paint(canvas, frame.x, y)
        flow.last_kind = block.kind
        y += block.height + style.block_gap
        if frame.bottom - y < font_metrics(style.body_font).extent(style.body_size):
            return


def wide_float(canvas: PageCanvas, rng: random.Random, style: DocStyle, flow: Flow, top: float) -> float:
    """A full-width table or figure at the top of a two-column page; return where the columns start."""
    width = style.text_width
    counters = (flow.figures, flow.tables)
    block = (
        table_block(rng, style, flow, width)
        if rng.random() < 0.4
        else figure_block(rng, style, flow, width, style.body_bottom - top)
    )
    if block is None or block.height > (style.body_bottom - top) * 0.6:
        flow.figures, flow.tables = counters
        return top
    block.paint(canvas, style.text_left, top)
    return top + block.height + rng.uniform(12, 20)


def compose_page(
    canvas: PageCanvas, rng: random.Random, style: DocStyle, flow: Flow, index: int, num_pages: int
) -> None:
    """Lay out one page: distractors, optional front matter / wide float, then the columns."""
    paint_header(canvas, style, index)
    paint_footer(canvas, style, index, num_pages)
    top = style.margin_top
    if index == 0:
        top = front_matter(canvas, rng, style, top)
        if rng.random() < 0.7:
            flow.queue = ["abstract-heading", "paragraph", "heading"]
    elif style.columns == 2 and rng.random() < 0.3:
        top = wide_float(canvas, rng, style, flow, top)
    for frame in _column_frames(style, top):
        fill_frame(canvas, rng, style, flow, frame)


# ---------------------------------------------------------------------------------------- ground truth


def regions_from_page(
    page: pymupdf.Page, parts: Sequence[Part]
) -> tuple[tuple[Region, ...], tuple[Rect, ...]]:
    """Tight boxes: words of the PDF text layer centred in each part's rect, plus its drawn graphics."""
    words = page.get_text("words")
    boxes = np.array([w[:4] for w in words], dtype=np.float64).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    regions: list[Region] = []
    distractors: list[Rect] = []
    for part in parts:
        x0, y0, x1, y1 = part.rect
        inside = boxes[(cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)]
        box = part.graphics
        if len(inside):
            lo, hi = inside[:, :2].min(axis=0), inside[:, 2:].max(axis=0)
            box = union(box, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))
        if box is None:
            continue
        box = _clip(box, part.rect)
        if box[2] - box[0] <= 0.5 or box[3] - box[1] <= 0.5:
            continue
        if part.label is None:
            distractors.append(box)
        else:
            regions.append(
                Region(part.label, (round(box[0], 3), round(box[1], 3), round(box[2], 3), round(box[3], 3)))
            )
    _check_disjoint(regions)
    return tuple(regions), tuple(distractors)


def _check_disjoint(regions: Sequence[Region]) -> None:
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if intersection_area(a.bbox_pt, b.bbox_pt) > 0:
                raise RuntimeError(f"overlapping regions {a} and {b}")


# ------------------------------------------------------------------------------------------- public


def generate_document(*, seed: int, num_pages: int, dpi: int = 72) -> SyntheticDocument:
    """Generate one synthetic PDF of ``num_pages`` pages, its ground truth and PNG renderings at ``dpi``."""
    if num_pages < 1:
        raise ValueError("num_pages must be >= 1")
    rng = random.Random(seed)
    style = make_style(rng)
    flow = Flow()
    doc = pymupdf.open()
    all_parts: list[list[Part]] = []
    for index in range(num_pages):
        page = doc.new_page(width=style.page_width, height=style.page_height)
        canvas = PageCanvas(style.page_height)
        compose_page(canvas, rng, style, flow, index, num_pages)
        canvas.write_to(doc, page)
        all_parts.append(canvas.finish())
    doc.set_metadata(
        {
            "title": f"Synthetic document {seed}",
            "author": "serve_app.training.synth",
            "creator": "serve_app.training.synth",
            "producer": "PyMuPDF",
            "creationDate": PDF_DATE,
            "modDate": PDF_DATE,
        }
    )
    pdf = doc.tobytes(garbage=3, deflate=True, no_new_id=True)
    doc.close()
    return SyntheticDocument(seed, dpi, pdf, _pages_from_pdf(pdf, all_parts, dpi))


def _pages_from_pdf(pdf: bytes, all_parts: Sequence[Sequence[Part]], dpi: int) -> tuple[SyntheticPage, ...]:
    """Re-open the written PDF, derive ground truth from its text layer and render every page."""
    pages: list[SyntheticPage] = []
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        for index, page in enumerate(doc):
            regions, distractors = regions_from_page(page, all_parts[index])
            pix = page.get_pixmap(dpi=dpi, alpha=False)
            pages.append(
                SyntheticPage(
                    index=index,
                    width_pt=float(page.rect.width),
                    height_pt=float(page.rect.height),
                    width_px=pix.width,
                    height_px=pix.height,
                    regions=regions,
                    distractors=distractors,
                    png=pix.tobytes("png"),
                )
            )
    return tuple(pages)


def document_seeds(seed: int, num_docs: int) -> list[int]:
    """Per-document seeds derived deterministically from a dataset seed."""
    rng = random.Random(seed)
    return [rng.getrandbits(63) for _ in range(num_docs)]


def _annotation(
    region: Region, ann_id: int, image_id: int, scale: float, size_px: tuple[int, int]
) -> dict[str, Any]:
    x0, y0, x1, y1 = region.bbox_pt
    px0, py0 = max(x0 * scale, 0.0), max(y0 * scale, 0.0)
    px1, py1 = min(x1 * scale, float(size_px[0])), min(y1 * scale, float(size_px[1]))
    w, h = round(px1 - px0, 2), round(py1 - py0, 2)
    px0, py0 = round(px0, 2), round(py0, 2)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": CATEGORIES.index(region.label) + 1,
        "bbox": [px0, py0, w, h],
        "area": round(w * h, 2),
        "iscrowd": 0,
        "segmentation": [
            [px0, py0, round(px0 + w, 2), py0, round(px0 + w, 2), round(py0 + h, 2), px0, round(py0 + h, 2)]
        ],
        "bbox_pt": [x0, y0, x1, y1],
    }


def write_dataset(out_dir: Path, *, seed: int, num_docs: int, pages_per_doc: int, dpi: int) -> Path:
    """Write PDFs (``pdfs/``), page PNGs (``images/``) and COCO ``annotations.json``; return the JSON path.

    Image ``file_name`` values are relative to ``out_dir`` (use it as the detectron2 image root).
    """
    out_dir = Path(out_dir)
    (out_dir / "pdfs").mkdir(parents=True, exist_ok=True)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    scale = dpi / 72.0
    for doc_index, doc_seed in enumerate(document_seeds(seed, num_docs)):
        document = generate_document(seed=doc_seed, num_pages=pages_per_doc, dpi=dpi)
        pdf_name = f"pdfs/doc_{doc_index:05d}.pdf"
        (out_dir / pdf_name).write_bytes(document.pdf)
        for page in document.pages:
            image_id = len(images) + 1
            file_name = f"images/doc_{doc_index:05d}_p{page.index:03d}.png"
            (out_dir / file_name).write_bytes(page.png)
            images.append(
                {
                    "id": image_id,
                    "file_name": file_name,
                    "width": page.width_px,
                    "height": page.height_px,
                    "pdf": pdf_name,
                    "page_index": page.index,
                    "page_width_pt": page.width_pt,
                    "page_height_pt": page.height_pt,
                }
            )
            for region in page.regions:
                size_px = (page.width_px, page.height_px)
                annotations.append(_annotation(region, len(annotations) + 1, image_id, scale, size_px))
    coco = {
        "info": {"description": "synthetic PubLayNet-style pages", "seed": seed, "dpi": dpi},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "layout"} for i, name in enumerate(CATEGORIES)
        ],
    }
    path = out_dir / "annotations.json"
    path.write_text(json.dumps(coco, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=int, default=50, help="number of PDF documents")
    parser.add_argument("--pages", type=int, default=4, help="pages per document")
    parser.add_argument("--dpi", type=int, default=72, help="PNG rendering resolution")
    args = parser.parse_args(argv)
    path = write_dataset(args.out, seed=args.seed, num_docs=args.docs, pages_per_doc=args.pages, dpi=args.dpi)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
