"""Detector: detectron2 models (the shipped layout model and the user's own), page images by reference.

Each replica serves every model named in the app's ``models`` (``configs/serve.yaml``) through Serve's model
multiplexing: it keeps up to ``max_models_per_replica`` models loaded, unloads the least recently used, and
Serve routes a request preferably to a replica that holds its model. A request names a model *version*
(name + content digest), so a job started on one version finishes on it after the name moves on.
Weights are shared per node and per version (``serve_app.runtime.shared_weights``, keyed by digest).
"""

from __future__ import annotations

import asyncio
import gc
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
from serve_app.runtime.process import release_freed_memory, replica_cpus, set_process_nice, torch_threads
from serve_app.runtime.shared_weights import (
    LoadedWeights,
    SharedWeights,
    bind_shared_weights,
    published_weights,
)
from serve_app.settings import DEFAULT_NUM_CPUS, DetectorConfig, ModelEntry, parse_settings
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


def _inspect(name: str, entry: ModelEntry) -> tuple[ModelFiles, ModelVersion, ModelInfo]:
    """Fetch (once per node) and check one model without loading its weights: its files, its current
    version and what ``GET /v1/models`` says about it."""
    files = locate(entry.uri, checkpoint=entry.checkpoint, digest=entry.digest)
    cfg = load_cfg(files.config)
    check_architecture(cfg)
    labels = model_labels(files, cfg)
    version = ModelVersion(name=name, uri=entry.uri, digest=files.digest, labels=labels)
    info = ModelInfo(
        name=name,
        default=False,
        digest=files.digest,
        labels=list(labels),
        architecture=str(cfg.MODEL.META_ARCHITECTURE),
        backbone=str(cfg.MODEL.BACKBONE.NAME)
        + (f" R-{cfg.MODEL.RESNETS.DEPTH}" if "resnet" in str(cfg.MODEL.BACKBONE.NAME) else ""),
        masks=bool(cfg.MODEL.MASK_ON) and str(cfg.MODEL.META_ARCHITECTURE) != "RetinaNet",
        input_min_size=int(cfg.INPUT.MIN_SIZE_TEST),
        input_max_size=int(cfg.INPUT.MAX_SIZE_TEST),
        checkpoint=files.checkpoint_name,
    )
    return files, version, info


