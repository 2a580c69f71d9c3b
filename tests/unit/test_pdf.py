from __future__ import annotations

import random
import re

import numpy as np
import pymupdf
import pytest

from serve_app.core.errors import InvalidInput, LimitExceeded
from serve_app.core.pdf import (
    PageInfo,
    Word,
    fewer_boxes,
    inspect_pdf,
    page_pixels,
    render_page,
    render_page_at,
    render_pdf,
    text_in_box,
)
from tests import pdfs


def make_pdf() -> bytes:
    with pymupdf.open() as doc:
        page = doc.new_page(width=200, height=100)
        page.draw_rect(pymupdf.Rect(10, 10, 60, 40), color=(1, 0, 0), fill=(1, 0, 0))
        doc.new_page(width=100, height=300)
        return doc.tobytes()


def test_render_pdf_gives_rgb_arrays_at_the_requested_dpi() -> None:
    first, second = render_pdf(make_pdf(), dpi=144)
    assert first.shape == (200, 400, 3) and second.shape == (600, 200, 3)
    assert first.dtype == np.uint8 and first.flags.writeable
    assert first[50, 60].tolist() == [255, 0, 0]  # inside the red square (2 px per point)
    assert first[150, 300].tolist() == [255, 255, 255]


def test_render_page_matches_render_pdf() -> None:
    with pymupdf.open(stream=make_pdf(), filetype="pdf") as doc:
        np.testing.assert_array_equal(render_page(doc[0], dpi=72), render_pdf(make_pdf(), dpi=72)[0])


# --- inspect_pdf -----------------------------------------------------------------------------------------

LIMITS = {"dpi": 72, "max_pages": 10, "max_page_pixels": 10_000_000}


def test_inspect_pdf_lists_pages_with_their_rendered_size() -> None:
    assert inspect_pdf(make_pdf(), **LIMITS) == [PageInfo(1, 200.0, 100.0), PageInfo(2, 100.0, 300.0)]
    lines = 3
    pages = inspect_pdf(pdfs.text_pdf(2, lines_per_page=lines), **LIMITS)
    assert [p.number for p in pages] == [1, 2]
    assert pages[0].width_pt == pdfs.PAGE_WIDTH and pages[0].height_pt == 40 + pdfs.LINE_GAP * lines


def test_inspect_pdf_reports_the_size_after_rotate() -> None:
    assert inspect_pdf(rotated_pdf(90), **LIMITS) == [PageInfo(1, 130.0, 200.0)]


