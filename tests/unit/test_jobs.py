"""The job state machine of serve_app.core.jobs: states, transitions, JSON round trips."""

from __future__ import annotations

import pydantic
import pytest

from serve_app.core import jobs
from serve_app.core.analysis import AnalyzeOptions
from serve_app.core.errors import NotFound
from serve_app.core.job_keys import check_job_id
from serve_app.core.jobs import JobState

# job state


def test_new_job() -> None:
    options = AnalyzeOptions(dpi=100, score_threshold=0.3, cluster=True)
    state = JobState.new(4, options, filename="report.pdf")
    assert state.status == "queued"
    assert check_job_id(state.id) == state.id
    assert state.pages_total == 4
    assert state.pages_done == 0
    assert state.attempts == 0
    assert state.options == options
    assert state.filename == "report.pdf"
    assert state.created_at.tzinfo is not None
    assert state.started_at is None and state.finished_at is None and state.error is None
    assert state.status not in jobs.FINISHED
    assert JobState.new(1, AnalyzeOptions()).id != state.id


def test_job_state_round_trips_through_json() -> None:
    state = JobState.new(2, AnalyzeOptions(cluster=True))
    state = state.started()
    dumped = state.model_dump(mode="json")
    assert dumped["created_at"].endswith(("Z", "+00:00"))
    again = JobState.model_validate(dumped)
    assert again == state
    assert JobState.model_validate_json(state.model_dump_json()) == state


def test_check_page_number() -> None:
    state = JobState.new(3, AnalyzeOptions())
    for number in (1, 2, 3):
        state.check_page_number(number)
    for number in (0, -1, 4, 100):
        with pytest.raises(NotFound, match=f"pages 1 to 3; there is no page {number}"):
            state.check_page_number(number)


def test_transitions_of_a_job_that_succeeds() -> None:
    queued = JobState.new(2, AnalyzeOptions())
    running = queued.started()
    assert (running.status, running.attempts, running.pages_done) == ("running", 1, 0)
    assert running.started_at is not None and running.started_at >= queued.created_at
    assert queued.status == "queued"  # states are immutable: each transition makes a new one
    one = running.page_done()
    two = one.page_done()
    assert (one.pages_done, two.pages_done) == (1, 2)
    with pytest.raises(ValueError, match="only 2 pages"):
        two.page_done()
    done = two.succeeded()
    assert done.status == "succeeded" and done.finished and done.error is None
    assert done.finished_at is not None and done.finished_at >= done.started_at  # type: ignore[operator]


def test_resumed_job_keeps_its_first_start_and_counts_attempts() -> None:
    first = JobState.new(5, AnalyzeOptions()).started().page_done()
    again = first.started(pages_done=3)
    assert again.started_at == first.started_at
    assert (again.attempts, again.pages_done, again.status) == (2, 3, "running")


def test_failed_job_says_why() -> None:
    failed = JobState.new(1, AnalyzeOptions()).started().failed("page 1 cannot be rendered")
    assert failed.status == "failed" and failed.finished
    assert failed.error == "page 1 cannot be rendered"


def test_states_cannot_be_changed_in_place() -> None:
    state = JobState.new(1, AnalyzeOptions())
    with pytest.raises(pydantic.ValidationError):
        state.status = "running"  # type: ignore[misc]


def test_a_cancelled_job_is_finished_with_the_pages_it_did() -> None:
    running = JobState.new(5, AnalyzeOptions()).started().page_done().page_done()
    cancelled = running.cancelled()
    assert cancelled.status == "cancelled" and cancelled.finished and cancelled.finished_at is not None
    assert cancelled.pages_done == 2 and cancelled.error is None
    queued = JobState.new(3, AnalyzeOptions()).cancelled()
    assert queued.finished and queued.started_at is None and queued.pages_done == 0
