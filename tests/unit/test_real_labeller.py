"""The real-page labeller on small PDFs written here with pymupdf (known layout, known labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymupdf
import pytest

from serve_app.training.real import corpus
from serve_app.training.real.labeller import (
    LabelledRegion,
    PageLabels,
    Style,
    document_style,
    inside_fraction,
    label_page,
)

BODY = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut"
LEFT, RIGHT = 72.0, 540.0
LEADING = 12.0


def write_lines(
    page: pymupdf.Page, y: float, lines: list[str], *, x: float = LEFT, font: str = "tiro"
) -> float:
    for text in lines:
        page.insert_text((x, y), text, fontname=font, fontsize=10)
        y += LEADING
    return y


def paragraph(page: pymupdf.Page, y: float, n: int, *, indent: bool = True) -> float:
    """``n`` full lines then a short last one; the first line indented like TeX's."""
    page.insert_text((LEFT + (15 if indent else 0), y), BODY[:80], fontname="tiro", fontsize=10)
    y = write_lines(page, y + LEADING, [BODY] * (n - 2))
    return write_lines(page, y, [BODY[:30]])


def sample_page() -> tuple[pymupdf.Document, dict[str, tuple[float, float]]]:
    """A page with a heading, two paragraphs, a bulleted list, a ruled table, an image and a page
    number; returns the document and the y span of each part."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    spans: dict[str, tuple[float, float]] = {}
    page.insert_text((LEFT, 100), "1 Introduction", fontname="tibo", fontsize=14)
    spans["title"] = (84, 106)
    y = paragraph(page, 130, 4)
    spans["text1"] = (120, y - LEADING + 3)
    y2 = paragraph(page, y, 3)
    spans["text2"] = (y - 10, y2 - LEADING + 3)
    y = y2 + 8
    start = y
    for item in ("First item of the list", "Second item of the list", "Third item of the list"):
        page.insert_text((LEFT + 10, y), "•", fontname="tiro", fontsize=10)
        page.insert_text((LEFT + 22, y), item, fontname="tiro", fontsize=10)
        y += LEADING
    spans["list"] = (start - 10, y - LEADING + 3)
    y += 20
    top = y
    for row in range(4):  # a 4 x 3 grid with text in every cell
        for col in range(3):
            page.insert_text(
                (LEFT + 5 + col * 100, top + 14 + row * 18), f"r{row}c{col}", fontname="tiro", fontsize=10
            )
    for row in range(5):
        page.draw_line((LEFT, top + row * 18), (LEFT + 300, top + row * 18), width=0.5)
    for col in range(4):
        page.draw_line((LEFT + col * 100, top), (LEFT + col * 100, top + 72), width=0.5)
    spans["table"] = (top, top + 72)
    y = top + 100
    pixels = np.full((60, 80, 3), 90, dtype=np.uint8)
    pixels[10:50, 10:70] = 200
    image = pymupdf.Pixmap(pymupdf.csRGB, 80, 60, pixels.tobytes(), False)
    page.insert_image(pymupdf.Rect(LEFT, y, LEFT + 160, y + 120), pixmap=image)
    spans["figure"] = (y, y + 120)
    page.insert_text((300, 750), "7", fontname="tiro", fontsize=10)
    return doc, spans


def regions_by_label(labels: PageLabels) -> dict[str, list[LabelledRegion]]:
    out: dict[str, list[LabelledRegion]] = {}
    for region in labels.regions:
        out.setdefault(region.label, []).append(region)
    return out


def test_sample_page_gets_publaynet_labels() -> None:
    doc, spans = sample_page()
    labels = label_page(doc[0], Style(body_size=10.0))
    assert labels.refused is None
    found = regions_by_label(labels)
    assert sorted(found) == ["figure", "list", "table", "text", "title"]
    (title,) = found["title"]
    assert title.box[1] >= spans["title"][0] and title.box[3] <= spans["title"][1]
    assert len(found["text"]) == 2, "two paragraphs, split at the indented first line"
    (items,) = found["list"]  # the whole list is one region
    assert items.box[1] <= spans["list"][0] + 4 and items.box[3] >= spans["list"][1] - 4
    (table,) = found["table"]
    assert table.box[1] == pytest.approx(spans["table"][0], abs=2)
    assert table.box[3] == pytest.approx(spans["table"][1], abs=2)
    (figure,) = found["figure"]
    assert figure.box[1] == pytest.approx(spans["figure"][0], abs=1)
    # The table's cell text is not labelled as text, and the page number is not labelled at all.
    for region in found["text"]:
        assert inside_fraction(region.box, table.box) == 0
        assert region.box[3] < 700


def test_a_list_with_notes_in_the_margin_is_one_list() -> None:
    """Margin notes beside the items come between them top to bottom; they neither join the list nor
    end it, and items whose second lines hang under the first stay one list."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = paragraph(page, 100, 4)
    start = y + 6
    for k, name in enumerate(("alpha", "beta", "gamma")):
        top = start + k * (2 * LEADING + 8)
        page.insert_text((20, top + 3), f"\\{name}", fontname="cour", fontsize=8)  # the margin note
        page.insert_text((LEFT + 10, top), "•", fontname="tiro", fontsize=10)
        write_lines(page, top, [BODY[:70], BODY[:40]], x=LEFT + 22)
    labels = label_page(page, Style(body_size=10.0))
    assert labels.refused is None
    found = regions_by_label(labels)
    (items,) = found["list"]
    assert items.box[1] <= start - 6 and items.box[3] >= start + 2 * (2 * LEADING + 8) + LEADING
    notes = [r for r in found["text"] if r.box[2] < LEFT]
    assert len(notes) == 3


