from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serve_app.core.annotate import (
    LABEL_COLOURS,
    LEGEND_ROW_HEIGHT,
    draw_regions,
    label_colours,
    legend_height,
)
from serve_app.core.errors import InvalidInput
from serve_app.core.layout import LABELS


def page(height: int = 300, width: int = 400) -> np.ndarray:
    return np.full((height, width, 3), 255, dtype=np.uint8)


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        return np.asarray(img)


def test_every_label_has_its_own_colour() -> None:
    assert set(LABEL_COLOURS) == set(LABELS)
    assert len(set(LABEL_COLOURS.values())) == len(LABELS)


def test_draw_regions_outlines_each_box_in_its_label_colour() -> None:
    image = page()
    regions = [
        ("title", 0.91, (40.0, 30.0, 360.0, 70.0)),
        ("table", 0.5, (40.0, 120.0, 200.0, 280.0)),
        ("figure", 0.77, (220.4, 119.6, 380.0, 280.0)),
    ]
    out = decode(draw_regions(image, regions))
    for label, _, (x0, y0, x1, y1) in regions:
        colour = list(LABEL_COLOURS[label])
        mid_x, mid_y = round((x0 + x1) / 2), round((y0 + y1) / 2)
        assert out[mid_y, round(x0)].tolist() == colour  # left edge
        assert out[mid_y, round(x1)].tolist() == colour  # right edge
        assert out[round(y1), mid_x].tolist() == colour  # bottom edge
        assert out[mid_y, mid_x].tolist() == [255, 255, 255]  # the inside stays clear
    # The "label score" tag sits on a filled patch of the label colour just above the box.
    tag = out[10:30, 40:80].reshape(-1, 3)
    assert (tag == LABEL_COLOURS["title"]).all(axis=1).sum() > 100


def test_draw_regions_puts_the_tag_inside_a_box_at_the_top_of_the_page() -> None:
    out = decode(draw_regions(page(), [("list", 0.6, (10.0, 0.0, 200.0, 100.0))]))
    patch = out[3:15, 12:40].reshape(-1, 3)
    assert (patch == LABEL_COLOURS["list"]).all(axis=1).sum() > 100


def test_the_png_is_the_page_plus_a_legend_strip_listing_every_label() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
    out = decode(draw_regions(image, []))
    assert legend_height(400) == LEGEND_ROW_HEIGHT  # one row is enough at this width
    assert out.shape == (300 + legend_height(400), 400, 3)
    np.testing.assert_array_equal(out[:300], image)  # no regions: the page is untouched
    legend = out[300:].reshape(-1, 3)
    for colour in LABEL_COLOURS.values():
        assert (legend == colour).all(axis=1).sum() >= 100  # a swatch per label


def test_the_legend_wraps_onto_more_rows_on_a_narrow_page() -> None:
    narrow = legend_height(120)
    assert narrow > LEGEND_ROW_HEIGHT and narrow % LEGEND_ROW_HEIGHT == 0
    out = decode(draw_regions(page(width=120), []))
    assert out.shape == (300 + narrow, 120, 3)
    legend = out[300:].reshape(-1, 3)
    for colour in LABEL_COLOURS.values():
        assert (legend == colour).all(axis=1).any()


def test_draw_regions_leaves_the_input_array_alone() -> None:
    image = np.random.default_rng(1).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    before = image.copy()
    draw_regions(image, [("text", 0.99, (5.0, 5.0, 100.0, 100.0))])
    np.testing.assert_array_equal(image, before)


def test_draw_regions_accepts_a_box_on_the_page_edge() -> None:
    out = decode(draw_regions(page(100, 100), [("text", 0.8, (0.0, 0.0, 100.0, 100.0))]))
    assert out[50, 0].tolist() == list(LABEL_COLOURS["text"])


@pytest.mark.parametrize(
    ("image", "regions", "fragment"),
    [
        (page(), [("caption", 0.9, (0.0, 0.0, 1.0, 1.0))], "unknown region label 'caption'"),
        (page(), [("text", 0.9, (0.0, float("nan"), 1.0, 1.0))], "not a finite number"),
        (np.zeros((10, 10), dtype=np.uint8), [], "H x W x 3 uint8"),
    ],
)
def test_draw_regions_rejects_bad_input(
    image: np.ndarray, regions: list[tuple[str, float, tuple[float, float, float, float]]], fragment: str
) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        draw_regions(image, regions)


def test_other_models_labels_get_colours_and_a_legend_and_masks_are_outlined() -> None:
    labels = ("stamp", "signature", "title")
    colours = label_colours(labels)
    assert colours["title"] == LABEL_COLOURS["title"]  # the shipped labels keep theirs
    assert len(set(colours.values())) == 3
    # A diamond-shaped mask inside a large box: its outline is drawn inside, away from the box edges.
    diamond = ((200.0, 100.0), (260.0, 160.0), (200.0, 220.0), (140.0, 160.0))
    out = decode(
        draw_regions(page(), [("stamp", 0.9, (100.0, 60.0, 300.0, 260.0), (diamond,))], labels=labels)
    )
    stamp = list(colours["stamp"])
    assert out[130, 170].tolist() == stamp or out[130, 171].tolist() == stamp  # on the edge (170, 130)
    assert out[160, 200].tolist() == [255, 255, 255]  # inside the diamond: not filled
    legend = out[300:]
    for colour in colours.values():
        assert (legend == colour).all(axis=2).any()
    with pytest.raises(InvalidInput, match="expected one of stamp, signature, title"):
        draw_regions(page(), [("text", 0.9, (1.0, 1.0, 20.0, 20.0))], labels=labels)
