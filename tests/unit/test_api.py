"""The HTTP API's OpenAPI document (built without Ray running) and the direction of imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

import serve_app
from serve_app.deployments.ingress import app, openapi_document
from serve_app.settings import IngressConfig

ROUTES = {
    ("/v1/embed", "post"),
    ("/v1/cluster", "post"),
    ("/v1/embeddings", "post"),
    ("/v1/detect", "post"),
    ("/v1/jobs", "post"),
    ("/v1/jobs/{job_id}", "get"),
    ("/v1/jobs/{job_id}", "delete"),
    ("/v1/jobs/{job_id}/result", "get"),
    ("/v1/jobs/{job_id}/result.md", "get"),
    ("/v1/jobs/{job_id}/events", "get"),
    ("/v1/jobs/{job_id}/pages/{number}/image.png", "get"),
    ("/v1/jobs/{job_id}/pages/{number}.png", "get"),
    ("/v1/models", "get"),
    ("/healthz", "get"),
    ("/readyz", "get"),
}


def document(**limits: Any) -> dict[str, Any]:
    return openapi_document(app, IngressConfig(**limits))


def test_openapi_document_is_valid_and_lists_every_route() -> None:
    doc = document()
    validate(doc)  # type: ignore[arg-type]
    assert {(path, method) for path, ops in doc["paths"].items() for method in ops} == ROUTES


def test_openapi_bodies_reference_real_schemas() -> None:
    cluster = document()["paths"]["/v1/cluster"]["post"]
    schema = cluster["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {
        "sentences",
        "num_clusters",
        "min_cluster_size",
        "distance_threshold",
    }
    assert schema["required"] == ["sentences"]
    assert {"400", "413", "415", "422", "503"} <= set(cluster["responses"])


def test_openapi_declares_the_limits_this_replica_enforces() -> None:
    doc = document(max_sentences=7, max_text_chars=11, max_pdf_bytes=4096)
    for path in ("/v1/embed", "/v1/cluster"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        sentences = body["properties"]["sentences"]
        assert (sentences["minItems"], sentences["maxItems"]) == (1, 7)
        item = sentences["items"]
        assert (item["type"], item["minLength"], item["maxLength"]) == ("string", 1, 11)
        assert re.search(item["pattern"], "  x ") and not re.search(item["pattern"], " \t\n")
    for path in ("/v1/detect", "/v1/jobs"):
        op = doc["paths"][path]["post"]
        pdf = op["requestBody"]["content"]["application/pdf"]["schema"]
        assert (pdf["minLength"], pdf["maxLength"]) == (1, 4096)
        assert "multipart/form-data" in op["requestBody"]["content"]
        query = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}
        # The answer's format: /v1/detect only; the completion webhook: /v1/jobs only.
        own = {"format"} if path == "/v1/detect" else {"callback_url"}
        assert set(query) == {"dpi", "score_threshold", "cluster", "model", "masks"} | own
        assert (query["dpi"]["minimum"], query["dpi"]["maximum"]) == (36, 300)
        assert query["cluster"]["type"] == "boolean"


def test_every_error_status_is_documented_with_the_error_shape() -> None:
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status.startswith("4") or (status == "503" and path != "/readyz"):
                    schema = response["content"]["application/json"]["schema"]
                    # /v1/embeddings answers errors in OpenAI's shape (the same code and message inside).
                    shape = "OpenAIErrorResponse" if path == "/v1/embeddings" else "ErrorResponse"
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}, (path, method, status)
                    assert response["description"], (path, method, status)


def test_core_never_imports_ray() -> None:
    core = Path(serve_app.__file__).parent / "core"
    for module in core.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "ray" or n.startswith("ray.") for n in names), (
                f"{module.name} imports {names}"
            )
