"""Where a job's artefacts live in the store (``serve_app.core.storage``): the key layout, in one place.

A job lives under ``jobs/<id>/``::

    state.json          JobState: written at submit, when a runner starts it, and when it finishes
    input.pdf           the uploaded document (a restarted runner resumes from it)
    pages.json          the page list (numbers, sizes), written once at submit: resume does not re-inspect
    pages/00001.json    PageResult of page 1, written once when the page is done
    pages/00001.png     page 1 with its regions drawn
    result.json         the assembled result, once the job succeeded
    result.md           the result as Markdown, written the first time it is asked for
    active/<id>         marker of an unfinished job (lets a restarted runner find it without a scan)
    quarantine/<id>     an active marker whose job could not be read back (kept for an operator to look at)
    webhooks/<id>.json  a completion webhook not yet delivered (serve_app.core.webhooks.Delivery)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from serve_app.core.errors import NotFound

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
ACTIVE_PREFIX = "active/"
QUARANTINE_PREFIX = "quarantine/"
WEBHOOKS_PREFIX = "webhooks/"


def check_job_id(job_id: str) -> str:
    """Reject anything that is not a job id before it reaches the store (ids are 32 hex digits)."""
    if not _JOB_ID.fullmatch(job_id):  # not match(): "$" also matches before a trailing newline
        raise NotFound(f"no job {job_id!r}: job ids are 32 hexadecimal digits")
    return job_id


JOBS_PREFIX = "jobs/"
STATE_FILE = "state.json"


def job_prefix(job_id: str) -> str:
    return f"{JOBS_PREFIX}{check_job_id(job_id)}/"


def state_key(job_id: str) -> str:
    return job_prefix(job_id) + STATE_FILE


def input_key(job_id: str) -> str:
    return job_prefix(job_id) + "input.pdf"


def result_key(job_id: str) -> str:
    return job_prefix(job_id) + "result.json"


def markdown_key(job_id: str) -> str:
    return job_prefix(job_id) + "result.md"


def page_key(job_id: str, number: int, suffix: Literal["json", "png"]) -> str:
    return job_prefix(job_id) + f"pages/{number:05d}.{suffix}"


def pages_key(job_id: str) -> str:
    return job_prefix(job_id) + "pages.json"


def pages_prefix(job_id: str) -> str:
    return job_prefix(job_id) + "pages/"


def active_key(job_id: str) -> str:
    return ACTIVE_PREFIX + check_job_id(job_id)


def quarantine_key(job_id: str) -> str:
    """Where an unreadable job's active marker goes; ``job_id`` is whatever followed ``active/``."""
    return QUARANTINE_PREFIX + job_id


def done_pages(keys: Sequence[str]) -> set[int]:
    """Page numbers whose result JSON is in ``keys`` (a listing of ``jobs/<id>/pages/``)."""
    numbers = set()
    for key in keys:
        name = key.rsplit("/", 1)[-1]
        stem, _, suffix = name.partition(".")
        if suffix == "json" and stem.isascii() and stem.isdigit():
            numbers.add(int(stem))
    return numbers


def webhook_key(job_id: str) -> str:
    """The pending completion webhook of a job (deleted once delivered or given up)."""
    return f"{WEBHOOKS_PREFIX}{check_job_id(job_id)}.json"
