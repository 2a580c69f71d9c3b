"""The HTTP API as data: one route table that both the ingress and the OpenAPI document are built from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serve_app.core.jobs import AnalyzeOptions, AnalyzeResult, JobState
from serve_app.core.schemas import (
    ClusterRequest,
    ClusterResponse,
    EmbedRequest,
    EmbedResponse,
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
)

ERROR_STATUS_TEXT = {
    400: "Malformed body (for example invalid JSON)",
    404: "Not found",
    409: "The job is not finished, or it failed",
    413: "A limit was exceeded (body size, sentence count, text length, pages, pixels)",
    415: "Unsupported Content-Type",
    422: "Invalid input (missing or empty fields, wrong types)",
    503: "Not ready or overloaded",
}


_PATH_PARAM = re.compile(r"\{(\w+)(:\w+)?\}")  # Starlette's {name} or {name:convertor}


@dataclass(frozen=True)
class Route:
    """One HTTP route: the ingress binds ``name`` to a handler method of the same name."""

    path: str
    method: str
    name: str
    summary: str
    response: type[BaseModel] | None
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    query: type[BaseModel] | None = None  # URL query parameters, validated by this model
    pdf_body: bool = False  # the body is a PDF: application/pdf, or multipart/form-data with a "file" part
    status: int = 200
    response_media: str = "application/json"

    @property
    def openapi_path(self) -> str:
        """The path as OpenAPI writes it: ``{number:int}`` becomes ``{number}``."""
        return _PATH_PARAM.sub(r"{\1}", self.path)


JSON_ERRORS = (400, 413, 415, 422, 503)
PDF_BODY_SCHEMAS: dict[str, Any] = {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"],
        }
    },
}

ROUTES: tuple[Route, ...] = (
    Route(
        "/v1/embed",
        "POST",
        "embed",
        "Embed sentences (L2-normalised float32 vectors)",
        EmbedResponse,
        EmbedRequest,
        JSON_ERRORS,
    ),
    Route(
        "/v1/cluster",
        "POST",
        "cluster",
        "Group sentences with similar meaning",
        ClusterResponse,
        ClusterRequest,
        JSON_ERRORS,
    ),
    Route(
        "/v1/detect",
        "POST",
        "detect",
        "Layout regions and their text on every page of a short PDF, answered at once",
        AnalyzeResult,
        errors=JSON_ERRORS,
        query=AnalyzeOptions,
        pdf_body=True,
    ),
    Route(
        "/v1/jobs",
        "POST",
        "submit_job",
        "Start analysing a PDF of any length; poll the job it returns (Location header)",
        JobState,
        errors=JSON_ERRORS,
        query=AnalyzeOptions,
        pdf_body=True,
        status=202,
    ),
    Route(
        "/v1/jobs/{job_id}", "GET", "job_status", "A job's state and progress", JobState, errors=(404, 503)
    ),
    Route(
        "/v1/jobs/{job_id}/result",
        "GET",
        "job_result",
        "The result of a succeeded job (same shape as /v1/detect)",
        AnalyzeResult,
        errors=(404, 409, 503),
    ),
    Route(
        "/v1/jobs/{job_id}/pages/{number:int}.png",
        "GET",
        "job_page",
        "Page `number` (from 1) with its regions drawn, one colour per label",
        None,
        errors=(404, 409, 503),
        response_media="image/png",
    ),
    Route("/healthz", "GET", "healthz", "Liveness: the ingress answers", HealthResponse),
    Route(
        "/readyz",
        "GET",
        "readyz",
        "Readiness: 200 only when every deployment answers",
        ReadyResponse,
        errors=(503,),
    ),
    Route("/openapi.json", "GET", "openapi", "This OpenAPI 3 document", None),
)


def openapi_document(routes: tuple[Route, ...] = ROUTES, *, title: str, version: str) -> dict[str, Any]:
    """Build an OpenAPI 3.1 document whose paths and bodies are exactly ``routes``."""
    models = {m for r in routes for m in (r.request, r.response, r.query) if m is not None} | {ErrorResponse}
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, schema = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {"operationId": route.name, "summary": route.summary, "responses": {}}
        path = route.openapi_path
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if convertor == ":int" else "string"},
            }
            for name, convertor in _PATH_PARAM.findall(route.path)
        ]
        if route.query is not None:
            query_schema = schema["$defs"][route.query.__name__]
            parameters += [
                {"name": name, "in": "query", "required": False, "schema": prop}
                for name, prop in query_schema["properties"].items()
            ]
        if parameters:
            op["parameters"] = parameters
        if route.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.request, "validation")]}},
            }
        elif route.pdf_body:
            op["requestBody"] = {"required": True, "content": PDF_BODY_SCHEMAS}
        ok: dict[str, Any] = {"description": "OK" if route.status == 200 else "Accepted"}
        if route.response is not None:
            ok["content"] = {route.response_media: {"schema": refs[(route.response, "validation")]}}
        elif route.response_media == "application/json":
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        else:
            ok["content"] = {route.response_media: {"schema": {"type": "string", "format": "binary"}}}
        op["responses"][str(route.status)] = ok
        for status in route.errors:
            op["responses"][str(status)] = {
                "description": ERROR_STATUS_TEXT[status],
                "content": {"application/json": {"schema": refs[(ErrorResponse, "validation")]}},
            }
        paths.setdefault(path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schema.get("$defs", {})},
    }
