"""All deployment wiring in one place: ``build_app(args) -> Application``.

``configs/serve.yaml`` points its ``import_path`` here. ``serve run serve_app.app:build_app`` also works
without it: every deployment then runs on the defaults of ``serve_app.settings`` (one replica each).
"""

from __future__ import annotations

from typing import Any, cast

from ray.serve import Application, Deployment

from serve_app.deployments.clusterer import Clusterer
from serve_app.deployments.detector import Detector
from serve_app.deployments.embedder import Embedder
from serve_app.deployments.ingress import Ingress
from serve_app.deployments.job_runner import JobRunner
from serve_app.models.embedding import model_name
from serve_app.settings import AppArgs, parse_settings


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Validate the application ``args``; bind the models into the JobRunner and all into the Ingress."""
    app_args = parse_settings(AppArgs, args, where="application args")
    # @serve.deployment turns each class into a Deployment; mypy only sees the class, hence the casts.
    embedder = cast(Deployment, Embedder).bind(
        model_path=app_args.embedder_model_path,
        share_weights=app_args.share_weights,
        backend=app_args.embedder_backend,
    )
    clusterer = cast(Deployment, Clusterer).bind()
    detector = cast(Deployment, Detector).bind(share_weights=app_args.share_weights)
    job_runner = cast(Deployment, JobRunner).bind(detector, embedder, clusterer)
    return cast(Deployment, Ingress).bind(
        embedder, clusterer, detector, job_runner, embedding_model=model_name(app_args.embedder_model_path)
    )


def build_embedder(args: dict[str, Any] | None = None) -> Application:
    """An application of the Embedder alone (handles only): benchmarks and side-by-side comparisons."""
    app_args = parse_settings(AppArgs, args, where="application args")
    return cast(Deployment, Embedder).bind(
        model_path=app_args.embedder_model_path,
        share_weights=app_args.share_weights,
        backend=app_args.embedder_backend,
    )


def build_detector(args: dict[str, Any] | None = None) -> Application:
    """An application of the Detector alone (handles only): benchmarks and side-by-side comparisons."""
    app_args = parse_settings(AppArgs, args, where="application args")
    return cast(Deployment, Detector).bind(share_weights=app_args.share_weights)
