"""Ingress: the HTTP front door, a FastAPI app (Starlette underneath) served by Serve. Holds no model.

This module is the one error boundary: typed errors from ``serve_app.core`` (raised here or inside
another deployment) become ``{"error": {"code", "message"}}`` JSON with the status each error class
carries (``serve_app.core.errors``). Interactive API docs are at ``/docs``, with Swagger UI's assets
served from the ``fastapi-offline`` package (no CDN: works air-gapped); the OpenAPI document at
``/openapi.json`` declares the limits this replica enforces.

Request bodies are read here, not by FastAPI: the size limit applies while the body streams in (413),
the Content-Type is checked first (415), and undecodable JSON is a 400, not a validation error.
"""

# No `from __future__ import annotations` here: Serve's class-based FastAPI view reads the route
# methods' annotations as objects (string annotations would turn `request: Request` into a query field).

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from ray import serve
from ray.exceptions import RayError
from ray.serve.exceptions import BackPressureError, RayServeException
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import JSONResponse, Response, StreamingResponse

import serve_app
from serve_app.core import errors
from serve_app.core.admission import WorkLimit
from serve_app.core.analysis import AnalyzeResult, DetectOptions, JobOptions
from serve_app.core.auth import KeySource
from serve_app.core.catalog import ModelsResponse
from serve_app.core.clustering import Clustering
from serve_app.core.jobs import JobState
from serve_app.core.openai_api import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    OpenAIErrorResponse,
    embedding_model_names,
    embeddings_response,
    vector_rows,
)
from serve_app.core.schemas import (
    NOT_BLANK,
    ClusterRequest,
    ClusterResponse,
    EmbedRequest,
    EmbedResponse,
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
    check_json_content_type,
    check_pdf_content_type,
    check_sentences,
    cluster_response,
    describe_errors,
    parse_json_body,
)
from serve_app.models.embedding import DEFAULT_MODEL_NAME as DEFAULT_EMBEDDING_MODEL
from serve_app.runtime.ray_errors import UNAVAILABLE, root_cause
from serve_app.settings import DEFAULT_NUM_CPUS, IngressConfig, parse_settings

logger = logging.getLogger("ray.serve")
T = TypeVar("T")

JSON_ERRORS = (400, 413, 415, 422, 503, 504)
SENTENCE_ROUTES = ("/v1/embed", "/v1/cluster")
PDF_ROUTES = ("/v1/detect", "/v1/jobs")


def as_error(exc: BaseException) -> errors.ServeAppError:
    """The typed error behind ``exc``; unexpected ones are logged and become ``InternalError``."""
    cause = root_cause(exc)
    if isinstance(cause, errors.ServeAppError):
        return cause
    if isinstance(cause, BackPressureError):  # a deployment's queue is full (max_queued_requests)
        return errors.Unavailable(
            f"the service is busy; retry shortly ({cause})", retry_after_s=cause.retry_after_s
        )
    if isinstance(cause, UNAVAILABLE):
        return errors.Unavailable(f"the service is overloaded or starting; retry shortly ({cause})")
    logger.error("unexpected error in ingress", exc_info=exc)
    return errors.InternalError("internal error; see the service logs")


def error_headers(error: errors.ServeAppError, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus ``Retry-After`` when the error says when to retry (503 overload, 429)."""
    out = dict(headers or {})
    if error.retry_after_s is not None:
        out["Retry-After"] = str(error.retry_after_s)
    return out


def error_response(exc: BaseException, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Map any exception to the JSON error body and the status its error class carries."""
    error = as_error(exc)
    return JSONResponse(
        ErrorResponse.of(error).model_dump(), status_code=error.status, headers=error_headers(error, headers)
    )


async def _on_error(_: Request, exc: Exception) -> Response:
    return error_response(exc)


def allowed_methods(request: Request) -> str:
    """Every method the API documents at this path (Starlette's 405 names only the first matching route's,
    and FastAPI makes one route per method); "" for a path the OpenAPI document does not list."""
    path = request.url.path
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return ", ".join(sorted(method.upper() for method in operations))
    return ""


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: errors.ServeAppError
    if exc.status_code == 404:
        error = errors.NotFound(f"no such route; see /docs ({exc.detail})")
    elif exc.status_code == 405:
        allowed = allowed_methods(request) or (exc.headers or {}).get("Allow", "")
        error = errors.MethodNotAllowed(f"this route accepts {allowed or 'other methods'}")
        return error_response(error, headers={**(exc.headers or {}), "Allow": allowed})
    else:
        body = ErrorResponse(error=ErrorDetail(code="http_error", message=str(exc.detail)))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)
    return error_response(error, headers=exc.headers)


