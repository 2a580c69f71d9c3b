"""Clusterer: groups embeddings by cosine distance (no model; pure logic from ``core.clustering``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from ray import serve

from serve_app.core.clustering import Clustering, cluster_embeddings
from serve_app.settings import DEFAULT_NUM_CPUS, ClustererConfig, parse_settings


@serve.deployment(ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS["Clusterer"]})
class Clusterer:
    """Turns an (n, dim) embedding array into clusters of row indices."""

    def __init__(self) -> None:
        self._config = ClustererConfig()

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``; unknown keys or bad values fail the deploy."""
        self._config = parse_settings(ClustererConfig, config, where="Clusterer user_config")

    def ready(self) -> dict[str, Any]:
        return self._config.model_dump()

    def cluster(
        self,
        embeddings: np.ndarray,
        *,
        num_clusters: int | None = None,
        min_cluster_size: int = 1,
        distance_threshold: float | None = None,
    ) -> Clustering:
        """Cluster rows of ``embeddings``; see ``serve_app.core.clustering.cluster_embeddings``."""
        return cluster_embeddings(
            embeddings,
            distance_threshold=distance_threshold or self._config.distance_threshold,
            num_clusters=num_clusters,
            min_cluster_size=min_cluster_size,
            method=self._config.linkage,
            num_clusters_method=self._config.num_clusters_linkage,
        )
