"""The classic baseline: FastAPI + gunicorn ``--preload``, one SentenceTransformer shared by forked workers.

The recipe of ../shared/seeds/gunicorn-preload-sentence-transformers.txt ("Deploying Large Deep Learning
Models in Production"): the model is a module global, loaded at import time *before* the FastAPI app
object is created, put in eval mode and in shared memory; gunicorn imports this module once in the
master (``preload_app = True``) and forks the workers from it. Endpoints are plain ``def`` (FastAPI
runs them in its thread pool), as the article recommends; only the two exception handlers, which never
block, are ``async``.

Same API as serve_app for ``POST /v1/embed``, ``POST /v1/cluster`` and ``GET /healthz``: the request and
response bodies are serve_app's pydantic models (``ClusterRequest`` checks ``num_clusters`` itself), the
limits, the clustering, the response assembly (``cluster_response``) and the errors (``ErrorResponse``
with the status each ``serve_app.core.errors`` class carries, ``describe_errors`` for validation errors)
are serve_app's pure functions and defaults, so both answer the same requests with the same work. Only
Ray-free modules are imported (serve_app.core, serve_app.models, serve_app.settings). Not a test
fixture: started by ``launch.start_gunicorn`` (see README.md).
"""

from __future__ import annotations

import logging
import os
import sys
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serve_app.core import errors
from serve_app.core.clustering import cluster_embeddings
from serve_app.core.schemas import (
    ClusterRequest,
    ClusterResponse,
    EmbedRequest,
    EmbedResponse,
    ErrorResponse,
    HealthResponse,
    check_sentences,
    cluster_response,
    describe_errors,
)
from serve_app.models.embedding import SentenceEncoder, TorchEncoder, load_sentence_model
from serve_app.models.onnx_embedding import OnnxEncoder, ensure_exported
from serve_app.settings import ClustererConfig, EmbedderConfig, IngressConfig

# torch: the article's recipe. onnx-int8 / onnx: serve_app's Embedder backends, for a like-for-like
# comparison (benchmarks/compare.py runs both).
BACKEND = os.environ.get("BASELINE_BACKEND", "torch")

# The marker ``launch.model_load_seconds`` looks for in the gunicorn log.
LOAD_MESSAGE = "baseline model loaded in %.3f s"


def _logger() -> logging.Logger:
    """A logger that writes to stderr (the gunicorn log) whether or not gunicorn configured logging."""
    logger = logging.getLogger("baseline_gunicorn")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def load_language_model() -> SentenceEncoder:
    """The article's ``load_language_model``: load once, ``.eval()``, ``.share_memory()`` (torch), or
    the same ONNX Runtime session the service's Embedder runs, created in the master before the fork."""
    began = time.perf_counter()
    if BACKEND == "torch":
        language_model = load_sentence_model(num_threads=1)
        language_model.eval()
        language_model.share_memory()
        encoder: SentenceEncoder = TorchEncoder(language_model)
    elif BACKEND in ("onnx", "onnx-int8"):
        encoder = OnnxEncoder(ensure_exported(None, BACKEND)[0], num_threads=1)
    else:
        raise SystemExit(f"BASELINE_BACKEND must be torch, onnx or onnx-int8, not {BACKEND!r}")
    _logger().info(LOAD_MESSAGE, time.perf_counter() - began)
    return encoder


# Loaded at import, before the app object exists: with preload_app the gunicorn master runs this once
# and every forked worker inherits the loaded model.
model = load_language_model()
LIMITS = IngressConfig()
CLUSTERER = ClustererConfig()
ENCODE_BATCH_SIZE = EmbedderConfig().encode_batch_size

app = FastAPI(title="serve_app classic baseline (gunicorn --preload)")


def error_json(exc: errors.ServeAppError) -> JSONResponse:
    """serve_app's error body, with the status the error's class carries."""
    return JSONResponse(ErrorResponse.of(exc).model_dump(), status_code=exc.status)


@app.exception_handler(errors.ServeAppError)
async def serve_app_error(_: Request, exc: Exception) -> JSONResponse:
    """Typed errors from serve_app.core become the same status and body as in serve_app."""
    assert isinstance(exc, errors.ServeAppError)
    return error_json(exc)


@app.exception_handler(RequestValidationError)
async def invalid_body(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's body validation errors, worded as serve_app words them (422 invalid_input)."""
    assert isinstance(exc, RequestValidationError)
    return error_json(errors.InvalidInput(describe_errors(exc.errors())))


@app.get("/healthz", response_model=HealthResponse)
def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@app.post("/v1/embed", response_model=EmbedResponse)
def embed(body: EmbedRequest) -> EmbedResponse:
    """L2-normalised embeddings of the sentences, in request order."""
    check_sentences(body.sentences, max_sentences=LIMITS.max_sentences, max_text_chars=LIMITS.max_text_chars)
    vectors = model.encode(body.sentences, batch_size=ENCODE_BATCH_SIZE)
    return EmbedResponse(
        embeddings=vectors.tolist(), dimension=int(vectors.shape[1]), count=int(vectors.shape[0])
    )


@app.post("/v1/cluster", response_model=ClusterResponse)
def cluster(body: ClusterRequest) -> ClusterResponse:
    """Group the sentences by meaning, exactly as serve_app's Ingress + Clusterer do."""
    texts = body.sentences
    check_sentences(texts, max_sentences=LIMITS.max_sentences, max_text_chars=LIMITS.max_text_chars)
    clustering = cluster_embeddings(
        model.encode(texts, batch_size=ENCODE_BATCH_SIZE),
        distance_threshold=body.distance_threshold or CLUSTERER.distance_threshold,
        num_clusters=body.num_clusters,
        min_cluster_size=body.min_cluster_size,
        method=CLUSTERER.linkage,
        num_clusters_method=CLUSTERER.num_clusters_linkage,
    )
    return cluster_response(texts, clustering)
