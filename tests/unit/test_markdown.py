"""Markdown of an analysis (no Ray): regions in their reading order, headings, bullets, tables, captions."""

from __future__ import annotations

import pymupdf

from serve_app.core.analysis import AnalyzeResult, PageResult, RegionResult
from serve_app.core.catalog import ModelVersion
from serve_app.core.markdown import document_markdown, list_items, page_markdown
from serve_app.core.pdf import table_markdown

W, H = 612.0, 792.0


def region(
    label: str, box: tuple[float, float, float, float], text: str = "", order: int = 0
) -> RegionResult:
    return RegionResult(order=order, label=label, score=0.9, box=box, text=text)


def numbered(*regions: RegionResult) -> list[RegionResult]:
    """``regions`` in reading order as listed, as ``page_result`` gives them."""
    return [r.model_copy(update={"order": i}) for i, r in enumerate(regions)]


def test_markdown_follows_the_regions_reading_order() -> None:
    regions = [
        region("text", (320, 200, 560, 300), "right column", order=2),
        region("title", (72, 72, 540, 100), "A Title", order=0),
        region("text", (72, 200, 300, 300), "left column", order=1),
    ]
    md = page_markdown(PageResult(number=1, width=W, height=H, regions=regions), first_title=True)
    assert md.split("\n\n") == ["# A Title", "left column", "right column"]


def test_list_items_split_on_bullets_and_enumerators_and_join_continuations() -> None:
    text = "\u2022 first item\nthat wraps\n\u2022 second\n3. third\n(a) fourth\n- fifth"
    assert list_items(text) == ["first item that wraps", "second", "third", "fourth", "fifth"]
    assert list_items("no marker at all\nsecond line") == ["no marker at all second line"]


def test_a_page_becomes_headings_paragraphs_bullets_tables_and_captioned_figures() -> None:
    page = PageResult(
        number=1,
        width=W,
        height=H,
        regions=numbered(
            region("title", (72, 72, 540, 100), "Annual  report"),
            region("title", (72, 120, 300, 140), "1 Introduction"),
            region("text", (72, 150, 540, 200), "Some words\nacross lines."),
            region("list", (72, 210, 540, 260), "\u2022 apples\n\u2022 pears"),
            region("table", (72, 280, 540, 380), "A B 1 2"),
            region("text", (72, 384, 540, 400), "Table 1: Fruit sold."),
            region("figure", (72, 420, 540, 600)),
            region("text", (72, 606, 540, 620), "Figure 2. Sales by month."),
        ),
    )
    md = page_markdown(page, tables={4: "|A|B|\n|---|---|\n|1|2|"}, first_title=True)
    assert md.split("\n\n") == [
        "# Annual report",
        "## 1 Introduction",
        "Some words across lines.",
        "- apples\n- pears",
        "*Table 1: Fruit sold.*",
        "|A|B|\n|---|---|\n|1|2|",
        "![Figure 2. Sales by month.](#page-1-figure-1)",
        "*Figure 2. Sales by month.*",
    ]
    # Without the PDF's table structure, a table is written as its text; a figure without caption is named.
    plain = page_markdown(page.model_copy(update={"regions": page.regions[4:5] + page.regions[6:7]}))
    assert plain == "A B 1 2\n\n![Figure 1 on page 1](#page-1-figure-1)"


def test_document_markdown_marks_pages_and_only_the_first_title_is_the_documents() -> None:
    model = ModelVersion(name="layout", uri="shipped", digest="0" * 64, labels=("text", "title"))
    pages = [
        PageResult(number=n, width=W, height=H, regions=[region("title", (72, 72, 300, 90), f"Title {n}")])
        for n in (1, 2)
    ]
    md = document_markdown(AnalyzeResult(model=model, page_count=2, pages=pages))
    assert md == "<!-- page 1 -->\n\n# Title 1\n\n---\n\n<!-- page 2 -->\n\n## Title 2\n"


def test_table_markdown_reads_the_pdfs_own_table_inside_the_region() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=W, height=H)
    x0, y0, cw, rh = 72, 100, 120, 20
    for r in range(4):
        page.draw_line((x0, y0 + r * rh), (x0 + 3 * cw, y0 + r * rh))
    for c in range(4):
        page.draw_line((x0 + c * cw, y0), (x0 + c * cw, y0 + 3 * rh))
    for r, row in enumerate([["Name", "Qty", "Price"], ["Apple", "3", "1.20"], ["Pear", "5", "0.80"]]):
        for c, text in enumerate(row):
            page.insert_text((x0 + c * cw + 4, y0 + r * rh + 14), text, fontsize=10)
    doc = pymupdf.open(stream=doc.tobytes())
    assert table_markdown(doc, 1, (60, 90, 450, 180)).splitlines() == [
        "|Name|Qty|Price|",
        "|---|---|---|",
        "|Apple|3|1.20|",
        "|Pear|5|0.80|",
    ]
    assert table_markdown(doc, 1, (60, 300, 450, 400)) == ""  # no table there
