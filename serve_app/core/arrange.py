"""Detected regions arranged on the page's own content (pure, no Ray): ruled tables taken from the PDF's
rules, drawings no region holds made figures, figures snapped to the graphics they hold, regions snapped
to whole text lines, empty regions dropped, headings told by their fonts, text no region holds made
regions, running heads dropped, fragments of one paragraph merged, the rest in reading order, and lists
told by their item markers.

``arrange_regions`` applies every step; each step is public on its own, so an evaluation can measure what
each one changes (``order_tau`` scores an order against the PDF's content stream):

1. ``tables_from_rules``: each ruled table of the page (``core.pdf``'s ``PageContent.tables``: grids and
   booktabs rules) becomes one table region with exactly its box, score 1.0, in place of the regions
   lying at least half inside it (and of a table region holding it at least half): what the PDF draws
   as a table is one. Needs a pixel scale: a detection on the page, or ``arrange_regions``'
   ``points_per_pixel``.
2. ``figures_from_graphics``: the page's graphics, clustered (6 pt apart or closer), that no figure or
   table holds at least half of become figure regions, score 1.0, in place of the regions lying at least
   half inside them: a drawing or an image the model missed. Clusters smaller than 24 x 16 pt, centred in
   the top or bottom 8% of the page (logos, ornaments) or holding more than three text lines (a text box)
   are left alone. Needs a pixel scale, like step 1.
3. ``snap_to_graphics``: a figure becomes the union of the images and vector drawings (``core.pdf``'s
   ``PageContent.graphics``) lying at least half inside it and of the text lines it holds as detected:
   grown to whole graphics, shrunk to what is drawn and written there (no line of it is lost). A figure
   holding no graphic (a scan, a listing called a figure) keeps its box. Detected tables are not snapped
   to graphics (measured on real pages: no gain); ruled ones were replaced in step 1.
4. ``snap_to_lines``: every text line goes to one region, the one holding most of it; text, title and
   list regions become the union of their lines (tight boxes), figures and tables grow to hold theirs.
5. ``drop_empty``: text, title and list regions that hold no line are dropped.
6. ``titles_from_fonts``: a text region holding one or two short lines set like a heading (bold, or 15%
   larger than the page's body size, and not monospaced, from the PDF's fonts: ``heading_block``), and no
   caption, is a title; a text or list region holding such a heading among body rows (a list detected
   over the section headings between lists) is cut into the heading, a title, and the body above and
   below it.
7. ``text_from_lines``: text lines no region holds (the model missed them), grouped into blocks by their
   spacing, column and style, become text regions (titles when set like a heading), score
   ``LEFTOVER_SCORE``: what the page says is never left out of the result. A code listing's line
   numbers left of a text region (those of its blank lines too) join that region instead.
8. ``drop_margins``: text, title and list regions inside the top or bottom margin band holding one or two
   short lines (running heads, footers, page numbers: PubLayNet leaves them unlabelled), or in the top or
   bottom fifth holding a lone page number, are dropped.
9. ``merge_fragments``: text (or list) regions stacked in one column, a quarter line or less apart, with
   nothing between them and no paragraph ending between them (a short last line, an indent; not told
   between two rows of code, whose ends and indents are the code's), become one.
10. ``reading_order``: XY-cut, columns (at least a quarter of the width) before bands, captions right
   after their figure or table.
11. ``lists_from_items``: a text region whose first line starts a list item (a bullet or an enumerator
   standing apart from its text as a label does, ``is_item_start``; not a dash that a justified paragraph
   wrapped to the start of a line, ``wrapped_dash``) is a list, a list region without any item start is
   text, a text region holding two item starts or more under lines that start none is split into the
   paragraph and the list it introduces, and list items next to one another in reading order, with the
   text indented under an item, become one list (PubLayNet's convention: a whole list is one region).

Labels follow PubLayNet (``serve_app.core.layout.LABELS``). Regions with other labels (a user's model) keep
their boxes, hold no lines and are only put in order; steps 1, 2, 6, 7 and 11 run only for a model whose
labels include the ones they give (``arrange_regions``'s ``labels``), so a user's model never gets a label
it does not have. A page without words (a scan) is only put in order: nothing is snapped, merged or
dropped. Boxes are in PDF points, origin top-left; a region's pixel box is rescaled with it. Mask outlines
are the model's and are kept as they are (a merged region gets the outlines of both parts, largest first).

Measured here with ``order_tau`` (Kendall's tau against the content stream) on the ground-truth regions of
400 synthetic pages (``serve_app.training.synth``, seeds 0-199): 0.984 on average (1.0 on every page with
``captions_after=False``: the stream has table captions above their table first), against 0.745 for regions
sorted top to bottom; on 267 pages of two-column TeX documents, pymupdf's text blocks as regions: 0.910
against 0.764. On the 400 labelled real pages of ``serve_app.training.real``'s test split (mostly
one-column manuals, often with margin notes), their labelled regions: 0.961 against 0.972 for top to
bottom; parts narrower than a quarter of the width do not count as columns (with them, 0.878), and a text
region over 40 pt high is no caption. Table captions, put after their table here, are above it in the
stream. Snapping the synthetic truth changes no box (IoU > 0.9999), drops and merges nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from serve_app.core.errors import InvalidInput
from serve_app.core.layout import (
    LABELS,
    Box,
    Polygon,
    Region,
    box_area,
    box_overlap,
    box_union,
    cluster_boxes,
)
from serve_app.core.pdf import Word

TEXT_LABELS: tuple[str, ...] = ("text", "title", "list")  # snapped tight to their lines
GRAPHIC_LABELS: tuple[str, ...] = ("figure", "table")  # grown to hold their lines, never shrunk
MERGED_LABELS: tuple[str, ...] = ("text", "list")  # fragments of these are merged; titles never are

# The score of a region made of text lines no detection held (``text_from_lines``): the text is there for
# sure, its label (text, or title by its font) and its grouping are a guess, ranked below the model's own
# detections at the default score threshold.
LEFTOVER_SCORE = 0.5
# Blocks of left-over lines a page gets at most (the largest kept): the steps after compare regions
# pairwise, and a page may hold thousands of loose lines (measured without the bound: a page of 1,000
# one-line blocks took 0.35 s to arrange, of 3,000 4.8 s; with it 0.04 s and 0.13 s).
MAX_LEFTOVER_BLOCKS = 200
Position = tuple[int, int, int]  # (block, line, index) of a word: its place in the content stream
# What starts a list item: bullets of itemize and friends (bullets, circles, squares, dashes, asterisks,
# arrows, check marks), or an enumerator: "1.", "a)", "(iv)", "[12]".
BULLETS = frozenset(
    "\u2022\u25e6\u2023\u25aa\u25ab\u25a0\u25a1\u25cf\u25cb\u2013\u2014-\u2217*\u00b7\u25ba\u25b8\u25b9\u2713\u2717\u22c6\u2605\u27a2\u27a4\u2192"
)
# Bullets that a justified line may also start with: a sentence's dash that the paragraph wrapped there.
DASHES = frozenset("-\u2013\u2014")
# A list's label is set in the line's size; a smaller first word is a superscript (a footnote's mark).
MIN_LABEL_SIZE = 0.8
LINE_NUMBER = re.compile(r"^[0-9]{1,4}$")  # a code listing's line number, set left of its line
# Not "1:" or "a:": an algorithm's line numbers, a listing's labels.
ENUMERATOR = re.compile(r"^(\(?([0-9]{1,3}|[a-zA-Z]|[ivxlcIVXLC]{1,5})[.)]|\[[0-9A-Za-z+]{1,8}\])$")
# A page number: "12", "- 12 -", "xiv", "Page 3 of 10", "Seite 3".
PAGE_NUMBER = re.compile(
    r"^[-\u2013\u2014 ]*(page |seite )?([0-9]{1,4}|[ivxlc]{1,6}|[IVXLC]{1,6})"
    r"( ?(/|of|von) ?[0-9]{1,4})?[-\u2013\u2014 ]*$",
    re.I,
)
# What starts a caption: set like a heading (bold "Figure 3:") but text in PubLayNet's convention.
CAPTION = re.compile(
    r"^(Figure|Fig\.|Table|Tab\.|Listing|Algorithm|Abbildung|Tabelle|Figura|Tableau)\s*[0-9A-Z]"
)


@dataclass(frozen=True)
class TextLine:
    """One line of the text layer: the union of its words' boxes and its text; the median font size of its
    characters (0.0: unknown) and the shares of them set in bold and in a monospaced font; whether its first
    word stands apart as a list's label does: a span of its own (not ``Word.run_on``) and no superscript
    (a footnote mark, under ``MIN_LABEL_SIZE`` of the line's size)."""

    box: Box
    text: str
    size: float = 0.0
    bold: float = 0.0
    mono: float = 0.0
    lead_apart: bool = True


def text_lines(words: Sequence[Word]) -> list[TextLine]:
    """The words grouped into lines (same ``block`` and ``line``), in content-stream order."""
    grouped: dict[tuple[int, int], list[Word]] = {}
    for w in words:
        grouped.setdefault((w.block, w.line), []).append(w)
    lines = []
    for _, members in sorted(grouped.items()):
        members.sort(key=lambda w: w.index)
        box = (
            min(w.x0 for w in members),
            min(w.y0 for w in members),
            max(w.x1 for w in members),
            max(w.y1 for w in members),
        )
        sizes = sorted(w.size for w in members for _ in w.text)
        chars = len(sizes)
        size = sizes[chars // 2] if chars else 0.0
        bold = sum(len(w.text) for w in members if w.bold) / chars if chars else 0.0
        mono = sum(len(w.text) for w in members if w.mono) / chars if chars else 0.0
        lead = members[0]
        apart = not lead.run_on and not (0 < lead.size < MIN_LABEL_SIZE * size)
        lines.append(TextLine(box, " ".join(w.text for w in members), size, bold, mono, apart))
    return lines


def body_size(lines: Sequence[TextLine]) -> float:
    """The font size carrying the most characters (to half a point) in lines not set monospaced (code, when
    there are others), 0.0 when no line has a size."""
    prose = [line for line in lines if line.mono < 0.5] or lines
    counts: dict[float, int] = {}
    for line in prose:
        if line.size > 0:
            size = round(line.size * 2) / 2
            counts[size] = counts.get(size, 0) + len(line.text)
    return max(counts, key=lambda s: counts[s]) if counts else 0.0


class Styled(Protocol):
    """A line with its font facts: ``TextLine`` here, the real-page labeller's lines too (one heading
    rule for both)."""

    @property
    def text(self) -> str: ...
    @property
    def size(self) -> float: ...
    @property
    def bold(self) -> float: ...
    @property
    def mono(self) -> float: ...


def is_heading(line: Styled, body: float, *, min_ratio: float = 1.15, min_bold: float = 0.9) -> bool:
    """Is ``line`` set like a heading: bold (``min_bold`` of its characters), or ``min_ratio`` times the
    ``body`` size or larger, and mostly not monospaced (bold code is code)? Never without sizes (``body``
    0)."""
    return body > 0 and (line.bold >= min_bold or line.size >= min_ratio * body) and line.mono < 0.5


def heading_block(lines: Sequence[Styled], body: float, *, max_lines: int = 2, max_chars: int = 120) -> bool:
    """Are ``lines`` (one region's, top first) a heading: one or ``max_lines`` heading lines
    (``is_heading``), ``max_chars`` characters or fewer, and no caption (``CAPTION``)?"""
    return (
        0 < len(lines) <= max_lines
        and sum(len(line.text) for line in lines) <= max_chars
        and all(is_heading(line, body) for line in lines)
        and CAPTION.match(lines[0].text) is None
    )


# ------------------------------------------------------------------------------------------ geometry


def _x_overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0]))


