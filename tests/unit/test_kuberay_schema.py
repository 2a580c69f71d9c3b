"""k8s/kuberay.yaml is a valid RayService for the operator it targets: checked against the CRD schema of a
pinned KubeRay release (tests/kuberay, vendored with its version and licence), as the API server checks it
with strict field validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "kuberay" / "rayservice-v1.schema.json"
KUBERAY_VERSION = "v1.7.0"


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def rayservices(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d and d.get("kind") == "RayService"]


def unknown_fields(value: Any, node: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of fields the schema does not declare (what `kubectl apply --validate=strict` refuses)."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict) and node.get("type") == "object":
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from unknown_fields(item, extra, f"{path}.{key}")
            elif properties is not None and path not in ("", ".metadata"):
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            yield from unknown_fields(item, node["items"], f"{path}[{i}]")


def problems(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema())
    found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    return found + [f"{p}: not in the {KUBERAY_VERSION} schema" for p in unknown_fields(document, schema())]


def test_the_vendored_schema_is_the_pinned_releases() -> None:
    readme = (ROOT / "tests" / "kuberay" / "README.md").read_text()
    assert f"KubeRay **{KUBERAY_VERSION}**" in readme and "Apache License 2.0" in readme
    assert (ROOT / "tests" / "kuberay" / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert set(schema()["properties"]) >= {"apiVersion", "kind", "metadata", "spec", "status"}


def test_the_manifest_is_a_valid_rayservice() -> None:
    (service,) = rayservices((ROOT / "k8s" / "kuberay.yaml").read_text())
    assert service["apiVersion"] == "ray.io/v1"
    assert problems(service) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["spec"].update(serveConfigV3="x"), "spec.serveConfigV3: not in the"),
        (lambda s: s["spec"]["rayClusterConfig"].update(rayVersion=2.6), "is not of type 'string'"),
        (
            lambda s: s["spec"]["rayClusterConfig"]["headGroupSpec"].pop("template"),
            "'template' is a required",
        ),
        (
            lambda s: s["spec"]["rayClusterConfig"].update(authOptions={"mode": "sometimes"}),
            "'sometimes' is not one of",
        ),
    ],
)
def test_the_check_catches_what_the_operator_would_refuse(edit: Any, message: str) -> None:
    (service,) = rayservices((ROOT / "k8s" / "kuberay.yaml").read_text())
    edit(service)
    found = problems(service)
    assert any(message in p for p in found), found
