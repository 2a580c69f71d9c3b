"""Python API for other Ray jobs: call the running app through deployment handles, no HTTP.

Connect to the cluster the app runs on first (``ray.init(address="auto")`` on a node of it), then::

    from serve_app import client

    vectors = client.embed(["A man is walking his dog.", "A woman gives a talk."])
    groups = client.cluster(sentences)                       # serve_app.core.clustering.Clustering
    result = client.analyze_pdf(open("paper.pdf", "rb").read(), cluster=True)
    regions = client.detect_pages([ray.put(page_image)])     # references you own; pixels stay put
    regions = client.detect_pages(images, model="invoices")  # a model named in configs/serve.yaml
    client.models()                                          # what GET /v1/models lists

Object references you pass to ``detect_pages`` must stay alive (their owner, usually your driver,
must not exit) until the answers arrive, or the Detector fails with ``OwnerDiedError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve_app.core.analysis import AnalyzeOptions, AnalyzeResult
from serve_app.core.catalog import ModelsResponse, ModelVersion
from serve_app.core.clustering import Clustering
from serve_app.types import PageImage, Region

APP_NAME = "serve_app"
TIMEOUT_S = 600.0


def handle(deployment: str, *, app_name: str = APP_NAME) -> DeploymentHandle:
    """A handle to one deployment of the running app (Embedder, Clusterer, Detector, JobRunner)."""
    return serve.get_deployment_handle(deployment, app_name=app_name)


def embed(sentences: Sequence[str], *, app_name: str = APP_NAME, timeout_s: float = TIMEOUT_S) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per sentence."""
    vectors: np.ndarray = (
        handle("Embedder", app_name=app_name).embed.remote(list(sentences)).result(timeout_s=timeout_s)
    )
    return vectors


def cluster(
    sentences: Sequence[str],
    *,
    num_clusters: int | None = None,
    min_cluster_size: int = 1,
    distance_threshold: float | None = None,
    app_name: str = APP_NAME,
    timeout_s: float = TIMEOUT_S,
) -> Clustering:
    """Group sentences by meaning; the embeddings go from Embedder to Clusterer by reference."""
    embeddings = handle("Embedder", app_name=app_name).embed.remote(list(sentences))
    clustering: Clustering = (
        handle("Clusterer", app_name=app_name)
        .cluster.remote(
            embeddings,
            num_clusters=num_clusters,
            min_cluster_size=min_cluster_size,
            distance_threshold=distance_threshold,
        )
        .result(timeout_s=timeout_s)
    )
    return clustering


def detect_pages(
    pages: Sequence[PageImage | ray.ObjectRef | np.ndarray],
    *,
    points_per_pixel: float = 1.0,
    score_threshold: float | None = None,
    model: str | None = None,
    masks: bool = False,
    app_name: str = APP_NAME,
    timeout_s: float = TIMEOUT_S,
) -> list[list[Region]]:
    """Regions of each page image (H x W x 3 uint8 RGB), in order, found by ``model`` (a name; None: the
    default model). All pages use the version of the model current when the call starts.
    These are the raw detections, top to bottom; ``serve_app.core.arrange.arrange_regions`` fits them to
    a page's words and graphics and puts them in reading order, as ``analyze_pdf`` does.

    Give ``PageImage``s or object references to images already in the object store; a bare array is
    put there once here. ``points_per_pixel`` (72 / dpi) converts boxes to PDF points for refs and arrays.
    ``masks``: mask outlines too (``Region.mask_pt``), for models that predict masks.
    """
    detector = handle("Detector", app_name=app_name)
    version: ModelVersion = detector.resolve.remote(model).result(timeout_s=timeout_s)
    # By reference (a Ray actor call, not gRPC): the page's ObjectRef travels as a reference that Ray
    # counts, never pickled out of band (which would pin the pixels in the object store for good).
    routed = detector.options(multiplexed_model_id=version.model_id, _by_reference=True)
    images = [_page_image(p, points_per_pixel) for p in pages]
    responses = [
        routed.detect.remote(p, score_threshold=score_threshold, model=version, masks=masks) for p in images
    ]
    return [r.result(timeout_s=timeout_s) for r in responses]


def models(*, app_name: str = APP_NAME, timeout_s: float = TIMEOUT_S) -> ModelsResponse:
    """The detectron2 models the Detector serves: names, labels, architecture, digest."""
    listed: ModelsResponse = handle("Detector", app_name=app_name).models.remote().result(timeout_s=timeout_s)
    return listed


def analyze_pdf(
    pdf: bytes,
    *,
    dpi: int = 72,
    score_threshold: float | None = None,
    cluster: bool = False,
    model: str | None = None,
    masks: bool = False,
    app_name: str = APP_NAME,
    timeout_s: float = TIMEOUT_S,
) -> AnalyzeResult:
    """Every page's regions with their text, in reading order (and, with ``cluster=True``, groups of
    similar regions).

    Runs in the JobRunner like ``POST /v1/detect`` but up to ``max_job_pages`` pages, and stores nothing.
    """
    options = AnalyzeOptions(
        dpi=dpi, score_threshold=score_threshold, cluster=cluster, model=model, masks=masks
    )
    result: AnalyzeResult = (
        handle("JobRunner", app_name=app_name).analyze.remote(pdf, options).result(timeout_s=timeout_s)
    )
    return result


def _page_image(page: PageImage | ray.ObjectRef | np.ndarray, points_per_pixel: float) -> PageImage:
    if isinstance(page, PageImage):
        return page
    if isinstance(page, ray.ObjectRef):
        return PageImage(image=page, points_per_pixel=points_per_pixel)
    return PageImage(image=ray.put(page), points_per_pixel=points_per_pixel)