def test_running_headers_and_page_numbers_are_left_out() -> None:
    doc = pymupdf.open()
    for number in range(1, 4):
        page = doc.new_page(width=612, height=792)
        page.insert_text((LEFT, 60), f"The foo package, chapter {number}", fontname="tiit", fontsize=9)
        y = paragraph(page, 100, 6)
        paragraph(page, y, 5)
        page.insert_text((300, 740), str(number), fontname="tiro", fontsize=10)
    style = document_style(doc)
    assert "the foo package, chapter" in style.running
    for page in doc:
        labels = label_page(page, style)
        assert [r.label for r in labels.regions] == ["text", "text"]
        assert all(r.box[1] > 60 and r.box[3] < 700 for r in labels.regions)


def test_bold_sentence_is_not_a_title_and_footnote_mark_is_not_a_bullet() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text(
        (LEFT, 100),
        "All of these commands are global, and here is why that matters for you.",
        fontname="tibo",
        fontsize=10,
    )
    page.insert_text(
        (LEFT, 112),
        "The reason is that a macro defined inside a group is lost at the end of it, always.",
        fontname="tibo",
        fontsize=10,
    )
    y = paragraph(page, 140, 4)
    page.insert_text((LEFT, y + 20), "*", fontname="tiro", fontsize=6)
    page.insert_text(
        (LEFT + 6, y + 22),
        "This manual corresponds to version 1.2 of the package.",
        fontname="tiro",
        fontsize=10,
    )
    labels = label_page(doc[0], Style(body_size=10.0))
    assert labels.refused is None
    assert {r.label for r in labels.regions} == {"text"}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda doc: doc.new_page(width=792, height=612), "landscape"),
        (lambda doc: doc.new_page(width=612, height=792), "little text"),
    ],
)
def test_pages_the_rules_cannot_label_are_refused(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    doc = pymupdf.open()
    page = make(doc)
    if reason == "landscape":
        write_lines(page, 100, [BODY] * 10)
    assert label_page(page, Style(body_size=10.0)).refused == reason


def test_contents_without_leaders_and_unreadable_sizes_are_refused() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = 100.0
    for n, entry in enumerate(
        ["Introduction", "Placing an ornament", "Options", "Examples", "History", "Index"]
    ):
        page.insert_text(
            (LEFT, y), f"{n + 1} {entry} of the package and what it does", fontname="tiro", fontsize=10
        )
        page.insert_text((LEFT + 260, y), str(3 + 2 * n), fontname="tiro", fontsize=10)  # the page number
        y += 20
    reason = "numbers set apart at row ends (contents without leaders, unruled table)"
    assert label_page(page, Style(body_size=10.0)).refused == reason
    # Fonts scaled down by a transform: pymupdf reads sizes near 0, so the body size is 0.
    text = doc.new_page(width=612, height=792)
    paragraph(text, paragraph(text, 100, 6), 4)
    assert (
        label_page(text, Style(body_size=0.0)).refused
        == "no readable body size (fonts scaled by a transform)"
    )
    assert label_page(text, Style(body_size=10.0)).refused is None


def test_a_numbered_listing_is_one_paragraph() -> None:
    """A listing's line numbers (three digits, set apart from an indented line) join their lines' rows, and
    a number alone (a blank line) is code too, so the listing is not cut at each line whose number stands
    alone."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = paragraph(page, 100, 4)
    code = ["\\def\\foo#1{%", "{\\bar{#1}}%", "\\relax}", "", "\\def\\baz{%", "{\\qux}}"]
    for n, text in enumerate(code):
        page.insert_text((LEFT, y + 10), str(120 + n), fontname="tiro", fontsize=5)
        page.insert_text(
            (LEFT + 16 + (20 if text.startswith("{") else 0), y + 10), text, fontname="cour", fontsize=10
        )
        y += LEADING
    labels = label_page(page, Style(body_size=10.0))
    assert labels.refused is None
    texts = sorted((r for r in labels.regions if r.label == "text"), key=lambda r: r.box[1])
    assert len(texts) == 2  # the paragraph, and the whole listing with its numbers
    assert texts[1].box[0] <= LEFT + 1 and texts[1].box[3] >= y - LEADING


def test_a_listing_numbered_inside_its_lines_is_one_paragraph() -> None:
    """docstrip's listings: pymupdf reads each small roman line number and its typewriter line as one line.
    The number weighs nothing in the line's style, so a short line (``}%``) is code like the long ones and
    the listing is not cut there."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = paragraph(page, 100, 4)
    code = ["\\def\\foo#1{%", "}%", "{%", "\\relax\\fi}%", "\\def\\bar{\\foo{#1}}%", "}"]
    for n, text in enumerate(code):
        page.insert_text((LEFT, y + 10), str(1620 + n), fontname="tiro", fontsize=7)
        page.insert_text((LEFT + 18, y + 10), text, fontname="cour", fontsize=9)
        y += 11
    labels = label_page(page, Style(body_size=10.0))
    assert labels.refused is None
    texts = sorted((r for r in labels.regions if r.label == "text"), key=lambda r: r.box[1])
    assert len(texts) == 2  # the paragraph, and the whole listing with its numbers
    assert texts[1].box[0] <= LEFT + 1 and texts[1].box[3] >= y - 2


def test_a_dash_wrapped_to_a_line_start_is_not_a_list_item() -> None:
    """A justified paragraph may wrap a sentence's dash to the start of a line; the line above is full, so the
    dash starts no item. Dash items under a line that introduces them (a colon) still make a list."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)

    def dashed(y: float, text: str) -> float:
        page.insert_text((LEFT, y), "-", fontname="tiro", fontsize=10)
        return write_lines(page, y, [text], x=LEFT + 8)

    y = write_lines(page, 100, [BODY, BODY])
    y = write_lines(page, dashed(y, "not at all! " + BODY[:60]), [BODY, BODY[:30]])
    y = dashed(dashed(write_lines(page, y + 20, [BODY[:40] + ":"]) + 4, BODY[:50]), BODY[:40])
    labels = label_page(page, Style(body_size=10.0))
    assert labels.refused is None
    by_label = regions_by_label(labels)
    assert len(by_label["text"]) == 2  # the whole paragraph, and the line introducing the list
    assert min(r.box[1] for r in by_label["text"]) < 100 and max(r.box[3] for r in by_label["text"]) < y - 30
    assert len(by_label["list"]) == 1 and by_label["list"][0].box[1] > 150


def test_framed_text_is_refused() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = paragraph(page, 100, 6)
    page.draw_rect(pymupdf.Rect(LEFT - 5, y, RIGHT, y + 60), color=(0, 0, 0), fill=(0.9, 0.9, 0.9))
    write_lines(page, y + 20, [BODY, BODY[:40]])
    assert label_page(page, Style(body_size=10.0)).refused == "framed or shaded text"


def test_document_style_reads_the_body_size() -> None:
    doc, _ = sample_page()
    assert document_style(doc).body_size == 10.0


def test_groups_and_splits_are_by_directory_family() -> None:
    assert corpus.group_of(Path("latex/datetime2-norsk/datetime2-norsk.pdf")) == "datetime2"
    assert corpus.group_of(Path("latex/datetime2-swedish/x.pdf")) == "datetime2"
    assert corpus.split_of("datetime2") == corpus.split_of("datetime2")
    splits = [corpus.split_of(f"group{i}") for i in range(2000)]
    assert 0.05 < splits.count("test") / len(splits) < 0.15


def test_held_out_package_is_never_fetched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="held out"):
        corpus.fetch(tmp_path, [corpus.HELD_OUT])
    assert corpus.HELD_OUT not in corpus.PACKAGES
    assert not any(tmp_path.iterdir())
