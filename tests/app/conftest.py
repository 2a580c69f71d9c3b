"""App tier: one real local Ray + Serve for the whole session, deployed from configs/serve.yaml.

Requests go over real HTTP to 127.0.0.1 (a free port, so a running `make run` does not clash)
and through real deployment handles.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import ray
from ray import serve

from serve_app.launch import DEFAULT_CONFIG, deploy, free_port, load_config

APP_NAME = "serve_app"


@pytest.fixture(scope="session")
def serve_url() -> Iterator[str]:
    port = free_port()
    ray.init(namespace="serve", include_dashboard=False, log_to_driver=False)
    try:
        deploy(load_config(DEFAULT_CONFIG, port=port), timeout_s=300)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def http(serve_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_url, timeout=120) as client:
        yield client
