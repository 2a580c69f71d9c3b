"""JobRunner: turns PDFs into per-page layout results, synchronously or as persisted jobs.

Holds no model. Pages are rendered by Ray tasks (``deployments/pages.py``), go into the object store
once, and reach Detector replicas by reference; at most ``max_pages_in_flight`` pages of a document
are alive at a time. Job state, page results and annotated pages are written to the store as pages
complete, so a restarted runner resumes unfinished jobs without redoing finished pages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle
from ray.util import metrics
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from serve_app.core import jobs
from serve_app.core.errors import JobFailed, JobNotFinished, LimitExceeded, NotFound, ServeAppError
from serve_app.core.layout import Region
from serve_app.core.pdf import PageInfo
from serve_app.core.storage import Store, get_json, open_store, put_json
from serve_app.deployments.detector import PageImage
from serve_app.deployments.failures import RETRYABLE, root_cause
from serve_app.deployments.pages import annotate_task, inspect_task, render_task
from serve_app.settings import JobRunnerConfig, parse_settings

logger = logging.getLogger("ray.serve")

T = TypeVar("T")
PageDone = Callable[[jobs.PageResult, ray.ObjectRef], Awaitable[None]]

MAX_CLUSTER_REGIONS = 10_000
MAX_REGION_CHARS = 2_000


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.05})
class JobRunner:
    """Runs PDF analyses: ``detect`` answers at once, ``submit`` starts a job persisted in the store."""

    def __init__(
        self, detector: DeploymentHandle, embedder: DeploymentHandle, clusterer: DeploymentHandle
    ) -> None:
        self._detector = detector
        self._embedder = embedder
        self._clusterer = clusterer
        self._config = JobRunnerConfig()
        self._sync_slots = asyncio.Semaphore(self._config.max_pages_in_flight)
        self._store: Store | None = None
        self._pending: deque[str] = deque()
        self._running: dict[str, asyncio.Task[None]] = {}
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
        """Apply ``user_config``; on the first call, resume the unfinished jobs found in the store."""
        self._config = parse_settings(JobRunnerConfig, config, where="JobRunner user_config")
        self._sync_slots = asyncio.Semaphore(self._config.max_pages_in_flight)
        first = self._store is None
        self._store = open_store(self._config.store_url)
        if first:
            await self._resume_unfinished()
        self._launch()

    def ready(self) -> dict[str, Any]:
        return {"store": self.store.url, "running": len(self._running), "queued": len(self._pending)}

    @property
    def store(self) -> Store:
        assert self._store is not None, "reconfigure() sets the store before any request"
        return self._store

    # ---- synchronous analysis ---------------------------------------------------------------------

    async def detect(self, pdf: bytes, options: jobs.AnalyzeOptions) -> jobs.AnalyzeResult:
        """Analyse a short PDF now (at most ``max_sync_pages`` pages); nothing is stored."""
        return await self._analyze(pdf, options, max_pages=self._config.max_sync_pages, hint=True)

    async def analyze(self, pdf: bytes, options: jobs.AnalyzeOptions) -> jobs.AnalyzeResult:
        """Like ``detect`` for documents up to ``max_job_pages`` (for Python callers that can wait)."""
        return await self._analyze(pdf, options, max_pages=self._config.max_job_pages, hint=False)

    async def _analyze(
        self, pdf: bytes, options: jobs.AnalyzeOptions, *, max_pages: int, hint: bool
    ) -> jobs.AnalyzeResult:
        pdf_ref = ray.put(pdf)
        try:
            pages = await self._inspect(pdf_ref, options, max_pages=max_pages)
        except LimitExceeded as exc:
            if hint and "pages" in exc.message:
                raise LimitExceeded(f"{exc.message}; submit long documents to /v1/jobs") from None
            raise
        # Synchronous analyses share one bound, so many concurrent uploads cannot fill the object store.
        results = await self._run_pages(pdf_ref, pages, options, on_page=None, in_flight=self._sync_slots)
        return await self._assemble(results, options)

    # ---- jobs ---------------------------------------------------------------------------------------

    async def submit(
        self, pdf: bytes, options: jobs.AnalyzeOptions, filename: str | None = None
    ) -> jobs.JobState:
        """Validate the PDF, persist it with a queued state, and start the job when a slot is free."""
        pages = await self._inspect(ray.put(pdf), options, max_pages=self._config.max_job_pages)
        state = jobs.new_job(len(pages), options, filename=filename)
        await self._io(self.store.put, jobs.input_key(state.id), pdf, content_type="application/pdf")
        await self._save(state)
        await self._io(self.store.put, jobs.active_key(state.id), b"")
        self._pending.append(state.id)
        self._launch()
        logger.info("job %s queued: %d pages, %s", state.id, len(pages), options.model_dump())
        return state

    async def status(self, job_id: str) -> jobs.JobState:
        return await self._load(job_id)

    async def result(self, job_id: str) -> bytes:
        """The result JSON of a succeeded job, as stored."""
        state = await self._load(job_id)
        if state.status == "failed":
            raise JobFailed(f"job {job_id} failed: {state.error}")
        if state.status != "succeeded":
            raise JobNotFinished(
                f"job {job_id} is {state.status} ({state.pages_done}/{state.pages_total} pages); "
                "poll GET /v1/jobs/{id} until it succeeds"
            )
        return await self._io(self.store.get, jobs.result_key(job_id))

    async def page_png(self, job_id: str, number: int) -> bytes:
        """Page ``number`` (1-based) with its regions drawn, once that page is done."""
        state = await self._load(job_id)
        jobs.check_page_number(state, number)
        key = jobs.page_key(job_id, number, "png")
        if not await self._io(self.store.exists, key):
            raise JobNotFinished(
                f"page {number} of job {job_id} is not done yet "
                f"({state.pages_done}/{state.pages_total} pages)"
            )
        return await self._io(self.store.get, key)

    async def _resume_unfinished(self) -> None:
        keys = await self._io(self.store.list, jobs.ACTIVE_PREFIX)
        states = []
        for key in keys:
            job_id = key.removeprefix(jobs.ACTIVE_PREFIX)
            try:
                states.append(await self._load(job_id))
            except ServeAppError:
                logger.warning("dropping the active marker %s: its job state is missing", key)
                await self._io(self.store.delete, key)
        for state in sorted(states, key=lambda s: s.created_at):
            if state.status in jobs.FINISHED:
                await self._io(self.store.delete, jobs.active_key(state.id))
                continue
            logger.info("resuming job %s (%d/%d pages done)", state.id, state.pages_done, state.pages_total)
            self._pending.append(state.id)

    def _launch(self) -> None:
        while self._pending and len(self._running) < self._config.max_running_jobs:
            job_id = self._pending.popleft()
            task = asyncio.get_running_loop().create_task(self._run_job(job_id), name=f"job-{job_id}")
            self._running[job_id] = task
            task.add_done_callback(functools.partial(self._finished, job_id))

    def _finished(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._launch()

    async def _run_job(self, job_id: str) -> None:
        store = self.store  # a job keeps the store it started with, even if user_config changes it
        try:
            state = await self._load(job_id, store)
        except Exception:
            logger.exception("job %s cannot be loaded; skipping it", job_id)
            return
        try:
            pdf = await self._io(store.get, jobs.input_key(job_id))
            pdf_ref = ray.put(pdf)
            done = jobs.done_pages(await self._io(store.list, jobs.job_prefix(job_id) + "pages/"))
            state = state.model_copy(
                update={
                    "status": "running",
                    "started_at": state.started_at or jobs.now(),
                    "attempts": state.attempts + 1,
                    "pages_done": len(done),
                }
            )
            await self._save(state, store)
            pages = await self._inspect(pdf_ref, state.options, max_pages=self._config.max_job_pages)
            todo = [p for p in pages if p.number not in done]
            lock = asyncio.Lock()

            async def page_done(page: jobs.PageResult, image: ray.ObjectRef) -> None:
                nonlocal state
                boxes = jobs.pixel_boxes(page, dpi=state.options.dpi)
                png = await annotate_task.options(num_cpus=self._config.render_num_cpus).remote(image, boxes)
                await self._io(
                    store.put, jobs.page_key(job_id, page.number, "png"), png, content_type="image/png"
                )
                # The page JSON is written last: its presence is what marks the page done.
                await self._io(put_json, store, jobs.page_key(job_id, page.number, "json"), page.model_dump())
                async with lock:
                    state = state.model_copy(update={"pages_done": state.pages_done + 1})
                    await self._save(state, store)

            in_flight = asyncio.Semaphore(self._config.max_pages_in_flight)  # per job
            await self._run_pages(pdf_ref, todo, state.options, on_page=page_done, in_flight=in_flight)
            results = [
                jobs.PageResult.model_validate(
                    await self._io(get_json, store, jobs.page_key(job_id, p.number, "json"))
                )
                for p in pages
            ]
            result = await self._assemble(results, state.options)
            await self._io(put_json, store, jobs.result_key(job_id), result.model_dump())
            state = state.model_copy(update={"status": "succeeded", "finished_at": jobs.now()})
        except asyncio.CancelledError:
            logger.warning("job %s interrupted (replica stopping); it resumes when a runner starts", job_id)
            raise
        except Exception as exc:
            state = state.model_copy(
                update={"status": "failed", "finished_at": jobs.now(), "error": _reason(exc, job_id)}
            )
        await self._save(state, store)
        await self._io(store.delete, jobs.active_key(job_id))
        self._job_outcomes.inc(tags={"status": state.status})
        detail = f": {state.error}" if state.error else ""
        logger.info("job %s %s (%d pages)%s", job_id, state.status, state.pages_total, detail)

    # ---- the page pipeline ----------------------------------------------------------------------

    async def _inspect(
        self, pdf_ref: ray.ObjectRef, options: jobs.AnalyzeOptions, *, max_pages: int
    ) -> list[PageInfo]:
        pages: list[PageInfo] = await inspect_task.options(num_cpus=self._config.render_num_cpus).remote(
            pdf_ref, dpi=options.dpi, max_pages=max_pages, max_page_pixels=self._config.max_page_pixels
        )
        return pages

    async def _run_pages(
        self,
        pdf_ref: ray.ObjectRef,
        pages: list[PageInfo],
        options: jobs.AnalyzeOptions,
        *,
        on_page: PageDone | None,
        in_flight: asyncio.Semaphore,
    ) -> list[jobs.PageResult]:
        """Render, detect and read the text of ``pages``; ``in_flight`` bounds the pages alive at once."""
        render = render_task.options(num_cpus=self._config.render_num_cpus)

        async def one(info: PageInfo) -> jobs.PageResult:
            async with in_flight:
                began = time.perf_counter()
                image_ref, words_ref = render.remote(pdf_ref, info.number - 1, dpi=options.dpi)
                page = PageImage(image=image_ref, points_per_pixel=72.0 / options.dpi)
                regions = await self._detect(page, options.score_threshold)
                result = jobs.page_result(info, regions, await words_ref)
                if on_page is not None:
                    await on_page(result, image_ref)
                self._page_seconds.observe(time.perf_counter() - began)
                self._pages.inc()
                return result

        try:
            async with asyncio.TaskGroup() as group:  # the first failing page cancels the others
                tasks = [group.create_task(one(info)) for info in pages]
        except ExceptionGroup as group_error:
            raise root_cause(group_error) from None
        return [t.result() for t in tasks]

    async def _detect(self, page: PageImage, score_threshold: float | None) -> list[Region]:
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
                regions: list[Region] = await self._detector.detect.remote(
                    page, score_threshold=score_threshold
                )
        return regions

    async def _assemble(
        self, pages: list[jobs.PageResult], options: jobs.AnalyzeOptions
    ) -> jobs.AnalyzeResult:
        clusters = None
        if options.cluster:
            refs = jobs.region_texts(pages, max_chars=MAX_REGION_CHARS)
            if len(refs) > MAX_CLUSTER_REGIONS:
                raise LimitExceeded(
                    f"{len(refs)} regions with text are too many to cluster (limit {MAX_CLUSTER_REGIONS}); "
                    "analyse without cluster=true"
                )
            if refs:
                embeddings = self._embedder.embed.remote([r.text for r in refs])
                clustering = await self._clusterer.cluster.remote(embeddings)
                clusters = jobs.region_clusters(refs, clustering)
            else:
                clusters = jobs.RegionClusters(clusters=[], unclustered=[])
        return jobs.AnalyzeResult(page_count=len(pages), pages=pages, clusters=clusters)

    # ---- store access (boto3 is blocking: keep it off the event loop) ------------------------------

    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _load(self, job_id: str, store: Store | None = None) -> jobs.JobState:
        key = jobs.state_key(job_id)  # raises NotFound for anything that is not a job id
        try:
            data = await self._io(get_json, store or self.store, key)
        except NotFound:
            raise NotFound(f"no job {job_id} in {(store or self.store).url}") from None
        return jobs.JobState.model_validate(data)

    async def _save(self, state: jobs.JobState, store: Store | None = None) -> None:
        await self._io(put_json, store or self.store, jobs.state_key(state.id), state.model_dump(mode="json"))


def _reason(exc: BaseException, job_id: str) -> str:
    cause = root_cause(exc)
    if isinstance(cause, ServeAppError):
        return cause.message
    logger.error("job %s failed unexpectedly", job_id, exc_info=exc)
    return f"internal error ({type(cause).__name__}); see the service logs"
