"""Regions arranged on the page's content (no Ray): figures snapped to graphics, regions to lines, emptied and
running ones dropped, fragments merged, reading order, Kendall's tau, on tiny hand-built pages."""

from __future__ import annotations

import dataclasses

import pytest

from serve_app.core import arrange
from serve_app.core.arrange import TextLine
from serve_app.core.errors import InvalidInput
from serve_app.core.layout import Box, Polygon, Region
from serve_app.core.pdf import Word

W, H = 600.0, 800.0
SQUARE: Polygon = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))
BIG: Polygon = ((0.0, 0.0), (20.0, 0.0), (20.0, 20.0), (0.0, 20.0))


def region(label: str, box: Box, score: float = 0.9, mask: tuple[Polygon, ...] | None = None) -> Region:
    """A region at 144 dpi: its pixel box is twice its box in points."""
    box_px = (2 * box[0], 2 * box[1], 2 * box[2], 2 * box[3])
    return Region(label, score, box_px=box_px, box_pt=box, mask_px=mask, mask_pt=mask)


def line(
    x0: float, y0: float, x1: float, y1: float, text: str = "some words", size: float = 0.0, bold: float = 0.0
) -> TextLine:
    return TextLine((x0, y0, x1, y1), text, size, bold)


def words_of(*rows: tuple[float, float, float, float], block: int = 0) -> list[Word]:
    """One two-word line per row, its words splitting the row's box in half, lines numbered in order."""
    words = []
    for n, (x0, y0, x1, y1) in enumerate(rows):
        middle = (x0 + x1) / 2
        words += [
            Word(x0, y0, middle - 1, y1, f"w{n}a", block, n, 0),
            Word(middle + 1, y0, x1, y1, f"w{n}b", block, n, 1),
        ]
    return words


def boxes(regions: list[Region]) -> list[Box]:
    return [r.box_pt for r in regions]


# text lines and their owners


def test_text_lines_group_words_by_block_and_line_in_stream_order() -> None:
    words = [
        Word(60, 10, 90, 20, "world", 0, 0, 1),
        Word(10, 12, 50, 22, "hello", 0, 0, 0),
        Word(10, 40, 50, 50, "next", 1, 0, 0),
        Word(10, 30, 30, 38, "second", 0, 1, 0),
    ]
    assert arrange.text_lines(words) == [
        TextLine((10, 10, 90, 22), "hello world"),
        TextLine((10, 30, 30, 38), "second"),
        TextLine((10, 40, 50, 50), "next"),
    ]
    assert arrange.text_lines([]) == []


def test_a_line_has_the_median_size_and_the_bold_and_monospaced_shares_of_its_characters() -> None:
    words = [
        Word(10, 10, 40, 20, "Bold", 0, 0, 0, 12.0, True),
        Word(45, 10, 90, 20, "plain", 0, 0, 1, 10.0, False),
        Word(95, 10, 130, 20, "code", 0, 0, 2, 10.0, False, True),
    ]
    [joined] = arrange.text_lines(words)
    assert (joined.size, joined.bold, joined.mono) == (10.0, 4 / 13, 4 / 13)
    assert arrange.text_lines(words[:1])[0].bold == 1.0


def test_each_line_goes_to_the_one_region_holding_most_of_it() -> None:
    lines = [line(10, 10, 110, 20), line(10, 30, 110, 40), line(400, 10, 500, 20)]
    regions = [
        region("text", (0, 0, 70, 25)),  # 60% of line 0
        region("text", (60, 0, 200, 45)),  # half of lines 0 and 1
        region("stamp", (300, 0, 600, 100)),  # another model's label: holds no lines
    ]
    assert arrange.assign_lines(regions, lines) == [0, 1, None]
    # Fully inside both: the smaller region (a text inside a figure) keeps it.
    nested = [region("figure", (0, 0, 300, 300)), region("text", (5, 5, 150, 50))]
    assert arrange.assign_lines(nested, lines[:1]) == [1]
    # The centre inside is enough even below min_overlap.
    assert arrange.assign_lines([region("text", (50, 0, 90, 30))], lines[:1], min_overlap=0.9) == [0]
    with pytest.raises(InvalidInput, match="min_overlap"):
        arrange.assign_lines(regions, lines, min_overlap=0)


# 0-1. snap


def test_ruled_tables_replace_the_regions_inside_them() -> None:
    table: Box = (100, 200, 400, 300)
    regions = [
        region("text", (50, 100, 450, 150)),  # above the table
        region("text", (110, 210, 390, 240), score=0.8),  # cells read as text
        region("figure", (100, 250, 420, 310)),  # 94% inside
        region("table", (90, 190, 420, 330)),  # holds the ruled table: replaced too
        region("table", (500, 500, 550, 550)),  # another table, elsewhere
    ]
    out = arrange.tables_from_rules(regions, [table])
    assert [(r.label, r.box_pt, r.score) for r in out] == [
        ("text", (50, 100, 450, 150), 0.9),
        ("table", (500, 500, 550, 550), 0.9),
        ("table", table, 1.0),
    ]
    assert out[-1].box_px == (200, 400, 800, 600)  # the first region's scale: 2 px per point
    # A table the model missed entirely is added; without any region the scale is unknown: unchanged.
    assert [r.box_pt for r in arrange.tables_from_rules(regions[:1], [table])] == [regions[0].box_pt, table]
    assert arrange.tables_from_rules([], [table]) == []
    assert arrange.tables_from_rules(regions, []) == regions
    with pytest.raises(InvalidInput, match="min_inside"):
        arrange.tables_from_rules(regions, [table], min_inside=2)


