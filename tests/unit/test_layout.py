from __future__ import annotations

import numpy as np
import pytest

from serve_app.core.errors import InvalidInput
from serve_app.core.layout import LABELS, check_page_image, mask_polygons, to_regions


def test_to_regions_filters_orders_and_converts() -> None:
    boxes = np.array(
        [[10, 200, 110, 260], [10, 20, 300, 40], [5, 5, 6, 6], [50, 100, 700, 150]], dtype=np.float32
    )
    scores = np.array([0.9, 0.8, 0.3, 0.7])
    classes = np.array([4, 1, 0, 0])
    regions = to_regions(
        boxes, scores, classes, image_size=(400, 600), points_per_pixel=0.5, score_threshold=0.5
    )
    assert [r.label for r in regions] == ["title", "text", "figure"]  # top to bottom; low score dropped
    text = regions[1]
    assert text.box_px == (50.0, 100.0, 600.0, 150.0)  # clipped to the image width
    assert text.box_pt == (25.0, 50.0, 300.0, 75.0)
    assert text.score == pytest.approx(0.7)


def test_max_detections_keeps_best_scores() -> None:
    boxes = np.array([[0, i * 10, 10, i * 10 + 5] for i in range(5)], dtype=np.float32)
    regions = to_regions(
        boxes,
        np.array([0.6, 0.9, 0.7, 0.95, 0.8]),
        np.zeros(5),
        image_size=(100, 100),
        points_per_pixel=1.0,
        max_detections=2,
    )
    assert sorted(r.score for r in regions) == pytest.approx([0.9, 0.95])


def test_empty_and_degenerate_detections() -> None:
    assert (
        to_regions(np.zeros((0, 4)), np.zeros(0), np.zeros(0), image_size=(10, 10), points_per_pixel=1) == []
    )
    outside = to_regions(
        np.array([[20, 20, 30, 30]]), np.array([0.9]), np.array([0]), image_size=(10, 10), points_per_pixel=1
    )
    assert outside == []
    with pytest.raises(InvalidInput, match="disagree"):
        to_regions(np.zeros((2, 4)), np.zeros(1), np.zeros(2), image_size=(10, 10), points_per_pixel=1)


def test_labels_are_publaynet_order() -> None:
    assert LABELS == ("text", "title", "list", "table", "figure")


def test_check_page_image() -> None:
    check_page_image(np.zeros((4, 5, 3), dtype=np.uint8))
    for bad in (
        np.zeros((4, 5), np.uint8),
        np.zeros((4, 5, 3), np.float32),
        np.zeros((0, 5, 3), np.uint8),
        b"png",
    ):
        with pytest.raises(InvalidInput, match="H x W x 3 uint8"):
            check_page_image(bad)


def test_regions_carry_the_models_own_labels_and_mask_outlines() -> None:
    masks = np.zeros((2, 40, 50), dtype=bool)
    masks[0, 10:20, 5:15] = True  # pixels x 5..14, y 10..19
    regions = to_regions(
        np.array([[4.0, 9.0, 16.0, 21.0], [30.0, 5.0, 45.0, 35.0]]),
        np.array([0.9, 0.8]),
        np.array([1, 0]),
        image_size=(40, 50),
        points_per_pixel=0.5,
        labels=("stamp", "signature"),
        masks=masks,
    )
    assert [r.label for r in regions] == ["stamp", "signature"]  # top to bottom
    signature = regions[1]
    assert signature.mask_px is not None and len(signature.mask_px) == 1
    xs = [x for x, _ in signature.mask_px[0]]
    ys = [y for _, y in signature.mask_px[0]]
    assert (min(xs), max(xs), min(ys), max(ys)) == (5.0, 15.0, 10.0, 20.0)  # pixel edges
    assert signature.mask_pt == tuple(tuple((x / 2, y / 2) for x, y in p) for p in signature.mask_px)
    assert regions[0].mask_px == ()  # an empty mask: no outline
    with_unknown_class = to_regions(
        np.array([[1.0, 1.0, 5.0, 5.0]]), np.array([0.9]), np.array([2]), image_size=(40, 50),
        points_per_pixel=1.0, labels=("stamp", "signature"),
    )  # fmt: skip
    assert with_unknown_class == []


def test_mask_polygons_skip_holes_and_cap_the_vertices() -> None:
    ring = np.ones((60, 60), dtype=bool)
    ring[20:40, 20:40] = False
    (outline,) = mask_polygons(ring, max_points=16)  # the hole is not an outline of its own
    assert len(outline) == 16
    assert {x for x, _ in outline} <= {v / 2 for v in range(0, 121)}
    assert mask_polygons(np.zeros((5, 5), dtype=bool)) == ()