def _inside_fraction(item: Box, box: Box) -> float:
    """The fraction of ``item``'s area inside ``box``; for an item without area, 1 if its centre is in it."""
    area = box_area(item)
    if area > 0:
        return box_overlap(item, box) / area
    cx, cy = (item[0] + item[2]) / 2, (item[1] + item[3]) / 2
    return 1.0 if box[0] <= cx <= box[2] and box[1] <= cy <= box[3] else 0.0


def _to_pixels(box_pt: Box, like: Region) -> Box:
    """``box_pt`` in pixels at the scale of ``like``'s pixel box to its box in points (1 if it has none)."""
    (px0, py0, px1, py1), (qx0, qy0, qx1, qy1) = like.box_px, like.box_pt
    sx = (px1 - px0) / (qx1 - qx0) if qx1 > qx0 else 1.0
    sy = (py1 - py0) / (qy1 - qy0) if qy1 > qy0 else 1.0
    return (box_pt[0] * sx, box_pt[1] * sy, box_pt[2] * sx, box_pt[3] * sy)


def _with_box(region: Region, box_pt: Box, *, page_width: float, page_height: float) -> Region:
    """``region`` with ``box_pt`` clipped to the page, its pixel box rescaled to match."""
    x0, y0, x1, y1 = box_pt
    return _refit(region, (max(0.0, x0), max(0.0, y0), min(page_width, x1), min(page_height, y1)))


def _refit(region: Region, box_pt: Box) -> Region:
    """``region`` with ``box_pt``, its pixel box rescaled to match."""
    return dataclasses.replace(region, box_pt=box_pt, box_px=_to_pixels(box_pt, region))


