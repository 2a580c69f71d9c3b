from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import httpx
import numpy as np
import pytest
from openapi_spec_validator import validate
from ray import serve

from serve_app.core.clustering import Clustering
from serve_app.deployments.clusterer import Clusterer
from tests import pdfs
from tests.app.helpers import PDF, READY, wait_for_job
from tests.examples import NINE_TITLES
from tools.launch import APP_NAME


def test_healthz(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_every_deployment(http: httpx.Client) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == READY


def test_every_documented_route_answers_as_documented(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    validate(doc)
    assert len(doc["paths"]) == 14
    submitted = http.post("/v1/jobs", content=pdfs.text_pdf(1), headers=PDF)
    job_id = wait_for_job(http, submitted.json()["id"])["id"]
    bodies = {"/v1/embeddings": {"input": ["probe"], "model": "all-MiniLM-L6-v2"}}
    # DELETE last: it deletes the job the other routes read.
    operations = sorted(
        ((path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()),
        key=lambda item: item[1] == "delete",
    )
    for path, method, op in operations:
        url = path.replace("{job_id}", job_id).replace("{number}", "1")
        body = op.get("requestBody", {}).get("content", {})
        if "application/pdf" in body:
            response = http.request(method, url, content=pdfs.text_pdf(1), headers=PDF)
        elif "application/json" in body:
            response = http.request(method, url, json=bodies.get(path, {"sentences": ["probe"]}))
        else:
            response = http.request(method, url)
        (success,) = [s for s in op["responses"] if s.startswith("2")]
        assert response.status_code == int(success), (path, response.text)
        media = list(op["responses"][success]["content"])
        assert response.headers["content-type"].startswith(media[0]), path  # the first is the default


def test_interactive_docs_are_served_without_a_cdn(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in assets and "/docs/assets/swagger-ui.css" in assets
    assert all(a.startswith("/") for a in assets), assets  # nothing from another host
    assert "/openapi.json" in page.text
    script = http.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 500_000  # the real bundle, shipped in the fastapi-offline package


def test_handles_compose_without_http(serve_url: str) -> None:
    embedder = serve.get_deployment_handle("Embedder", app_name=APP_NAME)
    clusterer = serve.get_deployment_handle("Clusterer", app_name=APP_NAME)
    vectors = embedder.embed.remote(NINE_TITLES).result(timeout_s=60)
    assert isinstance(vectors, np.ndarray) and vectors.dtype == np.float32 and vectors.shape == (9, 384)
    # Pass the embedder's response straight into the clusterer: Ray hands it over by reference.
    result = clusterer.cluster.remote(embedder.embed.remote(NINE_TITLES)).result(timeout_s=60)
    assert isinstance(result, Clustering)
    assert [c.members for c in result.clusters] == [(0, 1, 2, 3, 4), (5, 6, 7, 8)]
    # Handles skip the ingress's validation: an empty list is answered with no rows, not an error.
    assert embedder.embed.remote([]).result(timeout_s=60).shape == (0, 384)


def test_typo_in_user_config_fails_the_deploy(serve_url: str) -> None:
    # num_cpus 0: the shipped app already reserves every CPU of a 2-core machine.
    bad = Clusterer.options(
        name="BadClusterer", user_config={"distance_treshold": 0.5}, ray_actor_options={"num_cpus": 0}
    ).bind()
    with pytest.raises(RuntimeError, match="failed"):
        serve.run(bad, name="bad_config", route_prefix=None, blocking=False)
    status = serve.status().applications["bad_config"]
    message = status.deployments["BadClusterer"].message
    assert "Clusterer user_config: distance_treshold: Extra inputs are not permitted" in message
    serve.delete("bad_config")
    # The real app is untouched.
    assert serve.status().applications[APP_NAME].status == "RUNNING"


def test_docs_page_renders_every_route_in_a_real_browser(serve_url: str, http: httpx.Client) -> None:
    """Headless Chromium (Debian's, installed by `make test`) loads /docs, runs Swagger UI from the assets
    the service ships, and draws one operation per documented route; this machine has no CDN to reach."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: `make browser` (apt-get install chromium) installs it"
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                chromium,
                *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
                *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
                f"--user-data-dir={profile}",
                "--virtual-time-budget=20000",  # let the page's scripts fetch /openapi.json and render
                "--dump-dom",
                f"{serve_url}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    assert "swagger-ui" in dom and "Failed to load API definition" not in dom
    drawn = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert drawn == set(http.get("/openapi.json").json()["paths"])
