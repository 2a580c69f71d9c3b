"""The /v1/jobs family over real HTTP, with jobs stored in S3 (moto server) and in a local directory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from serve_app.training.synth import generate_document
from tests.app.conftest import BUCKET, PREFIX
from tests.app.helpers import assert_error, wait_for_job
from tests.s3_server import write_counts

SEED = 515_151  # not a training or evaluation seed


@pytest.fixture(scope="module")
def three_pages() -> bytes:
    return generate_document(seed=SEED, num_pages=3, dpi=72).pdf


def run_job(http: httpx.Client, pdf: bytes, query: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit, check the 202 answer, wait; return the final state and the result."""
    response = http.post(f"/v1/jobs{query}", files={"file": ("three.pdf", pdf, "application/pdf")})
    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["status"] == "queued" and submitted["pages_total"] == 3 and submitted["pages_done"] == 0
    assert submitted["filename"] == "three.pdf"
    assert response.headers["location"].endswith(f"/v1/jobs/{submitted['id']}")
    state = wait_for_job(http, submitted["id"])
    assert state["status"] == "succeeded", state
    assert state["pages_done"] == 3 and state["attempts"] == 1 and state["error"] is None
    assert state["created_at"] <= state["started_at"] <= state["finished_at"]
    result = http.get(f"/v1/jobs/{submitted['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "application/json"
    return state, result.json()


def check_result_and_pages(http: httpx.Client, job_id: str, result: dict[str, Any], *, dpi: int) -> None:
    assert result["page_count"] == 3 and [p["number"] for p in result["pages"]] == [1, 2, 3]
    assert all(p["regions"] for p in result["pages"])
    for page in result["pages"]:
        png = http.get(f"/v1/jobs/{job_id}/pages/{page['number']}.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(png.content))
        assert image.width == round(page["width"] * dpi / 72)  # the page, plus a legend strip below
        assert image.height > round(page["height"] * dpi / 72)
    assert_error(http.get(f"/v1/jobs/{job_id}/pages/4.png"), 404, "not_found", "pages 1 to 3")
    assert_error(http.get(f"/v1/jobs/{job_id}/pages/0.png"), 404, "not_found")


def test_job_in_s3(http: httpx.Client, three_pages: bytes, s3: Any) -> None:
    state, result = run_job(http, three_pages, "?cluster=true&dpi=100")
    check_result_and_pages(http, state["id"], result, dpi=100)
    assert result["clusters"]["clusters"]  # the regions' texts were embedded and grouped
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/jobs/{state['id']}/")
    keys = sorted(o["Key"].split(f"{state['id']}/", 1)[1] for o in listing["Contents"])
    assert keys == [
        "input.pdf",
        "pages.json",
        "pages/00001.json", "pages/00001.png", "pages/00002.json", "pages/00002.png",
        "pages/00003.json", "pages/00003.png",
        "result.json", "state.json",
    ]  # fmt: skip
    # A fresh job writes each artefact once; its state at submit, at start and at the end.
    written = write_counts(s3, BUCKET, f"{PREFIX}/jobs/{state['id']}/")
    assert {k.split(f"{state['id']}/", 1)[1]: n for k, n in written.items() if n != 1} == {"state.json": 3}
    active = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/active/")
    assert all(state["id"] not in o["Key"] for o in active.get("Contents", []))


def test_job_in_a_local_directory(http: httpx.Client, three_pages: bytes, local_store: Path) -> None:
    state, result = run_job(http, three_pages)
    check_result_and_pages(http, state["id"], result, dpi=72)
    assert result["clusters"] is None
    job_dir = local_store / "jobs" / state["id"]
    assert (job_dir / "input.pdf").read_bytes() == three_pages
    assert sorted(p.name for p in (job_dir / "pages").iterdir()) == [
        f"0000{n}.{ext}" for n in (1, 2, 3) for ext in ("json", "png")
    ]
    assert not (local_store / "active" / state["id"]).exists()


def test_unknown_jobs_are_404(http: httpx.Client) -> None:
    missing = "0" * 32
    for path in (f"/v1/jobs/{missing}", f"/v1/jobs/{missing}/result", f"/v1/jobs/{missing}/pages/1.png"):
        assert_error(http.get(path), 404, "not_found", "no job")
    assert_error(http.get("/v1/jobs/not-a-job"), 404, "not_found", "32 hexadecimal digits")
    assert_error(http.get("/v1/jobs/..%2F..%2Fetc"), 404, "not_found")
