"""Ingress: the Starlette HTTP front door. Holds no model; composes the others through handles.

This module is the one error boundary: typed errors from ``serve_app.core`` (raised here or inside
another deployment) become ``{"error": {"code", "message"}}`` JSON with a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

import serve_app
from serve_app.core import errors
from serve_app.core.api import ROUTES, openapi_document
from serve_app.core.clustering import Clustering
from serve_app.core.jobs import AnalyzeResult, JobState, parse_options
from serve_app.core.schemas import (
    ClusterRequest,
    EmbedRequest,
    check_json_content_type,
    check_pdf_content_type,
    check_sentences,
    parse_json_body,
)
from serve_app.deployments.failures import UNAVAILABLE, root_cause
from serve_app.settings import IngressConfig, parse_settings

logger = logging.getLogger("ray.serve")

STATUS_BY_ERROR: dict[type[errors.ServeAppError], int] = {
    errors.MalformedBody: 400,
    errors.NotFound: 404,
    errors.JobNotFinished: 409,
    errors.JobFailed: 409,
    errors.LimitExceeded: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.ModelUnavailable: 503,
}

Handler = Callable[[Request], Awaitable[Response]]


def error_json(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def error_response(exc: BaseException) -> JSONResponse:
    """Map any exception to the JSON error body; unexpected ones are logged and become a 500."""
    cause = root_cause(exc)
    if isinstance(cause, errors.ServeAppError):
        status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(cause, t)), 500)
        return error_json(status, cause.code, cause.message)
    if isinstance(cause, UNAVAILABLE):
        return error_json(
            503, "unavailable", f"the service is overloaded or starting; retry shortly ({cause})"
        )
    logger.exception("unexpected error in ingress", exc_info=exc)
    return error_json(500, "internal_error", "internal error; see the service logs")


def _boundary(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(exc)

    return wrapped


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_json(exc.status_code, code, str(exc.detail))


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
@serve.ingress()
class Ingress:
    """HTTP routes of ``serve_app.core.api.ROUTES``, served by Starlette inside a Serve replica."""

    def __init__(
        self,
        embedder: DeploymentHandle,
        clusterer: DeploymentHandle,
        detector: DeploymentHandle,
        job_runner: DeploymentHandle,
    ) -> None:
        self._embedder = embedder
        self._clusterer = clusterer
        self._detector = detector
        self._jobs = job_runner
        self._config = IngressConfig()
        self._openapi = openapi_document(title="serve_app", version=serve_app.__version__)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys or bad values fail the deploy."""
        self._config = parse_settings(IngressConfig, config, where="Ingress user_config")

    def __serve_build_asgi_app__(self) -> Starlette:
        routes = [
            StarletteRoute(r.path, _boundary(getattr(self, r.name)), methods=[r.method], name=r.name)
            for r in ROUTES
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})

    async def embed(self, request: Request) -> Response:
        body = parse_json_body(EmbedRequest, await self._read_json(request))
        self._check(body.sentences)
        vectors = await self._embedder.embed.remote(body.sentences)
        return JSONResponse(
            {
                "embeddings": vectors.tolist(),
                "dimension": int(vectors.shape[1]),
                "count": int(vectors.shape[0]),
            }
        )

    async def cluster(self, request: Request) -> Response:
        body = parse_json_body(ClusterRequest, await self._read_json(request))
        self._check(body.sentences)
        if body.num_clusters is not None and body.num_clusters > len(body.sentences):
            raise errors.InvalidInput(
                f"num_clusters ({body.num_clusters}) exceeds the number of sentences ({len(body.sentences)})"
            )
        # The embeddings go from Embedder to Clusterer by reference; the ingress never holds them.
        embeddings = self._embedder.embed.remote(body.sentences)
        result: Clustering = await self._clusterer.cluster.remote(
            embeddings,
            num_clusters=body.num_clusters,
            min_cluster_size=body.min_cluster_size,
            distance_threshold=body.distance_threshold,
        )
        texts = body.sentences

        def member(i: int) -> dict[str, Any]:
            return {"index": i, "text": texts[i]}

        clusters = [
            {
                "size": len(c.members),
                "representative": member(c.representative),
                "members": [member(i) for i in c.members],
            }
            for c in result.clusters
        ]
        return JSONResponse({"clusters": clusters, "unclustered": [member(i) for i in result.unclustered]})

    async def detect(self, request: Request) -> Response:
        options = parse_options(dict(request.query_params))
        pdf, _ = await self._read_pdf(request)
        result: AnalyzeResult = await self._jobs.detect.remote(pdf, options)
        return JSONResponse(result.model_dump())

    async def submit_job(self, request: Request) -> Response:
        options = parse_options(dict(request.query_params))
        pdf, filename = await self._read_pdf(request)
        state: JobState = await self._jobs.submit.remote(pdf, options, filename)
        location = str(request.url_for("job_status", job_id=state.id))
        return JSONResponse(state.model_dump(mode="json"), status_code=202, headers={"Location": location})

    async def job_status(self, request: Request) -> Response:
        state: JobState = await self._jobs.status.remote(request.path_params["job_id"])
        return JSONResponse(state.model_dump(mode="json"))

    async def job_result(self, request: Request) -> Response:
        body: bytes = await self._jobs.result.remote(request.path_params["job_id"])
        return Response(body, media_type="application/json")

    async def job_page(self, request: Request) -> Response:
        png: bytes = await self._jobs.page_png.remote(
            request.path_params["job_id"], request.path_params["number"]
        )
        return Response(png, media_type="image/png")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        handles = {
            "Embedder": self._embedder,
            "Clusterer": self._clusterer,
            "Detector": self._detector,
            "JobRunner": self._jobs,
        }
        names = tuple(handles)
        results = await asyncio.gather(*(self._probe(h) for h in handles.values()))
        states = dict(zip(names, results, strict=True))
        ready = all(s == "ready" for s in states.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "deployments": states},
            status_code=200 if ready else 503,
        )

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self._openapi)

    async def _probe(self, handle: DeploymentHandle) -> str:
        try:
            await asyncio.wait_for(handle.ready.remote(), timeout=self._config.ready_timeout_s)
        except TimeoutError:
            return "timeout"
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        return "ready"

    async def _read_json(self, request: Request) -> bytes:
        check_json_content_type(request.headers.get("content-type"))
        return await self._read_body(request, limit=self._config.max_body_bytes)

    async def _read_pdf(self, request: Request) -> tuple[bytes, str | None]:
        """The uploaded PDF and its file name: an application/pdf body or a multipart "file" part."""
        media_type = check_pdf_content_type(request.headers.get("content-type"))
        body = await self._read_body(request, limit=self._config.max_pdf_bytes)
        if media_type == "application/pdf":
            pdf, filename = body, None
        else:
            pdf, filename = await _multipart_file(request, body)
        if not pdf:
            raise errors.MalformedBody("the PDF is empty (0 bytes)")
        return pdf, filename

    async def _read_body(self, request: Request, *, limit: int) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise errors.LimitExceeded(f"body is {declared} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.LimitExceeded(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _check(self, sentences: list[str]) -> None:
        check_sentences(
            sentences, max_sentences=self._config.max_sentences, max_text_chars=self._config.max_text_chars
        )


async def _multipart_file(request: Request, body: bytes) -> tuple[bytes, str | None]:
    """The "file" part of an already size-checked multipart/form-data body."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, receive).form(max_files=1, max_fields=16) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise errors.InvalidInput('a multipart upload needs the PDF in a file part named "file"')
            # The name is only echoed back in the job state: keep it short.
            return await upload.read(), (upload.filename[:255] if upload.filename else None)
    except (MultiPartException, HTTPException) as exc:
        detail = getattr(exc, "message", None) or getattr(exc, "detail", "")
        raise errors.MalformedBody(f"the multipart body cannot be parsed: {detail}") from None
