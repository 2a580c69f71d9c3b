"""The job store goes away mid-job: a real moto S3 server process is stopped and started again.

The JobRunner stores these jobs on a second S3 server of their own (``?endpoint_url=`` in the store URL), so
stopping it touches nothing else. While it is down the job waits (its writes are retried), ``/readyz``
reports the store down, and the job's state is still answered; when it is back the job completes with every
page exactly once. Past ``store_retry_s`` the job fails with the reason. (moto keeps its data in memory: the
restarted server is empty, and the bucket is made again, as an operator would restore a lost bucket; the
running job keeps what it needs in memory and writes the rest.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from ray.serve.schema import ServeDeploySchema

from tests.app.helpers import (
    PDF,
    READY,
    set_user_config,
    wait_for_job,
    wait_for_progress,
    wait_for_ready_field,
)
from tests.pdfs import text_pdf
from tests.s3_server import MotoServer, make_bucket, s3_client
from tools.wait import wait_until

pytestmark = pytest.mark.usefixtures("slow_detector")

BUCKET = "outage"


@pytest.fixture
def store_server(serve_config: ServeDeploySchema) -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    make_bucket(server.endpoint, BUCKET)
    url = f"s3://{BUCKET}/jobs?endpoint_url={server.endpoint}"
    set_user_config(serve_config, "JobRunner", store_url=url, store_retry_s=120)
    wait_for_ready_field("JobRunner", "store", url)
    try:
        yield server
    finally:
        set_user_config(serve_config, "JobRunner", store_url=None, store_retry_s=None)
        wait_for_ready_field("JobRunner", "store_error", None)
        server.stop()


def readiness(http: httpx.Client) -> tuple[int, dict[str, object]]:
    response = http.get("/readyz")
    return response.status_code, response.json()


def test_a_job_waits_for_the_store_and_completes(http: httpx.Client, store_server: MotoServer) -> None:
    submitted = http.post("/v1/jobs", content=text_pdf(6), headers=PDF)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    wait_for_progress(http, job_id, pages_done=2)
    store_server.stop()
    wait_until(
        lambda: str(readiness(http)[1].get("store", "")).startswith("down: "), 30, message="store not down"
    )
    status, body = readiness(http)
    assert status == 200 and body["status"] == "degraded"  # embeddings and the rest still serve
    # Meanwhile the job is waiting, not failed, and its state is answered (from the runner's memory).
    stalled = wait_until(
        lambda: (s := http.get(f"/v1/jobs/{job_id}").json())["pages_done"] < 6 and s, 10, message="no state"
    )
    assert stalled["status"] == "running"
    time.sleep(3)  # far less than store_retry_s (120 s): the job is still waiting, not failed
    assert http.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    store_server.start()
    make_bucket(store_server.endpoint, BUCKET)
    state = wait_for_job(http, job_id, timeout_s=240)
    assert state["status"] == "succeeded", state
    result = http.get(f"/v1/jobs/{job_id}/result").json()
    assert [page["number"] for page in result["pages"]] == [1, 2, 3, 4, 5, 6]  # every page exactly once
    wait_until(lambda: readiness(http) == (200, READY), 30, message="store not back")
    stored = s3_client(store_server.endpoint).list_objects_v2(Bucket=BUCKET, Prefix=f"jobs/jobs/{job_id}/")
    assert f"jobs/jobs/{job_id}/result.json" in {o["Key"] for o in stored["Contents"]}


def test_past_store_retry_s_the_job_fails_with_the_reason(
    http: httpx.Client, store_server: MotoServer, serve_config: ServeDeploySchema
) -> None:
    set_user_config(serve_config, "JobRunner", store_retry_s=3)
    wait_for_ready_field("JobRunner", "store_retry_s", 3.0)
    job_id = http.post("/v1/jobs", content=text_pdf(6), headers=PDF).json()["id"]
    wait_for_progress(http, job_id, pages_done=1)
    store_server.stop()
    try:
        state = wait_for_job(http, job_id, timeout_s=120)
        assert state["status"] == "failed"
        assert "cannot be reached" in state["error"] and "store_retry_s" in state["error"], state["error"]
        # Reading what is only in the store is a fast 503 with Retry-After, not a hang.
        response = http.get(f"/v1/jobs/{'0' * 32}")
        assert response.status_code == 503 and response.json()["error"]["code"] == "store_unavailable"
        assert response.headers["retry-after"] == "5"
    finally:
        store_server.start()
        make_bucket(store_server.endpoint, BUCKET)
