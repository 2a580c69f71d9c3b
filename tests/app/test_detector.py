"""The Detector deployment with the shipped weights, on freshly generated pages, through real handles."""

from __future__ import annotations

import numpy as np
import pytest
import ray
from ray import serve

from serve_app.core.errors import InvalidInput
from serve_app.core.layout import Region
from serve_app.core.pdf import render_pdf
from serve_app.training.metrics import matched_fraction
from serve_app.training.synth import generate_document
from serve_app.types import PageImage
from tools.launch import APP_NAME

DPI = 72
SEED = 987_654  # not a training or evaluation seed


def test_detector_finds_the_ground_truth_boxes(serve_url: str) -> None:
    document = generate_document(seed=SEED, num_pages=6, dpi=DPI)
    images = render_pdf(document.pdf, dpi=DPI)
    detector = serve.get_deployment_handle("Detector", app_name=APP_NAME)
    refs = [ray.put(image) for image in images]  # the pixels go into the object store once
    responses = [detector.detect.remote(PageImage(image=ref, points_per_pixel=72 / DPI)) for ref in refs]
    truth: list[tuple[str, tuple[float, float, float, float]]] = []
    found: list[tuple[str, tuple[float, float, float, float]]] = []
    for page_index, (page, response) in enumerate(zip(document.pages, responses, strict=True)):
        regions = response.result(timeout_s=120)
        assert all(isinstance(r, Region) for r in regions)
        for region in regions:
            assert 0.5 <= region.score <= 1.0
            x0, y0, x1, y1 = region.box_pt
            assert 0 <= x0 < x1 <= page.width_pt + 1e-6 and 0 <= y0 < y1 <= page.height_pt + 1e-6
        # Offset boxes by page so that matching never pairs boxes of different pages.
        shift = page_index * 10_000.0
        truth += [
            (r.label, (r.bbox_pt[0], r.bbox_pt[1] + shift, r.bbox_pt[2], r.bbox_pt[3] + shift))
            for r in page.regions
        ]
        found += [
            (r.label, (r.box_pt[0], r.box_pt[1] + shift, r.box_pt[2], r.box_pt[3] + shift)) for r in regions
        ]
    recall = matched_fraction(truth, found, iou_threshold=0.5)
    assert len(truth) >= 20
    assert recall >= 0.9, f"only {recall:.1%} of {len(truth)} ground-truth boxes found with the right label"


def test_detector_rejects_a_non_image(serve_url: str) -> None:
    detector = serve.get_deployment_handle("Detector", app_name=APP_NAME)
    bad = PageImage(image=ray.put(np.zeros((10, 10), dtype=np.float32)))
    with pytest.raises(InvalidInput, match="H x W x 3 uint8"):
        detector.detect.remote(bad).result(timeout_s=60)
    # ...and keeps serving: a page sent in the same burst as a bad one still gets its regions.
    (image,) = render_pdf(generate_document(seed=SEED + 1, num_pages=1, dpi=DPI).pdf, dpi=DPI)
    good, bad_again = detector.detect.remote(PageImage(image=ray.put(image))), detector.detect.remote(bad)
    assert len(good.result(timeout_s=60)) > 0
    with pytest.raises(InvalidInput):
        bad_again.result(timeout_s=60)