async def _on_invalid_request(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("loc", ("",))[0] == "path" for p in problems):
        return error_response(errors.NotFound(f"no such resource: {describe_errors(problems)}"))
    message = describe_errors(problems, known=sorted({*DetectOptions.model_fields, *JobOptions.model_fields}))
    return error_response(errors.InvalidInput(f"invalid query parameters: {message}"))


app: FastAPI = FastAPIOffline(
    title="serve_app",
    version=serve_app.__version__,
    description="Sentence embeddings and clusters, and layout regions of PDF pages, served by Ray Serve.",
    redoc_url=None,
    static_url="/docs/assets",
    exception_handlers={
        errors.ServeAppError: _on_error,
        RayError: _on_error,
        RayServeException: _on_error,
        HTTPException: _on_http_error,
        RequestValidationError: _on_invalid_request,
        Exception: _on_error,
    },
)


def error_responses(*statuses: int, model: type[Any] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, described from the error table."""
    return {s: {"model": model, "description": errors.describe_status(s)} for s in statuses}


def openai_error(exc: BaseException) -> JSONResponse:
    """An error of ``/v1/embeddings`` in OpenAI's shape (the same status, code and message as elsewhere)."""
    error = as_error(exc)
    param = "input" if "input" in error.message else "model" if error.code == "model_not_found" else None
    return JSONResponse(
        OpenAIErrorResponse.of(error, param=param).model_dump(),
        status_code=error.status,
        headers=error_headers(error),
    )


def json_body(model: type[Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


# The web page at / and its assets, shipped in the package (serve_app/web), read once.
WEB_ASSETS: dict[str, bytes] = {
    name: (Path(__file__).resolve().parents[1] / "web" / name).read_bytes()
    for name in ("index.html", "app.js", "style.css")
}
MAX_WAIT_S = 60.0  # longest long-poll (GET /v1/jobs/{id}?wait=), under the proxy's request timeout
EVENT_STREAM_S = 90.0  # one event stream's life; EventSource reconnects and resumes from Last-Event-ID
EVENT_KEEPALIVE_S = 15.0  # a comment line at least this often, so proxies keep the stream open
EVENT_RETRY_MS = 1000
MARKDOWN_TYPE = "text/markdown; charset=utf-8"
# One event of GET /v1/jobs/{id}/events: its name, its id (pages done) and its data (JSON text).
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "enum": ["queued", "running", "page", "succeeded", "failed", "cancelled"],
        },
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}
MARKDOWN: dict[str, Any] = {"text/markdown": {"schema": {"type": "string"}}}
ERROR_SCHEMA: dict[str, Any] = {"$ref": "#/components/schemas/ErrorResponse"}
JOB_LINKS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("GetJob", "/v1/jobs/{job_id}", "get", {}),
    ("WaitForJob", "/v1/jobs/{job_id}", "get", {"wait": "5"}),
    ("JobEvents", "/v1/jobs/{job_id}/events", "get", {}),
    ("JobResult", "/v1/jobs/{job_id}/result", "get", {}),
    ("JobMarkdown", "/v1/jobs/{job_id}/result.md", "get", {}),
    ("JobPage", "/v1/jobs/{job_id}/pages/{number}.png", "get", {"number": "1"}),
    ("JobPageImage", "/v1/jobs/{job_id}/pages/{number}/image.png", "get", {"number": "1"}),
    ("DeleteJob", "/v1/jobs/{job_id}", "delete", {}),
)
PNG: dict[str, Any] = {"image/png": {"schema": {"type": "string", "format": "binary"}}}

