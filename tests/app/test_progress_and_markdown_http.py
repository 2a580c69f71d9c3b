"""Live progress (long-poll and Server-Sent Events) and Markdown of a document, over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pymupdf
import pytest
from ray import serve

from serve_app.training.synth import SyntheticDocument, generate_document
from tests import pdfs
from tests.app.helpers import PDF, assert_error, wait_for_job
from tools.launch import APP_NAME
from tools.wait import wait_until


def events(lines: Iterator[str]) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """(event, id, data) of a text/event-stream, in order (comments and retry lines skipped)."""
    event, event_id, data = "", None, ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event:
            yield event, event_id, json.loads(data)
            event, event_id, data = "", None, ""


def submit(http: httpx.Client, pages: int) -> dict[str, Any]:
    response = http.post("/v1/jobs", content=pdfs.text_pdf(pages), headers=PDF)
    assert response.status_code == 202, response.text
    state: dict[str, Any] = response.json()
    return state


def test_events_follow_a_job_page_by_page_to_the_end(http: httpx.Client, slow_detector: float) -> None:
    job = submit(http, 4)
    seen = []
    with http.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for event in events(stream.iter_lines()):
            seen.append(event)
            if event[0] in ("succeeded", "failed"):
                break
    names = [name for name, _, _ in seen]
    assert names[0] in ("queued", "running") and names[-1] == "succeeded"
    pages = [data for name, _, data in seen if name == "page"]
    assert sorted(p["number"] for p in pages) == [1, 2, 3, 4]  # each page once, with its number
    assert [p["pages_done"] for p in pages] == [1, 2, 3, 4] and {p["pages_total"] for p in pages} == {4}
    ids = [event_id or 0 for _, event_id, _ in seen]
    assert ids == sorted(ids)  # ids are pages done: a reconnecting client resumes from Last-Event-ID
    assert seen[-1][2]["status"] == "succeeded" and seen[-1][2]["pages_done"] == 4

    # Reconnecting after the end (Last-Event-ID): the final state at once, and the stream ends.
    headers = {"Last-Event-ID": "4"}
    with http.stream("GET", f"/v1/jobs/{job['id']}/events", headers=headers) as again:
        assert [name for name, _, _ in events(again.iter_lines())] == ["succeeded"]


def test_an_event_stream_ends_when_its_client_goes_away(
    serve_url: str, http: httpx.Client, slow_detector: float
) -> None:
    job = submit(http, 6)
    job_id = job["id"]
    runner = serve.get_deployment_handle("JobRunner", app_name=APP_NAME)
    with (
        httpx.Client(base_url=serve_url, timeout=60) as client,
        client.stream("GET", f"/v1/jobs/{job['id']}/events") as stream,
    ):
        reader = events(stream.iter_lines())  # kept: dropping the iterator would close the connection
        first = next(reader)
        assert first[0] in ("queued", "running")
        wait_until(
            lambda: runner.ready.remote().result()["watchers"] >= 1,
            30,
            message=lambda: (
                f"no watcher: {runner.ready.remote().result()} {http.get(f'/v1/jobs/{job_id}').text}"
            ),
        )
    # The client closed the connection: the stream and its wait in the JobRunner end.
    wait_until(lambda: runner.ready.remote().result()["watchers"] == 0, 60, message="the watch never ended")
    assert wait_for_job(http, job["id"])["status"] == "succeeded"


def test_long_poll_answers_when_the_state_changes(http: httpx.Client, slow_detector: float) -> None:
    job = submit(http, 3)
    before = http.get(f"/v1/jobs/{job['id']}").json()
    changed = http.get(f"/v1/jobs/{job['id']}", params={"wait": 30}).json()
    assert (changed["status"], changed["pages_done"]) != (before["status"], before["pages_done"])
    now = http.get(f"/v1/jobs/{job['id']}", params={"wait": 0})
    assert now.status_code == 200 and now.json()["id"] == job["id"]
    final = wait_for_job(http, job["id"])
    assert http.get(f"/v1/jobs/{job['id']}", params={"wait": 30}).json() == final  # finished: at once
    for bad in ("-1", "61", "soon"):
        assert_error(http.get(f"/v1/jobs/{job['id']}", params={"wait": bad}), 422, "invalid_input", "wait")
    assert_error(http.get(f"/v1/jobs/{'0' * 32}/events"), 404, "not_found")


def test_a_long_poll_ends_when_its_client_goes_away(
    serve_url: str, http: httpx.Client, slow_detector: float
) -> None:
    # Two jobs take both running slots for several seconds: a third stays queued, its state unchanged.
    busy = [submit(http, 6) for _ in range(2)]
    queued = submit(http, 1)
    assert http.get(f"/v1/jobs/{queued['id']}").json()["status"] == "queued"
    runner = serve.get_deployment_handle("JobRunner", app_name=APP_NAME)
    timeout = httpx.Timeout(60, read=1.0)
    with httpx.Client(base_url=serve_url, timeout=timeout) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get(f"/v1/jobs/{queued['id']}", params={"wait": 60})  # gives up; the poll would wait 60 s
    wait_until(lambda: runner.ready.remote().result()["watchers"] == 0, 60, message="a watch never ended")
    for job in [*busy, queued]:
        assert wait_for_job(http, job["id"])["status"] == "succeeded"


@pytest.fixture(scope="module")
def document() -> SyntheticDocument:
    """A generated page with a title, a list and a ruled table among its regions (content known)."""
    for seed in range(515_000, 515_200):
        doc = generate_document(seed=seed, num_pages=1, dpi=72)
        labels = {r.label for r in doc.pages[0].regions}
        if {"title", "list", "table", "text"} <= labels:
            return doc
    raise AssertionError("no generated page has every label")


def region_text(pdf: bytes, box: tuple[float, float, float, float]) -> str:
    page = pymupdf.open(stream=pdf)[0]
    return " ".join(page.get_textbox(pymupdf.Rect(box)).split())


def test_markdown_of_a_document_has_its_headings_paragraphs_lists_and_tables(
    http: httpx.Client, document: SyntheticDocument
) -> None:
    response = http.post("/v1/detect", content=document.pdf, headers=PDF, params={"format": "markdown"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/markdown")
    md = response.text
    assert md.startswith("<!-- page 1 -->")
    lines = md.splitlines()
    truth = document.pages[0].regions
    headings = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
    titles = [region_text(document.pdf, r.bbox_pt) for r in truth if r.label == "title"]
    assert sum(t in headings for t in titles) >= 0.8 * len(titles), (titles, headings)
    assert any(line.startswith("- ") for line in lines)  # a list became bullets
    assert any(re.fullmatch(r"\|(---\|)+", line) for line in lines), md  # a table became a Markdown table
    flat = " ".join(md.split())
    paragraphs = [region_text(document.pdf, r.bbox_pt) for r in truth if r.label == "text"]
    found = sum(" ".join(p.split()[:6]) in flat for p in paragraphs)
    assert found >= 0.8 * len(paragraphs), md


def test_a_jobs_markdown_is_made_once_and_kept(
    http: httpx.Client, document: SyntheticDocument, s3: Any
) -> None:
    from tests.app.conftest import BUCKET, PREFIX

    response = http.post("/v1/jobs", content=document.pdf, headers=PDF)
    job = wait_for_job(http, response.json()["id"])
    assert job["status"] == "succeeded"
    first = http.get(f"/v1/jobs/{job['id']}/result.md")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/markdown")
    synchronous = http.post("/v1/detect", content=document.pdf, headers=PDF, params={"format": "markdown"})
    assert first.text == synchronous.text
    assert http.get(f"/v1/jobs/{job['id']}/result.md").text == first.text
    key = f"{PREFIX}/jobs/{job['id']}/result.md"
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    assert len(versions) == 1  # stored the first time, read back after
    assert_error(http.get(f"/v1/jobs/{'0' * 32}/result.md"), 404, "not_found")
