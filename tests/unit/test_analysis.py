"""Pure logic of serve_app.core.analysis: query options, page results, clustering glue."""

from __future__ import annotations

import pytest

from serve_app.core import analysis
from serve_app.core.analysis import AnalyzeOptions, PageResult, RegionRef, RegionResult
from serve_app.core.clustering import Cluster, Clustering
from serve_app.core.errors import InvalidInput
from serve_app.core.layout import Region
from serve_app.core.pdf import PageInfo, Word

# parse_options


def test_parse_options_defaults() -> None:
    options = analysis.parse_options({})
    assert options == AnalyzeOptions()
    assert (options.dpi, options.score_threshold, options.cluster) == (72, None, False)


def test_parse_options_parses_numbers_from_strings() -> None:
    options = analysis.parse_options({"dpi": "150", "score_threshold": "0.25"})
    assert options.dpi == 150
    assert isinstance(options.dpi, int)
    assert options.score_threshold == pytest.approx(0.25)
    assert options.cluster is False


@pytest.mark.parametrize("dpi", ["36", "300"])
def test_parse_options_accepts_dpi_bounds(dpi: str) -> None:
    assert analysis.parse_options({"dpi": dpi}).dpi == int(dpi)


@pytest.mark.parametrize("threshold", ["0", "1", "1.0"])
def test_parse_options_accepts_threshold_bounds(threshold: str) -> None:
    assert analysis.parse_options({"score_threshold": threshold}).score_threshold == float(threshold)


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "yes", "Yes"])
def test_parse_options_cluster_true(value: str) -> None:
    assert analysis.parse_options({"cluster": value}).cluster is True


@pytest.mark.parametrize("value", ["false", "False", "0", "no", "NO"])
def test_parse_options_cluster_false(value: str) -> None:
    assert analysis.parse_options({"cluster": value}).cluster is False


def test_parse_options_unknown_parameter_lists_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        analysis.parse_options({"dpi": "72", "colour": "red"})
    message = info.value.message
    assert "'colour'" in message
    assert "unknown query parameter" in message
    for known in ("dpi", "score_threshold", "cluster"):
        assert known in message


