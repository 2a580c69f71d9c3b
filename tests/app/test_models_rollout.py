"""A new version of a model: point its name at a new URI and re-deploy. Replicas switch in place (no
restart, the service keeps answering), new requests get the new version, a job that was running finishes
on the version it started with, and an update naming models that cannot be used keeps every replica
serving what it had and says why."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import pymupdf
import pytest
import ray
from ray import serve
from ray.serve import Deployment
from ray.serve.schema import ServeDeploySchema

from serve_app.deployments.detector import Detector
from serve_app.models.source import MODEL_CACHE_ENV
from serve_app.types import PageImage
from tests.app.conftest import MODELS_BUCKET
from tests.app.helpers import (
    PDF,
    assert_error,
    replica_names,
    set_user_config,
    wait_for_job,
    wait_for_progress,
)
from tests.d2_models import pdf_with_shapes, upload
from tests.s3_server import s3_client, s3_env

NEW_LABELS = ("seal", "autograph")


@pytest.fixture(scope="module")
def second_version(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Version 2 of ``shapes``: the same weights with renamed classes, so answers tell the versions apart."""
    client = s3_client(s3_endpoint)
    root = tmp_path_factory.mktemp("shapes_v2")
    for key in ("config.yaml", "model_final.pth"):
        client.download_file(MODELS_BUCKET, f"shapes/v1/{key}", str(root / key))
    (root / "labels.json").write_text('["seal", "autograph"]')
    return upload(client, MODELS_BUCKET, "shapes/v2", root)


@pytest.fixture
def restore_models(serve_config: ServeDeploySchema) -> Iterator[dict[str, Any]]:
    """The Detector's model table as deployed; put back after the test."""
    detector = next(d for d in serve_config.applications[0].deployments if d.name == "Detector")
    assert isinstance(detector.user_config, dict)
    original = dict(detector.user_config["models"])
    try:
        yield original
    finally:
        set_user_config(serve_config, "Detector", models=original)


def pages_with_shapes(count: int) -> bytes:
    one, _ = pdf_with_shapes()
    doc = pymupdf.open()
    for _ in range(count):
        doc.insert_pdf(pymupdf.open(stream=one))
    data: bytes = doc.tobytes()
    return data


def digest_of(http: httpx.Client, name: str) -> str:
    models = {m["name"]: m for m in http.get("/v1/models").json()["models"]}
    digest: str = models[name]["digest"]
    return digest


def test_a_new_version_rolls_in_while_a_running_job_finishes_on_its_own(
    http: httpx.Client,
    serve_config: ServeDeploySchema,
    second_version: str,
    restore_models: dict[str, Any],
    slow_detector: float,
) -> None:
    old_digest = digest_of(http, "shapes")
    replicas = sorted(replica_names("Detector"))
    params = {"model": "shapes", "score_threshold": 0.0}
    response = http.post("/v1/jobs", content=pages_with_shapes(8), headers=PDF, params=params)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["model"]["digest"] == old_digest
    wait_for_progress(http, job["id"], pages_done=1)

    # Requests keep being answered while the new table is applied.
    statuses: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=120) as client:
            while not stop.is_set():
                statuses.append(client.get("/v1/models").status_code)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        set_user_config(serve_config, "Detector", models={**restore_models, "shapes": second_version})
    finally:
        stop.set()
        asker.join()
    assert statuses and set(statuses) == {200}
    assert sorted(replica_names("Detector")) == replicas  # switched in place: no replica restarted

    new_digest = digest_of(http, "shapes")
    assert new_digest != old_digest
    fresh = http.post("/v1/detect", content=pdf_with_shapes()[0], headers=PDF, params=params).json()
    assert fresh["model"]["digest"] == new_digest and fresh["model"]["labels"] == list(NEW_LABELS)
    assert {r["label"] for r in fresh["pages"][0]["regions"]} <= set(NEW_LABELS)

    state = wait_for_job(http, job["id"])
    assert state["status"] == "succeeded", state
    assert state["model"]["digest"] == old_digest
    result = http.get(f"/v1/jobs/{job['id']}/result").json()
    assert result["model"]["digest"] == old_digest
    labels = {r["label"] for page in result["pages"] for r in page["regions"]}
    assert labels and labels <= {"stamp", "signature"}  # every page, before and after the switch


