from __future__ import annotations

import httpx
import numpy as np
import pytest
from openapi_spec_validator import validate
from ray import serve

from serve_app.core.api import ROUTES
from serve_app.core.clustering import Clustering
from serve_app.deployments.clusterer import Clusterer
from tests import pdfs
from tests.app.conftest import APP_NAME, wait_for_job
from tests.examples import NINE_TITLES


def test_healthz(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_every_deployment(http: httpx.Client) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "deployments": {"Embedder": "ready", "Clusterer": "ready", "Detector": "ready", "JobRunner": "ready"},
    }


def test_openapi_served_matches_routes(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    validate(doc)
    assert {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops} == {
        (r.openapi_path, r.method) for r in ROUTES
    }
    # Every documented route answers with its documented status over real HTTP.
    submitted = http.post("/v1/jobs", content=pdfs.text_pdf(1), headers={"content-type": "application/pdf"})
    job_id = wait_for_job(http, submitted.json()["id"])["id"]
    for route in ROUTES:
        path = route.path.replace("{job_id}", job_id).replace("{number:int}", "1")
        if route.pdf_body:
            response = http.post(path, content=pdfs.text_pdf(1), headers={"content-type": "application/pdf"})
        else:
            response = http.request(route.method, path, json={"sentences": ["probe"]})
        assert response.status_code == route.status, (route.path, response.text)
        assert response.headers["content-type"].startswith(route.response_media)


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
