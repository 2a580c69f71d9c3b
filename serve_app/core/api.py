"""The HTTP API as data: one route table that both the ingress and the OpenAPI document are built from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

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
    413: "A limit was exceeded (body size, sentence count, text length)",
    415: "Unsupported Content-Type",
    422: "Invalid input (missing or empty fields, wrong types)",
    503: "Not ready or overloaded",
}


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


JSON_ERRORS = (400, 413, 415, 422, 503)

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
    models = {m for r in routes for m in (r.request, r.response) if m is not None} | {ErrorResponse}
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, schema = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {"operationId": route.name, "summary": route.summary, "responses": {}}
        if route.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.request, "validation")]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if route.response is not None:
            ok["content"] = {"application/json": {"schema": refs[(route.response, "validation")]}}
        else:
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        op["responses"]["200"] = ok
        for status in route.errors:
            op["responses"][str(status)] = {
                "description": ERROR_STATUS_TEXT[status],
                "content": {"application/json": {"schema": refs[(ErrorResponse, "validation")]}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schema.get("$defs", {})},
    }
