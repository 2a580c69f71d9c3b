"""DELETE /v1/jobs/{id} cancels a queued or running job (nothing more is written after the answer) or deletes
a finished one with its files; the retention sweep deletes finished jobs past their age (real HTTP, the
real moto S3 server and a local directory)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from ray.serve.schema import ServeDeploySchema

from tests import pdfs
from tests.app.conftest import BUCKET, PREFIX
from tests.app.helpers import PDF, assert_error, set_user_config, wait_for_job, wait_for_progress
from tools.wait import wait_until


def submit(http: httpx.Client, pages: int) -> dict[str, Any]:
    response = http.post("/v1/jobs", content=pdfs.text_pdf(pages), headers=PDF)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def stored(s3: Any, job_id: str) -> dict[str, int]:
    """Every key of the job in the bucket, with how many times it was written."""
    prefix = f"{PREFIX}/jobs/{job_id}/"
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix).get("Versions", [])
    counts: dict[str, int] = {}
    for version in versions:
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def test_a_running_job_is_cancelled_and_nothing_more_is_written(
    http: httpx.Client, s3: Any, slow_detector: float
) -> None:
    job = submit(http, 8)
    wait_for_progress(http, job["id"], pages_done=2)
    answer = http.delete(f"/v1/jobs/{job['id']}")
    assert answer.status_code == 200, answer.text
    state = answer.json()
    assert state["status"] == "cancelled" and 2 <= state["pages_done"] < 8
    assert state["finished_at"] is not None
    written = stored(s3, job["id"])
    time.sleep(4 * slow_detector)  # longer than the pages that were in flight would have taken
    assert stored(s3, job["id"]) == written  # nothing was written after the answer
    pages = sorted(k for k in written if k.endswith(".json") and "/pages/" in k)
    assert len(pages) == state["pages_done"]  # exactly the pages it reported done
    assert http.get(f"/v1/jobs/{job['id']}").json() == state
    assert_error(http.get(f"/v1/jobs/{job['id']}/result"), 409, "job_cancelled", "was cancelled")


def test_a_queued_job_is_cancelled_before_it_starts(http: httpx.Client, slow_detector: float) -> None:
    busy = [submit(http, 5) for _ in range(2)]  # both running slots
    queued = submit(http, 3)
    assert http.get(f"/v1/jobs/{queued['id']}").json()["status"] == "queued"
    state = http.delete(f"/v1/jobs/{queued['id']}").json()
    assert state["status"] == "cancelled" and state["pages_done"] == 0 and state["started_at"] is None
    for job in busy:
        assert wait_for_job(http, job["id"])["status"] == "succeeded"
    assert http.get(f"/v1/jobs/{queued['id']}").json()["status"] == "cancelled"  # it never ran


def test_a_finished_job_is_deleted_with_its_files(http: httpx.Client, s3: Any) -> None:
    job = submit(http, 2)
    assert wait_for_job(http, job["id"])["status"] == "succeeded"
    assert http.get(f"/v1/jobs/{job['id']}/result.md").status_code == 200
    assert len(stored(s3, job["id"])) >= 7  # state, input, pages.json, 2 x (json, png), result, result.md
    deleted = http.delete(f"/v1/jobs/{job['id']}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "succeeded"  # what it was
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/jobs/{job['id']}/")
    assert listed.get("KeyCount", 0) == 0
    assert_error(http.get(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert_error(http.delete(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert_error(http.delete("/v1/jobs/not-a-job"), 404, "not_found")


def test_the_retention_sweep_deletes_finished_jobs_past_their_age(
    http: httpx.Client, serve_config: ServeDeploySchema, local_store: Path
) -> None:
    finished = submit(http, 1)
    assert wait_for_job(http, finished["id"])["status"] == "succeeded"
    assert (local_store / "jobs" / finished["id"] / "result.json").is_file()
    # A retention of 2 seconds and a sweep every second: the finished job goes, with all its files.
    set_user_config(serve_config, "JobRunner", retention_days=2 / 86400, retention_sweep_s=1.0)
    try:
        wait_until(lambda: http.get(f"/v1/jobs/{finished['id']}").status_code == 404, 60, interval_s=0.5)
        directory = local_store / "jobs" / finished["id"]
        assert not directory.exists() or not [p for p in directory.rglob("*") if p.is_file()]
    finally:
        set_user_config(serve_config, "JobRunner", retention_days=None, retention_sweep_s=None)
