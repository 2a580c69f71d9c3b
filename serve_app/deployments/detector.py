"""Detector: detectron2 models (the shipped layout model and the user's own), page images by reference.

Each replica serves every model named in the app's ``models`` (``configs/serve.yaml``) through Serve's model
multiplexing: it keeps up to ``max_models_per_replica`` models loaded, unloads the least recently used, and
Serve routes a request preferably to a replica that holds its model. A request names a model *version*
(name + content digest), so a job started on one version finishes on it after the name moves on.
Weights are shared per node and per version (``serve_app.runtime.shared_weights``, keyed by digest).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray import serve
from ray.serve import metrics

from serve_app.core.catalog import ModelInfo, ModelsResponse, ModelVersion, unknown_model
from serve_app.core.errors import InvalidInput, ModelUnavailable
from serve_app.core.layout import Region, to_regions
from serve_app.models.layout import LayoutPredictor, check_architecture, load_cfg, model_labels
from serve_app.models.source import ModelFiles, locate
from serve_app.runtime.process import replica_cpus, set_process_nice, torch_threads
from serve_app.runtime.shared_weights import (
    LoadedWeights,
    SharedWeights,
    bind_shared_weights,
    published_weights,
)
from serve_app.settings import DEFAULT_NUM_CPUS, AppArgs, DetectorConfig, ModelEntry, parse_settings
from serve_app.types import PageImage

logger = logging.getLogger("ray.serve")

_DEFAULTS = DetectorConfig()  # decorator defaults come from settings; user_config overrides them
FAILED_LOAD_RETRY_S = 30.0  # a model that failed to load answers with that error this long before a retry


@dataclass
class _Loaded:
    """A model loaded in this replica. Serve's multiplexer calls ``__del__`` when it unloads it (LRU)."""

    version: ModelVersion
    predictor: LayoutPredictor
    weights: LoadedWeights
    on_unload: Callable[[_Loaded], None] | None = None
    _unloaded: bool = field(default=False, repr=False)

    def __del__(self) -> None:
        if not self._unloaded:
            self._unloaded = True
            if self.on_unload is not None:
                self.on_unload(self)


