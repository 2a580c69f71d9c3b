"""Laid-out blocks that paint themselves: paragraphs, headings, lists, captions, tables and figures."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from serve_app.training.synth.canvas import PageCanvas, font_metrics, text_width
from serve_app.training.synth.charts import bar_chart, diagram, line_chart, pie_chart, raster, scatter_chart
from serve_app.training.synth.geometry import BLACK, Color, Point
from serve_app.training.synth.style import MIN_GAP, DocStyle
from serve_app.training.synth.text import (
    SECTION_NAMES,
    Line,
    centered,
    random_sentences,
    random_title,
    random_word,
    wrap,
)


@dataclass(frozen=True)
class Block:
    """A laid-out unit that can be painted at a position; ``height`` includes any space above it."""

    width: float
    height: float
    paint: Callable[[PageCanvas, float, float], None]
    kind: str


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


def lines_fitting(n_lines: int, avail: float, font: str, size: float, leading: float) -> int:
    first = font_metrics(font).extent(size)
    if avail < first:
        return 0
    return min(n_lines, 1 + int((avail - first) // leading))


# ---------------------------------------------------------------------------------------- text blocks


def paragraph_lines(rng: random.Random, style: DocStyle, width: float) -> list[Line]:
    text = random_sentences(rng, rng.randint(2, 7))
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
            text = f"{flow.section}.{flow.subsection} {random_title(rng, rng.randint(2, 5))}"
        else:
            flow.section += 1
            flow.subsection = 0
            name = rng.choice(SECTION_NAMES) if rng.random() < 0.6 else random_title(rng, rng.randint(1, 4))
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
        wrap(random_sentences(rng, rng.randint(1, 2)), font, size, width - text_x, justify=style.justify)
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
    text = f"{prefix} {random_sentences(rng, rng.randint(1, 3))}"
    font, size = style.caption_font, style.caption_size
    lines = wrap(text, font, size, width, justify=style.justify)
    if len(lines) == 1 and rng.random() < 0.6:
        lines = centered(lines, width)
    return text_block("caption", "text", lines, font, size, size * 1.18, width)


def front_matter(canvas: PageCanvas, rng: random.Random, style: DocStyle, top: float) -> float:
    """Paint the document title, authors and affiliation across the full text width; return next y."""
    width, x = style.text_width, style.text_left
    title = random_title(rng, rng.randint(5, 14))
    lines = centered(wrap(title, style.title_font, style.title_size, width * 0.85, justify=False), width)
    blocks = [
        text_block(
            "doc-title", "title", lines, style.title_font, style.title_size, style.title_size * 1.2, width
        )
    ]
    authors = ", ".join(
        f"{random_word(rng)[0].upper()}. {random_word(rng).capitalize()}" for _ in range(rng.randint(1, 5))
    )
    size = style.body_size + 1
    author_lines = centered(wrap(authors, style.body_font, size, width * 0.9, justify=False), width)
    blocks.append(text_block("authors", "text", author_lines, style.body_font, size, size * 1.2, width))
    if rng.random() < 0.6:
        affil = f"{random_title(rng, rng.randint(2, 5))}, {random_title(rng, 1)}"
        affil_lines = centered(wrap(affil, style.italic_font, style.body_size, width, justify=False), width)
        blocks.append(text_block("affil", "text", affil_lines, style.italic_font, style.body_size, 12, width))
    y = top
    for i, block in enumerate(blocks):
        block.paint(canvas, x, y)
        y += block.height + (rng.uniform(10, 16) if i == 0 else rng.uniform(5, 9))
    return y + rng.uniform(8, 18)


# --------------------------------------------------------------------------------------------- tables


def _cell_text(rng: random.Random, column: int, header: bool) -> str:
    if header:
        return (
            random_title(rng, rng.randint(1, 2))
            if column == 0 or rng.random() < 0.7
            else random_word(rng)[:4]
        )
    if column == 0:
        return random_title(rng, rng.randint(1, 2))
    return rng.choice(
        (
            f"{rng.uniform(0, 100):.1f}",
            f"{rng.uniform(0, 1):.3f}",
            str(rng.randint(1, 9999)),
            f"{rng.uniform(0, 50):.2f} \u00b1 {rng.uniform(0, 3):.2f}",
            random_word(rng),
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
