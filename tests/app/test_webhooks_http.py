"""Completion webhooks over real HTTP: a real receiver on 127.0.0.1 gets the final state, signed; failed
deliveries are retried with backoff and survive a JobRunner restart (pending ones live in the store);
callback URLs that point at private or loopback addresses are refused unless allowed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from ray.serve.schema import ServeDeploySchema

from serve_app.core.webhooks import ATTEMPT_HEADER, SIGNATURE_HEADER, verify
from tests.app.conftest import BUCKET, PREFIX, WEBHOOK_SECRET
from tests.app.helpers import (
    PDF,
    assert_error,
    changed_user_config,
    kill_replicas,
    wait_for_job,
)
from tests.pdfs import text_pdf
from tools.wait import wait_until


@dataclass
class Receiver:
    """A webhook receiver: answers ``statuses`` in turn (then 200) and records every POST."""

    url: str
    statuses: list[int] = field(default_factory=list)
    posts: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    hook = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/jobs")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status = hook.statuses.pop(0) if hook.statuses else 200
            hook.posts.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def loopback_allowed(serve_config: ServeDeploySchema) -> Iterator[None]:
    """The tests' receiver is on 127.0.0.1: allowed explicitly (it is refused by default)."""
    allowed = ["127.0.0.1/32"]
    ready = ("webhook_allowed_networks", allowed, [])
    with changed_user_config(serve_config, "JobRunner", ready=ready, webhook_allowed_networks=allowed):
        yield


def submit(http: httpx.Client, url: str, pages: int = 1) -> httpx.Response:
    return http.post("/v1/jobs", params={"callback_url": url}, content=text_pdf(pages), headers=PDF)


def test_callback_urls_are_checked(http: httpx.Client, receiver: Receiver) -> None:
    for url, reason in [
        (receiver.url, "127.0.0.1 is a loopback address"),  # not allowed by default
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("ftp://example.com/hook", "http or https"),
        ("http://user:secret@example.com/hook", "credentials"),
    ]:
        response = submit(http, url)
        assert_error(response, 422, "invalid_input", "callback_url")
        assert reason in response.json()["error"]["message"], (url, response.text)
    assert receiver.posts == []


def test_the_final_state_is_posted_signed(
    http: httpx.Client, receiver: Receiver, loopback_allowed: None
) -> None:
    submitted = submit(http, receiver.url, pages=2)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json()["callback_url"] == receiver.url
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    wait_until(lambda: receiver.posts, 30, message="no webhook arrived")
    headers, body, _ = receiver.posts[0]
    assert verify(WEBHOOK_SECRET, body, headers[SIGNATURE_HEADER.lower()], now=time.time())
    assert not verify("another-secret-0123456789", body, headers[SIGNATURE_HEADER.lower()], now=time.time())
    state = json.loads(body)
    assert (state["id"], state["status"], state["pages_done"]) == (job_id, "succeeded", 2)
    assert headers["content-type"] == "application/json" and headers[ATTEMPT_HEADER.lower()] == "1"
    time.sleep(1.0)
    assert len(receiver.posts) == 1  # delivered once


def test_failed_deliveries_are_retried_and_survive_a_runner_restart(
    http: httpx.Client, receiver: Receiver, loopback_allowed: None, s3: Any
) -> None:
    receiver.statuses = [500, 503]  # two failures, then 200
    job_id = submit(http, receiver.url).json()["id"]
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    wait_until(lambda: len(receiver.posts) >= 3, 60, message=lambda: f"posts: {receiver.posts}")
    attempts = [headers[ATTEMPT_HEADER.lower()] for headers, _, _ in receiver.posts]
    assert attempts == ["1", "2", "3"] and [status for *_, status in receiver.posts] == [500, 503, 200]
    key = f"{PREFIX}/webhooks/{job_id}.json"
    wait_until(lambda: "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=key), 30, message=key)

    # The receiver fails for a while; the runner dies with the delivery pending; the next one delivers it.
    receiver.posts.clear()
    receiver.statuses = [500] * 3
    job_id = submit(http, receiver.url).json()["id"]
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    key = f"{PREFIX}/webhooks/{job_id}.json"
    wait_until(lambda: receiver.posts, 30, message="no first attempt")
    assert "Contents" in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)  # pending, in the store
    assert kill_replicas("JobRunner") == 1
    wait_until(
        lambda: [s for *_, s in receiver.posts][-1:] == [200], 180, message=lambda: f"posts: {receiver.posts}"
    )
    states = {json.loads(body)["id"] for _, body, _ in receiver.posts}
    assert states == {job_id}
    wait_until(lambda: "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=key), 30, message=key)