# A whole one-page PDF in plain text (MuPDF rebuilds its missing cross-reference table): the documented
# example body, which /docs offers and a schema fuzzer can send to create a job and follow its links.
EXAMPLE_PDF = (
    "%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
    "2 0 obj <</Type/Pages/Kids[3 0 R]/Count 1>> endobj\n"
    "3 0 obj <</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]/Contents 4 0 R"
    "/Resources<</Font<</F1 5 0 R>>>>>> endobj\n4 0 obj <</Length 52>> stream\n"
    "BT /F1 18 Tf 24 72 Td (A one-page example PDF) Tj ET\nendstream endobj\n"
    "5 0 obj <</Type/Font/Subtype/Type1/BaseFont/Helvetica>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
)
PDF_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary", "minLength": 1}},
                    "required": ["file"],
                },
                "example": {"file": EXAMPLE_PDF},
            },
        },
    }
}


def openapi_document(
    fastapi_app: FastAPI,
    config: IngressConfig,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    *,
    secured: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``fastapi_app`` with this replica's limits and model names written into
    the bodies; with ``secured`` (API keys configured), every /v1 route needs a bearer key."""
    doc = get_openapi(
        title=fastapi_app.title,
        version=fastapi_app.version,
        description=fastapi_app.description,
        routes=fastapi_app.routes,
    )
    sentence = {
        "type": "string",
        "minLength": 1,
        "maxLength": config.max_text_chars,
        "pattern": NOT_BLANK,  # not empty or whitespace only
    }
    texts = {"type": "array", "items": sentence, "minItems": 1, "maxItems": config.max_sentences}
    for path in SENTENCE_ROUTES:
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        schema["properties"]["sentences"].update(texts)
    schema = doc["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    description = schema["properties"]["input"].get("description", "")
    schema["properties"]["input"] = {"description": description, "anyOf": [sentence, texts]}
    schema["properties"]["model"]["enum"] = embedding_model_names(embedding_model)
    # FastAPI documents a 422 of its own shape wherever a route has parameters; here a bad path parameter
    # is a 404 and every error has the ErrorResponse shape (error_responses).
    for ops in doc["paths"].values():
        for op in ops.values():
            schema = op["responses"].get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del op["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(name, None)
    for path in PDF_ROUTES:
        content = doc["paths"][path]["post"]["requestBody"]["content"]
        content["application/pdf"]["schema"].update({"minLength": 1, "maxLength": config.max_pdf_bytes})
    # OpenAPI links: what a client (or a stateful fuzzer) can do with the job that POST /v1/jobs answers.
    links = {}
    for name, path, method, extra in JOB_LINKS:
        operation_id = doc["paths"][path][method]["operationId"]
        links[name] = {"operationId": operation_id, "parameters": {"job_id": "$response.body#/id", **extra}}
    doc["paths"]["/v1/jobs"]["post"]["responses"]["202"]["links"] = links
    if secured:
        doc["components"]["securitySchemes"] = {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key (docs/operations.md)"}
        }
        for path, ops in doc["paths"].items():
            if path.startswith("/v1/"):
                for op in ops.values():
                    op["security"] = [{"apiKey": []}]
                    for status in (401, 403):
                        op["responses"].setdefault(
                            str(status),
                            {
                                "description": errors.describe_status(status),
                                "content": {"application/json": {"schema": ERROR_SCHEMA}},
                            },
                        )
    return doc


def _json(model: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised by pydantic from a response model (validated when it was built)."""
    return Response(
        model.model_dump_json(), status_code=status_code, headers=headers, media_type="application/json"
    )


async def _multipart_file(request: Request, body: bytes) -> tuple[bytes, str | None]:
    """The "file" part of a multipart/form-data body that was already read (and size-checked) whole:
    Starlette's parser reads it again from a replayed ``receive``."""

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


def sse(event: str, data: Any, *, event_id: int | None = None) -> str:
    """One Server-Sent Event: ``data`` as JSON on one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def job_event_stream(
    jobs: DeploymentHandle, state: JobState, seen: int | None, owner: str | None = None
) -> AsyncIterator[str]:
    """Events of one job: ``queued``/``running`` (the state), ``page`` (number, pages_done, pages_total) for
    each page this runner finishes, then ``succeeded``, ``failed`` or ``cancelled`` (the state) and the end.
    Event ids are pages done, so a client that reconnects (EventSource does, after ``retry`` ms) with
    ``Last-Event-ID`` goes on from there. A stream lasts at most ``EVENT_STREAM_S`` (the client
    reconnects). When the client goes away, Starlette cancels this generator, and with it the wait in the
    JobRunner."""
    yield f"retry: {EVENT_RETRY_MS}\n\n"
    deadline = time.monotonic() + EVENT_STREAM_S
    status: str | None = None
    done = state.pages_done if seen is None else seen
    while True:
        if state.status != status:
            yield sse(state.status, state.model_dump(mode="json"), event_id=state.pages_done)
            status = state.status
        if state.finished:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        progress = await jobs.watch.remote(
            state.id,
            status=status,
            pages_done=done,
            timeout_s=min(EVENT_KEEPALIVE_S, remaining),
            owner=owner,
        )
        for offset, number in enumerate(progress.pages):
            pages_done = done + offset + 1
            body = {"number": number, "pages_done": pages_done, "pages_total": state.pages_total}
            yield sse("page", body, event_id=pages_done)
        if (progress.state.status, progress.state.pages_done) == (status, done):
            yield ": keep-alive\n\n"
        state, done = progress.state, progress.state.pages_done


# Helpers above this line: Serve serialises the class with the globals its methods use when the
# decorators run, so a helper defined below the class would be missing in the replica.
@serve.deployment(ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS["Ingress"]})
@serve.ingress(app)
class Ingress:
    """The HTTP API; each route delegates to a deployment handle."""

    def __init__(
        self,
        embedder: DeploymentHandle,
        clusterer: DeploymentHandle,
        detector: DeploymentHandle,
        job_runner: DeploymentHandle,
        *,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    ) -> None:
        self._embedder = embedder
        self._clusterer = clusterer
        self._detector = detector
        self._jobs = job_runner
        self._embedding_model = embedding_model
        self._embedding_dimension: int | None = None  # the Embedder's, once asked
        self._keys = KeySource()  # API keys (off when none are configured)
        defaults = IngressConfig()
        self._sentences = WorkLimit(
            defaults.max_sentences_in_flight, what="sentences", retry_after_s=defaults.retry_after_s
        )
        self._apply(defaults)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys or bad values fail the deploy."""
        self._apply(parse_settings(IngressConfig, config, where="Ingress user_config"))

    def _apply(self, config: IngressConfig) -> None:
        self._config = config
        self._sentences.resize(config.max_sentences_in_flight)
        self._sentences.retry_after_s = config.retry_after_s
        app.openapi_schema = None
        app.openapi = self._openapi  # type: ignore[method-assign]

    def _openapi(self) -> dict[str, Any]:
        return openapi_document(app, self._config, self._embedding_model, secured=self._secured())

    def _secured(self) -> bool:
        try:
            return self._keys.current().enabled
        except errors.Unavailable:  # the key file cannot be read: keys are required (and refused)
            return True

    def _owner(self, request: Request) -> str | None:
        """The name of the request's API key; None when keys are off. 401/403 for a missing or bad key."""
        key = self._keys.current().authenticate(request.headers.get("authorization"))
        return key.name if key is not None else None

    @app.post(
        "/v1/embed",
        summary="Embed sentences (L2-normalised float32 vectors)",
        response_model=EmbedResponse,
        responses=error_responses(*JSON_ERRORS),
        openapi_extra=json_body(EmbedRequest),
    )
    async def embed(self, request: Request) -> Response:
        self._owner(request)
        body = parse_json_body(EmbedRequest, await self._read_json(request))
        self._check(body.sentences)
        with self._sentences.admit(len(body.sentences)):
            vectors = await self._answer(self._embedder.embed.remote(body.sentences))
        return _json(
            EmbedResponse(
                embeddings=vector_rows(vectors, body.encoding_format),
                dimension=int(vectors.shape[1]),
                count=int(vectors.shape[0]),
            )
        )

    @app.post(
        "/v1/cluster",
        summary="Group sentences with similar meaning",
        response_model=ClusterResponse,
        responses=error_responses(*JSON_ERRORS),
        openapi_extra=json_body(ClusterRequest),
    )
    async def cluster(self, request: Request) -> Response:
        self._owner(request)
        body = parse_json_body(ClusterRequest, await self._read_json(request))
        self._check(body.sentences)
        with self._sentences.admit(len(body.sentences)):
            # The embeddings go from Embedder to Clusterer by reference; the ingress never holds them.
            embeddings = self._embedder.embed.remote(body.sentences)
            result: Clustering = await self._answer(
                self._clusterer.cluster.remote(
                    embeddings,
                    num_clusters=body.num_clusters,
                    min_cluster_size=body.min_cluster_size,
                    distance_threshold=body.distance_threshold,
                )
            )
        return _json(cluster_response(body.sentences, result))

    @app.post(
        "/v1/embeddings",
        summary="OpenAI-compatible embeddings (point an OpenAI client's base_url at /v1)",
        response_model=EmbeddingsResponse,
        responses=error_responses(*JSON_ERRORS, 404, model=OpenAIErrorResponse),
        openapi_extra=json_body(EmbeddingsRequest),
    )
    async def openai_embeddings(self, request: Request) -> Response:
        try:
            self._owner(request)
            body = parse_json_body(EmbeddingsRequest, await self._read_json(request))
            texts = body.texts()
            check_sentences(
                texts,
                max_sentences=self._config.max_sentences,
                max_text_chars=self._config.max_text_chars,
                field="input",
            )
            name = self._embedding_model
            if body.model not in embedding_model_names(name):
                raise errors.ModelNotFound(f"the model {body.model!r} does not exist here; use {name!r}")
            if body.dimensions is not None and body.dimensions != await self._dimension():
                raise errors.InvalidInput(
                    f"dimensions must be {await self._dimension()} for {name} (vectors are not shortened)"
                )
            with self._sentences.admit(len(texts)):
                vectors, tokens = await self._answer(
                    asyncio.gather(
                        self._embedder.embed.remote(texts), self._embedder.count_tokens.remote(texts)
                    )
                )
        except Exception as exc:
            return openai_error(exc)
        return _json(
            embeddings_response(
                vectors, model=self._embedding_model, tokens=tokens, encoding_format=body.encoding_format
            )
        )

    async def _dimension(self) -> int:
        if self._embedding_dimension is None:
            info: dict[str, Any] = await self._embedder.info.remote()
            self._embedding_dimension = int(info["dimension"])
        return self._embedding_dimension

    @app.post(
        "/v1/detect",
        summary="Layout regions and their text on every page of a short PDF, answered at once",
        response_model=AnalyzeResult,
        responses={200: {"content": MARKDOWN}, **error_responses(*JSON_ERRORS)},
        openapi_extra=PDF_BODY,
    )
    async def detect(self, request: Request, options: Annotated[DetectOptions, Query()]) -> Response:
        self._owner(request)
        pdf, _ = await self._read_pdf(request)
        if options.format == "markdown":
            text: str = await self._answer(self._jobs.detect_markdown.remote(pdf, options.analysis()))
            return Response(text, media_type=MARKDOWN_TYPE)
        result: AnalyzeResult = await self._answer(self._jobs.detect.remote(pdf, options.analysis()))
        return _json(result)

    @app.post(
        "/v1/jobs",
        summary="Start analysing a PDF of any length; poll the job it returns (Location header)",
        status_code=202,
        response_model=JobState,
        responses=error_responses(*JSON_ERRORS, 429),
        openapi_extra=PDF_BODY,
    )
    async def submit_job(self, request: Request, options: Annotated[JobOptions, Query()]) -> Response:
        owner = self._owner(request)
        pdf, filename = await self._read_pdf(request)
        state: JobState = await self._jobs.submit.remote(
            pdf, options.analysis(), filename, owner=owner, callback_url=options.callback_url
        )
        location = str(request.url_for("job_status", job_id=state.id))
        return _json(state, status_code=202, headers={"Location": location})

    @app.get(
        "/v1/jobs/{job_id}",
        summary="A job's state and progress",
        response_model=JobState,
        responses=error_responses(404, 422, 503),
    )
    async def job_status(
        self,
        job_id: str,
        request: Request,
        wait: Annotated[
            float | None,
            Query(
                ge=0,
                le=MAX_WAIT_S,
                description="Long-poll: answer once the state changes or after this many seconds.",
            ),
        ] = None,
    ) -> Response:
        owner = self._owner(request)
        if wait is None:
            state: JobState = await self._jobs.status.remote(job_id, owner)
        else:
            progress = await self._jobs.watch.remote(job_id, timeout_s=wait, owner=owner)
            state = progress.state
        return _json(state)

    @app.delete(
        "/v1/jobs/{job_id}",
        summary="Cancel a queued or running job (answers once stopped); delete a finished one with its files",
        response_model=JobState,
        responses=error_responses(404, 503),
    )
    async def delete_job(self, job_id: str, request: Request) -> Response:
        state: JobState = await self._jobs.cancel.remote(job_id, self._owner(request))
        return _json(state)

    @app.get(
        "/v1/jobs/{job_id}/events",
        summary="A job's progress as Server-Sent Events: its state, each page done, and the end",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}},
            **error_responses(404, 503),
        },
    )
    async def job_events(self, job_id: str, request: Request) -> Response:
        owner = self._owner(request)
        state: JobState = await self._jobs.status.remote(job_id, owner)  # a 404 before the stream starts
        last = request.headers.get("last-event-id", "")
        seen = int(last) if last.isdigit() else None
        return StreamingResponse(
            job_event_stream(self._jobs, state, seen, owner),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/v1/jobs/{job_id}/result",
        summary="The result of a succeeded job (same shape as /v1/detect)",
        response_model=AnalyzeResult,
        responses=error_responses(404, 409, 503),
    )
    async def job_result(self, job_id: str, request: Request) -> Response:
        body: bytes = await self._jobs.result.remote(job_id, self._owner(request))
        return Response(body, media_type="application/json")

    @app.get(
        "/v1/jobs/{job_id}/result.md",
        summary="The result of a succeeded job as Markdown (reading order, headings, lists, tables, figures)",
        response_class=Response,
        responses={200: {"content": MARKDOWN}, **error_responses(404, 409, 503)},
    )
    async def job_markdown(self, job_id: str, request: Request) -> Response:
        body: bytes = await self._jobs.result_markdown.remote(job_id, self._owner(request))
        return Response(body, media_type=MARKDOWN_TYPE)

    @app.get(
        "/v1/jobs/{job_id}/pages/{number}.png",
        summary="Page `number` (from 1) with its regions drawn, one colour per label",
        response_class=Response,
        responses={
            200: {"content": PNG},
            **error_responses(404, 409, 503),
        },
    )
    async def job_page(self, job_id: str, number: int, request: Request) -> Response:
        png: bytes = await self._jobs.page_png.remote(job_id, number, self._owner(request))
        return Response(png, media_type="image/png")

    @app.get(
        "/v1/models",
        summary="The detectron2 models served (use a name as `?model=` on /v1/detect and /v1/jobs)",
        response_model=ModelsResponse,
        responses=error_responses(503),
    )
    async def list_models(self, request: Request) -> Response:
        self._owner(request)
        models: ModelsResponse = await self._detector.models.remote()
        return _json(models)

    @app.get(
        "/v1/jobs/{job_id}/pages/{number}/image.png",
        summary="Page `number` (from 1) of the job's PDF, rendered at the job's dpi, nothing drawn",
        response_class=Response,
        responses={
            200: {"content": PNG},
            **error_responses(404, 503),
        },
    )
    async def job_page_image(self, job_id: str, number: int, request: Request) -> Response:
        png: bytes = await self._jobs.page_image.remote(job_id, number, self._owner(request))
        return Response(png, media_type="image/png")

    @app.get("/", include_in_schema=False)
    async def web_page(self) -> Response:
        """The web page: drop a PDF, watch it run, look at its regions; group sentences."""
        return Response(WEB_ASSETS["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/ui/{name}", include_in_schema=False)
    async def web_asset(self, name: str) -> Response:
        if name not in WEB_ASSETS or name == "index.html":
            raise errors.NotFound(f"no such file: /ui/{name}")
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(
            WEB_ASSETS[name], media_type=f"{media}; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/healthz", summary="Liveness: the ingress answers", response_model=HealthResponse)
    async def healthz(self) -> Response:
        return _json(HealthResponse(status="ok"))

    @app.get(
        "/readyz",
        summary=(
            "Readiness: 200 when every deployment answers or is busy shedding load (status busy); "
            "a job store that cannot be reached is reported (status degraded, store down)"
        ),
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "A deployment is not ready"}},
    )
    async def readyz(self) -> Response:
        handles = {
            "Embedder": self._embedder,
            "Clusterer": self._clusterer,
            "Detector": self._detector,
            "JobRunner": self._jobs,
        }
        results = await asyncio.gather(*(self._probe(h) for h in handles.values()))
        states = {name: state for name, (state, _) in zip(handles, results, strict=True)}
        ready = all(s in ("ready", "busy") for s in states.values())
        status = "not_ready" if not ready else "busy" if "busy" in states.values() else "ready"
        store_error = (results[-1][1] or {}).get("store_error")
        store = (
            None
            if states["JobRunner"] != "ready"
            else "ok"
            if store_error is None
            else f"down: {store_error}"
        )
        if ready and store_error is not None:
            status = "degraded"  # embeddings and /v1/detect still work; jobs wait for the store
        body = ReadyResponse(status=status, deployments=states, store=store)
        return _json(body, status_code=200 if ready else 503)

    async def _probe(self, handle: DeploymentHandle) -> tuple[str, dict[str, Any] | None]:
        """A deployment's readiness and its ``ready()`` answer."""
        try:
            answer = await asyncio.wait_for(handle.ready.remote(), timeout=self._config.ready_timeout_s)
        except TimeoutError:
            return "timeout", None
        except Exception as exc:
            if isinstance(root_cause(exc), BackPressureError):
                return "busy", None  # up, and its queue is full: still ready (it sheds what it cannot take)
            return f"error: {type(exc).__name__}", None
        return "ready", answer if isinstance(answer, dict) else None

    async def _answer(self, response: Awaitable[T]) -> T:
        """The answer of a deployment call, or a 504 after ``request_timeout_s`` (the call is cancelled)."""
        try:
            return await asyncio.wait_for(response, timeout=self._config.request_timeout_s)
        except TimeoutError:
            raise errors.Timeout(
                f"no answer within {self._config.request_timeout_s:g} s (request_timeout_s); "
                "retry later or send less at once"
            ) from None

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
