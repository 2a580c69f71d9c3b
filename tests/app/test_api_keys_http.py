"""API keys over real HTTP: keys from a mounted key file (read again when it changes), 401/403 JSON errors,
jobs that belong to the key that made them, per-key quotas (429 + Retry-After), fair starts between keys.

The Detector takes at least a second per page here (``slow_detector``), so jobs stay queued or running for
seconds while the test looks at them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_app.core.auth import hash_key
from tests.app.helpers import PDF, api_keys_on, assert_error, wait_for_job
from tests.examples import NINE_TITLES
from tests.pdfs import text_pdf

pytestmark = pytest.mark.usefixtures("slow_detector")

KEYS = {"alice": "sa_alice-key-for-tests", "bob": "sa_bob-key-for-tests", "old": "sa_old-key-for-tests"}


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[name]}"}


@pytest.fixture
def api_keys(http: httpx.Client, api_keys_file: Path) -> Iterator[None]:
    """Keys on for one test: alice (at most 2 jobs and 12 pages), bob, and old (disabled)."""
    table = {
        "alice": {"sha256": hash_key(KEYS["alice"]), "max_jobs": 2, "max_pages": 12},
        "bob": {"sha256": hash_key(KEYS["bob"])},
        "old": {"sha256": hash_key(KEYS["old"]), "disabled": True},
    }
    with api_keys_on(http, api_keys_file, table):
        yield


def test_every_api_route_needs_a_key(http: httpx.Client, api_keys: None) -> None:
    assert_error(http.post("/v1/embed", json={"sentences": ["a"]}), 401, "unauthorized", "Bearer")
    assert_error(http.post("/v1/jobs", content=text_pdf(1), headers=PDF), 401, "unauthorized")
    assert_error(http.get("/v1/jobs/" + "0" * 32), 401, "unauthorized")
    wrong = {"authorization": "Bearer sa_not-a-key"}
    assert_error(
        http.post("/v1/cluster", json={"sentences": NINE_TITLES}, headers=wrong), 401, "unauthorized"
    )
    assert_error(
        http.get("/v1/models", headers={"authorization": KEYS["bob"]}), 401, "unauthorized"
    )  # no scheme
    assert_error(http.get("/v1/models", headers=bearer("old")), 403, "forbidden", "disabled")
    openai = http.post("/v1/embeddings", json={"input": "a", "model": "all-MiniLM-L6-v2"})
    assert openai.status_code == 401 and openai.json()["error"]["code"] == "unauthorized"  # OpenAI's shape
    # With a key, the same requests are served; probes, docs and the web page need none.
    assert http.post("/v1/embed", json={"sentences": ["a"]}, headers=bearer("bob")).status_code == 200
    for path in ("/healthz", "/readyz", "/openapi.json", "/"):
        assert http.get(path).status_code == 200, path
    doc = http.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (docs/operations.md)",
    }
    assert doc["paths"]["/v1/embed"]["post"]["security"] == [{"apiKey": []}]
    assert "401" in doc["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]


def test_a_job_belongs_to_its_key(http: httpx.Client, api_keys: None) -> None:
    submitted = http.post("/v1/jobs", content=text_pdf(2), headers=PDF | bearer("alice"))
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["owner"] == "alice"
    job_id = job["id"]
    for path in (
        f"/v1/jobs/{job_id}",
        f"/v1/jobs/{job_id}/result",
        f"/v1/jobs/{job_id}/pages/1.png",
        f"/v1/jobs/{job_id}/pages/1/image.png",
        f"/v1/jobs/{job_id}/events",
        f"/v1/jobs/{job_id}?wait=1",
    ):
        assert_error(http.get(path, headers=bearer("bob")), 404, "not_found", f"no job {job_id}")
    assert_error(http.delete(f"/v1/jobs/{job_id}", headers=bearer("bob")), 404, "not_found")
    assert wait_for_job_as(http, job_id, "alice")["status"] == "succeeded"
    assert http.get(f"/v1/jobs/{job_id}/result", headers=bearer("alice")).json()["page_count"] == 2
    assert http.delete(f"/v1/jobs/{job_id}", headers=bearer("alice")).status_code == 200


def wait_for_job_as(http: httpx.Client, job_id: str, key: str) -> dict[str, object]:
    with httpx.Client(base_url=str(http.base_url), headers=bearer(key), timeout=120) as client:
        return wait_for_job(client, job_id)


def test_per_key_quotas(http: httpx.Client, api_keys: None) -> None:
    too_long = http.post("/v1/jobs", content=text_pdf(13), headers=PDF | bearer("alice"))
    assert_error(too_long, 413, "limit_exceeded", "at most 12 pages")
    ids = []
    for pages in (5, 5):
        response = http.post("/v1/jobs", content=text_pdf(pages), headers=PDF | bearer("alice"))
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    third = http.post("/v1/jobs", content=text_pdf(1), headers=PDF | bearer("alice"))
    assert_error(third, 429, "rate_limited", "2 jobs queued or running (limit 2)")
    assert third.headers["retry-after"] == "30"
    # Another key is not limited by alice's jobs.
    other = http.post("/v1/jobs", content=text_pdf(1), headers=PDF | bearer("bob"))
    assert other.status_code == 202, other.text
    for job_id, key in [*((i, "alice") for i in ids), (other.json()["id"], "bob")]:
        assert http.delete(f"/v1/jobs/{job_id}", headers=bearer(key)).status_code == 200


def test_one_keys_long_jobs_do_not_hold_up_anothers_short_job(http: httpx.Client, api_keys: None) -> None:
    long_jobs = []
    for _ in range(2):
        response = http.post("/v1/jobs", content=text_pdf(6), headers=PDF | bearer("alice"))
        assert response.status_code == 202, response.text
        long_jobs.append(response.json()["id"])
    short = http.post("/v1/jobs", content=text_pdf(2), headers=PDF | bearer("bob"))
    assert short.status_code == 202, short.text
    # alice runs one job at a time (max_running_jobs_per_key); bob's starts in the other slot at once, so
    # before alice's second. Told by the order of the starts, not by timing: alice's first may well be done,
    # and her second running, by the time bob's has finished (their pages share the Detector).
    bobs = wait_for_job_as(http, short.json()["id"], "bob")
    assert bobs["status"] == "succeeded"
    second = http.get(f"/v1/jobs/{long_jobs[1]}", headers=bearer("alice")).json()
    assert second["started_at"] is None or str(bobs["started_at"]) < second["started_at"], (bobs, second)
    for job_id in long_jobs:
        assert http.delete(f"/v1/jobs/{job_id}", headers=bearer("alice")).status_code == 200
