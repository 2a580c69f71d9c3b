"""The user's own detectron2 models, served by name from S3 next to the shipped one (real HTTP, real
moto S3, real handles): a model trained by the stock DefaultTrainer with two labels of its own, a Mask
R-CNN with masks, a RetinaNet, and a model whose weights do not fit its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pymupdf
import pytest
import ray

from serve_app import client
from serve_app.core.layout import LABELS
from tests import pdfs
from tests.app.helpers import PDF, assert_error, wait_for_job
from tests.d2_models import LABELS as SHAPE_LABELS
from tests.d2_models import pdf_with_shapes
from tools.launch import APP_NAME


@pytest.fixture(scope="module")
def listed(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/v1/models")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_name(listed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in listed["models"]}


def detect(http: httpx.Client, pdf: bytes, **params: Any) -> dict[str, Any]:
    response = http.post("/v1/detect", content=pdf, headers=PDF, params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_models_are_listed_with_labels_architecture_and_digest(
    listed: dict[str, Any], user_models: dict[str, str]
) -> None:
    models = by_name(listed)
    assert listed["default"] == "layout"
    assert set(models) == {"layout", *user_models}
    assert models["layout"]["default"] and models["layout"]["labels"] == list(LABELS)
    assert models["layout"]["architecture"] == "GeneralizedRCNN" and not models["layout"]["masks"]
    assert models["shapes"]["labels"] == list(SHAPE_LABELS) and not models["shapes"]["default"]
    assert models["shapes"]["checkpoint"] == "model_final.pth"
    assert models["masks"]["masks"] and models["masks"]["architecture"] == "GeneralizedRCNN"
    assert models["retina"]["architecture"] == "RetinaNet" and not models["retina"]["masks"]
    assert models["shapes"]["input_min_size"] == 128 and models["layout"]["input_min_size"] == 448
    digests = [m["digest"] for m in models.values()]
    assert all(len(d) == 64 for d in digests) and len(set(digests)) == len(digests)


def test_a_user_model_answers_with_its_own_labels_and_the_default_still_answers(
    http: httpx.Client, listed: dict[str, Any]
) -> None:
    pdf, _ = pdf_with_shapes()
    # A few iterations do not make a confident model: keep every region, whatever its score.
    mine = detect(http, pdf, model="shapes", score_threshold=0.0)
    assert mine["model"]["name"] == "shapes"
    assert mine["model"]["digest"] == by_name(listed)["shapes"]["digest"]
    assert mine["model"]["labels"] == list(SHAPE_LABELS)
    labels = {r["label"] for page in mine["pages"] for r in page["regions"]}
    assert labels and labels <= set(SHAPE_LABELS)

    default = detect(http, pdfs.text_pdf(1))
    assert default["model"]["name"] == "layout"
    assert default["model"]["digest"] == by_name(listed)["layout"]["digest"]
    found = [r["label"] for r in default["pages"][0]["regions"]]
    assert found and set(found) <= set(LABELS)


def test_mask_rcnn_masks_come_back_as_polygons_in_points(http: httpx.Client) -> None:
    pdf, _ = pdf_with_shapes()
    result = detect(http, pdf, model="masks", masks="true", score_threshold=0.0)
    page = result["pages"][0]
    regions = page["regions"]
    assert regions and all(r["label"] in SHAPE_LABELS for r in regions)
    with_masks = [r for r in regions if r["mask"]]
    assert with_masks, "a Mask R-CNN returns masks when asked"
    for region in with_masks:
        x0, y0, x1, y1 = region["box"]
        for polygon in region["mask"]:
            assert len(polygon) >= 3
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            # The mask lies in its box (masks are pasted inside the box; one pixel of slack).
            assert x0 - 1.01 <= min(xs) and max(xs) <= x1 + 1.01
            assert y0 - 1.01 <= min(ys) and max(ys) <= y1 + 1.01
    without = detect(http, pdf, model="masks", score_threshold=0.0)
    assert all(r["mask"] is None for r in without["pages"][0]["regions"])


def test_retinanet_answers(http: httpx.Client) -> None:
    pdf, _ = pdf_with_shapes()
    result = detect(http, pdf, model="retina", score_threshold=0.0)
    assert result["model"]["name"] == "retina"
    labels = {r["label"] for r in result["pages"][0]["regions"]}
    assert labels and labels <= set(SHAPE_LABELS)


def test_a_job_runs_on_the_model_it_names_with_masks_drawn(http: httpx.Client) -> None:
    pdf, _ = pdf_with_shapes()
    response = http.post(
        "/v1/jobs", content=pdf, headers=PDF, params={"model": "masks", "masks": "true", "score_threshold": 0}
    )
    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["model"]["name"] == "masks"
    state = wait_for_job(http, submitted["id"])
    assert state["status"] == "succeeded", state
    assert state["model"] == submitted["model"]
    result = http.get(f"/v1/jobs/{submitted['id']}/result").json()
    assert result["model"] == submitted["model"]
    assert any(r["mask"] for r in result["pages"][0]["regions"])
    png = http.get(f"/v1/jobs/{submitted['id']}/pages/1.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    pix = pymupdf.Pixmap(png.content)
    assert pix.width == 612  # the page at 72 dpi, regions and mask outlines drawn, legend below


def test_unknown_model_is_a_422_that_lists_the_known_ones(http: httpx.Client) -> None:
    pdf, _ = pdf_with_shapes()
    for route in ("/v1/detect", "/v1/jobs"):
        response = http.post(route, content=pdf, headers=PDF, params={"model": "nope"})
        assert_error(response, 422, "invalid_input", "unknown model 'nope'; known models: layout, masks")
    bad = http.post("/v1/detect", content=pdf, headers=PDF, params={"model": "../etc"})
    assert_error(bad, 422, "invalid_input", "model")


def test_a_model_whose_weights_do_not_fit_is_a_503_and_the_others_keep_serving(http: httpx.Client) -> None:
    pdf, _ = pdf_with_shapes()
    response = http.post("/v1/detect", content=pdf, headers=PDF, params={"model": "mismatched"})
    assert_error(response, 503, "model_unavailable", "does not fit the config")
    assert "model 'mismatched' cannot be loaded" in response.json()["error"]["message"]
    assert detect(http, pdf, model="shapes")["model"]["name"] == "shapes"
    assert detect(http, pdfs.text_pdf(1))["model"]["name"] == "layout"


def test_handles_take_a_model_by_name(serve_url: str, listed: dict[str, Any]) -> None:
    pdf, _ = pdf_with_shapes()
    doc = pymupdf.open(stream=pdf)
    pix = doc[0].get_pixmap(dpi=72)
    image = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, 3)
    pages = client.detect_pages([ray.put(image)], model="shapes", score_threshold=0.0, app_name=APP_NAME)
    assert pages[0] and {r.label for r in pages[0]} <= set(SHAPE_LABELS)
    result = client.analyze_pdf(pdf, model="retina", score_threshold=0.0, app_name=APP_NAME)
    assert result.model.name == "retina"
    assert client.models(app_name=APP_NAME).model_dump() == listed


def test_s3_models_are_fetched_once_into_the_node_cache_by_digest(
    http: httpx.Client, listed: dict[str, Any], model_cache: Path
) -> None:
    # Every S3 model was fetched when the Detector started; the cache holds one directory per digest.
    digests = {m["digest"] for m in listed["models"] if m["name"] != "layout"}
    cached = {p.name for p in model_cache.iterdir() if len(p.name) == 64}
    assert cached == digests
    assert len(list((model_cache / "index").iterdir())) == len(digests)
    for digest in digests:
        names = sorted(p.name for p in (model_cache / digest).iterdir())
        assert names == ["config.yaml", "labels.json", "model.pth"]  # never metrics or events files