def test_an_update_with_bad_models_keeps_every_replica_serving_and_says_why(
    http: httpx.Client, serve_config: ServeDeploySchema, restore_models: dict[str, Any]
) -> None:
    before = {m["name"]: m for m in http.get("/v1/models").json()["models"]}
    replicas = sorted(replica_names("Detector"))
    missing = f"s3://{MODELS_BUCKET}/not-uploaded/"
    # A new name that cannot be used, and an existing name pointed at files that cannot be used.
    set_user_config(serve_config, "Detector", models={**restore_models, "broken": missing, "retina": missing})
    assert sorted(replica_names("Detector")) == replicas
    listed = http.get("/v1/models").json()
    assert set(listed["unavailable"]) == {"broken"}
    assert "has no config.yaml" in listed["unavailable"]["broken"]
    after = {m["name"]: m for m in listed["models"]}
    assert set(after) == set(before)
    assert after["retina"]["digest"] == before["retina"]["digest"]  # the previous version keeps serving
    assert f"model 'retina' ({missing}): " in after["retina"]["error"]
    pdf, _ = pdf_with_shapes()
    broken = http.post("/v1/detect", content=pdf, headers=PDF, params={"model": "broken"})
    assert_error(broken, 503, "model_unavailable", "model 'broken' (s3://models/not-uploaded/)")
    for name in ("retina", "shapes"):
        answer = http.post(
            "/v1/detect", content=pdf, headers=PDF, params={"model": name, "score_threshold": 0}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"]["digest"] == before[name]["digest"]


def test_a_model_that_cannot_be_used_at_start_fails_the_deploy_with_its_reason(
    serve_url: str, s3_endpoint: str
) -> None:
    bad = cast(Deployment, Detector).options(
        name="BadDetector",
        num_replicas=1,
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": s3_env(s3_endpoint)}},
        user_config={"models": {"layout": "shipped", "broken": f"s3://{MODELS_BUCKET}/not-uploaded/"}},
    )
    try:
        with pytest.raises(RuntimeError, match="Deploying application bad_models failed"):
            serve.run(bad.bind(), name="bad_models", route_prefix=None)
        # Serve's status says why, in our words (what `serve status` prints).
        message = serve.status().applications["bad_models"].deployments["BadDetector"].message
        assert "model 'broken' (s3://models/not-uploaded/): " in message
        assert "model s3://models/not-uploaded/ has no config.yaml (found: nothing)" in message
    finally:
        serve.delete("bad_models")


def test_multiplexing_unloads_the_least_recently_used_and_every_model_binds_its_shared_copy(
    serve_url: str, s3_endpoint: str, user_models: dict[str, str], model_cache: Path
) -> None:
    """A Detector of its own (one replica, two models at most) next to the session's: the session's
    Detector already published the shared weights of the models it loaded, keyed by digest."""
    small = cast(Deployment, Detector).options(
        name="SmallDetector",
        num_replicas=1,
        ray_actor_options={
            "num_cpus": 0,
            "runtime_env": {"env_vars": s3_env(s3_endpoint) | {MODEL_CACHE_ENV: str(model_cache)}},
        },
        user_config={"models": {"layout": "shipped", **user_models}, "max_models_per_replica": 2},
    )
    serve.run(small.bind(), name="small_detector", route_prefix=None)
    try:
        handle = serve.get_deployment_handle("SmallDetector", app_name="small_detector")
        image = PageImage(image=ray.put(np.full((200, 160, 3), 255, dtype=np.uint8)))
        versions = {name: handle.resolve.remote(name).result() for name in ("shapes", "retina", "masks")}

        def ask(name: str) -> dict[str, Any]:
            routed = handle.options(multiplexed_model_id=versions[name].model_id)
            routed.detect.remote(image, model=versions[name]).result(timeout_s=120)
            info: dict[str, Any] = routed.ready.remote().result()
            return info

        ask("shapes")
        ask("retina")
        loaded = ask("masks")["models_loaded"]  # a third model: the least recently used one goes
        ids = {name: v.model_id for name, v in versions.items()}
        assert ids["masks"] in loaded and ids["retina"] in loaded and ids["shapes"] not in loaded
        for name in ("masks", "retina"):
            shared = loaded[ids[name]]["shared_weights"]
            assert shared["holder"].startswith(f"detector:{versions[name].digest[:16]}:")
            assert loaded[ids[name]]["weights_in_shared_memory"] == 1.0
        reloaded = ask("shapes")["models_loaded"]
        assert ids["shapes"] in reloaded and ids["retina"] not in reloaded
        assert reloaded[ids["shapes"]]["weights_in_shared_memory"] == 1.0
    finally:
        serve.delete("small_detector")