# ------------------------------------------------------------------------------------------- 1-4. fit


def scale_region(points_per_pixel: float | None) -> Region | None:
    """A stand-in region that only carries a pixel scale (None without one)."""
    if not points_per_pixel or points_per_pixel <= 0:
        return None
    side = 1.0 / points_per_pixel
    return Region(label="", score=0.0, box_px=(0.0, 0.0, side, side), box_pt=(0.0, 0.0, 1.0, 1.0))


def _found(label: str, box: Box, like: Region, score: float = 1.0) -> Region:
    """A region the page's own content shows, its pixel box at the scale of ``like``'s."""
    return Region(label=label, score=score, box_px=_to_pixels(box, like), box_pt=box)


def tables_from_rules(
    regions: Sequence[Region], tables: Sequence[Box], *, min_inside: float = 0.5, like: Region | None = None
) -> list[Region]:
    """Ruled tables as table regions (see the module docstring); the other regions as they are.

    A region gives way to a ruled table when at least ``min_inside`` of it lies inside the table, or, for
    a table region, at least ``min_inside`` of the ruled table lies inside it. The new regions come last;
    their pixel boxes use the scale of ``like`` (default: the first region; no region and no ``like``:
    nothing changes).
    """
    if not 0.0 < min_inside <= 1.0:
        raise InvalidInput(f"min_inside must be in (0, 1], got {min_inside}")
    like = like or (regions[0] if regions else None)
    if not tables or like is None:
        return list(regions)
    replaced: set[int] = set()
    found = []
    for table in tables:
        for i, region in enumerate(regions):
            if region.label not in TEXT_LABELS + GRAPHIC_LABELS:
                continue
            held = _inside_fraction(region.box_pt, table) >= min_inside
            if held or (region.label == "table" and _inside_fraction(table, region.box_pt) >= min_inside):
                replaced.add(i)
        found.append(_found("table", table, like))
    return [r for i, r in enumerate(regions) if i not in replaced] + found


def figures_from_graphics(
    regions: Sequence[Region],
    graphics: Sequence[Box],
    lines: Sequence[TextLine],
    *,
    page_height: float,
    gap: float = 6.0,
    min_size: tuple[float, float] = (24.0, 16.0),
    margin: float = 0.08,
    max_lines: int = 3,
    min_inside: float = 0.5,
    like: Region | None = None,
) -> list[Region]:
    """Drawings and images no figure or table holds, as figure regions (see the module docstring).

    ``graphics`` are clustered ``gap`` points apart or closer; a cluster at least ``min_size`` (width,
    height) points, centred outside the top and bottom ``margin`` of the page, holding at most
    ``max_lines`` text lines (80% of a line inside) and not held (``min_inside`` of it) by a figure or a
    table region becomes a figure, and the regions lying at least ``min_inside`` inside it go. New regions
    come last, at the pixel scale of ``like`` (default: the first region; no region and no ``like``:
    nothing changes).
    """
    if not 0.0 < min_inside <= 1.0:
        raise InvalidInput(f"min_inside must be in (0, 1], got {min_inside}")
    like = like or (regions[0] if regions else None)
    if not graphics or like is None:
        return list(regions)
    kept = list(regions)
    found: list[Region] = []
    for group in cluster_boxes(graphics, gap=gap):
        cluster = box_union(*(graphics[i] for i in group))
        x0, y0, x1, y1 = cluster
        if x1 - x0 < min_size[0] or y1 - y0 < min_size[1]:
            continue
        if not margin * page_height < (y0 + y1) / 2 < (1.0 - margin) * page_height:
            continue
        if sum(1 for line in lines if _inside_fraction(line.box, cluster) >= 0.8) > max_lines:
            continue
        holders = (r for r in kept + found if r.label in GRAPHIC_LABELS)
        if any(_inside_fraction(cluster, r.box_pt) >= min_inside for r in holders):
            continue
        kept = [r for r in kept if _inside_fraction(r.box_pt, cluster) < min_inside]
        found.append(_found("figure", cluster, like))
    return kept + found


def snap_to_graphics(
    regions: Sequence[Region],
    graphics: Sequence[Box],
    lines: Sequence[TextLine] = (),
    *,
    page_width: float,
    page_height: float,
    min_inside: float = 0.5,
) -> list[Region]:
    """Figures snapped to the graphics they hold (see the module docstring); other regions as they are.

    A figure holds a graphic when at least ``min_inside`` of the graphic's area lies inside it (a graphic
    without area: its centre), and the lines ``assign_lines`` gives it; its box becomes the union of both.
    No graphics: nothing changes.
    """
    if not 0.0 < min_inside <= 1.0:
        raise InvalidInput(f"min_inside must be in (0, 1], got {min_inside}")
    if not graphics:
        return list(regions)
    own = _held_lines(regions, lines)
    snapped = []
    for i, region in enumerate(regions):
        if region.label == "figure":
            held = [g for g in graphics if _inside_fraction(g, region.box_pt) >= min_inside]
            if held:
                held += [line.box for line in own.get(i, [])]
                region = _with_box(region, box_union(*held), page_width=page_width, page_height=page_height)
        snapped.append(region)
    return snapped


def assign_lines(
    regions: Sequence[Region], lines: Sequence[TextLine], *, min_overlap: float = 0.5
) -> list[int | None]:
    """For each line, the index of the one region that holds it, or None.

    A text, title, list, figure or table region holds a line when at least ``min_overlap`` of the line's
    area lies inside it, or the line's centre does. Of several, the one with the largest share of the line
    wins, then the smallest region (a text region inside a figure keeps its own lines).
    """
    if not 0.0 < min_overlap <= 1.0:
        raise InvalidInput(f"min_overlap must be in (0, 1], got {min_overlap}")
    candidates = [i for i, r in enumerate(regions) if r.label in TEXT_LABELS + GRAPHIC_LABELS]
    if not lines or not candidates:
        return [None] * len(lines)
    ln = np.array([line.box for line in lines], dtype=np.float64)[:, None, :]  # lines x 1 x 4
    rg = np.array([regions[i].box_pt for i in candidates], dtype=np.float64)[None, :, :]  # 1 x regions x 4

    def common(lo: int, hi: int) -> np.ndarray:  # lines x regions: the length they share along one axis
        return np.clip(np.minimum(ln[..., hi], rg[..., hi]) - np.maximum(ln[..., lo], rg[..., lo]), 0, None)

    inter = common(0, 2) * common(1, 3)
    area = np.clip(ln[..., 2] - ln[..., 0], 0, None) * np.clip(ln[..., 3] - ln[..., 1], 0, None)
    cx, cy = (ln[..., 0] + ln[..., 2]) / 2, (ln[..., 1] + ln[..., 3]) / 2
    centre = (rg[..., 0] <= cx) & (cx <= rg[..., 2]) & (rg[..., 1] <= cy) & (cy <= rg[..., 3])
    share = np.where(area > 0, inter / np.where(area > 0, area, 1.0), centre.astype(np.float64))
    share = np.where((share >= min_overlap) | centre, share, -1.0)  # -1: does not hold the line
    best = share.max(axis=1, keepdims=True)
    sizes = (rg[..., 2] - rg[..., 0]) * (rg[..., 3] - rg[..., 1])
    winner = np.where(share == best, sizes, np.inf).argmin(axis=1)  # ties: the smallest, then the first
    return [candidates[w] if b >= 0 else None for w, b in zip(winner, best[:, 0], strict=True)]