def test_drawings_no_region_holds_become_figures() -> None:
    graphics: list[Box] = [
        (100, 200, 200, 260),  # a chart the model missed, in two pieces 4 pt apart
        (204, 200, 300, 260),
        (100, 500, 300, 600),  # a drawing a figure region holds already
        (100, 20, 300, 40),  # a logo in the top band
        (400, 300, 410, 310),  # too small
        (50, 650, 550, 760),  # a box around four text lines
    ]
    lines = [line(60, 660 + 20 * i, 540, 670 + 20 * i) for i in range(4)]
    lines.append(line(110, 230, 190, 238, "axis"))  # text of the chart
    regions = [
        region("text", (110, 228, 190, 240)),  # the chart's text, called a paragraph: goes
        region("figure", (90, 490, 310, 610)),
        region("text", (60, 660, 540, 740)),
    ]
    out = arrange.figures_from_graphics(regions, graphics, lines, page_height=H)
    assert [(r.label, r.box_pt, r.score) for r in out] == [
        ("figure", (90, 490, 310, 610), 0.9),
        ("text", (60, 660, 540, 740), 0.9),
        ("figure", (100, 200, 300, 260), 1.0),
    ]
    assert out[-1].box_px == (200, 400, 600, 520)
    assert arrange.figures_from_graphics([], graphics, lines, page_height=H) == []
    assert arrange.figures_from_graphics(regions, [], lines, page_height=H) == regions


def test_figures_snap_to_the_graphics_they_hold() -> None:
    graphics: list[Box] = [
        (100, 100, 300, 250),  # a plot, sticking out of the detection on the right
        (120, 260, 200, 280),  # its legend: 75% inside
        (290, 240, 400, 300),  # a drawing mostly outside (18% inside): not the figure's
        (0, 700, 50, 750),  # elsewhere
    ]
    regions = [
        region("figure", (90, 90, 280, 290), mask=(SQUARE,)),
        region("figure", (400, 400, 500, 500)),  # holds no graphic: kept as it is
        region("text", (90, 90, 280, 290)),  # other labels are not snapped
        region("table", (90, 90, 280, 290)),
    ]
    snapped = arrange.snap_to_graphics(regions, graphics, page_width=W, page_height=H)
    assert snapped[0].box_pt == (100, 100, 300, 280)  # grown to whole graphics, shrunk to what is drawn
    assert snapped[0].box_px == (200, 200, 600, 560)
    assert snapped[0].mask_pt == (SQUARE,) and snapped[0].score == regions[0].score
    assert snapped[1:] == regions[1:]
    assert arrange.snap_to_graphics(regions, [], page_width=W, page_height=H) == regions
    # The lines the figure holds as detected stay in it: a label under the plot, not one outside it.
    lines = [line(100, 282, 260, 289, "time (s)"), line(290, 302, 400, 312, "outside")]
    with_lines = arrange.snap_to_graphics(regions, graphics, lines, page_width=W, page_height=H)
    assert with_lines[0].box_pt == (100, 100, 300, 289)
    # The union stays on the page.
    off = arrange.snap_to_graphics(
        [region("figure", (500, 700, 600, 800))], [(520, 720, 640, 810)], page_width=W, page_height=H
    )
    assert off[0].box_pt == (520, 720, 600, 800)
    with pytest.raises(InvalidInput, match="min_inside"):
        arrange.snap_to_graphics(regions, graphics, page_width=W, page_height=H, min_inside=0)


def test_text_regions_snap_to_whole_lines_and_graphics_only_grow() -> None:
    lines = [line(50, 100, 250, 110), line(50, 112, 240, 122), line(300, 100, 500, 110)]
    regions = [
        region("text", (40, 90, 200, 130), mask=(SQUARE,)),  # cuts lines 0 and 1 at x=200
        region("figure", (290, 50, 480, 200)),  # holds 90% of line 2, which sticks out on the right
        region("title", (50, 500, 100, 520)),  # no line: kept as it is here
    ]
    text, figure, title = arrange.snap_to_lines(regions, lines, page_width=W, page_height=H)
    assert text.box_pt == (50, 100, 250, 122)  # grown to whole lines, shrunk to the text
    assert text.box_px == (100, 200, 500, 244)  # the pixel box follows
    assert text.mask_pt == (SQUARE,)  # the model's outline is kept
    assert figure.box_pt == (290, 50, 500, 200)  # grown, not shrunk to its one line
    assert title == regions[2]
    assert arrange.snap_to_lines(regions, [], page_width=W, page_height=H) == regions


