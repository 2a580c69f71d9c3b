"""PDF analyses as data: options, job state machine, per-page results and the store layout (no Ray).

A job lives in the store under ``jobs/<id>/``::

    state.json          JobState, rewritten as pages complete
    input.pdf           the uploaded document (a restarted runner resumes from it)
    pages/00001.json    PageResult of page 1, written once when the page is done
    pages/00001.png     page 1 with its regions drawn
    result.json         the assembled result, once the job succeeded
    active/<id>         marker of an unfinished job (lets a restarted runner find it without a scan)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from serve_app.core.clustering import Clustering
from serve_app.core.errors import InvalidInput, NotFound
from serve_app.core.layout import Box, Region
from serve_app.core.pdf import PageInfo, Word, text_in_box
from serve_app.core.schemas import describe_validation_error

JobStatus = Literal["queued", "running", "succeeded", "failed"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed"})
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyzeOptions(_Model):
    """How to analyse a PDF (query parameters of /v1/detect and /v1/jobs, arguments of the client)."""

    dpi: StrictInt = Field(
        default=72, ge=36, le=300, description="Rendering resolution; the model sees pages at 448 px."
    )
    score_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Drop regions below this score (server default if null)."
    )
    cluster: StrictBool = Field(
        default=False, description="Also embed every region's text and group similar regions."
    )


class RegionResult(_Model):
    """A layout region: box in PDF points (x0, y0, x1, y1; origin top-left) and the text inside it."""

    label: str
    score: float
    box: tuple[float, float, float, float]
    text: str


class PageResult(_Model):
    """One page: 1-based number, size in points, regions top to bottom."""

    number: int
    width: float
    height: float
    regions: list[RegionResult]


class RegionRef(_Model):
    """A region by page number and position in that page's ``regions``."""

    page: int
    region: int
    text: str


class RegionCluster(_Model):
    size: int
    representative: RegionRef
    members: list[RegionRef]


class RegionClusters(_Model):
    """Regions whose texts mean similar things, across the whole document."""

    clusters: list[RegionCluster]
    unclustered: list[RegionRef]


class AnalyzeResult(_Model):
    """The answer of /v1/detect and the result of a job."""

    page_count: int
    pages: list[PageResult]
    clusters: RegionClusters | None = None


class JobState(_Model):
    """What ``GET /v1/jobs/{id}`` answers; persisted as ``state.json``."""

    id: str
    status: JobStatus
    pages_total: int
    pages_done: int = 0
    options: AnalyzeOptions
    filename: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    # How many times a runner started this job; above 1 means it was resumed after a runner died.
    attempts: int = 0


def now() -> datetime:
    return datetime.now(UTC)


def new_job(pages_total: int, options: AnalyzeOptions, *, filename: str | None = None) -> JobState:
    return JobState(
        id=uuid.uuid4().hex,
        status="queued",
        pages_total=pages_total,
        options=options,
        filename=filename,
        created_at=now(),
    )


def check_job_id(job_id: str) -> str:
    """Reject anything that is not a job id before it reaches the store (ids are 32 hex digits)."""
    if not _JOB_ID.fullmatch(job_id):  # not match(): "$" also matches before a trailing newline
        raise NotFound(f"no job {job_id!r}: job ids are 32 hexadecimal digits")
    return job_id


def job_prefix(job_id: str) -> str:
    return f"jobs/{check_job_id(job_id)}/"


def state_key(job_id: str) -> str:
    return job_prefix(job_id) + "state.json"


def input_key(job_id: str) -> str:
    return job_prefix(job_id) + "input.pdf"


def result_key(job_id: str) -> str:
    return job_prefix(job_id) + "result.json"


def page_key(job_id: str, number: int, suffix: Literal["json", "png"]) -> str:
    return job_prefix(job_id) + f"pages/{number:05d}.{suffix}"


def active_key(job_id: str) -> str:
    return f"active/{check_job_id(job_id)}"


ACTIVE_PREFIX = "active/"


def done_pages(keys: Sequence[str]) -> set[int]:
    """Page numbers whose result JSON is in ``keys`` (a listing of ``jobs/<id>/pages/``)."""
    numbers = set()
    for key in keys:
        name = key.rsplit("/", 1)[-1]
        stem, _, suffix = name.partition(".")
        if suffix == "json" and stem.isascii() and stem.isdigit():
            numbers.add(int(stem))
    return numbers


def page_result(info: PageInfo, regions: Sequence[Region], words: Sequence[Word]) -> PageResult:
    """Attach the text layer's words to the detected regions of one page."""
    return PageResult(
        number=info.number,
        width=info.width_pt,
        height=info.height_pt,
        regions=[
            RegionResult(
                label=r.label,
                score=round(r.score, 4),
                box=(
                    round(r.box_pt[0], 2),
                    round(r.box_pt[1], 2),
                    round(r.box_pt[2], 2),
                    round(r.box_pt[3], 2),
                ),
                text=text_in_box(words, r.box_pt),
            )
            for r in regions
        ],
    )


def pixel_boxes(page: PageResult, *, dpi: int) -> list[tuple[str, float, Box]]:
    """(label, score, box in pixels) of the page's regions, for drawing on the page rendered at ``dpi``."""
    scale = dpi / 72.0
    return [
        (r.label, r.score, (r.box[0] * scale, r.box[1] * scale, r.box[2] * scale, r.box[3] * scale))
        for r in page.regions
    ]


def region_texts(pages: Sequence[PageResult], *, max_chars: int) -> list[RegionRef]:
    """Regions with text, in document order, texts cut to ``max_chars`` (what gets embedded)."""
    refs = []
    for page in pages:
        for i, region in enumerate(page.regions):
            text = " ".join(region.text.split())
            if text:
                refs.append(RegionRef(page=page.number, region=i, text=text[:max_chars]))
    return refs


def region_clusters(refs: Sequence[RegionRef], clustering: Clustering) -> RegionClusters:
    """Map a clustering of ``refs`` (row indices) back to regions."""
    return RegionClusters(
        clusters=[
            RegionCluster(
                size=len(c.members),
                representative=refs[c.representative],
                members=[refs[i] for i in c.members],
            )
            for c in clustering.clusters
        ],
        unclustered=[refs[i] for i in clustering.unclustered],
    )


def check_page_number(state: JobState, number: int) -> None:
    if not 1 <= number <= state.pages_total:
        raise NotFound(f"job {state.id} has pages 1 to {state.pages_total}; there is no page {number}")


def parse_options(params: dict[str, str]) -> AnalyzeOptions:
    """Options from URL query parameters (strings); unknown or bad values raise ``InvalidInput``."""
    data: dict[str, object] = {}
    for name, value in params.items():
        if name not in AnalyzeOptions.model_fields:
            known = ", ".join(AnalyzeOptions.model_fields)
            raise InvalidInput(f"unknown query parameter {name!r}; known: {known}")
        data[name] = _coerce(name, value)
    try:
        return AnalyzeOptions.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid query parameters: {describe_validation_error(exc)}") from None


def _coerce(name: str, value: str) -> object:
    try:
        if name == "dpi":
            return int(value)
        if name == "score_threshold":
            return float(value)
    except ValueError:
        raise InvalidInput(f"query parameter {name}={value!r} is not a number") from None
    if name == "cluster":
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise InvalidInput(f"query parameter cluster={value!r} must be true or false")
    return value
