"""Embedder: one sentence-transformers model per replica (ONNX Runtime or torch), dynamic batching."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from ray import serve
from ray.serve import metrics

from serve_app.models.embedding import (
    SentenceEncoder,
    TorchEncoder,
    load_sentence_model,
    model_files,
    model_name,
    split_rows,
)
from serve_app.models.onnx_embedding import Backend, OnnxEncoder, ensure_exported
from serve_app.models.weights import files_key
from serve_app.runtime.process import replica_cpus, torch_threads
from serve_app.runtime.shared_weights import LoadedWeights, SharedWeights, bind_shared_weights
from serve_app.settings import DEFAULT_NUM_CPUS, EmbedderConfig, parse_settings

logger = logging.getLogger("ray.serve")


def _count_sentences(requests: list[tuple[list[str], float]]) -> int:
    return sum(len(sentences) for sentences, _ in requests)


_DEFAULTS = EmbedderConfig()  # decorator defaults come from settings; user_config overrides them


@serve.deployment(ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS["Embedder"]})
class Embedder:
    """Turns sentences into L2-normalised float32 vectors."""

    def __init__(
        self, *, model_path: str | None = None, share_weights: bool = True, backend: Backend = "onnx-int8"
    ) -> None:
        began = time.perf_counter()
        self._threads = torch_threads(replica_cpus())
        self._backend = backend
        self._model: SentenceEncoder
        self._weights: LoadedWeights | None = None
        exported = False
        if backend == "torch":
            model = load_sentence_model(model_path, num_threads=self._threads)
            shared: SharedWeights | None = None
            if share_weights:
                key = files_key(model_files(model_path))
                shared = bind_shared_weights("embedder", key, model)
            self._weights = LoadedWeights.measure(model, shared, began)
            self._model = TorchEncoder(model)
        else:  # ONNX Runtime: no torch in this process once the export is cached on the node
            graph, exported = ensure_exported(model_path, backend)
            self._model = OnnxEncoder(graph, model_path, num_threads=self._threads)
        self._load_seconds = time.perf_counter() - began
        self._dimension = self._model.dimension
        self._name = model_name(model_path)
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
        self._queue_wait = metrics.Histogram(
            "serve_app_embedder_queue_wait_seconds",
            description="Time a request waited in this replica before its batch started encoding.",
            boundaries=[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
        )
        self._config = EmbedderConfig()
        logger.info(
            "Embedder loaded %s in %.2f s (backend %s%s, dim %d, %d threads, shared weights: %s)",
            model_path or "default model",
            self._load_seconds,
            backend,
            ", exported to ONNX now" if exported else "",
            self._dimension,
            self._threads,
            "yes" if self._weights and self._weights.shared else "no",
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys or bad values fail the deploy."""
        self._config = parse_settings(EmbedderConfig, config, where="Embedder user_config")
        # serve.batch adds these setters at run time; its type stubs do not declare them.
        self._embed_batch.set_max_batch_size(self._config.max_batch_size)  # type: ignore[attr-defined]
        self._embed_batch.set_batch_wait_timeout_s(self._config.batch_wait_timeout_s)  # type: ignore[attr-defined]

    def ready(self) -> dict[str, Any]:
        """Answered only once the model is loaded (Serve routes to a replica after ``__init__``)."""
        weights = self._weights.report() if self._weights else {"load_seconds": round(self._load_seconds, 3)}
        return {"dimension": self._dimension, "backend": self._backend, "threads": self._threads, **weights}

    def info(self) -> dict[str, Any]:
        """The model's name (what OpenAI-style clients send as ``model``) and its embedding dimension."""
        return {"model": self._name, "dimension": self._dimension, "backend": self._backend}

    def count_tokens(self, sentences: list[str]) -> int:
        """How many tokens the model reads for ``sentences`` (special tokens included, texts truncated)."""
        return self._model.count_tokens(sentences)

    def check_health(self) -> None:
        """Serve's periodic health check: also tells the weights holder its weights are in use."""
        if self._weights is not None:
            self._weights.touch()

    async def embed(self, sentences: list[str]) -> np.ndarray:
        """Embed ``sentences``: small requests share a batch, large ones run on their own."""
        if not sentences:  # handles skip the ingress's validation; nothing to encode
            return np.zeros((0, self._dimension), dtype=np.float32)
        if len(sentences) >= self._config.max_batch_size:
            return await self._encode(sentences)
        return await self._embed_batch((sentences, time.perf_counter()))

    @serve.batch(
        max_batch_size=_DEFAULTS.max_batch_size,
        batch_wait_timeout_s=_DEFAULTS.batch_wait_timeout_s,
        batch_size_fn=_count_sentences,
    )
    async def _embed_batch(self, requests: list[tuple[list[str], float]]) -> list[np.ndarray]:
        started = time.perf_counter()
        for _, arrived in requests:
            self._queue_wait.observe(started - arrived)
        flat = [s for sentences, _ in requests for s in sentences]
        self._batch_sentences.observe(len(flat))
        vectors = await self._encode(flat)
        return split_rows(vectors, [len(sentences) for sentences, _ in requests])

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
            parts.append(self._model.encode(sentences[start : start + step], batch_size=step))
            self._encode_seconds.observe(time.perf_counter() - began)
            self._encoded.inc(len(parts[-1]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