def test_a_line_is_never_split_between_two_regions() -> None:
    lines = [line(10, 10, 300, 20), line(10, 22, 300, 32)]
    left, right = region("text", (0, 0, 200, 40)), region("text", (120, 0, 320, 40))  # 66% and 62%
    snapped = arrange.snap_to_lines([left, right], lines, page_width=W, page_height=H)
    assert boxes(snapped) == [(10, 10, 300, 32), (120, 0, 320, 40)]  # the right one holds no line
    assert boxes(arrange.drop_empty(snapped, lines)) == [(10, 10, 300, 32)]
    # Uncontested, the right one would hold the lines on its own (62% of each): it stays.
    assert boxes(arrange.drop_empty(snapped, lines, contested=False)) == boxes(snapped)


def test_snapped_boxes_stay_on_the_page() -> None:
    lines = [line(-5, 790, 100, 805)]
    (snapped,) = arrange.snap_to_lines(
        [region("text", (0, 780, 90, 800))], lines, page_width=W, page_height=H
    )
    assert snapped.box_pt == (0, 790, 100, 800)


# 2-3. drop


def test_empty_text_regions_go_figures_and_tables_stay() -> None:
    lines = [line(10, 10, 100, 20)]
    regions = [
        region("text", (0, 0, 110, 30)),
        region("title", (0, 100, 110, 130)),
        region("list", (0, 200, 110, 230)),
        region("figure", (0, 300, 110, 330)),
        region("table", (0, 400, 110, 430)),
    ]
    assert [r.label for r in arrange.drop_empty(regions, lines)] == ["text", "figure", "table"]
    assert arrange.drop_empty(regions, []) == regions  # a scan: nothing dropped
    uncontested = arrange.drop_empty(regions, lines, contested=False)
    assert [r.label for r in uncontested] == ["text", "figure", "table"]


def test_running_heads_footers_and_page_numbers_go() -> None:
    lines = [
        line(50, 20, 300, 30, "Journal of Examples 12 (2024) 1-20"),
        line(290, 770, 310, 780, "7"),
        line(50, 100, 500, 110),
        line(50, 10, 500, 18, "x" * 101),
        line(50, 745, 280, 755, "a footnote"),
        line(290, 690, 310, 700, "- 8 -"),  # a page number above a tall bottom margin
        line(290, 400, 310, 410, "9"),  # a number in the middle of the page
    ]
    head = region("text", (50, 20, 300, 30))
    number = region("text", (290, 770, 310, 780))
    body = region("text", (50, 100, 500, 110))
    long_line = region("title", (50, 10, 500, 18))
    straddling = region("text", (50, 740, 310, 780))  # reaches above the bottom band
    figure = region("figure", (50, 2, 100, 40))
    high_number, middle = region("text", (290, 690, 310, 700)), region("text", (290, 400, 310, 410))
    regions = [head, number, body, long_line, straddling, figure, high_number, middle]
    kept = arrange.drop_margins(regions, lines, page_height=H)
    assert kept == [body, long_line, straddling, figure, middle]
    three = [line(50, 4 + 10 * i, 300, 12 + 10 * i) for i in range(3)]
    block = region("text", (50, 4, 300, 32))
    assert arrange.drop_margins([block], three, page_height=H, margin=0.05) == [block]  # 3 lines
    assert arrange.drop_margins([block], three, page_height=H, margin=0.05, max_lines=3) == []
    row = [
        line(50, 780, 120, 790, "package"),
        line(130, 781, 200, 789, "[rev. 3]"),
        line(210, 780, 300, 790, "(c) me"),
    ]
    footer = region("text", (50, 780, 300, 790))
    assert arrange.drop_margins([footer], row, page_height=H) == []  # three lines side by side: one row
    assert arrange.drop_margins([head], [], page_height=H) == [head]  # a scan: nothing dropped
    with pytest.raises(InvalidInput, match="margin"):
        arrange.drop_margins([head], lines, page_height=H, margin=0.5)


# 4. merge


def column_lines(x0: float, x1: float, top: float, count: int) -> list[TextLine]:
    """``count`` lines 10 pt high set solid (no space between them)."""
    return [line(x0, top + 10 * i, x1, top + 10 * (i + 1)) for i in range(count)]


def test_fragments_of_one_paragraph_are_merged() -> None:
    lines = column_lines(50, 250, 100, 6)
    upper = region("text", (50, 100, 250, 130), score=0.8, mask=(SQUARE,))
    lower = region("text", (50, 130, 245, 160), score=0.95, mask=(BIG,))
    (merged,) = arrange.merge_fragments([lower, upper], lines)
    assert merged.box_pt == (50, 100, 250, 160) and merged.box_px == (100, 200, 500, 320)
    assert merged.score == 0.95 and merged.label == "text"
    assert merged.mask_pt == (BIG, SQUARE)  # both outlines, largest first
    without_mask = arrange.merge_fragments([upper, region("text", lower.box_pt)], lines)
    assert without_mask[0].mask_pt is None
    items = [region("list", (50, 100, 250, 130)), region("list", (60, 132, 250, 160))]
    assert boxes(arrange.merge_fragments(items, lines)) == [(50, 100, 250, 160)]


