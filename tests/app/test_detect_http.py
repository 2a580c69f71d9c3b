"""POST /v1/detect: a PDF in, every page's regions and their text out, over real HTTP."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pymupdf
import pytest
from ray import serve

from serve_app.core.layout import LABELS
from serve_app.training.metrics import matched_fraction
from serve_app.training.synth import SyntheticDocument, generate_document
from tests import pdfs
from tests.app.helpers import PDF
from tools.launch import APP_NAME

SEED = 424_242  # not a training or evaluation seed


@pytest.fixture(scope="module")
def document() -> SyntheticDocument:
    return generate_document(seed=SEED, num_pages=2, dpi=72)


@pytest.fixture(scope="module")
def detected(http: httpx.Client, document: SyntheticDocument) -> dict[str, Any]:
    response = http.post("/v1/detect", content=document.pdf, headers=PDF)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def test_every_page_comes_back_with_its_size_and_regions(
    detected: dict[str, Any], document: SyntheticDocument
) -> None:
    assert detected["page_count"] == 2 and detected["clusters"] is None
    truth, found = [], []
    for number, (page, synthetic) in enumerate(zip(detected["pages"], document.pages, strict=True), 1):
        assert page["number"] == number
        assert page["width"] == pytest.approx(synthetic.width_pt)
        assert page["height"] == pytest.approx(synthetic.height_pt)
        for region in page["regions"]:
            assert region["label"] in LABELS and 0.5 <= region["score"] <= 1
            x0, y0, x1, y1 = region["box"]
            assert 0 <= x0 < x1 <= page["width"] + 0.01 and 0 <= y0 < y1 <= page["height"] + 0.01
        shift = number * 10_000.0  # keep pages apart when matching
        truth += [(r.label, (r.bbox_pt[0], r.bbox_pt[1] + shift, r.bbox_pt[2], r.bbox_pt[3] + shift))
                  for r in synthetic.regions]  # fmt: skip
        found += [(r["label"], (r["box"][0], r["box"][1] + shift, r["box"][2], r["box"][3] + shift))
                  for r in page["regions"]]  # fmt: skip
    assert matched_fraction(truth, found, iou_threshold=0.5) >= 0.9


def test_region_text_comes_from_the_pdf_text_layer(
    detected: dict[str, Any], document: SyntheticDocument
) -> None:
    with pymupdf.open(stream=document.pdf, filetype="pdf") as doc:
        page_words = [set(words(page.get_text())) for page in doc]
    for page, vocabulary in zip(detected["pages"], page_words, strict=True):
        text_regions = [r for r in page["regions"] if r["label"] in ("text", "title", "list")]
        assert text_regions and all(r["text"].strip() for r in text_regions)
        found = {w for r in page["regions"] for w in words(r["text"])}
        assert found <= vocabulary  # every word returned is on that page
        assert len(found) >= 0.5 * len(vocabulary)  # and most of the page's words are in some region


def test_multipart_upload_gives_the_same_answer(
    http: httpx.Client, document: SyntheticDocument, detected: dict[str, Any]
) -> None:
    response = http.post("/v1/detect", files={"file": ("paper.pdf", document.pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    assert response.json() == detected


def test_score_threshold_and_cluster_options(http: httpx.Client, document: SyntheticDocument) -> None:
    response = http.post(
        "/v1/detect?score_threshold=0.95&cluster=true&dpi=96", content=document.pdf, headers=PDF
    )
    assert response.status_code == 200, response.text
    result = response.json()
    regions = [(p["number"], i, r) for p in result["pages"] for i, r in enumerate(p["regions"])]
    assert regions and all(r["score"] >= 0.95 for _, _, r in regions)
    clusters = result["clusters"]
    members = [m for c in clusters["clusters"] for m in c["members"]] + clusters["unclustered"]
    with_text = {(n, i) for n, i, r in regions if r["text"].strip()}
    assert sorted((m["page"], m["region"]) for m in members) == sorted(with_text)  # each exactly once
    for cluster in clusters["clusters"]:
        assert cluster["size"] == len(cluster["members"]) and cluster["representative"] in cluster["members"]


def test_a_scanned_page_has_regions_without_text(http: httpx.Client) -> None:
    response = http.post("/v1/detect?score_threshold=0", content=pdfs.scanned_pdf(), headers=PDF)
    assert response.status_code == 200, response.text
    (page,) = response.json()["pages"]
    assert page["width"] == pdfs.PAGE_WIDTH and all(r["text"] == "" for r in page["regions"])


def test_text_pdf_words_land_in_regions(http: httpx.Client) -> None:
    response = http.post("/v1/detect?score_threshold=0.3", content=pdfs.text_pdf(2), headers=PDF)
    assert response.status_code == 200, response.text
    for number, page in enumerate(response.json()["pages"], 1):
        text = " ".join(r["text"] for r in page["regions"])
        assert f"page {number} line" in text


def test_concurrent_uploads_share_the_page_bound_and_all_get_their_answer(http: httpx.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    runner = serve.get_deployment_handle("JobRunner", app_name=APP_NAME)
    bound = runner.ready.remote().result(timeout_s=30)["max_pages_in_flight"]

    documents = [pdfs.text_pdf(n) for n in (1, 2, 3, 2, 1, 3)]  # 12 pages, more than 4 slots

    def detect(pdf: bytes) -> int:
        # What does not fit now is refused at once (503 + Retry-After); a client that waits as told and
        # sends again gets its answer.
        for _ in range(120):
            response = http.post("/v1/detect?score_threshold=0.3", content=pdf, headers=PDF)
            if response.status_code != 503:
                break
            assert response.json()["error"]["code"] == "unavailable"
            time.sleep(float(response.headers["retry-after"]))
        assert response.status_code == 200, response.text
        return int(response.json()["page_count"])

    with ThreadPoolExecutor(max_workers=len(documents)) as pool:
        assert list(pool.map(detect, documents)) == [1, 2, 3, 2, 1, 3]
    # All synchronous analyses together never had more pages alive than the one shared bound.
    peak = runner.ready.remote().result(timeout_s=30)["sync_pages_in_flight_peak"]
    assert 1 <= peak <= bound
