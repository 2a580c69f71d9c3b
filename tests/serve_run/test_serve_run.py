"""`serve run serve_app.app:build_app` (the real CLI, no config file) serves every route, jobs included.

Without configs/serve.yaml no deployment gets a user_config, so Serve never calls `reconfigure`: the
JobRunner must open its store from the defaults and the environment, and every deployment runs on the
defaults of serve_app.settings. This tier starts its own local Ray through the CLI, on port 8000
(`serve run` has no port option), so it runs alone, after the app tier has shut its Ray down.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import pdfs
from tests.app.helpers import PDF, wait_for_job
from tests.examples import DOG_WALKING, NINE_TITLES, PUBLIC_SPEAKING
from tools.wait import wait_until

URL = "http://127.0.0.1:8000"


def ready(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", 8000)) == 0:
            pytest.fail("port 8000 is in use (is `make run` running?); `serve run` always listens there")
    store = tmp_path_factory.mktemp("store")
    log = (tmp_path_factory.mktemp("log") / "serve_run.log").open("wb")
    env = os.environ | {
        "SERVE_APP_STORE_URL": str(store),
        "HF_HUB_OFFLINE": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    serve = Path(sys.executable).parent / "serve"
    proc = subprocess.Popen(
        [str(serve), "run", "serve_app.app:build_app"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        with httpx.Client(base_url=URL, timeout=120) as client:

            def up() -> bool:
                assert proc.poll() is None, f"serve run exited with {proc.returncode}; see {log.name}"
                return ready(client)

            wait_until(up, 300, interval_s=1, message=f"serve run not ready; see {log.name}")
            yield client
    finally:
        proc.send_signal(signal.SIGINT)  # serve run shuts Serve and its Ray down on Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def test_every_deployment_is_ready(http: httpx.Client) -> None:
    assert http.get("/readyz").json()["deployments"] == dict.fromkeys(
        ("Embedder", "Clusterer", "Detector", "JobRunner"), "ready"
    )


def test_clusters(http: httpx.Client) -> None:
    response = http.post("/v1/cluster", json={"sentences": NINE_TITLES})
    assert response.status_code == 200, response.text
    groups = [{m["text"] for m in c["members"]} for c in response.json()["clusters"]]
    assert sorted(groups, key=len) == [set(PUBLIC_SPEAKING), set(DOG_WALKING)]


def test_jobs_run_on_the_default_store(http: httpx.Client) -> None:
    response = http.post("/v1/jobs", content=pdfs.text_pdf(2), headers=PDF)
    assert response.status_code == 202, response.text
    state = wait_for_job(http, response.json()["id"])
    assert state["status"] == "succeeded" and state["pages_done"] == 2, state
    result = http.get(f"/v1/jobs/{state['id']}/result").json()
    assert [p["number"] for p in result["pages"]] == [1, 2]
    assert http.get(f"/v1/jobs/{state['id']}/pages/2.png").headers["content-type"] == "image/png"