def test_what_is_not_one_paragraph_stays_apart() -> None:
    lines = column_lines(50, 250, 100, 6) + column_lines(300, 500, 100, 6)
    upper = region("text", (50, 100, 250, 130))
    cases = {
        "next column": region("text", (300, 130, 500, 160)),
        "a title": region("title", (50, 130, 250, 160)),
        "too far": region("text", (50, 133, 250, 160)),  # 3 pt: more than a quarter line
        "narrow overlap": region("text", (200, 130, 450, 160)),
    }
    for name, lower in cases.items():
        assert len(arrange.merge_fragments([upper, lower], lines)) == 2, name
    titles = [region("title", (50, 100, 250, 130)), region("title", (50, 130, 250, 160))]
    assert len(arrange.merge_fragments(titles, lines)) == 2
    # Something between them (here a figure beside the gap) keeps them apart.
    between = [upper, region("figure", (240, 128, 290, 135)), region("text", (50, 131, 250, 160))]
    assert len(arrange.merge_fragments(between, lines)) == 3
    assert len(arrange.merge_fragments([upper, region("text", (50, 130, 250, 160))], [])) == 2  # a scan


def test_a_short_last_line_or_an_indent_ends_a_paragraph() -> None:
    upper, lower = region("text", (50, 100, 250, 130)), region("text", (50, 130, 250, 160))
    indented = [*column_lines(50, 250, 100, 3), line(65, 130, 250, 140), *column_lines(50, 250, 140, 2)]
    assert len(arrange.merge_fragments([upper, lower], indented)) == 2  # indented by 1.5 lines
    assert len(arrange.merge_fragments([upper, lower], indented, indent=2.0)) == 1
    short = [*column_lines(50, 250, 100, 2), line(50, 120, 200, 130), *column_lines(50, 250, 130, 3)]
    assert len(arrange.merge_fragments([upper, lower], short)) == 2  # ends 5 lines before the edge
    assert len(arrange.merge_fragments([upper, lower], short, short_end=6.0)) == 1
    lists = [region("list", upper.box_pt), region("list", lower.box_pt)]
    assert len(arrange.merge_fragments(lists, short)) == 1  # list items end short and are indented


def test_code_rows_end_no_paragraph() -> None:
    upper, lower = region("text", (50, 100, 250, 130)), region("text", (50, 130, 250, 160))

    def code(x0: float, y0: float, x1: float) -> TextLine:
        return TextLine((x0, y0, x1, y0 + 10), "\\def\\x{}", 10.0, 0.0, 1.0)

    # A listing: a short line, then an indented one (a line number beside it), all monospaced.
    listing = [code(50, 100, 250), code(50, 110, 250), code(50, 120, 120)]
    listing += [line(50, 130, 58, 140, "12"), code(80, 130, 250), code(50, 140, 250), code(50, 150, 250)]
    assert len(arrange.merge_fragments([upper, lower], listing)) == 1
    # Prose above the same indented code row still ends its paragraph there.
    prose = [*column_lines(50, 250, 100, 2), line(50, 120, 120, 130), *listing[3:]]
    assert len(arrange.merge_fragments([upper, lower], prose)) == 2


# 5. order


def test_two_columns_are_read_column_by_column_between_wide_regions() -> None:
    page = {
        "title": region("title", (50, 50, 550, 80)),
        "left top": region("text", (50, 100, 290, 200)),
        "left bottom": region("text", (50, 210, 290, 300)),
        "right top": region("text", (310, 100, 550, 180)),
        "right bottom": region("text", (310, 190, 550, 300)),
        "wide figure": region("figure", (50, 330, 550, 500)),  # 30 pt from the text: no caption
        "after": region("text", (50, 530, 290, 600)),
        "after right": region("text", (310, 530, 550, 600)),
    }
    names = {r: name for name, r in page.items()}
    shuffled = [page[k] for k in ("right bottom", "after", "title", "wide figure")] + [
        page[k] for k in ("left bottom", "right top", "after right", "left top")
    ]
    assert [names[r] for r in arrange.reading_order(shuffled)] == list(page)


def test_a_gap_across_both_columns_at_the_same_height_does_not_cut_them() -> None:
    title = region("title", (50, 50, 550, 80))
    left = [region("text", (50, 100, 290, 200)), region("text", (50, 210, 290, 300))]
    right = [region("text", (310, 100, 550, 195)), region("text", (310, 205, 550, 300))]
    short = region("text", (50, 310, 200, 320))  # the left column runs on below the right one
    assert arrange.reading_order([*right, short, *left, title]) == [title, *left, short, *right]


def test_centred_front_matter_is_read_top_to_bottom() -> None:
    title = region("title", (100, 50, 500, 80))
    authors = [region("text", (250, 90, 350, 100)), region("text", (230, 105, 370, 115))]
    # Below the authors, a short heading leaves room beside it: the authors must not join its column.
    heading, right_top = region("title", (50, 130, 100, 145)), region("text", (310, 128, 550, 145))
    left, right = region("text", (50, 150, 290, 300)), region("text", (310, 150, 550, 300))
    shuffled = [right, left, right_top, heading, *authors, title]
    assert arrange.reading_order(shuffled) == [title, *authors, heading, left, right_top, right]


