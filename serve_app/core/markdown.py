"""A document's analysis as Markdown (no Ray): regions in reading order, titles as headings, lists as
bullets, tables as Markdown tables, figures as a placeholder with their caption.

The reading order is the analysis's own (each region's ``order``, from ``serve_app.core.arrange``: columns
left to right, each top to bottom, regions spanning the columns between them, captions with their float).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from serve_app.core.analysis import AnalyzeResult, PageResult, RegionResult

CAPTION_GAP_PT = 36.0  # a caption starts at most this far below (or above) its figure or table
_CAPTION = re.compile(r"^\s*(fig(ure)?|table|tab)\.?\s*[\dIVXivx]+", re.IGNORECASE)
_ITEM = re.compile(
    r"^\s*([-*\u2022\u2023\u25e6\u2043\u2219\u00b7\u25aa\u25cf\u2013]|\(?[0-9]{1,3}[.)]|\(?[a-z][.)]|\(?[ivx]{1,5}[.)])\s+"
)


def list_items(text: str) -> list[str]:
    """A list region's text split into items: a line that starts with a bullet or an enumerator starts
    an item, other lines continue the previous one. Markers are removed."""
    items: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        marker = _ITEM.match(line)
        if marker or not items:
            items.append(line[marker.end() :] if marker else line)
        else:
            items[-1] += " " + line
    return [" ".join(item.split()) for item in items]


def _paragraph(text: str) -> str:
    return " ".join(text.split())


def _is_caption(region: RegionResult, of: RegionResult) -> bool:
    if region.label != "text" or not _CAPTION.match(region.text):
        return False
    gap_below = region.box[1] - of.box[3]
    gap_above = of.box[1] - region.box[3]
    overlaps = min(region.box[2], of.box[2]) > max(region.box[0], of.box[0])
    return overlaps and (-2.0 <= gap_below <= CAPTION_GAP_PT or -2.0 <= gap_above <= CAPTION_GAP_PT)


def page_markdown(
    page: PageResult, *, tables: Mapping[int, str] | None = None, first_title: bool = False
) -> str:
    """One page as Markdown. ``tables``: Markdown of the table regions, by region index (from the PDF's
    own table structure); a table without it is written as its text. ``first_title``: the first title is
    the document's (``#``); the other titles are sections (``##``)."""
    tables = tables or {}
    regions = page.regions
    order = sorted(range(len(regions)), key=lambda i: regions[i].order)
    captions: dict[int, int] = {}  # figure/table index -> caption index
    for i, region in enumerate(regions):
        if region.label in ("figure", "table"):
            for j, other in enumerate(regions):
                if j not in captions.values() and _is_caption(other, region):
                    captions[i] = j
                    break
    used = set(captions.values())
    blocks: list[str] = []
    figures = 0
    for i in order:
        region = regions[i]
        if i in used:
            continue
        caption = _paragraph(regions[captions[i]].text) if i in captions else ""
        if region.label == "title":
            text = _paragraph(region.text)
            if text:
                level = "#" if first_title else "##"
                first_title = False
                blocks.append(f"{level} {text}")
        elif region.label == "list":
            items = list_items(region.text)
            if items:
                blocks.append("\n".join(f"- {item}" for item in items))
        elif region.label == "table":
            body = tables.get(i, "").strip() or _paragraph(region.text)
            blocks.append("\n\n".join(b for b in (f"*{caption}*" if caption else "", body) if b))
        elif region.label == "figure":
            figures += 1
            alt = caption or f"Figure {figures} on page {page.number}"
            blocks.append(
                f"![{alt}](#page-{page.number}-figure-{figures})" + (f"\n\n*{caption}*" if caption else "")
            )
        else:
            text = _paragraph(region.text)
            if text:
                blocks.append(text)
    return "\n\n".join(blocks)


def document_markdown(result: AnalyzeResult, *, tables: Mapping[tuple[int, int], str] | None = None) -> str:
    """The whole document: pages in order, separated by a rule. ``tables``: by (page number, region index)."""
    tables = tables or {}
    parts = []
    for page in result.pages:
        by_region = {region: md for (number, region), md in tables.items() if number == page.number}
        text = page_markdown(page, tables=by_region, first_title=page.number == 1)
        parts.append(f"<!-- page {page.number} -->\n\n{text}" if text else f"<!-- page {page.number} -->")
    return "\n\n---\n\n".join(parts) + "\n"
