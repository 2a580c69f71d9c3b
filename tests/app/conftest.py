"""App tier: one real local Ray + Serve for the whole session, deployed from configs/serve.yaml.

Requests go over real HTTP to 127.0.0.1 (a free port, so a running `make run` does not clash)
and through real deployment handles. The JobRunner stores jobs in a real S3-compatible server
(moto's standalone server, a subprocess on 127.0.0.1) through boto3; `local_store` switches it to a
local directory for the tests that cover that back end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from ray import serve
from ray.serve.schema import ServeDeploySchema

from serve_app.launch import DEFAULT_CONFIG, deploy, free_port, load_config
from tests.s3_server import make_bucket, moto_s3_server, s3_client, s3_env

APP_NAME = "serve_app"
BUCKET = "serve-app-test"
PREFIX = "app-tier"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        make_bucket(endpoint, BUCKET)
        yield endpoint


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    """A boto3 client of the test S3 server, to look at what the service stored."""
    return s3_client(s3_endpoint)


@pytest.fixture(scope="session")
def serve_config(s3_endpoint: str) -> ServeDeploySchema:
    env = s3_env(s3_endpoint) | {"SERVE_APP_STORE_URL": f"s3://{BUCKET}/{PREFIX}"}
    return load_config(DEFAULT_CONFIG, port=free_port(), env_vars=env)


@pytest.fixture(scope="session")
def serve_url(serve_config: ServeDeploySchema) -> Iterator[str]:
    ray.init(namespace="serve", include_dashboard=False, log_to_driver=False)
    try:
        deploy(serve_config, timeout_s=300)
        yield f"http://127.0.0.1:{serve_config.http_options.port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def http(serve_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_url, timeout=120) as client:
        yield client


def set_job_runner_config(config: ServeDeploySchema, *, expect_store: str, **changes: Any) -> None:
    """Re-deploy with the JobRunner's user_config changed (Serve reconfigures it in place) and wait
    until the runner reports ``expect_store`` as its store."""
    app = config.applications[0]
    runner = next(d for d in app.deployments if d.name == "JobRunner")
    assert isinstance(runner.user_config, dict)
    runner.user_config = {**runner.user_config, **changes}
    deploy(config, timeout_s=120)
    handle = serve.get_deployment_handle("JobRunner", app_name=APP_NAME)
    deadline = time.monotonic() + 60
    while (store := handle.ready.remote().result(timeout_s=30)["store"]) != expect_store:
        assert time.monotonic() < deadline, f"JobRunner still uses {store}, not {expect_store}"
        time.sleep(0.2)


@pytest.fixture
def local_store(serve_url: str, serve_config: ServeDeploySchema, tmp_path: Path) -> Iterator[Path]:
    """The JobRunner writes to a local directory for the duration of one test, then back to S3."""
    root = tmp_path / "store"
    set_job_runner_config(serve_config, expect_store=root.resolve().as_uri(), store_url=f"file://{root}")
    try:
        yield root
    finally:
        set_job_runner_config(serve_config, expect_store=f"s3://{BUCKET}/{PREFIX}", store_url=None)


def wait_for_job(http: httpx.Client, job_id: str, *, timeout_s: float = 300) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` until the job finishes; 503s (a runner restarting) are waited out."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = http.get(f"/v1/jobs/{job_id}")
        if response.status_code == 200:
            state: dict[str, Any] = response.json()
            assert state["pages_done"] <= state["pages_total"]
            if state["status"] in ("succeeded", "failed"):
                return state
        else:
            assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, f"job {job_id} not finished after {timeout_s}s: {response.text}"
        time.sleep(0.25)