@serve.deployment(ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS["Detector"]})
class Detector:
    """Finds regions on page images with the detectron2 model each request names (default: ``layout``)."""

    def __init__(self, *, share_weights: bool = True) -> None:
        began = time.perf_counter()
        self._threads = torch_threads(replica_cpus())
        # Lower the priority before loading the model: a replica added by autoscaling in the middle of a
        # job must not slow interactive requests while it loads. reconfigure() applies user_config's value.
        self._config = DetectorConfig()
        self._base_nice = os.getpriority(os.PRIO_PROCESS, 0)
        self._nice = set_process_nice(self._base_nice + self._config.nice_increment)
        self._share = share_weights
        self._lock = threading.Lock()
        self._entries: dict[str, ModelEntry] = {}
        self._files: dict[str, ModelFiles] = {}
        self._versions: dict[str, ModelVersion] = {}
        self._info: dict[str, ModelInfo] = {}
        self._default = ""
        self._known: dict[str, ModelVersion] = {}
        self._loaded: dict[str, _Loaded] = {}
        self._failed: dict[str, tuple[float, ModelUnavailable]] = {}
        self._unavailable: dict[str, str] = {}  # names whose only entry cannot be used: the reason
        self._preloaded: set[str] = set()  # loaded by _apply_models, not (yet) handed to the multiplexer
        self._models_size = self._config.max_models_per_replica
        self._get_model = self._multiplexer(self._models_size)
        # The model table comes from user_config (reconfigure, right after this); without one, the first
        # health check (before the replica takes requests) applies the defaults: the shipped model.
        self._configured = False  # whether a user_config was applied (the first one is strict)
        self._table_lock = threading.Lock()
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
            "Detector started in %.2f s (%d torch threads, shared weights: %s)",
            time.perf_counter() - began,
            self._threads,
            "yes" if share_weights else "no",
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys, bad values or a model that cannot be used fail the deploy
        (and leave this replica serving the models it had)."""
        new = parse_settings(DetectorConfig, config, where="Detector user_config")
        # The first user_config (replica start) must be whole; later ones never take the replica down.
        with self._table_lock:
            self._apply_models(new, strict=not self._configured)
            self._configured = True
        self._config = new
        self._nice = set_process_nice(self._base_nice + new.nice_increment)
        self._detect_batch.set_max_batch_size(new.max_batch_size)  # type: ignore[attr-defined]
        self._detect_batch.set_batch_wait_timeout_s(new.batch_wait_timeout_s)  # type: ignore[attr-defined]
        if new.max_models_per_replica != self._models_size:
            # A new multiplexer with the new size; models it does not hold are unloaded, the default kept.
            self._models_size = new.max_models_per_replica
            default_id = self._versions[self._default].model_id
            with self._lock:
                dropped = [v for k, v in self._loaded.items() if k != default_id]
                self._loaded = {k: v for k, v in self._loaded.items() if k == default_id}
                self._preloaded = set(self._loaded)
            for loaded in dropped:
                loaded.on_unload = None
            self._get_model = self._multiplexer(self._models_size)

    def _apply_models(self, config: DetectorConfig, *, strict: bool) -> None:
        """Make ``config``'s model table current: fetch (once per node) and check every new or changed
        entry, load the default model, then switch.

        ``strict`` (replica start): the table must be whole; any model that cannot be used raises, so the
        deploy fails with its reason. Otherwise (a re-deploy) a serving replica is never taken down: a name
        whose new entry fails keeps its previous version, a new name that fails answers 503 with the
        reason, and both are reported by ``GET /v1/models`` and the logs.
        """
        first = strict or not self._versions
        entries: dict[str, ModelEntry] = {}
        files: dict[str, ModelFiles] = {}
        versions: dict[str, ModelVersion] = {}
        info: dict[str, ModelInfo] = {}
        errors: dict[str, str] = {}
        for name, entry in config.model_entries().items():
            if self._entries.get(name) != entry or name not in self._versions:
                try:
                    files[name], versions[name], info[name] = _inspect(name, entry)
                    entries[name] = entry
                    continue
                except ModelUnavailable as exc:
                    errors[name] = f"model {name!r} ({entry.uri}): {exc.message}"
                    if first:
                        raise ModelUnavailable(errors[name]) from None
                    logger.error("%s", errors[name])
                    if name not in self._versions:
                        continue
            entries[name], files[name], versions[name] = (
                self._entries[name],
                self._files[name],
                self._versions[name],
            )
            info[name] = self._info[name]
        default_name = config.default_model if config.default_model in versions else self._default
        default = versions[default_name]
        with self._lock:
            loaded = default.model_id in self._loaded
        if not loaded:
            try:
                model = self._load(default, files[default_name])
            except ModelUnavailable as exc:
                message = f"default model {default_name!r} ({default.uri}): {exc.message}"
                if first or default_name not in self._versions:
                    raise ModelUnavailable(message) from None
                logger.error("%s", message)
                errors[default_name] = message
                entries[default_name] = self._entries[default_name]
                files[default_name], versions[default_name] = (
                    self._files[default_name],
                    self._versions[default_name],
                )
                info[default_name] = self._info[default_name]
                default = versions[default_name]
                loaded = True
        for name in info:
            info[name] = info[name].model_copy(
                update={"default": name == default_name, "error": errors.get(name)}
            )
        changed = [n for n in versions if self._versions.get(n) != versions[n]]
        removed = sorted(set(self._versions) - set(versions))
        with self._lock:
            if not loaded:
                self._loaded[default.model_id] = model
            # A default loaded here that no request ever used is not in the multiplexer's LRU: unload it
            # when it stops being the default.
            for stale in self._preloaded - {default.model_id}:
                self._loaded.pop(stale, None)
            self._preloaded = (self._preloaded | {default.model_id}) & set(self._loaded)
            self._entries, self._files, self._versions, self._info = entries, files, versions, info
            self._unavailable = {n: e for n, e in errors.items() if n not in versions}
            self._default = default_name
            self._known.update({v.model_id: v for v in versions.values()})
        if changed or removed:
            logger.info(
                "models: %s (default %s)%s",
                ", ".join(f"{n}={versions[n].digest[:12]}" for n in changed) or "unchanged",
                self._default,
                f"; no longer served: {', '.join(removed)}" if removed else "",
            )

    def _ensure_models(self) -> None:
        """Apply the default model table if no user_config did (a deployment without one)."""
        if not self._versions:
            with self._table_lock:
                if not self._versions:
                    self._apply_models(self._config, strict=True)

    def ready(self) -> dict[str, Any]:
        self._ensure_models()
        with self._lock:
            loaded = dict(self._loaded)
        default = loaded.get(self._versions[self._default].model_id)
        return {
            "torch_threads": self._threads,
            "nice": self._nice,
            "versions": {name: v.digest for name, v in self._versions.items()},
            "model_errors": {name: i.error for name, i in self._info.items() if i.error} | self._unavailable,
            "models_loaded": {k: v.weights.report() for k, v in loaded.items()},
            **(default.weights.report() if default else {}),
            **self._config.model_dump(),
        }

    async def check_health(self) -> None:
        """Serve's periodic health check: also tells the weights holders their weights are in use, and
        hands a default model loaded at start to the multiplexer."""
        self._ensure_models()
        with self._lock:
            loaded = list(self._loaded.values())
            default_id = self._versions[self._default].model_id
            unannounced = default_id in self._preloaded
        for model in loaded:
            model.weights.touch()
        if unannounced:
            # Serve routes a request naming a model to the replicas that report it loaded, and reaches
            # the others only when those are full. A default loaded at start is reported once the
            # multiplexer holds it: without this, a fresh replica got no pages while another that had
            # served one could take more (one job kept one Detector of two busy).
            await self._get_model(default_id)

    # ---- models -----------------------------------------------------------------------------------

    def resolve(self, model: str | None = None) -> ModelVersion:
        """The current version of the model named ``model`` (None: the default); unknown names are a 422."""
        self._ensure_models()
        name = self._default if model is None else model
        version = self._versions.get(name)
        if version is None:
            if name in self._unavailable:
                raise ModelUnavailable(self._unavailable[name])
            raise unknown_model(name, [*self._versions, *self._unavailable])
        return version

    def models(self) -> ModelsResponse:
        """Every model this Detector serves (``GET /v1/models``)."""
        self._ensure_models()
        return ModelsResponse(
            default=self._default,
            models=[self._info[name] for name in sorted(self._info)],
            unavailable=dict(sorted(self._unavailable.items())),
        )

    def _version(self, model: ModelVersion | str | None) -> ModelVersion:
        if model is None or isinstance(model, str):
            return self.resolve(model)
        if not isinstance(model, ModelVersion):
            raise InvalidInput(f"model must be a name or a ModelVersion, got {type(model).__name__}")
        self._ensure_models()
        if model.name not in self._entries:
            raise ModelUnavailable(
                f"model {model.name!r} is no longer served; known models: {', '.join(sorted(self._entries))}"
            )
        return model

    def _multiplexer(self, size: int) -> Callable[[str], Any]:
        async def load(model_id: str) -> _Loaded:
            with self._lock:
                loaded = self._loaded.get(model_id)
                self._preloaded.discard(model_id)  # the multiplexer holds it from now on
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

    def _load(self, version: ModelVersion, files: ModelFiles | None = None) -> _Loaded:
        """Build ``version``'s model on this replica, on the node's shared copy of its weights if any."""
        # The multiplexer unloads the least recently used model just before: give its memory back first.
        gc.collect()
        release_freed_memory()
        began = time.perf_counter()
        files = files or self._files.get(version.name)
        if files is None or files.digest != version.digest:
            # An earlier version (a job pinned it): fetched by its URI and verified against its digest.
            entry = self._entries.get(version.name)
            checkpoint = entry.checkpoint if entry is not None else None
            files = locate(version.uri, checkpoint=checkpoint, digest=version.digest)
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