def test_captions_come_right_after_their_figure_or_table() -> None:
    text = region("text", (50, 50, 290, 100))
    figure = region("figure", (60, 110, 280, 250))
    caption = region("text", (50, 258, 290, 280))
    table_caption = region("text", (310, 50, 550, 70))
    table = region("table", (310, 78, 550, 200))
    after = region("text", (310, 210, 550, 300))
    regions = [after, caption, table, figure, table_caption, text]
    assert arrange.caption_pairs(regions) == {2: 4, 3: 1}  # the table looks above first, the figure below
    assert arrange.reading_order(regions) == [text, figure, caption, table, table_caption, after]
    assert arrange.reading_order(regions, captions_after=False) == [
        text, figure, caption, table_caption, table, after,
    ]  # fmt: skip
    assert arrange.caption_pairs([figure, region("text", (50, 290, 290, 300))]) == {}  # too far


def test_margin_notes_beside_one_column_do_not_make_a_column() -> None:
    # A macro name in the left margin beside each of two paragraphs: read note, paragraph, note, paragraph.
    note1, body1 = region("text", (40, 100, 120, 110)), region("text", (150, 100, 550, 160))
    note2, body2 = region("text", (40, 200, 120, 210)), region("text", (150, 200, 550, 260))
    assert arrange.reading_order([body2, note2, body1, note1]) == [note1, body1, note2, body2]


def test_a_paragraph_above_a_figure_is_not_its_caption() -> None:
    text = region("text", (100, 100, 500, 180))  # six lines: a paragraph, not a caption
    figure = region("figure", (100, 190, 500, 400))
    assert arrange.caption_pairs([text, figure]) == {}
    assert arrange.reading_order([figure, text]) == [text, figure]


def test_regions_that_cannot_be_cut_are_read_top_to_bottom_then_left_to_right() -> None:
    a, b = region("text", (0, 0, 100, 50)), region("text", (50, 40, 150, 90))
    c = region("text", (120, 0, 200, 45))
    assert arrange.reading_order([b, c, a]) == [a, c, b]
    assert arrange.reading_order([]) == []


# all steps


def test_arrange_regions_on_a_small_two_column_page() -> None:
    head = (50, 20, 200, 30)
    left = [(50, 100 + 12 * i, 290, 110 + 12 * i) for i in range(6)]  # lines 100..170
    right = [(310, 100 + 12 * i, 550, 110 + 12 * i) for i in range(6)]
    words = words_of(head, block=0) + words_of(*left, block=1) + words_of(*right, block=2)
    regions = [
        region("text", (305, 95, 555, 140)),  # the right column, cut in two after its third line
        region("text", (305, 138, 540, 175)),
        region("text", (45, 98, 280, 175)),  # the left column, cutting its lines at x=280
        region("text", (48, 18, 202, 32)),  # the running head
        region("title", (400, 600, 500, 620)),  # nothing there
        region("figure", (50, 300, 550, 500)),  # no words: kept as it is
    ]
    arranged = arrange.arrange_regions(regions, words, page_width=W, page_height=H)
    assert boxes(arranged) == [(50, 100, 290, 170), (310, 100, 550, 170), (50, 300, 550, 500)]
    assert arrange.order_tau(arranged, words) == 1.0
    # With the page's graphics the figure is snapped to them first, then grows to hold its lines.
    inside = [(60, 310, 200, 400), (210, 320, 300, 420)]
    figure_words = words_of((60, 420, 240, 430), block=3)  # a line drawn under the plot, in the figure
    arranged = arrange.arrange_regions(
        regions, words + figure_words, page_width=W, page_height=H, graphics=inside
    )
    assert [r.box_pt for r in arranged if r.label == "figure"] == [(60, 310, 300, 430)]
    # Ruled tables and drawings become regions only for a model with those labels.
    table, drawing = (60, 600, 300, 700), (320, 600, 500, 700)
    both = arrange.arrange_regions(
        regions, words, page_width=W, page_height=H, graphics=[drawing], tables=[table]
    )
    assert {(r.label, r.box_pt) for r in both} >= {("table", table), ("figure", drawing)}
    own = [region("chart", (50, 300, 550, 500))]
    mine = arrange.arrange_regions(
        own, words, page_width=W, page_height=H, graphics=[drawing], tables=[table], labels=("chart",)
    )
    assert mine == own
    # A page without words (a scan) is only put in order.
    assert arrange.arrange_regions(regions, [], page_width=W, page_height=H) == [
        regions[3], regions[2], regions[0], regions[1], regions[5], regions[4],
    ]  # fmt: skip


# 6. lists


def test_item_starts_are_bullets_or_enumerators_followed_by_text() -> None:
    starts = ["\u2022 first item", "- dash item", "1. one", "(a) letter", "iv) roman", "[12] Knuth, D."]
    for text in starts:
        assert arrange.is_item_start(line(0, 0, 100, 10, text)), text
    not_starts = ["\u2022", "The 1. word", "12345. too long", "Figure 3: a caption", "(ab) two letters"]
    # An algorithm's line number, a listing's label: not list items.
    for text in [*not_starts, "1: x \u2190 0", "a: [\\detokenize{a}]"]:
        assert not arrange.is_item_start(line(0, 0, 100, 10, text)), text