@pytest.mark.parametrize(
    ("pdf", "fragment"),
    [
        (b"", "empty (0 bytes)"),
        (pdfs.not_a_pdf(), "not a PDF"),
        (bytes(random.Random(0).randrange(256) for _ in range(4000)), "not a PDF"),
        (b" " * 1024 + b"%PDF-1.7\n", "not a PDF"),  # the header must be in the first 1024 bytes
        (b"%PDF-1.7\n", "damaged or truncated"),  # header alone: MuPDF cannot open it
        (b"%PDF-1.7\n" + bytes(random.Random(1).randrange(256) for _ in range(4000)), "damaged or truncated"),
        (pdfs.encrypted_pdf(), "encrypted; remove the password"),
        (pdfs.zero_page_pdf(), "no pages"),  # MuPDF opens it (after a repair) with page_count 0
        (pdfs.truncated_pdf(), "page 2 of 3 is missing or damaged"),
        (pdfs.huge_page_pdf(), "20000 x 500 pt, larger than the 14400 pt"),
    ],
    ids=["empty", "text", "random", "late-header", "header-only", "random-after-header", "encrypted",
         "zero-pages", "truncated", "huge-page"],
)  # fmt: skip
def test_inspect_pdf_rejects_bad_pdfs_with_an_actionable_message(pdf: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        inspect_pdf(pdf, **LIMITS)


def test_a_pdf_with_only_an_owner_password_opens_without_one() -> None:
    with pymupdf.open(stream=pdfs.text_pdf(1), filetype="pdf") as doc:
        pdf = doc.tobytes(encryption=pymupdf.mupdf.PDF_ENCRYPT_AES_256, owner_pw="o")
    assert len(inspect_pdf(pdf, **LIMITS)) == 1


def test_truncated_pdfs_are_rejected_unless_every_page_survived() -> None:
    """What MuPDF 1.28 does with the first part of a valid 6-page PDF (observed, not designed):

    * cut inside the page objects: either it cannot open the file at all (FileDataError), or it "repairs"
      it, keeps /Count 6 from the page tree and stands in blank 612 x 792 pt pages for the missing page
      objects; inspect_pdf reports both as damaged.
    * cut after the last object, so only the cross-reference table and trailer are lost: it repairs the
      file silently and every page, text included, is intact; inspect_pdf accepts it.
    """
    pdf = pdfs.text_pdf(6)
    outcomes = set()
    for percent in range(5, 100, 5):
        try:
            pages = inspect_pdf(pdf[: len(pdf) * percent // 100], **LIMITS)
        except InvalidInput as exc:
            if "missing or damaged" in exc.message:
                outcomes.add("blank stand-in pages")
            else:
                assert "damaged or truncated" in exc.message
                outcomes.add("cannot open")
        else:
            assert [(p.width_pt, p.height_pt) for p in pages] == [(pdfs.PAGE_WIDTH, 140.0)] * 6
            outcomes.add("accepted")
    assert outcomes == {"cannot open", "blank stand-in pages", "accepted"}

    without_xref = pdf[: pdf.rindex(b"xref")]
    assert len(inspect_pdf(without_xref, **LIMITS)) == 6
    _, content = render_page_at(without_xref, 5, dpi=72)
    assert text_in_box(content.words, (0, 0, 1000, 1000)).splitlines()[0] == pdfs.text_line(6, 1)


def test_invalid_mediaboxes_are_replaced_by_mupdf_with_letter_size() -> None:
    # MuPDF substitutes 612 x 792 pt for an empty or non-finite MediaBox, so such a page renders (blank)
    # instead of reaching inspect_pdf's own size check, which stays as a guard.
    for box in (b"[0 0 0 0]", b"[0 0 1e30 100]"):
        pdf = make_pdf().replace(b"/MediaBox[0 0 200 100]", b"/MediaBox" + box)
        assert inspect_pdf(pdf, **LIMITS)[0] == PageInfo(1, 612.0, 792.0)


def test_inspect_pdf_refuses_more_pages_than_the_limit() -> None:
    with pytest.raises(LimitExceeded, match="has 3 pages, more than the limit of 2"):
        inspect_pdf(pdfs.text_pdf(3), **{**LIMITS, "max_pages": 2})
    assert len(inspect_pdf(pdfs.text_pdf(2), **{**LIMITS, "max_pages": 2})) == 2


def test_inspect_pdf_refuses_a_page_over_the_pixel_limit_and_suggests_a_dpi() -> None:
    pdf = make_pdf()  # page 2 is 100 x 300 pt: 200 x 600 = 120,000 px at 144 dpi
    with pytest.raises(LimitExceeded) as info:
        inspect_pdf(pdf, dpi=144, max_pages=10, max_page_pixels=100_000)
    message = info.value.message
    assert "page 2 would be 200 x 600 = 120,000 pixels at 144 dpi" in message
    assert "limit of 100,000" in message
    suggested = int(re.search(r"at most (\d+) dpi", message).group(1))  # type: ignore[union-attr]
    assert len(inspect_pdf(pdf, dpi=suggested, max_pages=10, max_page_pixels=100_000)) == 2
    with pytest.raises(LimitExceeded):
        inspect_pdf(pdf, dpi=suggested + 1, max_pages=10, max_page_pixels=100_000)


def test_inspect_pdf_counts_pixels_as_the_renderer_does() -> None:
    for dpi in (50, 72, 100, 150):
        first, second = render_pdf(make_pdf(), dpi=dpi)
        assert page_pixels(200, 100, dpi=dpi) == (first.shape[1], first.shape[0])
        assert page_pixels(100, 300, dpi=dpi) == (second.shape[1], second.shape[0])


def test_inspect_pdf_rejects_a_non_positive_dpi() -> None:
    with pytest.raises(InvalidInput, match="dpi must be a positive number"):
        inspect_pdf(make_pdf(), **{**LIMITS, "dpi": 0})


def test_mupdf_repair_messages_stay_out_of_the_output(capfd: pytest.CaptureFixture[str]) -> None:
    for pdf in (pdfs.truncated_pdf(), pdfs.zero_page_pdf(), b"%PDF-1.7\n"):
        with pytest.raises(InvalidInput):
            inspect_pdf(pdf, **LIMITS)
    assert capfd.readouterr() == ("", "")


# --- render_page_at --------------------------------------------------------------------------------------


def rotated_pdf(rotation: int, *, square: bool = False) -> bytes:
    """A 300 x 200 pt page cropped to 200 x 130 pt at (50, 50), with two words (and with ``square`` a blue
    square at (200, 60)-(230, 90)), turned by ``rotation``."""
    with pymupdf.open() as doc:
        page = doc.new_page(width=300, height=200)
        page.insert_text((80, 90), "Hello", fontsize=20)
        page.insert_text((150, 140), "world", fontsize=14)
        if square:
            page.draw_rect(pymupdf.Rect(200, 60, 230, 90), color=(0, 0, 1), fill=(0, 0, 1))
        page.set_cropbox(pymupdf.Rect(50, 50, 250, 180))
        page.set_rotation(rotation)
        return doc.tobytes()


def test_render_page_at_gives_the_page_image_and_its_words() -> None:
    pdf = pdfs.text_pdf(2, lines_per_page=3)
    image, content = render_page_at(pdf, 1, dpi=72)
    words = content.words
    np.testing.assert_array_equal(image, render_pdf(pdf, dpi=72)[1])
    assert text_in_box(words, (0, 0, 1000, 1000)) == "\n".join(pdfs.text_line(2, i) for i in (1, 2, 3))
    first = words[0]
    assert (first.text, first.block, first.line, first.index) == ("page", 0, 0, 0)
    assert first.x0 == pytest.approx(20) and first.y0 < 20 + pdfs.LINE_GAP < first.y1  # line 1 baseline


def test_words_carry_the_size_boldness_and_monospacing_of_their_font() -> None:
    with pymupdf.open() as doc:
        page = doc.new_page(width=300, height=200)
        page.insert_text((20, 40), "Heading", fontsize=16, fontname="hebo")  # Helvetica-Bold
        page.insert_text((20, 80), "plain body text", fontsize=10, fontname="helv")
        page.insert_text((20, 120), "Roman", fontsize=10, fontname="tiro")
        page.insert_text((80, 120), "bold", fontsize=10, fontname="tibo")  # same line, another span
        page.insert_text((20, 160), "code", fontsize=9, fontname="cour")  # Courier
        pdf = doc.tobytes()
    _, content = render_page_at(pdf, 0, dpi=72)
    fonts = {w.text: (round(w.size), w.bold, w.mono) for w in content.words}
    assert fonts == {
        "Heading": (16, True, False),
        "plain": (10, False, False),
        "body": (10, False, False),
        "text": (10, False, False),
        "Roman": (10, False, False),
        "bold": (10, True, False),
        "code": (9, False, True),
    }


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_word_boxes_line_up_with_the_rendered_image_on_rotated_pages(rotation: int) -> None:
    dpi = 100
    image, content = render_page_at(rotated_pdf(rotation), 0, dpi=dpi)
    words = content.words
    size_pt = (200, 130) if rotation in (0, 180) else (130, 200)
    assert image.shape[:2] == page_pixels(*size_pt, dpi=dpi)[::-1]
    assert [w.text for w in words] == ["Hello", "world"]
    dark = image.min(axis=2) < 128
    scale = dpi / 72
    in_words = 0
    for w in words:
        x0, y0, x1, y1 = (round(v * scale) for v in (w.x0, w.y0, w.x1, w.y1))
        inside = int(dark[y0:y1, x0:x1].sum())
        assert inside > 50, (rotation, w)  # the glyphs are in the box
        in_words += inside
    assert in_words == dark.sum()  # and nowhere else on the page


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_graphic_boxes_line_up_with_the_rendered_image_on_rotated_pages(rotation: int) -> None:
    dpi = 100
    image, content = render_page_at(rotated_pdf(rotation, square=True), 0, dpi=dpi)
    [(x0, y0, x1, y1)] = content.graphics  # the square; the words are no graphics
    blue = (image[..., 2] > 200) & (image[..., 0] < 80) & (image[..., 1] < 80)
    rows, cols = np.nonzero(blue)
    scale = dpi / 72
    assert (x0 * scale, y0 * scale) == (
        pytest.approx(cols.min(), abs=1.5),
        pytest.approx(rows.min(), abs=1.5),
    )
    assert (x1 * scale, y1 * scale) == (
        pytest.approx(cols.max(), abs=1.5),
        pytest.approx(rows.max(), abs=1.5),
    )


def test_graphics_are_images_and_drawings_not_rules_white_fills_backgrounds_or_text_frames() -> None:
    with pymupdf.open() as doc:
        page = doc.new_page(width=400, height=400)
        page.draw_rect(
            pymupdf.Rect(0, 0, 400, 400), color=(0.9, 0.9, 0.9), fill=(0.9, 0.9, 0.9)
        )  # background
        page.draw_rect(pymupdf.Rect(20, 20, 120, 80), fill=(1, 1, 1), color=None)  # white fill
        page.draw_line(pymupdf.Point(20, 100), pymupdf.Point(300, 100))  # a rule
        page.draw_circle(pymupdf.Point(200, 200), 30, color=(1, 0, 0))  # a drawing
        page.draw_rect(pymupdf.Rect(250, 20, 390, 60), color=(0, 0, 1), fill=(0.9, 0.9, 1))  # a text box
        page.insert_text((260, 45), "framed note", fontsize=10)
        page.draw_rect(pymupdf.Rect(250, 120, 390, 160), color=(0, 0, 1), fill=(0.5, 0.5, 1))  # no text
        pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
        pixmap.set_rect(pixmap.irect, (0, 128, 0))
        page.insert_image(pymupdf.Rect(50, 300, 150, 350), pixmap=pixmap)  # an image
        page.insert_image(pymupdf.Rect(300, 300, 310, 310), pixmap=pixmap)  # an icon, too small
        pdf = doc.tobytes()
    _, content = render_page_at(pdf, 0, dpi=36)
    assert sorted(tuple(round(v) for v in box) for box in content.graphics) == [
        (50, 300, 150, 350),
        (170, 170, 230, 230),
        (250, 120, 390, 160),  # a rectangle around no text is a graphic; around text, a frame
    ]


def ruled_table_pdf(rotation: int = 0) -> bytes:
    """A 400 x 500 pt page with a booktabs table (rules at y 100, 120, 180 from x 50 to 350, two columns of
    text) and a grid table (3 x 3 cells at x 50-350, y 350-440)."""
    with pymupdf.open() as doc:
        page = doc.new_page(width=400, height=500)
        for y in (100, 120, 180):
            page.draw_line(pymupdf.Point(50, y), pymupdf.Point(350, y), width=0.5)
        for row, y in enumerate((115, 140, 160, 175)):
            page.insert_text((60, y), f"name{row}", fontsize=9)
            page.insert_text((220, y), f"value{row}", fontsize=9)
        for y in (350, 380, 410, 440):
            page.draw_line(pymupdf.Point(50, y), pymupdf.Point(350, y), width=0.5)
        for x in (50, 150, 250, 350):
            page.draw_line(pymupdf.Point(x, 350), pymupdf.Point(x, 440), width=0.5)
        for row, y in enumerate((370, 400, 430)):
            for col, x in enumerate((60, 160, 260)):
                page.insert_text((x, y), f"c{row}{col}", fontsize=9)
        page.set_rotation(rotation)
        return doc.tobytes()


def test_ruled_tables_come_with_the_page_content() -> None:
    _, content = render_page_at(ruled_table_pdf(), 0, dpi=72)
    assert sorted(tuple(round(v) for v in box) for box in content.tables) == [
        (50, 100, 350, 180),
        (50, 350, 350, 440),
    ]
    assert content.graphics == []  # rules are no graphics
    # Turned by 90 degrees, the boxes are on the rendered page.
    _, turned = render_page_at(ruled_table_pdf(90), 0, dpi=72)
    assert sorted(tuple(round(v) for v in box) for box in turned.tables) == [
        (60, 50, 150, 350),
        (320, 50, 400, 350),
    ]
    # A page with fewer than three horizontal rules is not searched.
    _, plain = render_page_at(rotated_pdf(0, square=True), 0, dpi=72)
    assert plain.tables == []


def test_framed_boxes_stacked_down_a_page_are_no_table() -> None:
    """Boxes drawn with thin lines (a macro's signature in each, a paragraph between them) give three
    horizontal rules of one width, as a booktabs table does, but one cell to a row."""
    with pymupdf.open() as doc:
        page = doc.new_page(width=400, height=500)
        for top in (100, 160, 220):
            for y in (top, top + 20):
                page.draw_line(pymupdf.Point(50, y), pymupdf.Point(350, y), width=0.5)
            for x in (50, 350):
                page.draw_line(pymupdf.Point(x, top), pymupdf.Point(x, top + 20), width=0.5)
            page.insert_text((60, top + 14), "\\thumbySetup{<options>}", fontsize=9, fontname="cour")
            page.insert_text((50, top + 40), "The height of each page, in points, as set here.", fontsize=9)
        pdf = doc.tobytes()
    _, content = render_page_at(pdf, 0, dpi=72)
    assert content.tables == []
    # The same rules around rows of two cells are a table.
    _, table = render_page_at(ruled_table_pdf(), 0, dpi=72)
    assert (50, 100, 350, 180) in [tuple(round(v) for v in box) for box in table.tables]


def test_a_page_of_many_thousands_of_paths_gives_a_bounded_number_of_graphics() -> None:
    with pymupdf.open() as doc:
        page = doc.new_page(width=600, height=800)
        shape = page.new_shape()
        for i in range(3000):  # a scatter plot: 3,000 separate paths
            shape.draw_circle(pymupdf.Point(50 + (i * 37) % 500, 100 + (i * 53) % 600), 2.5)
            shape.finish(color=(0, 0, 1))
        shape.commit()
        pdf = doc.tobytes()
    _, content = render_page_at(pdf, 0, dpi=36)
    assert 0 < len(content.graphics) <= 1000
    xs0, ys0, xs1, ys1 = zip(*content.graphics, strict=True)
    assert (min(xs0), min(ys0), max(xs1), max(ys1)) == pytest.approx((47.5, 97.5, 551.5, 701.5), abs=0.5)


def test_fewer_boxes_merges_neighbours_on_a_growing_grid() -> None:
    boxes = [(0.0, 0.0, 4.0, 4.0), (5.0, 0.0, 9.0, 4.0), (100.0, 100.0, 104.0, 104.0)]
    assert fewer_boxes(boxes, 3, gap=6.0) == boxes
    assert fewer_boxes(boxes, 2, gap=6.0) == [(0.0, 0.0, 9.0, 4.0), (100.0, 100.0, 104.0, 104.0)]
    assert fewer_boxes(boxes, 1, gap=6.0) == [(0.0, 0.0, 104.0, 104.0)]


def test_a_page_whose_drawings_cannot_be_read_keeps_its_image_and_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import serve_app.core.pdf as pdf_module

    def broken(*_: object) -> None:
        raise IndexError("the table finder met something odd")

    monkeypatch.setattr(pdf_module, "page_drawings", broken)
    image, content = render_page_at(ruled_table_pdf(), 0, dpi=72)
    assert image.shape[:2] == (500, 400) and len(content.words) == 17
    assert content.graphics == [] and content.tables == []


def labelled_page(producer: str) -> bytes:
    with pymupdf.open() as doc:
        page = doc.new_page(width=300, height=200)
        page.insert_text((20, 40), "5. The use of it", fontsize=10, fontname="tiro")  # typed in running text
        page.insert_text((20, 80), "3.", fontsize=10, fontname="tiro")  # a list's label, set in a box
        page.insert_text((34, 80), "Item text", fontsize=10, fontname="tiro")
        doc.set_metadata({"producer": producer})
        return doc.tobytes()


def test_a_word_set_apart_from_the_text_after_it_is_not_run_on() -> None:
    _, content = render_page_at(labelled_page("pdfTeX-1.40.25"), 0, dpi=72)
    run_on = [(w.text, w.run_on) for w in content.words]
    assert run_on[:2] == [("5.", True), ("The", True)]
    assert run_on[-3:] == [("3.", False), ("Item", True), ("text", True)]
    # Other producers may set a label in one span with its text (a browser's "1." of an ordered list).
    _, content = render_page_at(labelled_page("Skia/PDF m156"), 0, dpi=72)
    assert not any(w.run_on for w in content.words)


def test_a_page_whose_fonts_cannot_be_read_keeps_its_words_without_sizes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import serve_app.core.pdf as pdf_module

    def broken(*_: object) -> None:
        raise KeyError("spans")

    monkeypatch.setattr(pdf_module, "word_fonts", broken)
    _, content = render_page_at(ruled_table_pdf(), 0, dpi=72)
    assert len(content.words) == 17 and all(
        (w.size, w.bold, w.mono, w.run_on) == (0, False, False, False) for w in content.words
    )
    assert content.tables  # the rest of the page is read as usual


def test_render_page_at_gives_no_words_and_no_graphics_for_a_scanned_page() -> None:
    image, content = render_page_at(pdfs.scanned_pdf(), 0, dpi=50)
    assert content.words == [] and content.graphics == [] and content.tables == []  # a scan, not a figure
    assert image.min() < 50  # the scan itself is rendered


def test_render_page_at_rejects_a_page_index_out_of_range() -> None:
    with pytest.raises(InvalidInput, match="page index 2 is out of range: the PDF has 2 pages"):
        render_page_at(make_pdf(), 2, dpi=72)
    with pytest.raises(InvalidInput, match="encrypted"):
        render_page_at(pdfs.encrypted_pdf(), 0, dpi=72)


# --- text_in_box -----------------------------------------------------------------------------------------


def word(x0: float, y0: float, x1: float, y1: float, text: str, block: int, line: int, index: int) -> Word:
    return Word(x0, y0, x1, y1, text, block, line, index)


# Two blocks; given out of order to prove the result follows (block, line, index).
WORDS = [
    word(10, 50, 40, 60, "second", 1, 0, 0),
    word(50, 10, 80, 20, "world", 0, 0, 1),
    word(10, 10, 40, 20, "hello", 0, 0, 0),
    word(10, 25, 40, 35, "again", 0, 1, 0),
    word(45, 50, 75, 60, "block", 1, 0, 1),
]


def test_text_in_box_reads_words_in_order_joining_lines_with_newlines() -> None:
    assert text_in_box(WORDS, (0, 0, 100, 100)) == "hello world\nagain\nsecond block"
    assert text_in_box(WORDS, (0, 0, 100, 40)) == "hello world\nagain"
    assert text_in_box(WORDS, (200, 200, 300, 300)) == ""
    assert text_in_box([], (0, 0, 100, 100)) == ""


def test_text_in_box_keeps_words_mostly_inside_the_box() -> None:
    box = (0, 0, 60, 40)  # "world" (x 50..80) is one third inside
    assert text_in_box(WORDS, box) == "hello\nagain"
    assert text_in_box(WORDS, box, min_overlap=0.3) == "hello world\nagain"
    assert text_in_box(WORDS, (0, 0, 25, 100), min_overlap=0.5) == "hello\nagain\nsecond"  # exactly half
    assert text_in_box(WORDS, (0, 0, 25, 100), min_overlap=0.51) == ""
    assert text_in_box(WORDS, (0, 0, 100, 15), min_overlap=0.0) == "hello world"  # any overlap at all


def test_text_in_box_places_a_word_without_area_by_its_centre() -> None:
    flat = [word(10, 10, 30, 10, "flat", 0, 0, 0)]
    assert text_in_box(flat, (0, 0, 50, 50)) == "flat"
    assert text_in_box(flat, (0, 20, 50, 50)) == ""


def test_text_in_box_rejects_an_overlap_outside_0_1() -> None:
    with pytest.raises(InvalidInput, match="min_overlap must be between 0 and 1"):
        text_in_box(WORDS, (0, 0, 1, 1), min_overlap=1.5)
