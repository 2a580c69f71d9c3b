"""Nothing is lost: kill the real Detector replica, or the real JobRunner, in the middle of a job.

The Detector takes at least a second per page here (``slow_detector``), so a 16-page job is still
mid-way when the kill happens however fast the machine is; what was stored before the kill is compared
by content (ETags), not by clocks.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from serve_app.training.synth import generate_document
from tests.app.conftest import BUCKET, PREFIX
from tests.app.helpers import PDF, assert_error, kill_replicas, wait_for_job, wait_for_progress
from tests.s3_server import write_counts
from tools.launch import APP_NAME, wait_running

PAGES = 16

pytestmark = pytest.mark.usefixtures("slow_detector")


def submit_and_wait_for_progress(http: httpx.Client, seed: int, *, pages_done: int) -> dict[str, Any]:
    pdf = generate_document(seed=seed, num_pages=PAGES, dpi=72).pdf
    response = http.post("/v1/jobs", content=pdf, headers=PDF)
    assert response.status_code == 202, response.text
    state = wait_for_progress(http, response.json()["id"], pages_done=pages_done)
    assert state["status"] == "running" and state["pages_done"] < PAGES, "the job must be mid-way"
    return state


def assert_every_page_exactly_once(http: httpx.Client, job_id: str) -> dict[str, Any]:
    state = wait_for_job(http, job_id)
    assert state["status"] == "succeeded" and state["pages_done"] == PAGES, state
    result = http.get(f"/v1/jobs/{job_id}/result").json()
    assert [p["number"] for p in result["pages"]] == list(range(1, PAGES + 1))
    assert all(p["regions"] for p in result["pages"])
    return state


def page_results(s3: Any, job_id: str) -> dict[str, int]:
    """Each page JSON stored so far, with how many times it was written (the test bucket is versioned)."""
    counts = write_counts(s3, BUCKET, f"{PREFIX}/jobs/{job_id}/pages/")
    return {key: n for key, n in counts.items() if key.endswith(".json")}


def test_detector_replica_killed_mid_job(http: httpx.Client) -> None:
    state = submit_and_wait_for_progress(http, seed=616_161, pages_done=2)
    assert kill_replicas("Detector") >= 1
    assert http.get("/healthz").status_code == 200
    final = assert_every_page_exactly_once(http, state["id"])
    assert final["attempts"] == 1  # the runner retried its pages on the new replica; no restart
    wait_running([APP_NAME], timeout_s=120)  # Serve replaced the replica: the app is healthy again


def test_job_runner_killed_mid_job(http: httpx.Client, s3: Any) -> None:
    state = submit_and_wait_for_progress(http, seed=717_171, pages_done=3)
    assert kill_replicas("JobRunner") == 1
    before = page_results(s3, state["id"])
    assert 3 <= len(before) < PAGES
    final = assert_every_page_exactly_once(http, state["id"])
    assert final["attempts"] == 2  # a new runner picked the job up from its persisted state
    after = page_results(s3, state["id"])
    assert len(after) == PAGES
    assert all(n == 1 for n in after.values()), after  # pages done before the kill were not redone
    wait_running([APP_NAME], timeout_s=120)


def test_result_and_pages_of_an_unfinished_job_are_409(http: httpx.Client) -> None:
    pdf = generate_document(seed=818_181, num_pages=2, dpi=72).pdf
    response = http.post("/v1/jobs", content=pdf, headers=PDF)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    # No page can be done yet: each takes the Detector at least a second here.
    assert_error(http.get(f"/v1/jobs/{job_id}/result"), 409, "job_not_finished", "poll")
    assert_error(http.get(f"/v1/jobs/{job_id}/pages/2.png"), 409, "job_not_finished", "not done yet")
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    assert http.get(f"/v1/jobs/{job_id}/pages/2.png").status_code == 200
