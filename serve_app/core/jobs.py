"""The job state machine (no Ray): what ``GET /v1/jobs/{id}`` answers and ``state.json`` holds.

A job is ``queued`` at submit, ``running`` once a runner starts it (again after a runner restart),
then ``succeeded`` or ``failed``, or ``cancelled`` (``DELETE /v1/jobs/{id}``) before it finished.
States are immutable; each transition returns the next state.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from serve_app.core.analysis import AnalyzeOptions
from serve_app.core.catalog import ModelVersion
from serve_app.core.errors import NotFound

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


def now() -> datetime:
    return datetime.now(UTC)


class JobState(BaseModel):
    """What ``GET /v1/jobs/{id}`` answers; persisted as ``state.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    status: JobStatus
    pages_total: int
    pages_done: int = 0
    options: AnalyzeOptions
    # The model version the job runs on, fixed at submit: a new version deployed meanwhile does not
    # change it (None only in jobs stored before versions were recorded: they use the current one).
    model: ModelVersion | None = None
    filename: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    # How many times a runner started this job; above 1 means it was resumed after a runner died.
    attempts: int = 0
    # The name of the API key that submitted the job (None: authentication was off); only that key sees it.
    owner: str | None = None
    # Where the final state is POSTed, signed, once the job ends (docs/operations.md, "Webhooks").
    callback_url: str | None = None

    @classmethod
    def new(
        cls,
        pages_total: int,
        options: AnalyzeOptions,
        *,
        filename: str | None = None,
        model: ModelVersion | None = None,
        owner: str | None = None,
        callback_url: str | None = None,
    ) -> JobState:
        """A queued job with a fresh id."""
        return cls(
            id=uuid.uuid4().hex,
            status="queued",
            pages_total=pages_total,
            options=options,
            model=model,
            filename=filename,
            created_at=now(),
            owner=owner,
            callback_url=callback_url,
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def started(self, *, pages_done: int = 0) -> JobState:
        """A runner starts (or resumes) the job; ``pages_done`` pages were finished by earlier runs."""
        return self.model_copy(
            update={
                "status": "running",
                "started_at": self.started_at or now(),
                "attempts": self.attempts + 1,
                "pages_done": pages_done,
            }
        )

    def page_done(self) -> JobState:
        if self.pages_done >= self.pages_total:
            raise ValueError(f"job {self.id} has only {self.pages_total} pages")
        return self.model_copy(update={"pages_done": self.pages_done + 1})

    def succeeded(self) -> JobState:
        return self.model_copy(update={"status": "succeeded", "finished_at": now()})

    def cancelled(self) -> JobState:
        return self.model_copy(update={"status": "cancelled", "finished_at": now()})

    def failed(self, reason: str) -> JobState:
        return self.model_copy(update={"status": "failed", "finished_at": now(), "error": reason})

    def check_owner(self, owner: str | None) -> None:
        """``NotFound`` (as for an unknown id) unless ``owner`` may see the job: its own key, or any caller
        when ``owner`` is None (authentication off, or a Python handle inside the cluster)."""
        if owner is not None and self.owner != owner:
            raise NotFound(f"no job {self.id}")

    def check_page_number(self, number: int) -> None:
        """``NotFound`` unless the job has a page ``number`` (1-based)."""
        if not 1 <= number <= self.pages_total:
            raise NotFound(f"job {self.id} has pages 1 to {self.pages_total}; there is no page {number}")
