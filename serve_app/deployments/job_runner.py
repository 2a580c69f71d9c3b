"""JobRunner: turns PDFs into per-page layout results, synchronously or as persisted jobs.

Holds no model. Pages are rendered by Ray tasks (``serve_app.runtime.tasks``), go into the object store
once, and reach Detector replicas by reference; at most ``max_pages_in_flight`` pages of a document
are alive at a time.

A fresh job writes each artefact once (``serve_app.core.job_keys``) and reads none of its own output:
the runner keeps the PDF (in the object store), the page list and this run's page results in memory,
and answers ``status`` for the jobs it runs from memory. Only a resumed job (its runner died) reads back
what the earlier run stored: the input, the page list and the pages already done, which it does not redo.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import ray
from pydantic import TypeAdapter
from ray import serve
from ray.serve import metrics
from ray.serve.handle import DeploymentHandle
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from serve_app.core import job_keys as keys
from serve_app.core.admission import PageWindow, WorkLimit, pages_in_flight
from serve_app.core.analysis import (
    AnalyzeOptions,
    AnalyzeResult,
    PageResult,
    RegionClusters,
    page_result,
    region_clusters,
    region_texts,
)
from serve_app.core.arrange import arrange_regions
from serve_app.core.auth import FairQueue, KeySource, Owner, check_quota
from serve_app.core.catalog import ModelVersion
from serve_app.core.errors import (
    InvalidInput,
    JobCancelled,
    JobFailed,
    JobNotFinished,
    LimitExceeded,
    NotFound,
    ServeAppError,
    StoreUnavailable,
    Unavailable,
)
from serve_app.core.jobs import JobState, now
from serve_app.core.layout import Region
from serve_app.core.pdf import PageInfo, page_pixels
from serve_app.core.storage import Store, get_json, open_store, put_json
from serve_app.core.webhooks import (
    SECRET_ENV,
    Delivery,
    DeliveryFailed,
    check_callback_url,
    next_attempt,
    post,
)
from serve_app.runtime.ray_errors import RETRYABLE, root_cause
from serve_app.runtime.tasks import (
    PdfRef,
    annotate_task,
    inspect_task,
    markdown_task,
    page_png_task,
    render_task,
)
from serve_app.settings import DEFAULT_NUM_CPUS, JobRunnerConfig, parse_settings
from serve_app.types import PageImage

logger = logging.getLogger("ray.serve")

T = TypeVar("T")
PageDone = Callable[[PageResult, list[Region], ray.ObjectRef], Awaitable[None]]
PAGE_LIST = TypeAdapter(list[PageInfo])

MAX_CLUSTER_REGIONS = 10_000
MAX_REGION_CHARS = 2_000
RECENT_JOBS = 256  # finished jobs whose page order watch() still knows
CANCEL_WAIT_S = 30.0  # DELETE of a running job answers once it stopped, or after this long
VIEWED_PDFS = 2  # jobs whose PDF stays in the object store for page views (GET .../pages/{n}/image.png)
STORE_PROBE_S = 1.0  # ready(): the store answers a listing this fast to count as up (< ready_timeout_s)


@dataclass
class _Job:
    """A job this runner holds: its latest state and, for a fresh job, what it already has in memory."""

    state: JobState
    pdf: ray.ObjectRef[bytes] | None = None  # None: a resumed job reads its input from the store
    pages: list[PageInfo] | None = None
    results: dict[int, PageResult] = field(default_factory=dict)
    # Pages finished by this run, in the order they finished, and pages_done when this run started.
    finished: list[int] = field(default_factory=list)
    base: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    cancelling: bool = False  # DELETE asked: no page starts or writes any more
    writes: set[asyncio.Future[Any]] = field(default_factory=set)  # store writes in flight (threads)
    window: PageWindow | None = None  # its pages alive at once, resized as Detector replicas change
    page_bytes: int = 0  # the largest page image it renders (RGB bytes)

    def update(self, state: JobState, *, page: int | None = None) -> None:
        """Move to ``state`` (and record ``page`` as finished); wake whoever watches the job."""
        if page is not None:
            self.finished.append(page)
        elif state.status == "running" and self.state.status != "running":
            self.base, self.finished = state.pages_done, []
        self.state = state
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass(frozen=True)
class JobProgress:
    """What ``JobRunner.watch`` answers: the job's state and the pages it finished since the caller looked."""

    state: JobState
    pages: list[int]


