"""Completion webhooks over real HTTP: a real receiver on 127.0.0.1 gets the final state, signed; failed
deliveries are retried with backoff and survive a JobRunner restart (pending ones live in the store);
callback URLs that point at private or loopback addresses are refused unless allowed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
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
from tests.webhook_receiver import WebhookReceiver
from tools.wait import wait_until


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def loopback_allowed(serve_config: ServeDeploySchema) -> Iterator[None]:
    """The tests' receiver is on 127.0.0.1: allowed explicitly (it is refused by default)."""
    allowed = ["127.0.0.1/32"]
    ready = ("webhook_allowed_networks", allowed, [])
    with changed_user_config(serve_config, "JobRunner", ready=ready, webhook_allowed_networks=allowed):
        yield


def submit(http: httpx.Client, url: str, pages: int = 1) -> httpx.Response:
    return http.post("/v1/jobs", params={"callback_url": url}, content=text_pdf(pages), headers=PDF)


def test_callback_urls_are_checked(http: httpx.Client, receiver: WebhookReceiver) -> None:
    for url, reason in [
        (receiver.url(), "127.0.0.1 is a loopback address"),  # not allowed by default
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
    http: httpx.Client, receiver: WebhookReceiver, loopback_allowed: None
) -> None:
    submitted = submit(http, receiver.url(), pages=2)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json()["callback_url"] == receiver.url()
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    wait_until(lambda: receiver.posts, 30, message="no webhook arrived")
    headers, body = receiver.posts[0].headers, receiver.posts[0].body
    assert verify(WEBHOOK_SECRET, body, headers[SIGNATURE_HEADER.lower()], now=time.time())
    assert not verify("another-secret-0123456789", body, headers[SIGNATURE_HEADER.lower()], now=time.time())
    state = json.loads(body)
    assert (state["id"], state["status"], state["pages_done"]) == (job_id, "succeeded", 2)
    assert headers["content-type"] == "application/json" and headers[ATTEMPT_HEADER.lower()] == "1"
    time.sleep(1.0)
    assert len(receiver.posts) == 1  # delivered once


def test_failed_deliveries_are_retried_and_survive_a_runner_restart(
    http: httpx.Client, receiver: WebhookReceiver, loopback_allowed: None, s3: Any
) -> None:
    receiver.statuses = [500, 503]  # two failures, then 200
    job_id = submit(http, receiver.url()).json()["id"]
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    wait_until(lambda: len(receiver.posts) >= 3, 60, message=lambda: f"posts: {receiver.posts}")
    attempts = [post.headers[ATTEMPT_HEADER.lower()] for post in receiver.posts]
    assert attempts == ["1", "2", "3"] and [post.status for post in receiver.posts] == [500, 503, 200]
    key = f"{PREFIX}/webhooks/{job_id}.json"
    wait_until(lambda: "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=key), 30, message=key)

    # The receiver fails for a while; the runner dies with the delivery pending; the next one delivers it.
    receiver.posts.clear()
    receiver.statuses = [500] * 3
    job_id = submit(http, receiver.url()).json()["id"]
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    key = f"{PREFIX}/webhooks/{job_id}.json"
    wait_until(lambda: receiver.posts, 30, message="no first attempt")
    assert "Contents" in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)  # pending, in the store
    assert kill_replicas("JobRunner") == 1
    wait_until(
        lambda: [post.status for post in receiver.posts][-1:] == [200],
        180,
        message=lambda: f"posts: {receiver.posts}",
    )
    states = {json.loads(post.body)["id"] for post in receiver.posts}
    assert states == {job_id}
    wait_until(lambda: "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=key), 30, message=key)
