"""Helpers shared by the app-tier tests: error checks, job polling, replica kills, live reconfiguration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import ray
from ray import serve
from ray.serve.schema import ServeDeploySchema

from tools.launch import APP_NAME, deploy
from tools.wait import wait_until

PDF = {"content-type": "application/pdf"}
JSON = {"content-type": "application/json"}
# GET /readyz of the whole app at rest: every deployment ready, the job store reachable.
READY = {
    "status": "ready",
    "deployments": {"Embedder": "ready", "Clusterer": "ready", "Detector": "ready", "JobRunner": "ready"},
    "store": "ok",
}


def assert_error(response: httpx.Response, status: int, code: str, fragment: str = "") -> None:
    """``response`` is an error answer of the documented shape, with this status, code and message part."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert fragment in body["error"]["message"]


def wait_for_job(http: httpx.Client, job_id: str, *, timeout_s: float = 300) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` until the job finishes; 503s (a runner restarting) are waited out."""
    last: list[httpx.Response] = []

    def finished() -> dict[str, Any] | None:
        response = http.get(f"/v1/jobs/{job_id}")
        last[:] = [response]
        if response.status_code != 200:
            assert response.status_code == 503, response.text
            return None
        state: dict[str, Any] = response.json()
        assert state["pages_done"] <= state["pages_total"]
        return state if state["status"] in ("succeeded", "failed", "cancelled") else None

    state: dict[str, Any] = wait_until(
        finished, timeout_s, interval_s=0.25, message=lambda: f"job {job_id} not finished: {last[0].text}"
    )
    return state


def wait_for_progress(
    http: httpx.Client, job_id: str, *, pages_done: int, timeout_s: float = 120
) -> dict[str, Any]:
    """Poll the job until at least ``pages_done`` pages are done; return that state."""

    def progressed() -> dict[str, Any] | None:
        state: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        return state if state["pages_done"] >= pages_done else None

    state: dict[str, Any] = wait_until(
        progressed, timeout_s, interval_s=0.05, message=f"job {job_id} stalled"
    )
    return state


def replica_names(deployment: str) -> list[str]:
    """Actor names of the replicas of ``deployment`` (Serve names them SERVE_REPLICA::app#deployment#id)."""
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#{deployment}#")
    ]


def kill_replicas(deployment: str) -> int:
    """Kill every replica actor of ``deployment`` for good; Serve has to start new ones. Returns how many."""
    names = replica_names(deployment)
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    return len(names)


def set_user_config(config: ServeDeploySchema, deployment: str, **changes: Any) -> None:
    """Re-deploy with ``deployment``'s user_config changed (Serve reconfigures its replicas in place);
    ``None`` removes a key (back to the default)."""
    app = config.applications[0]
    dep = next(d for d in app.deployments if d.name == deployment)
    assert isinstance(dep.user_config, dict)
    merged = {**dep.user_config, **changes}
    dep.user_config = {k: v for k, v in merged.items() if v is not None}
    deploy(config, timeout_s=120)


def wait_for_ready_field(deployment: str, field: str, expected: Any, *, timeout_s: float = 60) -> None:
    """Wait until the ``ready()`` answer of ``deployment`` reports ``field == expected``."""
    handle = serve.get_deployment_handle(deployment, app_name=APP_NAME)
    wait_until(
        lambda: handle.ready.remote().result(timeout_s=30)[field] == expected,
        timeout_s,
        message=f"{deployment}.ready()[{field!r}] never became {expected!r}",
    )


@contextmanager
def changed_user_config(
    config: ServeDeploySchema, deployment: str, *, ready: tuple[str, Any, Any], **changes: Any
) -> Iterator[None]:
    """``deployment``'s user_config with ``changes`` for the block, then back to the defaults. ``ready`` is
    (field of its ``ready()`` answer, value with the changes, value after): waited for both ways."""
    field, during, after = ready
    set_user_config(config, deployment, **changes)
    wait_for_ready_field(deployment, field, during)
    try:
        yield
    finally:
        set_user_config(config, deployment, **dict.fromkeys(changes))
        wait_for_ready_field(deployment, field, after)


@contextmanager
def api_keys_on(http: httpx.Client, keys_file: Path, table: dict[str, Any]) -> Iterator[None]:
    """API keys on for the block: ``table`` written to the key file the service reads (it notices the
    change at the next request), then ``{}`` (keys off) again."""
    keys_file.write_text(json.dumps(table))
    wait_until(lambda: http.get("/v1/models").status_code == 401, 30, message="keys never applied")
    try:
        yield
    finally:
        keys_file.write_text("{}")
        wait_until(lambda: http.get("/v1/models").status_code == 200, 30, message="keys never went off")