@serve.deployment(ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS["Detector"]})
class Detector:
    """Finds regions on page images with the detectron2 model each request names (default: ``layout``)."""

    def __init__(
        self,
        *,
        models: dict[str, Any] | None = None,
        default_model: str | None = None,
        share_weights: bool = True,
    ) -> None:
        began = time.perf_counter()
        self._threads = torch_threads(replica_cpus())
        # Lower the priority before loading the model: a replica added by autoscaling in the middle of a
        # job must not slow interactive requests while it loads. reconfigure() applies user_config's value.
        self._config = DetectorConfig()
        self._base_nice = os.getpriority(os.PRIO_PROCESS, 0)
        self._nice = set_process_nice(self._base_nice + self._config.nice_increment)
        table: dict[str, Any] = {"models": models} if models else {}
        if default_model:
            table["default_model"] = default_model
        args = parse_settings(AppArgs, table, where="Detector models")
        self._entries: dict[str, ModelEntry] = args.model_entries()
        self._default = args.default_model
        self._share = share_weights
        self._lock = threading.Lock()
        # Every model is fetched (once per node) and checked now, so a bad one fails the deploy with its
        # reason; only the default one is loaded (the others load on their first request).
        self._files: dict[str, ModelFiles] = {}
        self._versions: dict[str, ModelVersion] = {}
        self._info: dict[str, ModelInfo] = {}
        for name, entry in self._entries.items():
            try:
                self._inspect(name, entry)
            except ModelUnavailable as exc:
                raise ModelUnavailable(f"model {name!r} ({entry.uri}): {exc.message}") from None
        self._known: dict[str, ModelVersion] = {v.model_id: v for v in self._versions.values()}
        self._loaded: dict[str, _Loaded] = {}
        self._failed: dict[str, tuple[float, ModelUnavailable]] = {}
        default = self._versions[self._default]
        self._loaded[default.model_id] = self._load(default)
        self._models_size = self._config.max_models_per_replica
        self._get_model = self._multiplexer(self._models_size)
        self._seconds = metrics.Histogram(
            "serve_app_detector_page_seconds",
            description="Model time per page.",
            boundaries=[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
            tag_keys=("model",),
        )
        self._pages = metrics.Counter(
            "serve_app_detector_pages", description="Pages detected.", tag_keys=("model",)
        )
        self._queue_wait = metrics.Histogram(
            "serve_app_detector_queue_wait_seconds",
            description="Time a page waited in this replica before the model started on it.",
            boundaries=[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
        )
        self._batch_pages = metrics.Histogram(
            "serve_app_detector_batch_pages",
            description="Pages per dynamic batch (requests merged by serve.batch).",
            boundaries=[1, 2, 4, 8, 16, 32, 64],
        )
        logger.info(
            "Detector ready in %.2f s: models %s (default %s), %d torch threads, shared weights: %s",
            time.perf_counter() - began,
            ", ".join(f"{n}={v.digest[:12]}" for n, v in self._versions.items()),
            self._default,
            self._threads,
            "yes" if share_weights else "no",
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys or bad values fail the deploy."""
        self._config = parse_settings(DetectorConfig, config, where="Detector user_config")
        self._nice = set_process_nice(self._base_nice + self._config.nice_increment)
        self._detect_batch.set_max_batch_size(self._config.max_batch_size)  # type: ignore[attr-defined]
        self._detect_batch.set_batch_wait_timeout_s(self._config.batch_wait_timeout_s)  # type: ignore[attr-defined]
        if self._config.max_models_per_replica != self._models_size:
            # A new multiplexer with the new size; models it does not hold are unloaded, the default kept.
            self._models_size = self._config.max_models_per_replica
            default_id = self._versions[self._default].model_id
            with self._lock:
                kept = {k: v for k, v in self._loaded.items() if k == default_id}
                dropped = [v for k, v in self._loaded.items() if k != default_id]
                self._loaded = kept
            for loaded in dropped:
                loaded.on_unload = None
            self._get_model = self._multiplexer(self._models_size)

    def ready(self) -> dict[str, Any]:
        with self._lock:
            loaded = dict(self._loaded)
        default = loaded.get(self._versions[self._default].model_id)
        return {
            "torch_threads": self._threads,
            "nice": self._nice,
            "default_model": self._default,
            "models_loaded": {k: v.weights.report() for k, v in loaded.items()},
            **(default.weights.report() if default else {}),
            **self._config.model_dump(),
        }

    def check_health(self) -> None:
        """Serve's periodic health check: also tells the weights holders their weights are in use."""
        with self._lock:
            loaded = list(self._loaded.values())
        for model in loaded:
            model.weights.touch()

    # ---- models -----------------------------------------------------------------------------------

    def resolve(self, model: str | None = None) -> ModelVersion:
        """The current version of the model named ``model`` (None: the default); unknown names are a 422."""
        name = self._default if model is None else model
        version = self._versions.get(name)
        if version is None:
            raise unknown_model(name, list(self._versions))
        return version

    def models(self) -> ModelsResponse:
        """Every model this Detector serves (``GET /v1/models``)."""
        return ModelsResponse(default=self._default, models=[self._info[name] for name in sorted(self._info)])

    def _inspect(self, name: str, entry: ModelEntry) -> None:
        files = locate(entry.uri, checkpoint=entry.checkpoint, digest=entry.digest)
        cfg = load_cfg(files.config)
        check_architecture(cfg)
        labels = model_labels(files, cfg)
        self._files[name] = files
        self._versions[name] = ModelVersion(name=name, uri=entry.uri, digest=files.digest, labels=labels)
        resnets = cfg.MODEL.RESNETS
        self._info[name] = ModelInfo(
            name=name,
            default=name == self._default,
            digest=files.digest,
            labels=list(labels),
            architecture=str(cfg.MODEL.META_ARCHITECTURE),
            backbone=f"{cfg.MODEL.BACKBONE.NAME} R-{resnets.DEPTH}",
            masks=bool(cfg.MODEL.MASK_ON) and str(cfg.MODEL.META_ARCHITECTURE) != "RetinaNet",
            input_min_size=int(cfg.INPUT.MIN_SIZE_TEST),
            input_max_size=int(cfg.INPUT.MAX_SIZE_TEST),
            checkpoint=files.checkpoint_name,
        )

    def _version(self, model: ModelVersion | str | None) -> ModelVersion:
        if model is None or isinstance(model, str):
            return self.resolve(model)
        if not isinstance(model, ModelVersion):
            raise InvalidInput(f"model must be a name or a ModelVersion, got {type(model).__name__}")
        if model.name not in self._entries:
            raise ModelUnavailable(
                f"model {model.name!r} is no longer served; known models: {', '.join(sorted(self._entries))}"
            )
        return model

    def _multiplexer(self, size: int) -> Callable[[str], Any]:
        async def load(model_id: str) -> _Loaded:
            with self._lock:
                loaded = self._loaded.get(model_id)
            if loaded is not None:
                return loaded
            failed = self._failed.get(model_id)
            if failed is not None and time.monotonic() - failed[0] < FAILED_LOAD_RETRY_S:
                raise failed[1]
            version = self._known[model_id]
            try:
                loaded = await asyncio.to_thread(self._load, version)
            except ModelUnavailable as exc:
                error = ModelUnavailable(f"model {version.name!r} cannot be loaded: {exc.message}")
                self._failed[model_id] = (time.monotonic(), error)
                raise error from None
            with self._lock:
                self._loaded[model_id] = loaded
            return loaded

        return serve.multiplexed(max_num_models_per_replica=size)(load)

    def _load(self, version: ModelVersion) -> _Loaded:
        """Build ``version``'s model on this replica, on the node's shared copy of its weights if any."""
        began = time.perf_counter()
        entry = self._entries[version.name]
        files = self._files.get(version.name)
        if files is None or files.digest != version.digest:
            # An earlier version (a job pinned it): fetched by its URI and verified against its digest.
            files = locate(version.uri, checkpoint=entry.checkpoint, digest=version.digest)
        shared: SharedWeights | None = None
        if self._share:
            # A later replica on this node builds the model without weights and binds the shared copy;
            # the first one loads the checkpoint and publishes it.
            key = version.digest[:16]
            shared = published_weights("detector", key)
            predictor = LayoutPredictor(
                files=files, num_threads=self._threads, weights=shared.arrays if shared else None
            )
            if shared is None:
                shared = bind_shared_weights("detector", key, predictor.model)
        else:
            predictor = LayoutPredictor(files=files, num_threads=self._threads)
        weights = LoadedWeights.measure(predictor.model, shared, began)
        logger.info(
            "model %s loaded in %.2f s (%s, shared weights: %s)",
            version.model_id,
            weights.load_seconds,
            version.uri,
            "yes" if shared else "no",
        )
        return _Loaded(version=version, predictor=predictor, weights=weights, on_unload=self._unloaded)

    def _unloaded(self, loaded: _Loaded) -> None:
        with self._lock:
            if self._loaded.get(loaded.version.model_id) is loaded:
                del self._loaded[loaded.version.model_id]
        logger.info("model %s unloaded (least recently used)", loaded.version.model_id)

    # ---- pages ------------------------------------------------------------------------------------

    async def detect(
        self,
        page: PageImage,
        score_threshold: float | None = None,
        *,
        model: ModelVersion | str | None = None,
        masks: bool = False,
    ) -> list[Region]:
        """Regions found on one page, top to bottom, with the labels of ``model``.

        ``model``: a name (its current version), a ``ModelVersion`` (that version; from ``resolve``), or
        None (the default model). Route the call with
        ``handle.options(multiplexed_model_id=version.model_id)`` to reach a replica that holds it.
        ``score_threshold`` overrides the configured one; ``masks`` adds mask outlines for models that
        predict masks.
        """
        if not isinstance(page, PageImage):
            raise InvalidInput(f"detect expects a PageImage, got {type(page).__name__}")
        if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
            raise InvalidInput(f"score_threshold must be between 0 and 1, got {score_threshold}")
        version = self._version(model)
        self._known.setdefault(version.model_id, version)
        loaded: _Loaded = await self._get_model(version.model_id)
        outcome = await self._detect_batch((page, loaded, score_threshold, bool(masks), time.perf_counter()))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @serve.batch(max_batch_size=_DEFAULTS.max_batch_size, batch_wait_timeout_s=_DEFAULTS.batch_wait_timeout_s)
    async def _detect_batch(
        self, requests: list[tuple[PageImage, _Loaded, float | None, bool, float]]
    ) -> list[list[Region] | BaseException]:
        # Batched across callers, but pages run one at a time (detectron2 memory grows with the batch).
        # A bad page fails only its own caller: errors are returned per page, not raised for the batch.
        self._batch_pages.observe(len(requests))
        results: list[list[Region] | BaseException] = []
        for page, loaded, threshold, masks, arrived in requests:
            self._queue_wait.observe(time.perf_counter() - arrived)
            began = time.perf_counter()
            try:
                image = await page.image  # zero-copy read from the object store on this node
                results.append(self._detect_one(loaded, image, page.points_per_pixel, threshold, masks))
            except Exception as exc:
                results.append(exc)
            rest = self._config.min_page_seconds - (time.perf_counter() - began)
            await asyncio.sleep(max(0.0, rest))
        return results

    def _detect_one(
        self,
        loaded: _Loaded,
        image: np.ndarray,
        points_per_pixel: float,
        score_threshold: float | None,
        masks: bool,
    ) -> list[Region]:
        # The predictor validates the image (shape, dtype, size) and raises InvalidInput.
        began = time.perf_counter()
        found = loaded.predictor.detect(image, masks=masks)
        tags = {"model": loaded.version.name}
        self._seconds.observe(time.perf_counter() - began, tags=tags)
        self._pages.inc(tags=tags)
        return to_regions(
            found.boxes,
            found.scores,
            found.classes,
            image_size=(image.shape[0], image.shape[1]),
            points_per_pixel=points_per_pixel,
            score_threshold=self._config.score_threshold if score_threshold is None else score_threshold,
            max_detections=self._config.max_detections,
            labels=loaded.version.labels,
            masks=found.masks,
        )