@pytest.mark.parametrize("value", ["abc", "", "7.5", "1e2"])
def test_parse_options_non_numeric_dpi(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        analysis.parse_options({"dpi": value})
    assert "is not a number" in info.value.message
    assert f"dpi={value!r}" in info.value.message


def test_parse_options_non_numeric_threshold() -> None:
    with pytest.raises(InvalidInput, match=r"score_threshold='high' is not a number"):
        analysis.parse_options({"score_threshold": "high"})


@pytest.mark.parametrize(("value", "fragment"), [("35", "greater than or equal to 36"), ("301", "300")])
def test_parse_options_dpi_out_of_range(value: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        analysis.parse_options({"dpi": value})
    message = info.value.message
    assert message.startswith("invalid query parameters:")
    assert "dpi" in message
    assert fragment in message


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_parse_options_threshold_out_of_range(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        analysis.parse_options({"score_threshold": value})
    assert "invalid query parameters:" in info.value.message
    assert "score_threshold" in info.value.message


def test_parse_options_cluster_maybe() -> None:
    with pytest.raises(InvalidInput) as info:
        analysis.parse_options({"cluster": "maybe"})
    assert "cluster='maybe'" in info.value.message
    assert "true or false" in info.value.message


# page results


def word(x0: float, y0: float, x1: float, y1: float, text: str, line: int, index: int) -> Word:
    return Word(x0, y0, x1, y1, text, block=0, line=line, index=index)


def test_page_result_attaches_words_and_rounds() -> None:
    info = PageInfo(number=3, width_pt=612.0, height_pt=792.0)
    words = [
        # Inside the title box, given out of reading order.
        word(60, 12, 90, 22, "World", line=0, index=1),
        word(20, 12, 50, 22, "Hello", line=0, index=0),
        # Inside the body box, two lines.
        word(20, 110, 60, 120, "second", line=2, index=0),
        word(20, 100, 50, 108, "first", line=1, index=0),
        # Outside every box.
        word(500, 700, 540, 710, "footer", line=3, index=0),
    ]
    regions = [
        Region(label="title", score=0.987654, box_px=(0, 0, 1, 1), box_pt=(10.004, 10.006, 100.123, 30.129)),
        Region(label="text", score=0.5, box_px=(0, 0, 1, 1), box_pt=(10.0, 95.0, 200.0, 130.0)),
        Region(label="figure", score=0.71234, box_px=(0, 0, 1, 1), box_pt=(300.0, 300.0, 400.0, 400.0)),
    ]
    result = analysis.page_result(info, regions, words, arrange=False)  # boxes as given

    assert (result.number, result.width, result.height) == (3, 612.0, 792.0)
    assert [r.label for r in result.regions] == ["title", "text", "figure"]
    assert [r.order for r in result.regions] == [0, 1, 2]
    title, body, figure = result.regions
    assert title.text == "Hello World"
    assert body.text == "first\nsecond"
    assert figure.text == ""
    assert title.box == (10.0, 10.01, 100.12, 30.13)
    assert title.score == 0.9877
    assert figure.score == 0.7123
    assert body.box == (10.0, 95.0, 200.0, 130.0)


def test_page_result_arranges_regions_on_the_words_in_reading_order() -> None:
    info = PageInfo(number=1, width_pt=600.0, height_pt=800.0)
    words = [
        Word(50, 100, 280, 110, "left", block=0, line=0, index=0),
        Word(50, 112, 200, 122, "column", block=0, line=1, index=0),
        Word(310, 100, 550, 110, "right", block=1, line=0, index=0),
        Word(290, 770, 310, 780, "7", block=2, line=0, index=0),  # the page number
    ]
    mask = (((300.0, 90.0), (560.0, 90.0), (560.0, 130.0)),)
    regions = [
        Region(label="text", score=0.8, box_px=(600, 180, 1120, 260), box_pt=(300, 90, 560, 130),
               mask_px=mask, mask_pt=mask),
        Region(label="text", score=0.9, box_px=(80, 180, 500, 260), box_pt=(40, 90, 250, 130)),
        Region(label="text", score=0.7, box_px=(560, 1530, 640, 1570), box_pt=(280, 765, 320, 785)),
        Region(label="title", score=0.7, box_px=(0, 600, 200, 640), box_pt=(0, 300, 100, 320)),
    ]  # fmt: skip
    result = analysis.page_result(info, regions, words)

    assert [(r.order, r.text) for r in result.regions] == [(0, "left\ncolumn"), (1, "right")]
    left, right = result.regions
    assert left.box == (50.0, 100.0, 280.0, 122.0)  # snapped to its lines; the page number and the
    assert right.box == (310.0, 100.0, 550.0, 110.0)  # empty title are gone
    assert right.mask == [[(300.0, 90.0), (560.0, 90.0), (560.0, 130.0)]]  # the model's outline, kept


def test_pages_stored_before_regions_had_an_order_read_back_numbered() -> None:
    stored = {
        "number": 1,
        "width": 100,
        "height": 100,
        "regions": [
            {"label": "text", "score": 0.9, "box": [0, 0, 10, 10], "text": "a", "mask": None},
            {"label": "title", "score": 0.8, "box": [0, 20, 10, 30], "text": "b", "mask": None},
        ],
    }
    page = PageResult.model_validate(stored)
    assert [(r.order, r.label) for r in page.regions] == [(0, "text"), (1, "title")]
    assert PageResult.model_validate_json(page.model_dump_json()) == page


def test_page_result_without_regions_or_words() -> None:
    info = PageInfo(number=1, width_pt=100.5, height_pt=200.25)
    assert analysis.page_result(info, [], []) == PageResult(number=1, width=100.5, height=200.25, regions=[])
    region = Region(label="text", score=0.9, box_px=(0, 0, 1, 1), box_pt=(0, 0, 50, 50))
    assert analysis.page_result(info, [region], []).regions[0].text == ""


def test_page_without_detections_gets_its_text_at_the_image_scale() -> None:
    info = PageInfo(number=1, width_pt=612, height_pt=792)
    words = [Word(72, 300, 200, 312, "nothing", block=0, line=0, index=0), Word(72, 314, 180, 326, "detected",
             block=0, line=1, index=0)]  # fmt: skip
    assert analysis.page_result(info, [], words).regions == []  # no scale: no regions to make
    (found,) = analysis.page_result(info, [], words, points_per_pixel=0.5).regions
    assert (found.label, found.text, found.box) == ("text", "nothing\ndetected", (72.0, 300.0, 200.0, 326.0))


def region(text: str, box: tuple[float, float, float, float] = (0, 0, 10, 10)) -> RegionResult:
    return RegionResult(order=0, label="text", score=0.9, box=box, text=text)


def test_region_texts_skips_collapses_truncates() -> None:
    pages = [
        PageResult(
            number=1,
            width=100,
            height=100,
            regions=[region("  Hello \n  world  "), region(""), region(" \n\t "), region("abcdefghij")],
        ),
        PageResult(number=2, width=100, height=100, regions=[]),
        PageResult(number=3, width=100, height=100, regions=[region("   "), region("x\ty")]),
    ]
    refs = analysis.region_texts(pages, max_chars=8)
    assert refs == [
        RegionRef(page=1, region=0, text="Hello wo"),
        RegionRef(page=1, region=3, text="abcdefgh"),
        RegionRef(page=3, region=1, text="x y"),
    ]
    wide = analysis.region_texts(pages, max_chars=1000)
    assert [r.text for r in wide] == ["Hello world", "abcdefghij", "x y"]
    assert analysis.region_texts([], max_chars=10) == []


def test_region_clusters_maps_rows_back_to_regions() -> None:
    refs = [
        RegionRef(page=1, region=0, text="a"),
        RegionRef(page=1, region=2, text="b"),
        RegionRef(page=2, region=0, text="c"),
        RegionRef(page=2, region=1, text="d"),
        RegionRef(page=3, region=4, text="e"),
        RegionRef(page=4, region=0, text="f"),
    ]
    clustering = Clustering(
        clusters=(Cluster(members=(0, 2, 4), representative=2), Cluster(members=(1, 5), representative=5)),
        unclustered=(3,),
    )
    result = analysis.region_clusters(refs, clustering)

    assert [c.size for c in result.clusters] == [3, 2]
    first, second = result.clusters
    assert first.representative == refs[2]
    assert first.members == [refs[0], refs[2], refs[4]]
    assert second.representative == RegionRef(page=4, region=0, text="f")
    assert [(m.page, m.region) for m in second.members] == [(1, 2), (4, 0)]
    assert result.unclustered == [RegionRef(page=2, region=1, text="d")]


def test_region_clusters_empty() -> None:
    refs = [RegionRef(page=1, region=0, text="only")]
    result = analysis.region_clusters(refs, Clustering(clusters=(), unclustered=(0,)))
    assert result.clusters == []
    assert result.unclustered == refs
