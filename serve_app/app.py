"""All deployment wiring in one place: ``build_app(args) -> Application``.

``configs/serve.yaml`` points its ``import_path`` here; ``serve run serve_app.app:build_app`` also works.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from serve_app.deployments.clusterer import Clusterer
from serve_app.deployments.embedder import Embedder
from serve_app.deployments.ingress import Ingress
from serve_app.settings import AppArgs, parse_settings


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Validate the application ``args`` and bind Embedder and Clusterer into the Ingress."""
    app_args = parse_settings(AppArgs, args, where="application args")
    embedder = Embedder.bind(model_path=app_args.embedder_model_path)
    clusterer = Clusterer.bind()
    return Ingress.bind(embedder, clusterer)
