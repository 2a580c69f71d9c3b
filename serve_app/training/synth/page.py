"""Page composition (distractors, front matter, columns of blocks) and ground truth read back from the PDF."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pymupdf

from serve_app.training.synth.blocks import (
    Block,
    Flow,
    body_block,
    figure_block,
    front_matter,
    heading_block,
    lines_fitting,
    list_block,
    paragraph_lines,
    table_block,
)
from serve_app.training.synth.canvas import PageCanvas, Part, font_metrics, text_width
from serve_app.training.synth.geometry import Rect, clip, intersection_area, union
from serve_app.training.synth.style import DocStyle, make_style
from serve_app.training.synth.text import Line

PDF_DATE = "D:20240101000000Z"


@dataclass(frozen=True)
class TruthRegion:
    """One ground-truth region of a synthetic page (a detection is ``serve_app.core.layout.Region``).

    ``label`` is one of ``serve_app.core.layout.LABELS``; ``bbox_pt`` is (x0, y0, x1, y1) in PDF points,
    origin top-left.
    """

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
    regions: tuple[TruthRegion, ...]
    distractors: tuple[Rect, ...]
    png: bytes


@dataclass(frozen=True)
class SyntheticDocument:
    """A generated multi-page PDF plus per-page ground truth."""

    seed: int
    dpi: int
    pdf: bytes
    pages: tuple[SyntheticPage, ...]


# ------------------------------------------------------------------------------------------- document


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


# ---------------------------------------------------------------------------------------- page layout


@dataclass(frozen=True)
class Frame:
    """A column area of a page that blocks are stacked into."""

    x: float
    top: float
    bottom: float
    width: float


def _column_frames(style: DocStyle, top: float) -> list[Frame]:
    width = style.column_width
    return [
        Frame(style.text_left + i * (width + style.column_gap), top, style.body_bottom, width)
        for i in range(style.columns)
    ]


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
    n = lines_fitting(len(lines), avail, style.body_font, style.body_size, style.leading)
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


# --------------------------------------------------------------------------------------- ground truth


def regions_from_page(
    page: pymupdf.Page, parts: Sequence[Part]
) -> tuple[tuple[TruthRegion, ...], tuple[Rect, ...]]:
    """Tight boxes: words of the PDF text layer centred in each part's rect, plus its drawn graphics."""
    words = page.get_text("words")
    boxes = np.array([w[:4] for w in words], dtype=np.float64).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    regions: list[TruthRegion] = []
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
        box = clip(box, part.rect)
        if box[2] - box[0] <= 0.5 or box[3] - box[1] <= 0.5:
            continue
        if part.label is None:
            distractors.append(box)
        else:
            regions.append(
                TruthRegion(
                    part.label, (round(box[0], 3), round(box[1], 3), round(box[2], 3), round(box[3], 3))
                )
            )
    _check_disjoint(regions)
    return tuple(regions), tuple(distractors)


def _check_disjoint(regions: Sequence[TruthRegion]) -> None:
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if intersection_area(a.bbox_pt, b.bbox_pt) > 0:
                raise RuntimeError(f"overlapping regions {a} and {b}")