def _held_lines(
    regions: Sequence[Region], lines: Sequence[TextLine], *, min_overlap: float = 0.5
) -> dict[int, list[TextLine]]:
    """The lines each region holds (``assign_lines``), in the order of ``lines``, by region index."""
    held: dict[int, list[TextLine]] = {}
    for line, owner in zip(lines, assign_lines(regions, lines, min_overlap=min_overlap), strict=True):
        if owner is not None:
            held.setdefault(owner, []).append(line)
    return held


def snap_to_lines(
    regions: Sequence[Region],
    lines: Sequence[TextLine],
    *,
    page_width: float,
    page_height: float,
    min_overlap: float = 0.5,
) -> list[Region]:
    """Regions snapped to whole lines (``assign_lines``), boxes kept inside the page.

    A text, title or list region becomes the union of its lines (grown to whole lines, shrunk to the
    text); a figure or table grows to hold its lines and is never shrunk (graphics have no words). A
    region that holds no line keeps its box (``drop_empty`` decides about it). No lines: nothing changes.
    """
    if not lines:
        return list(regions)
    held = {
        i: box_union(*(line.box for line in own))
        for i, own in _held_lines(regions, lines, min_overlap=min_overlap).items()
    }
    snapped = []
    for i, region in enumerate(regions):
        box = region.box_pt
        if i in held:
            box = held[i] if region.label in TEXT_LABELS else box_union(box, held[i])
        snapped.append(_with_box(region, box, page_width=page_width, page_height=page_height))
    return snapped


# --------------------------------------------------------------------------------------- 5, 8. drop


def drop_empty(
    regions: Sequence[Region], lines: Sequence[TextLine], *, min_overlap: float = 0.5, contested: bool = True
) -> list[Region]:
    """Regions without the text, title and list regions that hold no line (``assign_lines``).

    ``contested`` (the default): a region that holds lines only when it is alone, because another region
    takes every one of them (a duplicate detection under another label), is dropped too. Otherwise only
    regions that hold no line even on their own are dropped. Figures, tables and other labels are kept
    (vector drawings and images have no words). A page without lines (a scan) keeps every region.
    """
    if not lines:
        return list(regions)
    if contested:
        holding = set(assign_lines(regions, lines, min_overlap=min_overlap))
    else:
        holding = {
            i
            for i, region in enumerate(regions)
            if any(owner is not None for owner in assign_lines([region], lines, min_overlap=min_overlap))
        }
    return [r for i, r in enumerate(regions) if r.label not in TEXT_LABELS or i in holding]


def drop_margins(
    regions: Sequence[Region],
    lines: Sequence[TextLine],
    *,
    page_height: float,
    margin: float = 0.06,
    max_lines: int = 2,
    max_chars: int = 100,
    number_band: float = 0.2,
    min_overlap: float = 0.5,
) -> list[Region]:
    """Regions without running heads, footers and page numbers.

    A text, title or list region is dropped when it lies entirely in the top or bottom ``margin`` (a
    fraction of ``page_height``) and holds at most ``max_lines`` rows of lines (``min_overlap`` of a line
    inside it; lines side by side are one row) of at most ``max_chars`` characters each, or when it holds
    one line, a page number (``PAGE_NUMBER``), in the top or bottom ``number_band`` of the page (a page
    number set above a tall bottom margin). A page without lines (a scan) keeps every region.
    """
    if not 0.0 <= margin < 0.5:
        raise InvalidInput(f"margin must be in [0, 0.5), got {margin}")
    if not lines:
        return list(regions)
    top, bottom = margin * page_height, (1.0 - margin) * page_height
    line_tops = np.array([line.box[1] for line in lines])
    line_bottoms = np.array([line.box[3] for line in lines])

    def running(region: Region) -> bool:
        _, y0, _, y1 = region.box_pt
        in_margin = y1 <= top or y0 >= bottom
        numbered = y1 <= number_band * page_height or y0 >= (1.0 - number_band) * page_height
        if region.label not in TEXT_LABELS or not (in_margin or numbered):
            return False
        near = np.flatnonzero((line_bottoms >= y0) & (line_tops <= y1)).tolist()  # the lines at its height
        inside = [lines[i] for i in near if _inside_fraction(lines[i].box, region.box_pt) >= min_overlap]
        if in_margin:
            return _rows(inside) <= max_lines and all(len(line.text) <= max_chars for line in inside)
        return len(inside) == 1 and PAGE_NUMBER.match(inside[0].text) is not None

    return [r for r in regions if not running(r)]


def _rows(lines: Sequence[TextLine]) -> int:
    """How many rows ``lines`` make (``_row_groups``)."""
    return len(_row_groups(lines))