def test_a_marker_run_into_its_text_or_set_as_a_superscript_starts_no_item() -> None:
    run_on = [  # a footnote typed "5. The use ...": one span, as a date or an initial would be
        Word(50, 700, 58, 709, "5.", 0, 0, 0, 9.0, run_on=True),
        Word(60, 700, 80, 709, "The", 0, 0, 1, 9.0, run_on=True),
        Word(82, 700, 100, 709, "use", 0, 0, 2, 9.0, run_on=True),
    ]
    [footnote] = arrange.text_lines(run_on)
    assert footnote.text == "5. The use" and not footnote.lead_apart
    assert not arrange.is_item_start(footnote)
    label = [dataclasses.replace(run_on[0], run_on=False), *run_on[1:]]  # a list's label: a span of its own
    assert arrange.is_item_start(arrange.text_lines(label)[0])
    superscript = [dataclasses.replace(run_on[0], size=6.0, run_on=False), *run_on[1:]]  # a footnote mark
    assert not arrange.is_item_start(arrange.text_lines(superscript)[0])
    # The model's list made of such lines is text; text starting with one stays text.
    for label in ("list", "text"):
        [kept] = arrange.lists_from_items([region(label, (50, 700, 100, 709))], [footnote])
        assert kept.label == "text", label


def test_items_become_one_list_and_lists_without_items_become_text() -> None:
    lines = [
        line(50, 100, 400, 110, "An introduction that is not a list."),
        line(50, 130, 400, 140, "\u2022 the first item"),
        line(50, 142, 400, 152, "\u2022 the second item"),
        line(64, 156, 400, 166, "its second paragraph, indented under it"),
        line(64, 170, 400, 180, "(a) a nested item"),
        line(50, 200, 400, 210, "A paragraph after the list, at the list's left edge."),
        line(50, 300, 400, 310, "Called a list, but no item in it."),
    ]
    regions = [
        region("text", (50, 100, 400, 110)),
        region("text", (50, 130, 400, 140), score=0.7),
        region("list", (50, 142, 400, 152)),
        region("text", (64, 156, 400, 166)),
        region("text", (64, 170, 400, 180)),
        region("text", (50, 200, 400, 210)),
        region("list", (50, 300, 400, 310)),
    ]
    out = arrange.lists_from_items(regions, lines)
    assert [(r.label, r.box_pt) for r in out] == [
        ("text", (50, 100, 400, 110)),
        ("list", (50, 130, 400, 180)),  # two items, a paragraph indented under one, a nested item
        ("text", (50, 200, 400, 210)),  # not indented: the list has ended
        ("text", (50, 300, 400, 310)),
    ]
    assert out[1].score == 0.9 and out[1].box_px == (100, 260, 800, 360)
    # Far apart, or with something between them, items stay two lists.
    apart = [region("text", (50, 130, 400, 140)), region("text", (50, 400, 400, 410))]
    far = [line(50, 130, 400, 140, "1. one"), line(50, 400, 400, 410, "2. two")]
    assert [r.box_pt for r in arrange.lists_from_items(apart, far)] == [r.box_pt for r in apart]
    between = [regions[1], region("figure", (300, 138, 500, 150)), regions[2]]
    assert len(arrange.lists_from_items(between, lines)) == 3
    # No lines (a scan): nothing changes.
    assert arrange.lists_from_items(regions, []) == regions
    # A paragraph and the list it introduces, detected as one text region, are split before the first item.
    intro = [
        line(50, 400, 400, 410, "This package offers three options:"),
        line(60, 412, 400, 422, "\u2022 draft, for a quick look;"),
        line(60, 424, 400, 434, "\u2022 final, for print."),
    ]
    both = region("text", (50, 400, 400, 434), mask=(SQUARE,))
    split = arrange.lists_from_items([both], intro)
    assert [(r.label, r.box_pt, r.mask_pt) for r in split] == [
        ("text", (50, 400, 400, 410), None),
        ("list", (60, 412, 400, 434), None),
    ]
    assert split[1].box_px == (120, 824, 800, 868) and split[1].score == both.score
    one_item = [*intro[:2], line(50, 424, 400, 434, "and a closing line.")]
    assert arrange.lists_from_items([both], one_item) == [both]  # one item start is not enough
    assert len(arrange.lists_from_items([both], one_item, min_items=1)) == 2
    assert arrange.lists_from_items([both], intro[:1], min_items=0) == [both]  # no item start at all


def test_a_dash_wrapped_to_a_line_start_starts_no_item() -> None:
    """A justified paragraph may wrap a sentence's dash to the start of a line: under a full line starting
    at its left edge (a margin note beside it does not count), the dash starts no item; under a short line,
    or a line introducing a list (a colon), it does."""
    wrapped = [
        line(10, 100, 40, 110, "\\mymacro"),  # a margin note beside the paragraph
        line(50, 100, 300, 110, "as the words go on and on to the end of the"),
        line(310, 100, 400, 110, "column"),  # a wide justified space split the line in two
        line(50, 112, 400, 122, "\u2013 not at all! The sentence goes on after its dash."),
        line(50, 124, 400, 134, "\u2013 and again, with another dash at the start."),
    ]
    fragment = region("text", (50, 112, 400, 134))  # the model cut the paragraph at the dash
    assert arrange.lists_from_items([fragment], wrapped) == [fragment]
    assert arrange.wrapped_dash(wrapped[3], wrapped, 400)
    short = [wrapped[1], *wrapped[3:]]  # the line above stops at 300: the dashes start items
    assert [r.label for r in arrange.lists_from_items([fragment], short)] == ["list"]
    colon = [line(50, 100, 400, 110, "The options are these ones, and there are two of them:"), *wrapped[3:]]
    assert [r.label for r in arrange.lists_from_items([fragment], colon)] == ["list"]


