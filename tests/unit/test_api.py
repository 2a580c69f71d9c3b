from __future__ import annotations

import ast
from pathlib import Path

from openapi_spec_validator import validate

import serve_app
from serve_app.core.api import ROUTES, openapi_document


def test_openapi_document_is_valid_and_lists_every_route() -> None:
    doc = openapi_document(title="t", version="1")
    validate(doc)  # type: ignore[arg-type]
    listed = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert listed == {(r.openapi_path, r.method) for r in ROUTES}


def test_openapi_bodies_reference_real_schemas() -> None:
    doc = openapi_document(title="t", version="1")
    cluster = doc["paths"]["/v1/cluster"]["post"]
    ref = cluster["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {
        "sentences",
        "num_clusters",
        "min_cluster_size",
        "distance_threshold",
    }
    assert schema["required"] == ["sentences"]
    assert {"400", "413", "415", "422"} <= set(cluster["responses"])


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
