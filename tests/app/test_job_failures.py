"""Nothing is lost: kill the real Detector replica, or the real JobRunner, in the middle of a job."""

from __future__ import annotations

import time
from typing import Any

import httpx
import ray

from serve_app.launch import wait_running
from serve_app.training.synth import generate_document
from tests.app.conftest import APP_NAME, BUCKET, PREFIX, wait_for_job

PDF = {"content-type": "application/pdf"}
PAGES = 16


def kill_replicas(deployment: str) -> int:
    """Kill every replica actor of ``deployment`` (named SERVE_REPLICA::app#deployment#id) for good;
    Serve has to start new ones. Returns how many were killed."""
    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#{deployment}#")
    ]
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    return len(names)


def submit_and_wait_for_progress(http: httpx.Client, seed: int, *, pages_done: int) -> dict[str, Any]:
    pdf = generate_document(seed=seed, num_pages=PAGES, dpi=72).pdf
    response = http.post("/v1/jobs", content=pdf, headers=PDF)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while True:
        state: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if state["pages_done"] >= pages_done:
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state["status"] == "running" and state["pages_done"] < PAGES, "the job must be mid-way"
    return state


def assert_every_page_exactly_once(http: httpx.Client, job_id: str) -> dict[str, Any]:
    state = wait_for_job(http, job_id)
    assert state["status"] == "succeeded" and state["pages_done"] == PAGES, state
    result = http.get(f"/v1/jobs/{job_id}/result").json()
    assert [p["number"] for p in result["pages"]] == list(range(1, PAGES + 1))
    assert all(p["regions"] for p in result["pages"])
    return state


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
    killed_at = time.time()
    pages_prefix = f"{PREFIX}/jobs/{state['id']}/pages/"
    before = {
        o["Key"]: o["LastModified"].timestamp()
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=pages_prefix).get("Contents", [])
        if o["Key"].endswith(".json")
    }
    assert len(before) >= 3
    final = assert_every_page_exactly_once(http, state["id"])
    assert final["attempts"] == 2  # a new runner picked the job up from its persisted state
    after = {o["Key"]: o["LastModified"].timestamp()
             for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=pages_prefix)["Contents"]}  # fmt: skip
    for key, stamp in before.items():  # pages done before the kill were not redone
        assert after[key] == stamp <= killed_at + 1, key
    wait_running([APP_NAME], timeout_s=120)