# headings and left-over lines


def test_the_body_size_carries_the_most_characters() -> None:
    lines = [
        line(0, 0, 100, 10, "a" * 40, 10.2),
        line(0, 20, 100, 30, "b" * 30, 12.0),
        line(0, 40, 9, 50, "c" * 20, 12),
    ]
    assert arrange.body_size(lines) == 12.0  # 50 characters at 12 pt, 40 at 10 (to half a point)
    assert arrange.body_size([line(0, 0, 100, 10, "no sizes")]) == 0.0
    code = TextLine((0, 60, 100, 70), "c" * 200, 9.0, 0.0, 1.0)
    assert arrange.body_size([*lines, code]) == 12.0  # code is no body text
    assert arrange.body_size([code]) == 9.0  # unless there is nothing else


def test_headings_are_one_or_two_short_bold_or_larger_lines_and_no_caption() -> None:
    body = 10.0
    bold, large, plain = (
        line(0, 0, 100, 10, "Results", 10, 1.0),
        line(0, 0, 100, 12, "Intro", 12),
        line(0, 0, 9, 9),
    )
    assert arrange.is_heading(bold, body) and arrange.is_heading(large, body)
    assert not arrange.is_heading(plain, body) and not arrange.is_heading(line(0, 0, 9, 9, "x", 11.0), body)
    assert not arrange.is_heading(bold, 0.0)  # no sizes: nothing is a heading
    assert not arrange.is_heading(TextLine((0, 0, 100, 10), "def f():", 10, 1.0, 1.0), body)  # bold code
    assert arrange.heading_block([bold], body) and arrange.heading_block([bold, large], body)
    assert not arrange.heading_block([bold, bold, bold], body)  # three lines
    assert not arrange.heading_block([bold, plain], body)
    assert not arrange.heading_block([line(0, 0, 100, 10, "x" * 121, 10, 1.0)], body)  # too long
    assert not arrange.heading_block([line(0, 0, 100, 10, "Figure 3: a bold caption", 10, 1.0)], body)
    assert not arrange.heading_block([], body)


def test_text_regions_set_like_a_heading_become_titles() -> None:
    lines = [
        line(50, 100, 200, 112, "2 Method", 12, 1.0),
        line(50, 120, 400, 130, "A body line.", 10),
        line(50, 132, 400, 142, "Another body line.", 10),
        line(50, 160, 200, 170, "Table 1: Results", 10, 1.0),
    ]
    regions = [
        region("text", (50, 100, 200, 112)),
        region("text", (50, 120, 400, 142)),
        region("text", (50, 160, 200, 170)),
        region("figure", (50, 200, 400, 300)),
    ]
    out = arrange.titles_from_fonts(regions, lines)
    assert [r.label for r in out] == ["title", "text", "text", "figure"]
    assert out[0].box_pt == regions[0].box_pt and out[0].score == regions[0].score
    no_sizes = [TextLine(ln.box, ln.text) for ln in lines]
    assert arrange.titles_from_fonts(regions, no_sizes) == regions


def test_a_listings_line_numbers_join_it() -> None:
    """The numbers left of a detected listing (those of its blank lines too) grow it; a number far off, or
    beside no region, is left-over text as before."""
    code = [line(80, 100 + 12 * k, 300, 110 + 12 * k, f"\\def\\x{k}", 9) for k in (0, 1, 3)]
    numbers = [line(60, 102 + 12 * k, 68, 108 + 12 * k, str(10 + k), 5) for k in range(4)]
    stray = line(20, 300, 28, 306, "42", 5)
    listing = region("text", (80, 100, 300, 146))
    out = arrange.text_from_lines([listing], [*code, *numbers, stray])
    assert [(r.label, r.box_pt) for r in out] == [("text", (60, 100, 300, 146)), ("text", (20, 300, 28, 306))]
    assert out[0].box_px == (120, 200, 600, 292) and out[0].score == listing.score


def test_a_list_detected_over_a_heading_is_cut_at_it() -> None:
    lines = [
        line(50, 100, 400, 110, "\u2022 added a scale factor", 10),
        line(50, 112, 400, 122, "\u2022 simplified the code", 10),
        line(50, 140, 250, 152, "2.3 Changes in Version 1.2", 12, 1.0),
        line(50, 160, 400, 170, "\u2022 a new command", 10),
        line(50, 172, 400, 182, "\u2022 fixed a bug", 10),
        line(50, 220, 400, 230, "A body line.", 10),
        line(50, 232, 400, 242, "Another body line, with a bold run-in word.", 10),
    ]
    regions = [
        region("list", (50, 100, 400, 182), mask=(SQUARE,)),
        region("text", (50, 220, 400, 242)),
    ]
    out = arrange.titles_from_fonts(regions, lines)
    assert [(r.label, r.box_pt) for r in out] == [
        ("list", (50, 100, 400, 122)),
        ("title", (50, 140, 250, 152)),
        ("list", (50, 160, 400, 182)),
        ("text", (50, 220, 400, 242)),
    ]
    assert out[1].box_px == (100, 280, 500, 304) and out[1].mask_pt is None and out[1].score == 0.9
    # Rows set like a heading, but too many for one (a bold paragraph): the region stays whole.
    bold = [line(50, 250 + 12 * k, 400, 260 + 12 * k, "A bold body line.", 10, 1.0) for k in range(3)]
    whole = region("text", (50, 220, 400, 284))
    assert arrange.titles_from_fonts([whole], [*lines[5:], *bold]) == [whole]