def _row_groups(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    """``lines`` in rows, top to bottom: lines side by side (sharing half the lower one's height) are one."""
    rows: list[list[TextLine]] = []
    bottom = -np.inf
    for line in sorted(lines, key=lambda ln: ln.box[1]):
        box = line.box
        if box[1] >= bottom - 0.5 * (box[3] - box[1]):
            rows.append([line])
            bottom = box[3]
        else:
            rows[-1].append(line)
            bottom = max(bottom, box[3])
    return rows


# ------------------------------------------------------------------ 6-7. headings, left-over lines


def titles_from_fonts(
    regions: Sequence[Region], lines: Sequence[TextLine], *, min_overlap: float = 0.5
) -> list[Region]:
    """Text regions whose lines are a heading by their font (``heading_block``) relabelled title, and text
    or list regions holding a heading among body rows split at it (``_split_at_headings``).

    The body size is the page's (``body_size``). Lines without sizes (``TextLine.size`` 0) change nothing.
    """
    body = body_size(lines)
    if body <= 0:
        return list(regions)
    held = _held_lines(regions, lines, min_overlap=min_overlap)
    out: list[Region] = []
    for i, r in enumerate(regions):
        mine = held.get(i, [])
        if r.label == "text" and heading_block(mine, body):
            out.append(dataclasses.replace(r, label="title"))
        elif r.label in ("text", "list"):
            out += _split_at_headings(r, mine, body)
        else:
            out.append(r)
    return out


def _split_at_headings(region: Region, lines: Sequence[TextLine], body: float) -> list[Region]:
    """A text or list region that holds both rows set like a heading (every line of the row ``is_heading``)
    and body rows, cut between them: the headings (each run of them, rows at most 0.6 of their height
    apart, a ``heading_block``) as titles, the runs of body rows keeping the region's label (boxes the union
    of their lines, no mask outlines). The region alone when it holds no heading row, only heading rows, or
    a run of them too long for a heading.
    Measured on the 400 real test pages (a list detected over the section headings between its lists):
    AP 0.777 to 0.787, AP50 0.815 to 0.824, list AP50 0.607 to 0.647, titles held 0.888 to 0.899."""
    runs: list[tuple[bool, list[TextLine]]] = []
    for row in _row_groups(lines):
        heading = all(is_heading(line, body) for line in row)
        top, height = min(ln.box[1] for ln in row), max(ln.box[3] - ln.box[1] for ln in row)
        # Headings far apart (other regions hold the lines between them) are separate runs.
        near = bool(runs) and top - max(ln.box[3] for ln in runs[-1][1]) <= 0.6 * height
        if runs and runs[-1][0] == heading and (near or not heading):
            runs[-1][1].extend(row)
        else:
            runs.append((heading, list(row)))
    if len(runs) < 2 or not all(heading_block(run, body) for heading, run in runs if heading):
        return [region]
    bare = dataclasses.replace(region, mask_px=None, mask_pt=None)
    return [
        _refit(
            dataclasses.replace(bare, label="title" if heading else region.label),
            box_union(*(ln.box for ln in run)),
        )
        for heading, run in runs
    ]


def text_from_lines(
    regions: Sequence[Region],
    lines: Sequence[TextLine],
    *,
    gap: float = 0.6,
    min_column_overlap: float = 0.5,
    recent: int = 8,
    max_blocks: int = MAX_LEFTOVER_BLOCKS,
    min_overlap: float = 0.5,
    like: Region | None = None,
) -> list[Region]:
    """Text lines no region holds (``assign_lines``), grouped into blocks, as new regions; a listing's line
    numbers join the text region right of them (``_line_numbers_joined``).

    Lines are taken top to bottom. A line joins the latest of the ``recent`` blocks started last whose last
    line ends right above it (from 2 points of overlap down to ``gap`` line heights apart), sharing
    ``min_column_overlap`` of the narrower width and set alike (both headings or both not,
    ``is_heading``); otherwise it starts a block. A block that is a heading by its font
    (``heading_block``) becomes a title, any other text (lists are told later, by their item markers), with
    score ``LEFTOVER_SCORE``. Of more than ``max_blocks`` blocks, those holding the most characters are kept
    (the later steps compare regions pairwise). New regions come last, top to bottom, at the pixel scale of
    ``like`` (default: the first region; no region and no ``like``: nothing changes).
    """
    like = like or (regions[0] if regions else None)
    if not lines or like is None:
        return list(regions)
    owners = assign_lines(regions, lines, min_overlap=min_overlap)
    body = body_size(lines)
    regions, left = _line_numbers_joined(regions, lines, owners)
    blocks: list[list[TextLine]] = []
    for line in sorted(left, key=lambda ln: ln.box[1::-1]):
        for block in reversed(blocks[-recent:]):
            last = block[-1]
            a, b = last.box, line.box
            height = max(a[3] - a[1], b[3] - b[1])
            if (
                -2.0 <= b[1] - a[3] <= gap * height
                and _x_overlap(a, b) >= min_column_overlap * min(a[2] - a[0], b[2] - b[0])
                and is_heading(last, body) == is_heading(line, body)
            ):
                block.append(line)
                break
        else:
            blocks.append([line])
    if len(blocks) > max_blocks:
        largest = sorted(range(len(blocks)), key=lambda k: -sum(len(ln.text) for ln in blocks[k]))
        blocks = [blocks[k] for k in sorted(largest[:max_blocks])]
    found = [
        _found(
            "title" if heading_block(block, body) else "text",
            box_union(*(ln.box for ln in block)),
            like,
            LEFTOVER_SCORE,
        )
        for block in blocks
    ]
    return list(regions) + found


def _line_numbers_joined(
    regions: Sequence[Region], lines: Sequence[TextLine], owners: Sequence[int | None], *, reach: float = 4.0
) -> tuple[list[Region], list[TextLine]]:
    """Left-over lines (``owners`` None) that are a code listing's line numbers (``LINE_NUMBER``) joined to
    the text region right of them: one that shares half the number's height and starts at most ``reach``
    times its lines' font size (their height without sizes) to its right grows to hold it (the labels'
    convention: a numbered listing is one region with its numbers, those of its blank lines too).
    Returns the regions and the lines still left over."""
    out = list(regions)
    size: dict[int, float] = {}
    for line, owner in zip(lines, owners, strict=True):
        if owner is not None:
            size[owner] = max(size.get(owner, 0.0), line.size or line.box[3] - line.box[1])
    left: list[TextLine] = []
    for line, owner in zip(lines, owners, strict=True):
        if owner is not None:
            continue
        if not LINE_NUMBER.match(line.text):
            left.append(line)
            continue
        box = line.box
        height = box[3] - box[1]
        # Regions as found: one grown to a number keeps its left edge here.
        beside = [
            k
            for k, r in enumerate(regions)
            if r.label == "text"
            and min(box[3], r.box_pt[3]) - max(box[1], r.box_pt[1]) >= 0.5 * height
            and 0 <= r.box_pt[0] - box[2] <= reach * size.get(k, 0.0)
        ]
        if not beside:
            left.append(line)
            continue
        k = min(beside, key=lambda k: regions[k].box_pt[0] - box[2])
        out[k] = _refit(out[k], box_union(out[k].box_pt, box))
    return out, left


# ------------------------------------------------------------------------------------------- 9. merge


def merge_fragments(
    regions: Sequence[Region],
    lines: Sequence[TextLine],
    *,
    labels: Sequence[str] = MERGED_LABELS,
    min_column_overlap: float = 0.8,
    max_gap: float = 0.25,
    indent: float = 0.5,
    short_end: float = 3.0,
) -> list[Region]:
    """Fragments of one paragraph (or list) merged into one region.

    Two regions with the same label in ``labels`` merge when they share a column (their horizontal
    overlap is at least ``min_column_overlap`` of the narrower width), lie one above the other at most
    ``max_gap`` median line heights apart (a line's box height; overlapping boxes count), their union
    overlaps no other region (nothing lies between them), and, for text, no paragraph ends between them:
    the upper one's last line does not stop ``short_end`` line heights or more before the right edge, and
    the lower one's first line is not indented by more than ``indent`` line heights.
    The merged region has the union box, the higher score and both mask outlines (largest first; None
    unless both have them). A page without lines (a scan) gives no line height: nothing is merged.

    Measured on synthetic pages: the lines of a paragraph are at most 0.0 line heights apart, paragraphs
    at least 0.33. Paragraphs set without space between them (LaTeX's default) are told apart by their
    short last line and the next one's indent.
    """
    if not lines:
        return list(regions)
    line_height = statistics.median(line.box[3] - line.box[1] for line in lines)
    merged = list(regions)
    changed = True
    while changed:
        changed = False
        for i, j in ((i, j) for i in range(len(merged)) for j in range(len(merged)) if i != j):
            upper, lower = merged[i], merged[j]
            a, b = upper.box_pt, lower.box_pt
            if (
                upper.label != lower.label
                or upper.label not in labels
                or (a[1], a[0]) > (b[1], b[0])
                or _x_overlap(a, b) < min_column_overlap * min(a[2] - a[0], b[2] - b[0])
                or b[1] - a[3] > max_gap * line_height
            ):
                continue
            union = box_union(a, b)
            if any(box_overlap(union, r.box_pt) > 0 for k, r in enumerate(merged) if k not in (i, j)):
                continue
            if upper.label == "text" and _paragraph_break(
                a, b, lines, indent=indent * line_height, short=short_end * line_height
            ):
                continue
            merged[i] = _merge(upper, lower)
            del merged[j]
            changed = True
            break
    return merged


def _paragraph_break(
    upper: Box, lower: Box, lines: Sequence[TextLine], *, indent: float, short: float
) -> bool:
    """Whether a paragraph ends between two stacked text boxes: the upper one's last line stops at least
    ``short`` points before the right edge, or the lower one's first line starts more than ``indent``
    points right of the left edge (the edges of the two together). Never between code: when the upper
    one's last row and the lower one's first row both hold a monospaced line (``_code_row``), ragged ends
    and indents are the code's own."""
    left, right = min(upper[0], lower[0]), max(upper[2], lower[2])
    above = [line for line in lines if _inside_fraction(line.box, upper) >= 0.5]
    below = [line for line in lines if _inside_fraction(line.box, lower) >= 0.5]
    if not above or not below:
        return False
    last = max(above, key=lambda line: line.box[3])
    first = min(below, key=lambda line: line.box[1])
    if _code_row(last, above) and _code_row(first, below):
        return False
    return right - last.box[2] >= short or first.box[0] - left > indent


def _code_row(line: TextLine, lines: Sequence[TextLine]) -> bool:
    """Whether the row of ``line`` (the ``lines`` beside it, a code listing's line number too) holds a
    line set mostly monospaced."""
    height = line.box[3] - line.box[1]
    return any(
        other.mono >= 0.5 and min(other.box[3], line.box[3]) - max(other.box[1], line.box[1]) >= 0.5 * height
        for other in lines
    )


def _merge(upper: Region, lower: Region) -> Region:
    return Region(
        label=upper.label,
        score=max(upper.score, lower.score),
        box_px=box_union(upper.box_px, lower.box_px),
        box_pt=box_union(upper.box_pt, lower.box_pt),
        mask_px=_outlines(upper.mask_px, lower.mask_px),
        mask_pt=_outlines(upper.mask_pt, lower.mask_pt),
    )


def _outlines(a: tuple[Polygon, ...] | None, b: tuple[Polygon, ...] | None) -> tuple[Polygon, ...] | None:
    return None if a is None or b is None else tuple(sorted(a + b, key=_polygon_area, reverse=True))


def _polygon_area(polygon: Polygon) -> float:
    x = np.array([p[0] for p in polygon])
    y = np.array([p[1] for p in polygon])
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# ------------------------------------------------------------------------------------------- 10. order


def caption_pairs(
    regions: Sequence[Region],
    *,
    max_gap: float = 20.0,
    min_overlap: float = 0.5,
    max_height: float = 40.0,
) -> dict[int, int]:
    """Captions of figures and tables: ``{figure or table index: text region index}``.

    A caption is a text region at most ``max_gap`` points below or above the figure or table, overlapping
    it horizontally by at least ``min_overlap`` of the narrower width, and at most ``max_height`` points
    high (three lines or so: a paragraph that happens to stand above a figure is not its caption). A figure
    looks below first, a table above first (their usual places); on each side the nearest wins. A text
    region captions one float.
    """
    pairs: dict[int, int] = {}
    for f, float_ in enumerate(regions):
        if float_.label not in GRAPHIC_LABELS:
            continue
        fb = float_.box_pt
        below, above = [], []
        for t, text in enumerate(regions):
            tb = text.box_pt
            if text.label != "text" or t in pairs.values() or tb[3] - tb[1] > max_height:
                continue
            if _x_overlap(fb, tb) < min_overlap * min(fb[2] - fb[0], tb[2] - tb[0]):
                continue
            if -2.0 <= tb[1] - fb[3] <= max_gap:
                below.append((tb[1] - fb[3], t))
            elif -2.0 <= fb[1] - tb[3] <= max_gap:
                above.append((fb[1] - tb[3], t))
        sides = (below, above) if float_.label == "figure" else (above, below)
        for side in sides:
            if side:
                pairs[f] = min(side)[1]
                break
    return pairs


def reading_order(
    regions: Sequence[Region],
    *,
    caption_gap: float = 20.0,
    caption_overlap: float = 0.5,
    captions_after: bool = True,
) -> list[Region]:
    """``regions`` in reading order, for one or several columns.

    Recursive XY-cut: a set of regions is cut at every vertical gap that no region crosses (columns, read
    left to right), else at the horizontal gaps (bands, read top to bottom; a title or figure spanning the
    columns makes its own band), and each part is cut again; what cannot be cut is read top to bottom, then
    left to right. A figure or table and its caption (``caption_pairs`` with ``caption_gap`` and
    ``caption_overlap``) are cut as one block: the caption comes right after the float, or, with
    ``captions_after=False``, right before it when it stands above it (as the PDF's content stream
    usually has it).
    """
    captions = caption_pairs(regions, max_gap=caption_gap, min_overlap=caption_overlap)
    blocks = []
    for i in range(len(regions)):
        if i in captions.values():
            continue
        block = [i]
        if i in captions:
            above = regions[captions[i]].box_pt[1] < regions[i].box_pt[1]
            block = [captions[i], i] if above and not captions_after else [i, captions[i]]
        blocks.append(block)
    boxes = [box_union(regions[b[0]].box_pt, regions[b[-1]].box_pt) for b in blocks]
    return [regions[i] for b in _xy_cut(list(range(len(blocks))), boxes) for i in blocks[b]]


MIN_COLUMN = 0.25  # a column is at least this fraction of the width of what is cut (not a margin note)


def _columns(items: list[int], boxes: Sequence[Box]) -> list[list[int]]:
    """``_split`` on x, where a part narrower than ``MIN_COLUMN`` of the whole joins its neighbour: margin
    notes, line numbers and narrow labels beside a single column do not make columns of their own."""
    parts = _split(items, boxes, 0)
    if len(parts) < 2:
        return parts
    left, right = min(boxes[i][0] for i in items), max(boxes[i][2] for i in items)

    def width(part: list[int]) -> float:
        return max(boxes[i][2] for i in part) - min(boxes[i][0] for i in part)

    while len(parts) > 1:
        narrow = min(range(len(parts)), key=lambda k: width(parts[k]))
        if width(parts[narrow]) >= MIN_COLUMN * (right - left):
            break
        if narrow == 0:
            neighbour = 1
        elif narrow == len(parts) - 1:
            neighbour = narrow - 1
        else:  # join the nearer neighbour
            gap_left = min(boxes[i][0] for i in parts[narrow]) - max(boxes[i][2] for i in parts[narrow - 1])
            gap_right = min(boxes[i][0] for i in parts[narrow + 1]) - max(boxes[i][2] for i in parts[narrow])
            neighbour = narrow - 1 if gap_left <= gap_right else narrow + 1
        low, high = sorted((narrow, neighbour))
        parts[low : high + 1] = [parts[low] + parts[high]]
    return parts


def _xy_cut(items: list[int], boxes: Sequence[Box]) -> list[int]:
    if len(items) <= 1:
        return items
    columns = _columns(items, boxes)
    if len(columns) > 1:
        return [i for column in columns for i in _xy_cut(column, boxes)]
    bands = _split(items, boxes, 1)
    if len(bands) == 1:
        return sorted(items, key=lambda i: (boxes[i][1], boxes[i][0]))
    joined = [bands[0]]
    for band in bands[1:]:
        if _same_columns(joined[-1], band, boxes):
            joined[-1] = joined[-1] + band
        else:
            joined.append(band)
    return [i for band in joined for i in _xy_cut(band, boxes)]


def _same_columns(upper: list[int], lower: list[int], boxes: Sequence[Box]) -> bool:
    """Whether two bands are one: a gap that runs across both columns by chance (paragraphs ending at the
    same height) must not cut them. Two bands with columns are one if their union still has columns; a band
    without columns joins one with columns only if it stays out of its gaps (a column that runs on below
    the other, not a centred line of the front matter)."""
    above, below, both = _gaps(upper, boxes), _gaps(lower, boxes), _gaps(upper + lower, boxes)
    if not both or not (above or below):
        return False
    return bool(above and below) or set(above or below) <= set(both)


def _gaps(items: list[int], boxes: Sequence[Box]) -> list[tuple[float, float]]:
    parts = _columns(items, boxes)
    return [(max(boxes[i][2] for i in a), min(boxes[i][0] for i in b)) for a, b in itertools.pairwise(parts)]


def _split(items: list[int], boxes: Sequence[Box], axis: int) -> list[list[int]]:
    """``items`` split at the gaps of their boxes' projection on ``axis`` (0: x, 1: y), in order."""
    parts: list[list[int]] = []
    end = -np.inf
    for i in sorted(items, key=lambda i: (boxes[i][axis], boxes[i][axis + 2])):
        if boxes[i][axis] >= end:
            parts.append([])
        parts[-1].append(i)
        end = max(end, boxes[i][axis + 2])
    return parts


# -------------------------------------------------------------------------------------------- 11. lists


def is_item_start(line: TextLine) -> bool:
    """Does ``line`` start a list item: a bullet or an enumerator (``BULLETS``, ``ENUMERATOR``) standing
    apart (``TextLine.lead_apart``), then text? The labels of the real test set follow the same rule."""
    tokens = line.text.split(maxsplit=1)
    if len(tokens) != 2 or not line.lead_apart:
        return False
    return tokens[0] in BULLETS or ENUMERATOR.match(tokens[0]) is not None


def wrapped_dash(line: TextLine, lines: Sequence[TextLine], right: float) -> bool:
    """Is ``line``'s leading dash a sentence's dash that a justified paragraph wrapped to the line's start,
    not a list item's bullet? It is when the line right above it (the lines of ``lines`` side by side there)
    is full: from ``line``'s left edge to ``right`` (the column's right edge), starting no item and
    introducing none (a colon)."""
    tokens = line.text.split(maxsplit=1)
    if not tokens or tokens[0] not in DASHES:
        return False
    height = line.box[3] - line.box[1]
    middle = (line.box[1] + line.box[3]) / 2
    above = [
        o
        for o in lines
        if o.box[3] <= middle
        and line.box[1] - o.box[3] <= height
        and o.box[2] > line.box[0]
        and o.box[0] < right
    ]
    if not above:
        return False
    lowest = max(above, key=lambda o: o.box[3])
    row = [o for o in above if min(o.box[3], lowest.box[3]) - max(o.box[1], lowest.box[1]) > 0.5 * height]
    start, end = min(row, key=lambda o: o.box[0]), max(row, key=lambda o: o.box[2])
    return (
        abs(start.box[0] - line.box[0]) <= 2
        and end.box[2] >= right - 2
        and not is_item_start(start)
        and not end.text.endswith(":")
    )


def _starts_item(line: TextLine, lines: Sequence[TextLine], right: float) -> bool:
    return is_item_start(line) and not wrapped_dash(line, lines, right)


def lists_from_items(
    regions: Sequence[Region],
    lines: Sequence[TextLine],
    *,
    max_gap: float = 1.6,
    align: float = 3.0,
    hanging: float = 4.0,
    min_items: int = 2,
    min_overlap: float = 0.5,
) -> list[Region]:
    """Lists told by their item markers, for ``regions`` in reading order (the order is kept).

    A text region whose first line (``assign_lines``) starts an item (``is_item_start``, and not
    ``wrapped_dash``) becomes a list; a list region holding no item start at all becomes text; a text
    region holding ``min_items`` item starts or more below lines that start none is split
    (``_split_at_items``: a paragraph and the list it introduces). Then a list region absorbs the list or
    text region right after it in reading order when that one starts at most ``max_gap`` median line
    heights below it, in its column: a list whose left edge is at most ``align`` points left of the first
    item's (a next or nested item), or text indented at least ``hanging`` points right of it (an item's
    second paragraph). Nothing else may overlap the union.
    A page without lines (a scan) keeps every region.
    """
    if not lines:
        return list(regions)
    held = _held_lines(regions, lines, min_overlap=min_overlap)
    relabelled = []
    for i, region in enumerate(regions):
        mine = held.get(i, [])
        right = region.box_pt[2]
        if region.label == "text" and mine and _starts_item(mine[0], lines, right):
            region = dataclasses.replace(region, label="list")
        elif region.label == "list" and mine and not any(_starts_item(line, lines, right) for line in mine):
            region = dataclasses.replace(region, label="text")
        elif region.label == "text" and (parts := _split_at_items(region, mine, lines, min_items=min_items)):
            relabelled += parts
            continue
        relabelled.append(region)
    line_height = statistics.median(line.box[3] - line.box[1] for line in lines)
    out: list[Region] = []
    left = 0.0  # the left edge of the first item of the list being built
    for k, region in enumerate(relabelled):
        last = out[-1] if out else None
        if last is not None and last.label == "list" and region.label in ("list", "text"):
            a, b = last.box_pt, region.box_pt
            near = -2.0 <= b[1] - a[3] <= max_gap * line_height and b[0] < a[2] - 10.0
            fits = b[0] >= left - align if region.label == "list" else b[0] >= left + hanging
            union = box_union(a, b)
            others = itertools.chain(out[:-1], relabelled[k + 1 :])
            alone = not any(box_overlap(union, r.box_pt) > 0 for r in others)
            if near and fits and alone:
                out[-1] = dataclasses.replace(_merge(last, region), label="list")
                continue
        if region.label == "list":
            left = region.box_pt[0]
        out.append(region)
    return out


def _split_at_items(
    region: Region, lines: Sequence[TextLine], page_lines: Sequence[TextLine], *, min_items: int
) -> list[Region]:
    """A text region's lines split before the first item start, when the region holds ``min_items`` item
    starts or more and its top line starts none: the lines above as text, the rest as a list (boxes the
    union of their lines, no mask outlines). Nothing (an empty list) when it is not so."""
    ordered = sorted(lines, key=lambda line: line.box[1])
    starts = [k for k, line in enumerate(ordered) if _starts_item(line, page_lines, region.box_pt[2])]
    if not starts or len(starts) < min_items or starts[0] == 0:
        return []
    k = starts[0]
    if ordered[k].box[1] < ordered[k - 1].box[3] - 1.0:  # beside the line above, not under it
        return []
    bare = dataclasses.replace(region, mask_px=None, mask_pt=None)
    above = _refit(bare, box_union(*(line.box for line in ordered[:k])))
    below = _refit(dataclasses.replace(bare, label="list"), box_union(*(line.box for line in ordered[k:])))
    return [above, below]


# --------------------------------------------------------------------------------------------- all


def arrange_regions(
    regions: Sequence[Region],
    words: Sequence[Word],
    *,
    page_width: float,
    page_height: float,
    graphics: Sequence[Box] = (),
    tables: Sequence[Box] = (),
    labels: Sequence[str] = LABELS,
    score_threshold: float | None = None,
    points_per_pixel: float | None = None,
) -> list[Region]:
    """Every step with its defaults: ruled ``tables``, snap figures to ``graphics`` and regions to lines,
    drop empty regions, titles by their fonts, text no region holds, drop running heads, merge fragments,
    order, lists (see the module's docstring).
    Running heads are dropped after snapping, so their own region holds their line instead of a body region
    growing over it; merged regions are unions of snapped boxes, so they need no second snap. A page
    without words is only ordered (after its ruled tables and figures are fitted). ``labels``: the model's
    labels; ruled tables need ``table``, drawings made figures ``figure``, titles by their fonts and text
    from left-over lines ``text`` and ``title``, lists ``text`` and ``list``. ``score_threshold``: the one a
    request asked for; above ``LEFTOVER_SCORE`` it leaves out the text made from left-over lines (None: the
    server's default, which keeps it). ``points_per_pixel``: the page image's scale, so that a page without
    detections still gets its ruled tables, drawings and text as regions (None: it gets none; with
    detections, new regions take their scale)."""
    lines = text_lines(words)
    like = regions[0] if regions else scale_region(points_per_pixel)
    arranged = tables_from_rules(regions, tables, like=like) if "table" in labels else list(regions)
    if "figure" in labels:
        arranged = figures_from_graphics(arranged, graphics, lines, page_height=page_height, like=like)
    arranged = snap_to_graphics(arranged, graphics, lines, page_width=page_width, page_height=page_height)
    arranged = snap_to_lines(arranged, lines, page_width=page_width, page_height=page_height)
    arranged = drop_empty(arranged, lines)
    if {"text", "title"} <= set(labels):
        arranged = titles_from_fonts(arranged, lines)
        if score_threshold is None or score_threshold <= LEFTOVER_SCORE:
            arranged = text_from_lines(arranged, lines, like=like)
    arranged = drop_margins(arranged, lines, page_height=page_height)
    arranged = merge_fragments(arranged, lines)
    ordered = reading_order(arranged)
    return lists_from_items(ordered, lines) if {"text", "list"} <= set(labels) else ordered


# ---------------------------------------------------------------------------------------- evaluation


def content_positions(
    regions: Sequence[Region], words: Sequence[Word], *, min_overlap: float = 0.5
) -> list[Position | None]:
    """Where each region's text starts in the PDF's content stream: the smallest ``(block, line, index)``
    of the words with at least ``min_overlap`` of their area inside it (None: no word inside)."""
    positions: list[Position | None] = []
    for region in regions:
        inside = [
            (w.block, w.line, w.index)
            for w in words
            if _inside_fraction((w.x0, w.y0, w.x1, w.y1), region.box_pt) >= min_overlap
        ]
        positions.append(min(inside) if inside else None)
    return positions


def kendall_tau(predicted: Sequence[float], reference: Sequence[float]) -> float | None:
    """Kendall's tau-b (scipy.stats.kendalltau) between two rankings of the same items: 1 when they agree,
    -1 when one is the other reversed. None when it is undefined: fewer than two items, or a ranking
    where all items tie."""
    if len(predicted) != len(reference):
        raise InvalidInput(f"rankings differ in length: {len(predicted)} and {len(reference)}")
    if len(predicted) < 2 or len(set(predicted)) < 2 or len(set(reference)) < 2:
        return None
    from scipy.stats import kendalltau  # imported here: scipy.stats takes a second to import

    return float(kendalltau(predicted, reference).statistic)


def order_tau(regions: Sequence[Region], words: Sequence[Word]) -> float | None:
    """Kendall's tau of ``regions``' order (as given) against the content stream (``content_positions``)
    on one page; regions without words are left out. None when fewer than two regions have words."""
    positions = content_positions(regions, words)
    kept = [(rank, p) for rank, p in enumerate(positions) if p is not None]
    ranks = {p: r for r, p in enumerate(sorted({p for _, p in kept}))}
    return kendall_tau([float(rank) for rank, _ in kept], [float(ranks[p]) for _, p in kept])
