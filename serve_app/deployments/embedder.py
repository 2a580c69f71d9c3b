"""Embedder: one sentence-transformers model per replica, dynamic batching across requests."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from ray import serve
from ray.util import metrics

from serve_app.core.embedding import encode, load_sentence_model, split_rows
from serve_app.core.errors import ModelUnavailable
from serve_app.deployments.resources import replica_cpus, torch_threads
from serve_app.settings import EmbedderConfig, parse_settings

logger = logging.getLogger("ray.serve")


def _count_sentences(requests: list[list[str]]) -> int:
    return sum(len(r) for r in requests)


@serve.deployment(ray_actor_options={"num_cpus": 1})
class Embedder:
    """Turns sentences into L2-normalised float32 vectors."""

    def __init__(self, *, model_path: str | None = None) -> None:
        self._threads = torch_threads(replica_cpus())
        self._model = load_sentence_model(model_path, num_threads=self._threads)
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ModelUnavailable(
                f"model at {model_path or 'default path'} does not report its embedding size"
            )
        self._dimension = int(dimension)
        self._encode_seconds = metrics.Histogram(
            "serve_app_embedder_encode_seconds",
            description="Model time per encode call (one batch or one chunk of a large request).",
            boundaries=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
        )
        self._encoded = metrics.Counter("serve_app_embedder_sentences", description="Sentences embedded.")
        self._batch_sentences = metrics.Histogram(
            "serve_app_embedder_batch_sentences",
            description="Sentences per dynamic batch (requests merged by serve.batch).",
            boundaries=[1, 2, 4, 8, 16, 32, 64, 128],
        )
        self._config = EmbedderConfig()
        logger.info(
            "Embedder loaded %s (dim %d, %d torch threads)",
            model_path or "default model",
            self._dimension,
            self._threads,
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys or bad values fail the deploy."""
        self._config = parse_settings(EmbedderConfig, config, where="Embedder user_config")
        # serve.batch adds these setters at run time; its type stubs do not declare them.
        self._embed_batch.set_max_batch_size(self._config.max_batch_size)  # type: ignore[attr-defined]
        self._embed_batch.set_batch_wait_timeout_s(self._config.batch_wait_timeout_s)  # type: ignore[attr-defined]

    def ready(self) -> dict[str, Any]:
        """Answered only once the model is loaded (Serve routes to a replica after ``__init__``)."""
        return {"dimension": self._dimension, "torch_threads": self._threads}

    async def embed(self, sentences: list[str]) -> np.ndarray:
        """Embed ``sentences``: small requests share a batch, large ones run on their own."""
        if len(sentences) >= self._config.max_batch_size:
            return await self._encode(sentences)
        return await self._embed_batch(sentences)

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.005, batch_size_fn=_count_sentences)
    async def _embed_batch(self, requests: list[list[str]]) -> list[np.ndarray]:
        flat = [s for request in requests for s in request]
        self._batch_sentences.observe(len(flat))
        vectors = await self._encode(flat)
        return split_rows(vectors, [len(r) for r in requests])

    async def _encode(self, sentences: list[str]) -> np.ndarray:
        # Encoding runs on the replica's event loop, one chunk at a time, yielding between chunks.
        # (An executor thread looked nicer but starved the loop of the GIL: batches never formed and
        # throughput halved. Chunking keeps health checks answered during a 10,000-sentence request.)
        step = self._config.encode_batch_size
        parts = []
        for start in range(0, len(sentences), step):
            if start:
                await asyncio.sleep(0)
            began = time.perf_counter()
            parts.append(encode(self._model, sentences[start : start + step], batch_size=step))
            self._encode_seconds.observe(time.perf_counter() - began)
            self._encoded.inc(len(parts[-1]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