def test_lines_no_region_holds_become_text_and_title_regions() -> None:
    lines = [
        line(50, 100, 400, 110, "A paragraph the model found.", 10),
        line(50, 140, 200, 152, "3 Results", 12, 1.0),  # missed: a heading
        line(50, 156, 400, 166, "missed body line one", 10),  # missed: right under the heading, but plain
        line(50, 167, 300, 177, "and two", 10),
        line(50, 200, 400, 210, "a line apart from the rest", 10),
        line(450, 156, 550, 166, "beside, in another column", 10),
    ]
    found = region("text", (50, 100, 400, 110))
    out = arrange.text_from_lines([found], lines)
    assert out[0] == found
    assert [(r.label, r.box_pt, r.score) for r in out[1:]] == [
        ("title", (50, 140, 200, 152), arrange.LEFTOVER_SCORE),
        ("text", (50, 156, 400, 177), arrange.LEFTOVER_SCORE),
        ("text", (450, 156, 550, 166), arrange.LEFTOVER_SCORE),
        ("text", (50, 200, 400, 210), arrange.LEFTOVER_SCORE),
    ]
    assert out[1].box_px == (100, 280, 400, 304)  # at the pixel scale of the page's regions
    assert arrange.text_from_lines([], lines) == []  # no region: no pixel scale, nothing added
    bounded = arrange.text_from_lines([found], lines, max_blocks=2)  # the two with the most characters
    assert [r.box_pt for r in bounded[1:]] == [(50, 156, 400, 177), (50, 200, 400, 210)]
    assert arrange.text_from_lines([found], []) == [found]  # a scan


def test_arranging_keeps_missed_text_for_a_model_with_text_and_title_unless_the_request_is_stricter() -> None:
    words = words_of((50, 100, 400, 110), (50, 300, 400, 310), block=0)
    found = region("text", (50, 100, 400, 110))
    arranged = arrange.arrange_regions([found], words, page_width=W, page_height=H)
    assert [(r.label, r.box_pt) for r in arranged] == [
        ("text", (50, 100, 400, 110)),
        ("text", (50, 300, 400, 310)),
    ]
    for threshold in (0.0, 0.5):
        again = arrange.arrange_regions(
            [found], words, page_width=W, page_height=H, score_threshold=threshold
        )
        assert again == arranged
    strict = arrange.arrange_regions([found], words, page_width=W, page_height=H, score_threshold=0.6)
    assert [r.box_pt for r in strict] == [(50, 100, 400, 110)]  # a request above 0.5 leaves them out
    own = [region("chart", (50, 100, 400, 110))]
    assert arrange.arrange_regions(own, words, page_width=W, page_height=H, labels=("chart",)) == own
    # A page without detections gets its text, and its ruled tables, when the image's scale is given.
    assert arrange.arrange_regions([], words, page_width=W, page_height=H, tables=[(50, 500, 400, 600)]) == []
    alone = arrange.arrange_regions(
        [], words, page_width=W, page_height=H, tables=[(50, 500, 400, 600)], points_per_pixel=0.5
    )
    assert [(r.label, r.box_pt, r.box_px) for r in alone] == [
        ("text", (50, 100, 400, 110), (100, 200, 800, 220)),
        ("text", (50, 300, 400, 310), (100, 600, 800, 620)),
        ("table", (50, 500, 400, 600), (100, 1000, 800, 1200)),
    ]


# evaluation


def test_content_positions_and_order_tau() -> None:
    words = words_of((50, 100, 290, 110), block=0) + words_of((310, 100, 550, 110), block=1)
    left, right = region("text", (50, 95, 290, 115)), region("text", (310, 95, 550, 115))
    empty = region("figure", (0, 300, 10, 310))
    assert arrange.content_positions([right, empty, left], words) == [(1, 0, 0), None, (0, 0, 0)]
    assert arrange.order_tau([left, empty, right], words) == 1.0
    assert arrange.order_tau([right, left], words) == -1.0
    assert arrange.order_tau([left, empty], words) is None  # one region with words


def test_kendall_tau() -> None:
    assert arrange.kendall_tau([0, 1, 2, 3], [0, 1, 2, 3]) == pytest.approx(1.0)
    assert arrange.kendall_tau([0, 1, 2, 3], [3, 2, 1, 0]) == pytest.approx(-1.0)
    assert arrange.kendall_tau([0, 1, 2, 3], [0, 2, 1, 3]) == pytest.approx(2 / 3)  # 5 of 6 pairs agree
    assert arrange.kendall_tau([0], [0]) is None
    assert arrange.kendall_tau([0, 1], [5, 5]) is None  # undefined when one ranking is all ties
    with pytest.raises(InvalidInput, match="length"):
        arrange.kendall_tau([0, 1], [0, 1, 2])
