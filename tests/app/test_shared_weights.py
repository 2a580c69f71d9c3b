"""Shared weights: the session's models run on the node's object store copy; outputs match unshared ones.

Four extra single-deployment apps are deployed next to the session's app for one test, then removed:
a second Embedder and a second Detector with sharing on (they must bind to the session's copies, the
Detector without reading its weights file), and one of each with sharing off (``share_weights: false``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from ray import serve
from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

from serve_app.core.pdf import render_pdf
from serve_app.runtime.shared_weights import NAMESPACE, HolderActor
from serve_app.training.synth import generate_document
from serve_app.types import PageImage
from tests.examples import DOG_WALKING, NINE_TITLES
from tools.launch import APP_NAME, deploy
from tools.wait import wait_until

MIB = 2**20
EXTRA = {
    "embedder-shared": ("build_embedder", "Embedder", True),
    "embedder-unshared": ("build_embedder", "Embedder", False),
    "detector-shared": ("build_detector", "Detector", True),
    "detector-unshared": ("build_detector", "Detector", False),
}


def ready(app: str, deployment: str) -> dict[str, Any]:
    info: dict[str, Any] = serve.get_deployment_handle(deployment, app_name=app).ready.remote().result()
    return info


def with_extra_apps(config: ServeDeploySchema) -> ServeDeploySchema:
    extended = copy.deepcopy(config)
    base = next(a for a in config.applications if a.name == APP_NAME)
    for name, (builder, deployment, share) in EXTRA.items():
        extended.applications.append(
            ServeApplicationSchema(
                name=name,
                route_prefix=None,
                import_path=f"serve_app.app:{builder}",
                # Sharing applies to torch weights; the session's Embedder runs ONNX Runtime.
                args={"share_weights": share, "embedder_backend": "torch"},
                runtime_env=base.runtime_env,
                deployments=[
                    {"name": deployment, "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.01}}
                ],
            )
        )
    return extended


def test_session_models_run_on_one_shared_copy_per_node(serve_url: str) -> None:
    info = ready(APP_NAME, "Detector")
    shared = info["shared_weights"]
    assert shared is not None and shared["bytes"] >= 60 * MIB, info
    assert info["weights_in_shared_memory"] == 1.0, info
    holder = ray.get_actor(shared["holder"], namespace=NAMESPACE)  # raises if there is none
    assert ray.get(holder.get.remote()) is not None  # it holds the published copy
    embedder = ready(APP_NAME, "Embedder")  # ONNX Runtime: its own 27 MiB of int8 weights, no holder
    assert embedder["backend"] == "onnx-int8" and "shared_weights" not in embedder, embedder


@pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")
def test_outputs_are_identical_with_and_without_sharing(
    serve_url: str, serve_config: ServeDeploySchema
) -> None:
    document = generate_document(seed=4242, num_pages=2, dpi=72)
    pages = [PageImage(image=ray.put(image)) for image in render_pdf(document.pdf, dpi=72)]
    sentences = NINE_TITLES + DOG_WALKING
    session = {"Detector": ready(APP_NAME, "Detector")}
    deploy(with_extra_apps(serve_config), timeout_s=300)
    try:
        for app, (_, deployment, share) in EXTRA.items():
            info = ready(app, deployment)
            if deployment in session:
                assert info["pid"] != session[deployment]["pid"]
            if share:  # the copy is in the object store; a second replica on the node binds to it
                assert info["weights_in_shared_memory"] == 1.0, info
                if deployment in session:
                    assert info["shared_weights"]["holder"] == session[deployment]["shared_weights"]["holder"]
            else:
                assert info["shared_weights"] is None and info["weights_in_shared_memory"] == 0.0, info

        expected = serve.get_deployment_handle("Embedder", app_name="embedder-unshared").embed.remote(
            sentences
        )
        got = serve.get_deployment_handle("Embedder", app_name="embedder-shared").embed.remote(sentences)
        np.testing.assert_array_equal(got.result(), expected.result())

        detector = serve.get_deployment_handle("Detector", app_name=APP_NAME)
        expected_regions = [detector.detect.remote(page).result(timeout_s=120) for page in pages]
        assert sum(len(r) for r in expected_regions) >= 4
        for app in ("detector-shared", "detector-unshared"):
            handle = serve.get_deployment_handle("Detector", app_name=app)
            got_regions = [handle.detect.remote(page).result(timeout_s=120) for page in pages]
            assert got_regions == expected_regions, app
    finally:
        deploy(serve_config, timeout_s=300)  # the extra apps are not in it: Serve deletes them
    wait_until(lambda: set(serve.status().applications) == {APP_NAME}, 120, interval_s=0.5)


def test_holder_keeps_the_first_publication_and_exits_when_unused(serve_url: str, tmp_path: Path) -> None:
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    np.savez(first, w=np.arange(4, dtype=np.float32))
    np.savez(second, w=np.zeros(4, dtype=np.float32))
    name = "test:idle-holder"
    holder = HolderActor.options(name=name, namespace=NAMESPACE, lifetime="detached").remote(2.0)
    refs = ray.get(holder.publish.remote(str(first)))
    assert ray.get(holder.publish.remote(str(second))) == refs  # a racing replica gets the first copy
    np.testing.assert_array_equal(ray.get(refs[0])["w"], np.arange(4, dtype=np.float32))

    def gone() -> bool:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return True  # nobody touched it for 2 s
        return False

    wait_until(gone, 60, interval_s=0.5, message="an unused weights holder did not exit")