def _running_replicas(deployment: str) -> int:
    """Replicas of ``deployment`` (in this replica's application) RUNNING now, from Serve's controller."""
    app = serve.get_replica_context().app_name
    states = serve.status().applications[app].deployments[deployment].replica_states
    return sum(count for state, count in states.items() if state == "RUNNING")  # a str enum


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS["JobRunner"]})
class JobRunner:
    """Runs PDF analyses: ``detect`` answers at once, ``submit`` starts a job persisted in the store."""

    def __init__(
        self, detector: DeploymentHandle, embedder: DeploymentHandle, clusterer: DeploymentHandle
    ) -> None:
        self._detector = detector
        self._embedder = embedder
        self._clusterer = clusterer
        # Defaults and the environment (SERVE_APP_STORE_URL) are enough to run: Serve calls reconfigure
        # only when the deployment has a user_config.
        self._config = JobRunnerConfig()
        self._store: Store = open_store(self._config.store_url)
        self._sync_slots = asyncio.Semaphore(self._config.max_pages_in_flight)
        # Backpressure of /v1/detect: pages of synchronous analyses admitted (rendering, detecting, waiting).
        self._sync_admitted = WorkLimit(self._config.max_sync_pages_queued, what="pages of /v1/detect")
        self._jobs: dict[str, _Job] = {}  # queued and running here; finished ones live in the store only
        self._pending: FairQueue[str] = FairQueue()  # queued jobs, started fairly between API keys
        self._keys = KeySource()  # per-key limits and webhook secrets (the Ingress authenticates)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._resumed: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None  # the retention sweep (started with the runner)
        self._sweep_now = asyncio.Event()  # a new user_config wakes it
        # Completion webhooks not delivered yet (persisted in the store they were made in), by job id.
        self._deliveries: dict[str, tuple[Store, Delivery]] = {}
        self._deliverer: asyncio.Task[None] | None = None
        self._deliver_now = asyncio.Event()
        # Running Detector replicas (re-read every capacity_refresh_s): a job's pages in flight follow them.
        self._detector_replicas = 1
        self._capacity: asyncio.Task[None] | None = None
        # Pages of synchronous analyses alive now, and the most there ever were (reported by ready()).
        self._sync_pages = 0
        self._sync_pages_peak = 0
        self._watchers = 0  # watch() calls waiting now (long-polls, event streams)
        self._recent: OrderedDict[str, _Job] = OrderedDict()  # the last jobs that finished here
        self._pdf_refs: OrderedDict[str, ray.ObjectRef[bytes]] = OrderedDict()  # PDFs of pages viewed lately
        self._page_seconds = metrics.Histogram(
            "serve_app_pipeline_page_seconds",
            description="Render + detect + text time per page, end to end inside the runner.",
            boundaries=[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
        )
        self._pages = metrics.Counter("serve_app_pipeline_pages", description="Pages analysed.")
        self._job_outcomes = metrics.Counter(
            "serve_app_jobs_finished", description="Jobs finished, by status.", tag_keys=("status",)
        )

    async def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config`` (a new store is used by jobs that start from now on)."""
        self._config = parse_settings(JobRunnerConfig, config, where="JobRunner user_config")
        self._sync_slots = asyncio.Semaphore(self._config.max_pages_in_flight)
        self._sync_admitted.resize(self._config.max_sync_pages_queued)
        self._store = open_store(self._config.store_url)
        self._sweep_now.set()
        await self._resume_once()
        self._launch()

    async def check_health(self) -> None:
        """Serve's periodic health check; the first one resumes unfinished jobs when no reconfigure ran."""
        await self._resume_once()

    async def ready(self) -> dict[str, Any]:
        store_error = await self._store_error()
        if store_error is None:
            await self._resume_once()
        return {
            "store": self._store.url,
            "store_error": store_error,
            "running": len(self._running),
            "queued": len(self._pending),
            "max_pages_in_flight": self._config.max_pages_in_flight,
            "detector_replicas": self._detector_replicas,
            "job_pages_in_flight": {
                j.state.id: {"limit": j.window.limit, "in_use": j.window.in_use, "peak": j.window.peak}
                for j in self._jobs.values()
                if j.window is not None
            },
            "sync_pages_in_flight_peak": self._sync_pages_peak,
            "sync_pages_admitted": self._sync_admitted.in_flight,
            "max_sync_pages_queued": self._config.max_sync_pages_queued,
            "max_queued_jobs": self._config.max_queued_jobs,
            "page_render_timeout_s": self._config.page_render_timeout_s,
            "webhook_allowed_networks": self._config.webhook_allowed_networks,
            "store_retry_s": self._config.store_retry_s,
            "webhooks_pending": len(self._deliveries),
            "sync_refused": self._sync_admitted.refused,
            "watchers": self._watchers,
        }

    async def _store_error(self) -> str | None:
        """Why the store cannot be used now (None: it answered a listing within a few seconds)."""
        try:
            await asyncio.wait_for(self._io(self._store.list, keys.ACTIVE_PREFIX), STORE_PROBE_S)
        except TimeoutError:
            return f"no answer within {STORE_PROBE_S:g} s"
        except StoreUnavailable as exc:
            return exc.message
        return None

    # ---- synchronous analysis ---------------------------------------------------------------------

    async def detect(self, pdf: bytes, options: AnalyzeOptions) -> AnalyzeResult:
        """Analyse a short PDF now (at most ``max_sync_pages`` pages); nothing is stored."""
        result, _ = await self._analyze(pdf, options, max_pages=self._config.max_sync_pages, hint=True)
        return result

    async def detect_markdown(self, pdf: bytes, options: AnalyzeOptions) -> str:
        """``detect``, answered as Markdown (``serve_app.core.markdown``)."""
        result, pdf_ref = await self._analyze(pdf, options, max_pages=self._config.max_sync_pages, hint=True)
        return await self._markdown(pdf_ref, result)

    async def analyze(self, pdf: bytes, options: AnalyzeOptions) -> AnalyzeResult:
        """Like ``detect`` for documents up to ``max_job_pages`` (for Python callers that can wait)."""
        result, _ = await self._analyze(pdf, options, max_pages=self._config.max_job_pages, hint=False)
        return result

    async def _analyze(
        self, pdf: bytes, options: AnalyzeOptions, *, max_pages: int, hint: bool
    ) -> tuple[AnalyzeResult, ray.ObjectRef[bytes]]:
        # Synchronous analyses share one bound, so many concurrent uploads cannot fill the object store;
        # over HTTP (``hint``), what cannot start soon is refused at once (503 + Retry-After): a page is
        # held from the start, the rest once the page count is known.
        with self._sync_admitted.admit_growing() if hint else _any_size() as admit:
            version = await self._resolve(options.model)  # an unknown model is a 422 before any work
            pdf_ref = ray.put(pdf)
            try:
                pages = await self._inspect(pdf_ref, options, max_pages=max_pages)
            except LimitExceeded as exc:
                if hint and "pages" in exc.message:
                    raise LimitExceeded(f"{exc.message}; submit long documents to /v1/jobs") from None
                raise
            admit(len(pages))
            results = await self._run_pages(
                pdf_ref, pages, options, version, on_page=None, in_flight=self._sync_slots
            )
        return await self._assemble(results, options, version), pdf_ref

    # ---- jobs ---------------------------------------------------------------------------------------

    async def submit(
        self,
        pdf: bytes,
        options: AnalyzeOptions,
        filename: str | None = None,
        *,
        owner: str | None = None,
        callback_url: str | None = None,
    ) -> JobState:
        """Validate the PDF, persist it with its page list and a queued state, and start the job when a
        slot is free. ``owner``: the API key's name (its quotas apply, and only it sees the job)."""
        await self._resume_once()
        if len(self._pending) >= self._config.max_queued_jobs:
            raise Unavailable(
                f"{len(self._pending)} jobs are already waiting to start (max_queued_jobs); retry later",
                retry_after_s=30,
            )
        if callback_url is not None:
            callback_url, _ = await self._check_callback(callback_url, owner)
        # The job keeps the model version current now, whatever is deployed while it runs.
        version = await self._resolve(options.model)
        pdf_ref = ray.put(pdf)
        pages = await self._inspect(pdf_ref, options, max_pages=self._config.max_job_pages)
        self._check_quota(owner, len(pages))
        state = JobState.new(
            len(pages), options, filename=filename, model=version, owner=owner, callback_url=callback_url
        )
        store = self._store
        await self._io(store.put, keys.input_key(state.id), pdf, content_type="application/pdf")
        await self._io(store.put, keys.pages_key(state.id), PAGE_LIST.dump_json(pages))
        await self._save(store, state)
        await self._io(store.put, keys.active_key(state.id), b"")
        self._check_quota(owner, len(pages))  # again: other submits of this key may have landed meanwhile
        self._jobs[state.id] = _Job(state=state, pdf=pdf_ref, pages=pages)
        self._pending.push(owner, state.id)
        self._launch()
        logger.info("job %s queued: %d pages, %s", state.id, len(pages), options.model_dump())
        return state

    def _check_quota(self, owner: Owner, pages: int) -> None:
        """429 when ``owner`` has as many jobs or pages queued and running as its key may."""
        key = self._keys.current().get(owner) if owner is not None else None
        held = [j.state for j in self._jobs.values() if j.state.owner == owner and not j.state.finished]
        config = self._config
        check_quota(
            owner_jobs=len(held),
            owner_pages=sum(s.pages_total - s.pages_done for s in held),
            new_pages=pages,
            max_jobs=key.max_jobs
            if key is not None and key.max_jobs is not None
            else config.max_jobs_per_key,
            max_pages=(
                key.max_pages if key is not None and key.max_pages is not None else config.max_pages_per_key
            ),
        )

    async def status(self, job_id: str, owner: str | None = None) -> JobState:
        """The job's state; ``owner`` (an API key's name) sees only its own jobs (others are a 404)."""
        job = self._jobs.get(job_id) or self._recent.get(job_id)
        state = job.state if job is not None else await self._load(self._store, job_id)
        state.check_owner(owner)
        return state

    async def cancel(self, job_id: str, owner: str | None = None) -> JobState:
        """``DELETE /v1/jobs/{id}``. A queued or running job is cancelled: no page starts any more, pages in
        flight stop (their Detector calls are cancelled), the writes already started land, then the state
        becomes ``cancelled`` and nothing more is written; the answer comes after all that. A finished job is
        deleted with all its files (then it is a 404)."""
        await self._resume_once()
        known = await self.status(job_id, owner)  # 404 for an unknown job or another key's
        job = self._jobs.get(job_id)
        if job is not None and job.state.finished:  # finishing right now: let its last writes land
            finishing = self._running.get(job_id)
            if finishing is not None:
                await asyncio.wait({finishing}, timeout=CANCEL_WAIT_S)
            job = self._jobs.get(job_id)
        if job is None:  # finished (just now: among the recent ones), or not held by this runner
            recent = self._recent.get(job_id)
            state = recent.state if recent is not None else known
            if not state.finished:
                raise Unavailable(f"job {job_id} is not held by this runner yet; retry shortly")
            await self._delete_job(self._store, job_id)
            logger.info("job %s deleted (%s)", job_id, state.status)
            return state
        job.cancelling = True
        task = self._running.get(job_id)
        if task is None:  # queued: it never starts
            self._pending.remove(job_id)
            job.update(job.state.cancelled())
            await self._save(self._store, job.state)
            await self._announce(self._store, job.state)
            await self._io(self._store.delete, keys.active_key(job_id))
            self._retire(job_id, job)
        else:
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
        logger.info("job %s cancelled at %d/%d pages", job_id, job.state.pages_done, job.state.pages_total)
        return job.state

    def _retire(self, job_id: str, job: _Job) -> None:
        """A job that ended leaves the runner's jobs; it is kept a while among the recent ones, so a watcher
        that looks after the end still gets the last pages' numbers. It keeps its state and page order
        only: its page results are in the store, and its PDF leaves the object store (256 finished jobs'
        results held here were most of the JobRunner's growth in bench-creep)."""
        job.results, job.pdf, job.pages, job.window = {}, None, None, None
        self._recent[job_id] = self._jobs.pop(job_id, job)
        while len(self._recent) > RECENT_JOBS:
            self._recent.popitem(last=False)

    async def _write(
        self,
        job: _Job,
        fn: Callable[..., Any],
        *args: Any,
        then: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        """A store write of a job's page: none starts once the job is cancelling, and one that started is
        tracked, so a cancel waits for it to land instead of leaving it to finish behind the answer.
        ``then`` runs once the write landed, even if the job was cancelled meanwhile (what it records is
        true either way)."""
        if job.cancelling:
            raise asyncio.CancelledError
        future = asyncio.ensure_future(self._durable(fn, *args, **kwargs))
        job.writes.add(future)
        future.add_done_callback(job.writes.discard)
        if then is not None:
            future.add_done_callback(
                lambda f: then() if not f.cancelled() and f.exception() is None else None
            )
        await asyncio.shield(future)

    async def _drain(self, job: _Job) -> None:
        if job.writes:
            await asyncio.wait(set(job.writes))

    async def _delete_job(self, store: Store, job_id: str) -> None:
        """Every file of a finished job; its state goes last, so a half-deleted job is still found."""
        found = await self._io(store.list, keys.job_prefix(job_id))
        state = keys.state_key(job_id)
        for key in [k for k in found if k != state] + [state]:
            await self._io(store.delete, key)
        self._recent.pop(job_id, None)

    async def _sweep(self) -> None:
        """Delete finished jobs older than ``retention_days``, every ``retention_sweep_s`` (when set)."""
        while True:
            config = self._config
            if config.retention_days is not None:
                try:
                    removed = await self._sweep_once(self._store, config.retention_days)
                    if removed:
                        logger.info(
                            "retention: deleted %d jobs finished over %g days ago",
                            removed,
                            config.retention_days,
                        )
                except Exception:
                    logger.exception(
                        "retention sweep failed; it runs again in %g s", config.retention_sweep_s
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_now.wait(), config.retention_sweep_s)
            self._sweep_now.clear()

    async def _sweep_once(self, store: Store, days: float) -> int:
        cutoff = now() - timedelta(days=days)
        removed = 0
        for key in await self._io(store.list, keys.JOBS_PREFIX):
            if not key.endswith("/" + keys.STATE_FILE):
                continue
            job_id = key[len(keys.JOBS_PREFIX) :].split("/", 1)[0]
            if job_id in self._jobs:
                continue
            try:
                state = await self._load(store, job_id)
            except (NotFound, ValueError):
                continue
            if state.finished and state.finished_at is not None and state.finished_at < cutoff:
                await self._delete_job(store, job_id)
                removed += 1
        return removed

    async def watch(
        self,
        job_id: str,
        *,
        status: str | None = None,
        pages_done: int | None = None,
        timeout_s: float = 30.0,
        owner: str | None = None,
    ) -> JobProgress:
        """The job's state once it differs from ``status``/``pages_done`` (what the caller saw; None: the
        state now), it finished, or ``timeout_s`` passed; with the numbers of the pages this runner finished
        after ``pages_done``. Long-polls and event streams wait here without polling the store."""
        state = await self.status(job_id, owner)
        seen = (status or state.status, state.pages_done if pages_done is None else pages_done)
        deadline = time.monotonic() + max(0.0, timeout_s)
        self._watchers += 1
        try:
            while not state.finished and (state.status, state.pages_done) == seen:
                job = self._jobs.get(job_id)
                remaining = deadline - time.monotonic()
                if job is None or remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(job.changed.wait(), remaining)
                state = await self.status(job_id)
        finally:
            self._watchers -= 1
        job = self._jobs.get(job_id) or self._recent.get(job_id)
        pages: list[int] = []
        if job is not None and seen[1] >= job.base:
            pages = job.finished[seen[1] - job.base :]
        return JobProgress(state=state, pages=pages)

    async def result(self, job_id: str, owner: str | None = None) -> bytes:
        """The result JSON of a succeeded job, as stored."""
        await self._check_succeeded(job_id, owner)
        return await self._io(self._store.get, keys.result_key(job_id))

    async def _check_succeeded(self, job_id: str, owner: str | None) -> None:
        """Raise the error that says why the job has no result, unless it succeeded."""
        state = await self.status(job_id, owner)
        if state.status == "failed":
            raise JobFailed(f"job {job_id} failed: {state.error}")
        if state.status == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled; it has no result")
        if state.status != "succeeded":
            raise JobNotFinished(
                f"job {job_id} is {state.status} ({state.pages_done}/{state.pages_total} pages); "
                "poll GET /v1/jobs/{id} until it succeeds"
            )

    async def result_markdown(self, job_id: str, owner: str | None = None) -> bytes:
        """The result of a succeeded job as Markdown, made from the stored result and PDF the first time it
        is asked for, then stored beside the result."""
        await self._check_succeeded(job_id, owner)
        store = self._store
        try:
            return await self._io(store.get, keys.markdown_key(job_id))
        except NotFound:
            pass
        result = AnalyzeResult.model_validate_json(await self._io(store.get, keys.result_key(job_id)))
        text = (await self._markdown(await self._job_pdf(job_id), result)).encode("utf-8")
        await self._io(
            store.put, keys.markdown_key(job_id), text, content_type="text/markdown; charset=utf-8"
        )
        return text

    async def page_image(self, job_id: str, number: int, owner: str | None = None) -> bytes:
        """Page ``number`` (1-based) of the job's PDF as a PNG at the job's dpi, nothing drawn (the web page
        draws the regions over it)."""
        state = await self.status(job_id, owner)
        state.check_page_number(number)
        ref = page_png_task.options(num_cpus=self._config.render_num_cpus).remote(
            PdfRef(await self._job_pdf(job_id)),
            number - 1,
            dpi=state.options.dpi,
            nice_increment=self._config.render_nice_increment,
        )
        png: bytes = await self._rendered(ref, number)
        return png

    async def _job_pdf(self, job_id: str) -> ray.ObjectRef[bytes]:
        """The job's PDF in the object store: the running job's own, or read from the store once and kept
        for the last ``VIEWED_PDFS`` jobs looked at (page views, Markdown)."""
        pdf_ref = self._pdf_refs.get(job_id)
        if pdf_ref is None:
            job = self._jobs.get(job_id)
            pdf_ref = job.pdf if job is not None and job.pdf is not None else None
            if pdf_ref is None:
                pdf_ref = ray.put(await self._io(self._store.get, keys.input_key(job_id)))
            self._pdf_refs[job_id] = pdf_ref
            while len(self._pdf_refs) > VIEWED_PDFS:
                self._pdf_refs.popitem(last=False)
        self._pdf_refs.move_to_end(job_id)
        return pdf_ref

    async def _markdown(self, pdf_ref: ray.ObjectRef[bytes], result: AnalyzeResult) -> str:
        text: str = await markdown_task.options(num_cpus=self._config.render_num_cpus).remote(
            PdfRef(pdf_ref), result, nice_increment=self._config.render_nice_increment
        )
        return text

    async def page_png(self, job_id: str, number: int, owner: str | None = None) -> bytes:
        """Page ``number`` (1-based) with its regions drawn, once that page is done."""
        state = await self.status(job_id, owner)
        state.check_page_number(number)
        try:
            return await self._io(self._store.get, keys.page_key(job_id, number, "png"))
        except NotFound:
            raise JobNotFinished(
                f"page {number} of job {job_id} is not done yet "
                f"({state.pages_done}/{state.pages_total} pages)"
            ) from None

    async def _resume_once(self) -> None:
        """Queue the unfinished jobs found in the store, once per runner (they were another runner's)."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="retention-sweep")
        if self._deliverer is None:
            self._deliverer = asyncio.get_running_loop().create_task(self._deliver_forever(), name="webhooks")
        if self._capacity is None:
            self._capacity = asyncio.get_running_loop().create_task(self._watch_capacity(), name="capacity")
        if self._resumed is None:
            self._resumed = asyncio.get_running_loop().create_task(self._resume_unfinished())
        try:
            await asyncio.shield(self._resumed)
        except Exception:
            self._resumed = None  # the store was unreachable: the next call tries again
            raise

    async def _resume_unfinished(self) -> None:
        store = self._store
        for key in await self._io(store.list, keys.WEBHOOKS_PREFIX):  # pending webhooks of an earlier runner
            try:
                delivery = Delivery.model_validate(await self._io(get_json, store, key))
            except (NotFound, ValueError) as exc:
                logger.error("webhook %s cannot be read (%s); it is dropped", key, exc)
                await self._io(store.delete, key)
                continue
            self._deliveries.setdefault(delivery.job_id, (store, delivery))
        self._deliver_now.set()
        states = []
        for key in await self._io(store.list, keys.ACTIVE_PREFIX):
            job_id = key.removeprefix(keys.ACTIVE_PREFIX)
            try:
                states.append(await self._load(store, job_id))
            except (NotFound, ValueError) as exc:  # no state, or one that does not parse (ValidationError)
                await self._quarantine(store, job_id, exc)
        for state in sorted(states, key=lambda s: s.created_at):
            if state.id in self._jobs:
                continue
            if state.finished:
                await self._io(store.delete, keys.active_key(state.id))
                continue
            logger.info("resuming job %s (attempt %d)", state.id, state.attempts + 1)
            self._jobs[state.id] = _Job(state=state)
            self._pending.push(state.owner, state.id)
        self._launch()

    async def _quarantine(self, store: Store, job_id: str, exc: BaseException) -> None:
        """Move the active marker of a job that cannot be read aside, so no restart retries it again."""
        logger.error(
            "job %s cannot be loaded (%s); its marker moves to %s", job_id, exc, keys.QUARANTINE_PREFIX
        )
        await self._io(store.put, keys.quarantine_key(job_id), f"{type(exc).__name__}: {exc}".encode())
        await self._io(store.delete, keys.ACTIVE_PREFIX + job_id)

    def _launch(self) -> None:
        while self._pending and len(self._running) < self._config.max_running_jobs:
            running: Counter[Owner] = Counter(self._jobs[j].state.owner for j in self._running)
            chosen = self._pending.pop(running, max_running_per_owner=self._config.max_running_jobs_per_key)
            if chosen is None:  # every key with queued jobs runs as many as it may
                break
            job_id = chosen[1]
            task = asyncio.get_running_loop().create_task(self._run_job(job_id), name=f"job-{job_id}")
            self._running[job_id] = task
            task.add_done_callback(functools.partial(self._finished, job_id))

    def _finished(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._launch()

    async def _run_job(self, job_id: str) -> None:
        store = self._store  # a job keeps the store it started with, even if user_config changes it
        job = self._jobs[job_id]
        try:
            try:
                pdf_ref, pages, done = await self._prepare(store, job)
                if job.state.model is None:  # stored before versions were recorded
                    version = await self._resolve(job.state.options.model)
                    job.state = job.state.model_copy(update={"model": version})
                job.update(job.state.started(pages_done=len(done)))
                await self._save(store, job.state)
                await self._run_job_pages(store, job, pdf_ref, [p for p in pages if p.number not in done])
                results = [job.results.get(p.number) or done[p.number] for p in pages]
                assert job.state.model is not None
                result = await self._assemble(results, job.state.options, job.state.model)
                await self._durable(put_json, store, keys.result_key(job_id), result.model_dump())
                job.update(job.state.succeeded())
            except asyncio.CancelledError:
                if not job.cancelling:
                    logger.warning(
                        "job %s interrupted (replica stopping); it resumes when a runner starts", job_id
                    )
                    raise
                # DELETE /v1/jobs/{id}: let the writes already in flight land, then record the end.
                await self._drain(job)
                job.update(job.state.cancelled())
            except Exception as exc:
                job.update(job.state.failed(_reason(exc, job_id)))
            try:
                await self._save(store, job.state)
                await self._announce(store, job.state)
                await self._durable(store.delete, keys.active_key(job_id))
            except StoreUnavailable as exc:  # this runner answers the end from memory; a new one resumes it
                logger.error(
                    "job %s ended (%s) but the store took no record of it: %s", job_id, job.state.status, exc
                )
        finally:
            self._retire(job_id, job)
        self._job_outcomes.inc(tags={"status": job.state.status})
        detail = f": {job.state.error}" if job.state.error else ""
        logger.info("job %s %s (%d pages)%s", job_id, job.state.status, job.state.pages_total, detail)

    async def _prepare(
        self, store: Store, job: _Job
    ) -> tuple[ray.ObjectRef[bytes], list[PageInfo], dict[int, PageResult]]:
        """The PDF, its pages and the pages done by earlier runs: from memory for a fresh job; a resumed
        job reads them back from the store."""
        if job.pdf is not None and job.pages is not None:
            return job.pdf, job.pages, {}
        job_id = job.state.id
        pdf_ref = ray.put(await self._durable(store.get, keys.input_key(job_id)))
        try:
            pages = PAGE_LIST.validate_json(await self._durable(store.get, keys.pages_key(job_id)))
        except NotFound:  # a job submitted before the page list was stored
            pages = await self._inspect(pdf_ref, job.state.options, max_pages=self._config.max_job_pages)
        done = {}
        for number in sorted(keys.done_pages(await self._durable(store.list, keys.pages_prefix(job_id)))):
            data = await self._durable(get_json, store, keys.page_key(job_id, number, "json"))
            done[number] = PageResult.model_validate(data)
        return pdf_ref, pages, done

    async def _run_job_pages(
        self, store: Store, job: _Job, pdf_ref: ray.ObjectRef[bytes], todo: list[PageInfo]
    ) -> None:
        job_id = job.state.id
        version = job.state.model
        assert version is not None

        async def page_done(page: PageResult, regions: list[Region], image: ray.ObjectRef) -> None:
            drawn = [(r.label, r.score, r.box_px, r.mask_px) for r in regions]  # as the page JSON lists them
            png = await annotate_task.options(num_cpus=self._config.render_num_cpus).remote(
                image, drawn, labels=version.labels, nice_increment=self._config.render_nice_increment
            )
            await self._write(
                job, store.put, keys.page_key(job_id, page.number, "png"), png, content_type="image/png"
            )

            def done() -> None:
                job.results[page.number] = page
                job.update(job.state.page_done(), page=page.number)

            # The page JSON is written last: its presence is what marks the page done for a resumed job
            # (and for this one: ``done`` runs once it landed, even if a cancel came meanwhile).
            key = keys.page_key(job_id, page.number, "json")
            await self._write(job, put_json, store, key, page.model_dump(), then=done)

        dpi = job.state.options.dpi
        job.page_bytes = max(
            (math.prod(page_pixels(p.width_pt, p.height_pt, dpi=dpi)) * 3 for p in todo), default=1
        )
        job.window = PageWindow(self._job_pages_in_flight(job))
        try:
            await self._run_pages(
                pdf_ref, todo, job.state.options, version, on_page=page_done, in_flight=job.window
            )
        finally:
            logger.info(
                "job %s: at most %d pages in flight (limit %d, %d Detector replicas)",
                job_id, job.window.peak, job.window.limit, self._detector_replicas,
            )  # fmt: skip

    def _job_pages_in_flight(self, job: _Job) -> int:
        config = self._config
        return pages_in_flight(
            self._detector_replicas,
            per_replica=config.pages_per_detector_replica,
            maximum=config.max_pages_in_flight,
            page_bytes=job.page_bytes,
            byte_budget=config.max_page_bytes_in_flight,
        )

    async def _watch_capacity(self) -> None:
        """Every ``capacity_refresh_s``: count the running Detector replicas (Serve's controller) and
        resize the page window of every running job to match."""
        while True:
            try:
                replicas = await asyncio.to_thread(_running_replicas, "Detector")
            except Exception as exc:  # the controller is restarting: keep the last count
                logger.warning("cannot read the Detector's replica count: %s", exc)
            else:
                if replicas != self._detector_replicas:
                    logger.info("Detector replicas running: %d (was %d)", replicas, self._detector_replicas)
                self._detector_replicas = max(1, replicas)
                for job in list(self._jobs.values()):
                    if job.window is not None:
                        await job.window.resize(self._job_pages_in_flight(job))
            await asyncio.sleep(self._config.capacity_refresh_s)

    # ---- the page pipeline ----------------------------------------------------------------------

    async def _inspect(
        self, pdf_ref: ray.ObjectRef[bytes], options: AnalyzeOptions, *, max_pages: int
    ) -> list[PageInfo]:
        pages: list[PageInfo] = await inspect_task.options(num_cpus=self._config.render_num_cpus).remote(
            pdf_ref, dpi=options.dpi, max_pages=max_pages, max_page_pixels=self._config.max_page_pixels
        )
        return pages

    async def _run_pages(
        self,
        pdf_ref: ray.ObjectRef[bytes],
        pages: list[PageInfo],
        options: AnalyzeOptions,
        version: ModelVersion,
        *,
        on_page: PageDone | None,
        in_flight: asyncio.Semaphore | PageWindow,
    ) -> list[PageResult]:
        """Render, detect and read the text of ``pages``; ``in_flight`` bounds the pages alive at once."""
        render = render_task.options(num_cpus=self._config.render_num_cpus)
        pdf = PdfRef(pdf_ref)
        sync = in_flight is self._sync_slots

        async def one(info: PageInfo) -> PageResult:
            async with in_flight, self._counted(sync):
                began = time.perf_counter()
                image_ref, content_ref = render.remote(
                    pdf, info.number - 1, dpi=options.dpi, nice_increment=self._config.render_nice_increment
                )
                # The content comes with the pixels (one task): once it is here, the page is rendered.
                content = await self._rendered(content_ref, info.number)
                page = PageImage(image=image_ref, points_per_pixel=72.0 / options.dpi)
                detected = await self._detect(page, version, options)
                # Arranged here, once: the page's JSON and its annotated PNG show the same regions.
                regions = arrange_regions(
                    detected,
                    content.words,
                    page_width=info.width_pt,
                    page_height=info.height_pt,
                    graphics=content.graphics,
                    tables=content.tables,
                    labels=version.labels,
                    score_threshold=options.score_threshold,
                    points_per_pixel=page.points_per_pixel,
                )
                result = page_result(info, regions, content.words, arrange=False)
                if on_page is not None:
                    await on_page(result, regions, image_ref)
                self._page_seconds.observe(time.perf_counter() - began)
                self._pages.inc()
                return result

        try:
            async with asyncio.TaskGroup() as group:  # the first failing page cancels the others
                tasks = [group.create_task(one(info)) for info in pages]
        except ExceptionGroup as group_error:
            raise root_cause(group_error) from None
        return [t.result() for t in tasks]

    # ---- completion webhooks --------------------------------------------------------------------

    def _webhook_secret(self, owner: str | None) -> str | None:
        """The signing secret of ``owner``'s webhooks: its key's ``webhook_secret``; with keys off, the
        ``SERVE_APP_WEBHOOK_SECRET`` environment variable."""
        if owner is None:
            return os.environ.get(SECRET_ENV) or None
        key = self._keys.current().get(owner)
        return key.webhook_secret if key is not None else None

    async def _check_callback(self, url: str, owner: str | None) -> tuple[str, str]:
        """The callback URL, checked (scheme, host, no private or loopback address unless allowed), and the
        secret that signs its POSTs; 422 if the URL is refused or there is no secret."""
        secret = self._webhook_secret(owner)
        if secret is None:
            where = "the API key's webhook_secret" if owner is not None else f"{SECRET_ENV} (keys are off)"
            raise InvalidInput(f"callback_url needs a signing secret, and none is configured: set {where}")
        config = self._config
        checked = await asyncio.to_thread(
            check_callback_url,
            url,
            allowed_hosts=config.webhook_allowed_hosts,
            allowed_networks=config.webhook_allowed_networks,
        )
        return checked, secret

    async def _announce(self, store: Store, state: JobState) -> None:
        """Persist the completion webhook of a job that ended, then hand it to the deliverer."""
        if state.callback_url is None:
            return
        moment = now()
        delivery = Delivery(
            job_id=state.id,
            url=state.callback_url,
            owner=state.owner,
            body=state.model_dump_json(),
            created_at=moment,
            next_attempt_at=moment,
        )
        await self._durable(put_json, store, keys.webhook_key(state.id), delivery.model_dump(mode="json"))
        self._deliveries[state.id] = (store, delivery)
        self._deliver_now.set()

    async def _deliver_forever(self) -> None:
        """POST every due webhook; sleep until the next is due or a new one comes."""
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
            while True:
                moment = now()
                due = [(s, d) for s, d in self._deliveries.values() if d.next_attempt_at <= moment]
                await asyncio.gather(*(self._deliver(client, s, d) for s, d in due))
                upcoming = [d.next_attempt_at for _, d in self._deliveries.values()]
                wait_s = max(0.05, (min(upcoming) - now()).total_seconds()) if upcoming else 60.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._deliver_now.wait(), wait_s)
                self._deliver_now.clear()

    async def _deliver(self, client: httpx.AsyncClient, store: Store, delivery: Delivery) -> None:
        """One attempt: delivered (or given up) -> forgotten; failed -> the next attempt, persisted."""
        config = self._config
        job_id = delivery.job_id
        try:
            try:
                # Checked again at each attempt: the host's address (or the key's secret) may have changed.
                _, secret = await self._check_callback(delivery.url, delivery.owner)
                await post(
                    client, delivery, secret=secret, now=time.time(), timeout_s=config.webhook_timeout_s
                )
            except (DeliveryFailed, InvalidInput) as exc:
                error = exc.message if isinstance(exc, InvalidInput) else str(exc)
                later = next_attempt(delivery, error=error, now=now(), give_up_after_s=config.webhook_retry_s)
                if later is not None:
                    logger.warning(
                        "webhook of job %s: attempt %d failed (%s); next at %s",
                        job_id,
                        later.attempts,
                        error,
                        later.next_attempt_at.isoformat(timespec="seconds"),
                    )
                    await self._io(put_json, store, keys.webhook_key(job_id), later.model_dump(mode="json"))
                    self._deliveries[job_id] = (store, later)
                    return
                logger.error(
                    "webhook of job %s given up after %d attempts: %s", job_id, delivery.attempts + 1, error
                )
            else:
                logger.info("webhook of job %s delivered (attempt %d)", job_id, delivery.attempts + 1)
            await self._io(store.delete, keys.webhook_key(job_id))
            self._deliveries.pop(job_id, None)
        except Exception:  # the store failed: the delivery stays as it was and is tried again
            logger.exception("webhook of job %s: its record could not be updated", job_id)

    async def _rendered(self, ref: ray.ObjectRef[T], number: int) -> T:
        """The value of a render task's ``ref``, or ``LimitExceeded`` after ``page_render_timeout_s``: the
        task is then stopped with its worker process (a page of millions of vector operations renders in
        C for minutes and cannot be interrupted otherwise)."""
        limit = self._config.page_render_timeout_s
        try:
            return await asyncio.wait_for(ref, timeout=limit)
        except TimeoutError:
            ray.cancel(ref, force=True)
            raise LimitExceeded(
                f"page {number} took longer than {limit:g} s to render (page_render_timeout_s): "
                "it is too complex to analyse"
            ) from None

    @contextlib.asynccontextmanager
    async def _counted(self, sync: bool) -> AsyncIterator[None]:
        """Count a page of a synchronous analysis as alive while the block runs."""
        if not sync:
            yield
            return
        self._sync_pages += 1
        self._sync_pages_peak = max(self._sync_pages_peak, self._sync_pages)
        try:
            yield
        finally:
            self._sync_pages -= 1

    async def _resolve(self, model: str | None) -> ModelVersion:
        """The current version of the named model (None: the default); unknown names are a 422."""
        version: ModelVersion = await self._detector.resolve.remote(model)
        return version

    async def _detect(self, page: PageImage, version: ModelVersion, options: AnalyzeOptions) -> list[Region]:
        # Routed by version: Serve prefers a Detector replica that already holds this model. By reference
        # (a Ray actor call even where Serve talks gRPC between deployments, RAY_SERVE_THROUGHPUT_OPTIMIZED):
        # the page's ObjectRef is then counted by Ray, not pickled out of band and pinned for good.
        detector = self._detector.options(multiplexed_model_id=version.model_id, _by_reference=True)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_delay(self._config.detect_retry_s),
            wait=wait_exponential(multiplier=0.5, max=5.0),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    number = attempt.retry_state.attempt_number
                    logger.warning("retrying a page on another Detector replica (attempt %d)", number)
                regions: list[Region] = await detector.detect.remote(
                    page, score_threshold=options.score_threshold, model=version, masks=options.masks
                )
        return regions

    async def _assemble(
        self, pages: list[PageResult], options: AnalyzeOptions, version: ModelVersion
    ) -> AnalyzeResult:
        clusters = None
        if options.cluster:
            refs = region_texts(pages, max_chars=MAX_REGION_CHARS)
            if len(refs) > MAX_CLUSTER_REGIONS:
                raise LimitExceeded(
                    f"{len(refs)} regions with text are too many to cluster (limit {MAX_CLUSTER_REGIONS}); "
                    "analyse without cluster=true"
                )
            if refs:
                embeddings = self._embedder.embed.remote([r.text for r in refs])
                clustering = await self._clusterer.cluster.remote(embeddings)
                clusters = region_clusters(refs, clustering)
            else:
                clusters = RegionClusters(clusters=[], unclustered=[])
        return AnalyzeResult(model=version, page_count=len(pages), pages=pages, clusters=clusters)

    # ---- store access (boto3 is blocking: keep it off the event loop) ------------------------------

    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _durable(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``_io`` for a running job's reads and writes: while the store cannot be reached, wait and retry
        (backoff up to 10 s) for ``store_retry_s``, then fail with the reason."""
        limit = self._config.store_retry_s
        began = time.monotonic()
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(StoreUnavailable),
                stop=stop_after_delay(limit),
                wait=wait_exponential(multiplier=0.5, max=10.0),
                reraise=True,
            ):
                with attempt:
                    if attempt.retry_state.attempt_number in (2, 10, 50):
                        logger.warning(
                            "the store cannot be reached; a job waits (attempt %d, %.0f s of %g s)",
                            attempt.retry_state.attempt_number,
                            time.monotonic() - began,
                            limit,
                        )
                    return await self._io(fn, *args, **kwargs)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"{exc.message} (waited {limit:g} s, store_retry_s)") from None
        raise AssertionError("unreachable")  # AsyncRetrying either returns or raises

    async def _load(self, store: Store, job_id: str) -> JobState:
        key = keys.state_key(job_id)  # raises NotFound for anything that is not a job id
        try:
            data = await self._io(get_json, store, key)
        except NotFound:
            raise NotFound(f"no job {job_id}") from None
        return JobState.model_validate(data)

    async def _save(self, store: Store, state: JobState) -> None:
        await self._durable(put_json, store, keys.state_key(state.id), state.model_dump(mode="json"))


@contextlib.contextmanager
def _any_size() -> Iterator[Callable[[int], None]]:
    """``WorkLimit.admit_growing`` for callers without a limit (Python handles that can wait)."""
    yield lambda _: None


def _reason(exc: BaseException, job_id: str) -> str:
    cause = root_cause(exc)
    if isinstance(cause, ServeAppError):
        return cause.message
    logger.error("job %s failed unexpectedly", job_id, exc_info=exc)
    return f"internal error ({type(cause).__name__}); see the service logs"
