"""Backpressure and time limits over real HTTP: excess work is refused at once (503 + Retry-After, the JSON
error body), a request past its time limit is a 504, a pathological page fails with its reason, and the
probes keep answering meanwhile.

The Detector takes at least a second per page here (``slow_detector``), so requests stay in progress for
seconds while the others arrive; limits are lowered per test through user_config and restored after.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from ray.serve.schema import ServeDeploySchema

from tests.app.helpers import (
    PDF,
    assert_error,
    changed_user_config,
    set_user_config,
    wait_for_job,
    wait_for_ready_field,
)
from tests.examples import NINE_TITLES
from tests.pdfs import text_pdf, vector_bomb_pdf
from tools.wait import wait_until

pytestmark = pytest.mark.usefixtures("slow_detector")


def assert_shed(response: httpx.Response, retry_after: str = "1") -> None:
    """A fast refusal: 503 ``unavailable`` in the JSON error shape, with a Retry-After."""
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == retry_after


@pytest.fixture
def runner_limits(serve_config: ServeDeploySchema) -> Iterator[None]:
    """Small JobRunner limits for one test: 2 pages of /v1/detect at a time, one job queued, one running."""
    limits = {"max_sync_pages_queued": 2, "max_queued_jobs": 1, "max_running_jobs": 1}
    with changed_user_config(serve_config, "JobRunner", ready=("max_sync_pages_queued", 2, 4), **limits):
        yield


@pytest.fixture
def ingress_limits(serve_config: ServeDeploySchema) -> Iterator[dict[str, Any]]:
    """Set Ingress user_config keys for one test (the fixture's caller passes them), restored after."""
    changed: dict[str, Any] = {}

    def apply(**changes: Any) -> None:
        changed.update(changes)
        set_user_config(serve_config, "Ingress", **changes)

    try:
        yield {"apply": apply}
    finally:
        if changed:
            set_user_config(serve_config, "Ingress", **dict.fromkeys(changed))


def test_detect_sheds_what_cannot_start_soon(http: httpx.Client, runner_limits: None) -> None:
    pdf = text_pdf(1)
    probes: list[tuple[int, str]] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            for path in ("/healthz", "/readyz"):
                response = http.get(path)
                probes.append((response.status_code, response.text))

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: http.post("/v1/detect", content=pdf, headers=PDF), range(8)))
    finally:
        stop.set()
        prober.join()
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) == {200, 503}, statuses
    assert statuses.count(200) >= 2  # two pages are admitted at a time; the rest of the burst is refused
    for response in answers:
        if response.status_code == 503:
            assert_shed(response)
            assert "pages of /v1/detect in progress" in response.json()["error"]["message"]
        else:
            assert response.json()["page_count"] == 1
    assert probes and all(status == 200 for status, _ in probes), probes  # answered throughout
    wait_for_ready_field("JobRunner", "sync_pages_admitted", 0)


def test_the_job_queue_is_bounded(http: httpx.Client, runner_limits: None) -> None:
    pdf = text_pdf(3)
    running = http.post("/v1/jobs", content=pdf, headers=PDF)
    assert running.status_code == 202, running.text
    queued = http.post("/v1/jobs", content=pdf, headers=PDF)
    assert queued.status_code == 202, queued.text
    refused = http.post("/v1/jobs", content=pdf, headers=PDF)
    assert_shed(refused, retry_after="30")
    assert "max_queued_jobs" in refused.json()["error"]["message"]
    for response in (queued, running):
        job_id = response.json()["id"]
        assert http.delete(f"/v1/jobs/{job_id}").status_code == 200
        assert wait_for_job(http, job_id)["status"] == "cancelled"


def test_embedding_sheds_by_sentences_in_flight(http: httpx.Client, ingress_limits: dict[str, Any]) -> None:
    ingress_limits["apply"](max_sentences_in_flight=64)
    big = [f"sentence number {i} about nothing in particular" for i in range(3000)]
    small = {"sentences": NINE_TITLES}
    with ThreadPoolExecutor(1) as pool:
        # Alone on an idle service, a request larger than the limit runs; while it does, others are shed.
        running = pool.submit(http.post, "/v1/embed", json={"sentences": big})
        shed: list[httpx.Response] = []

        def refused() -> bool:
            nonlocal running
            if running.done() and running.result().status_code == 503:
                # A small request got in first, so the large one was the one refused: send it again.
                assert_shed(running.result())
                running = pool.submit(http.post, "/v1/embed", json={"sentences": big})
            response = http.post("/v1/cluster", json=small)
            if response.status_code == 503:
                shed.append(response)
            return bool(shed) or (running.done() and running.result().status_code != 503)

        wait_until(refused, 120, interval_s=0.05, message="no request was shed")
        assert shed, "the large request finished before any other was refused"
        assert_shed(shed[0])
        assert "sentences in progress, limit 64" in shed[0].json()["error"]["message"]
        assert http.get("/healthz").status_code == 200
        assert running.result().status_code == 200
        assert running.result().json()["count"] == len(big)
    # Once it is done, the same small request is admitted again.
    assert http.post("/v1/cluster", json=small).status_code == 200


def test_a_request_past_its_time_limit_is_a_504(http: httpx.Client, ingress_limits: dict[str, Any]) -> None:
    ingress_limits["apply"](request_timeout_s=0.3)  # a page takes the Detector at least 1 s here
    pdf = text_pdf(1)
    answers: list[httpx.Response] = []

    def timed_out() -> bool:
        answers.append(http.post("/v1/detect", content=pdf, headers=PDF))
        return answers[-1].status_code == 504

    wait_until(timed_out, 60, interval_s=0.2, message=lambda: f"no 504: {answers[-1].text}")
    assert_error(answers[-1], 504, "timeout", "request_timeout_s")
    assert {r.status_code for r in answers} <= {200, 504}
    # The cancelled analysis let go of its pages: nothing is left admitted in the runner.
    wait_for_ready_field("JobRunner", "sync_pages_admitted", 0)


@pytest.fixture
def render_limit(serve_config: ServeDeploySchema) -> Iterator[float]:
    seconds = 2.0
    ready = ("page_render_timeout_s", seconds, 60.0)
    with changed_user_config(serve_config, "JobRunner", ready=ready, page_render_timeout_s=seconds):
        yield seconds


def test_a_pathological_page_fails_with_its_reason(http: httpx.Client, render_limit: float) -> None:
    bomb = vector_bomb_pdf()  # 10^9 line segments in a 4 KB file
    response = http.post("/v1/detect", content=bomb, headers=PDF)
    assert_error(response, 413, "limit_exceeded", "page 1 took longer than 2 s to render")
    job = http.post("/v1/jobs", content=bomb, headers=PDF)
    assert job.status_code == 202, job.text
    state = wait_for_job(http, job.json()["id"], timeout_s=120)
    assert state["status"] == "failed"
    assert "page 1 took longer than 2 s to render (page_render_timeout_s)" in state["error"]
    # The workers that were stuck on it were stopped: an ordinary page renders at once again.
    ok = http.post("/v1/detect", content=text_pdf(1), headers=PDF)
    assert ok.status_code == 200, ok.text
