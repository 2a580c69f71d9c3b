"""Detector: one detectron2 layout model per replica; page images arrive as Ray object references."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve
from ray.serve import metrics

from serve_app.core.errors import InvalidInput
from serve_app.core.layout import Region, to_regions
from serve_app.models.layout import LayoutPredictor, weight_files
from serve_app.models.weights import files_key
from serve_app.runtime.process import replica_cpus, set_process_nice, torch_threads
from serve_app.runtime.shared_weights import (
    LoadedWeights,
    SharedWeights,
    bind_shared_weights,
    published_weights,
)
from serve_app.settings import DEFAULT_NUM_CPUS, DetectorConfig, parse_settings
from serve_app.types import PageImage

logger = logging.getLogger("ray.serve")


_DEFAULTS = DetectorConfig()  # decorator defaults come from settings; user_config overrides them


@serve.deployment(ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS["Detector"]})
class Detector:
    """Finds layout regions (text, title, list, table, figure) on page images."""

    def __init__(self, *, model_dir: str | None = None, share_weights: bool = True) -> None:
        began = time.perf_counter()
        self._threads = torch_threads(replica_cpus())
        # Lower the priority before loading the model: a replica added by autoscaling in the middle of a
        # job must not slow interactive requests while it loads. reconfigure() applies user_config's value.
        self._config = DetectorConfig()
        self._base_nice = os.getpriority(os.PRIO_PROCESS, 0)
        self._nice = set_process_nice(self._base_nice + self._config.nice_increment)
        directory = Path(model_dir) if model_dir else None
        shared: SharedWeights | None = None
        if share_weights:
            # A later replica on this node builds the model without weights and binds the shared copy;
            # the first one loads the files and publishes them.
            key = files_key(weight_files(directory))
            shared = published_weights("detector", key)
            self._predictor = LayoutPredictor(
                directory, num_threads=self._threads, weights=shared.arrays if shared else None
            )
            if shared is None:
                shared = bind_shared_weights("detector", key, self._predictor.model)
        else:
            self._predictor = LayoutPredictor(directory, num_threads=self._threads)
        self._weights = LoadedWeights.measure(self._predictor.model, shared, began)
        self._seconds = metrics.Histogram(
            "serve_app_detector_page_seconds",
            description="Model time per page.",
            boundaries=[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
        )
        self._pages = metrics.Counter("serve_app_detector_pages", description="Pages detected.")
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
            "Detector loaded %s in %.2f s (%d torch threads, shared weights: %s)",
            model_dir or "shipped model",
            self._weights.load_seconds,
            self._threads,
            "yes" if shared else "no",
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys or bad values fail the deploy."""
        self._config = parse_settings(DetectorConfig, config, where="Detector user_config")
        self._nice = set_process_nice(self._base_nice + self._config.nice_increment)
        self._detect_batch.set_max_batch_size(self._config.max_batch_size)  # type: ignore[attr-defined]
        self._detect_batch.set_batch_wait_timeout_s(self._config.batch_wait_timeout_s)  # type: ignore[attr-defined]

    def ready(self) -> dict[str, Any]:
        return {
            "torch_threads": self._threads,
            "nice": self._nice,
            **self._weights.report(),
            **self._config.model_dump(),
        }

    def check_health(self) -> None:
        """Serve's periodic health check: also tells the weights holder its weights are in use."""
        self._weights.touch()

    async def detect(self, page: PageImage, score_threshold: float | None = None) -> list[Region]:
        """Regions found on one page, top to bottom; ``score_threshold`` overrides the configured one."""
        if not isinstance(page, PageImage):
            raise InvalidInput(f"detect expects a PageImage, got {type(page).__name__}")
        if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
            raise InvalidInput(f"score_threshold must be between 0 and 1, got {score_threshold}")
        outcome = await self._detect_batch((page, score_threshold, time.perf_counter()))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @serve.batch(max_batch_size=_DEFAULTS.max_batch_size, batch_wait_timeout_s=_DEFAULTS.batch_wait_timeout_s)
    async def _detect_batch(
        self, requests: list[tuple[PageImage, float | None, float]]
    ) -> list[list[Region] | BaseException]:
        # Batched across callers, but pages run one at a time (detectron2 memory grows with the batch).
        # A bad page fails only its own caller: errors are returned per page, not raised for the batch.
        self._batch_pages.observe(len(requests))
        results: list[list[Region] | BaseException] = []
        for page, threshold, arrived in requests:
            self._queue_wait.observe(time.perf_counter() - arrived)
            began = time.perf_counter()
            try:
                image = await page.image  # zero-copy read from the object store on this node
                results.append(self._detect_one(image, page.points_per_pixel, threshold))
            except Exception as exc:
                results.append(exc)
            rest = self._config.min_page_seconds - (time.perf_counter() - began)
            await asyncio.sleep(max(0.0, rest))
        return results

    def _detect_one(
        self, image: np.ndarray, points_per_pixel: float, score_threshold: float | None
    ) -> list[Region]:
        # The predictor validates the image (shape, dtype, size) and raises InvalidInput.
        began = time.perf_counter()
        boxes, scores, classes = self._predictor.predict(image)
        self._seconds.observe(time.perf_counter() - began)
        self._pages.inc()
        return to_regions(
            boxes,
            scores,
            classes,
            image_size=(image.shape[0], image.shape[1]),
            points_per_pixel=points_per_pixel,
            score_threshold=self._config.score_threshold if score_threshold is None else score_threshold,
            max_detections=self._config.max_detections,
        )
