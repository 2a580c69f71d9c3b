"""Agglomerative clustering of sentence embeddings: arrays in, plain dataclasses out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from serve_app.core.errors import InvalidInput

Linkage = Literal["average", "complete", "single"]
FixedCountLinkage = Literal["ward", "average", "complete"]


@dataclass(frozen=True)
class Cluster:
    """One group: member row indices (ascending) and the member closest to the centroid."""

    members: tuple[int, ...]
    representative: int


@dataclass(frozen=True)
class Clustering:
    """Clusters ordered by size (largest first, ties by smallest member) plus left-out rows."""

    clusters: tuple[Cluster, ...]
    unclustered: tuple[int, ...]


def cluster_embeddings(
    embeddings: np.ndarray,
    *,
    distance_threshold: float = 0.8,
    num_clusters: int | None = None,
    min_cluster_size: int = 1,
    method: Linkage = "average",
    num_clusters_method: FixedCountLinkage = "ward",
) -> Clustering:
    """Group rows of ``embeddings`` by cosine distance.

    Without ``num_clusters``, ``method`` linkage merges until the cosine distance between groups
    (0..2) reaches ``distance_threshold``, so the number of groups comes from the data. With
    ``num_clusters``, a ``num_clusters_method`` dendrogram (Ward on the unit vectors by default,
    which balances cluster sizes) is cut into at most that many groups. Groups smaller than
    ``min_cluster_size`` are reported as ``unclustered``.
    The result is a pure function of the input: identical input gives identical output.
    """
    vectors = _validated(embeddings)
    n = vectors.shape[0]
    if num_clusters is not None and not 1 <= num_clusters <= n:
        raise InvalidInput(
            f"num_clusters must be between 1 and the number of sentences ({n}), got {num_clusters}"
        )
    if min_cluster_size < 1:
        raise InvalidInput(f"min_cluster_size must be at least 1, got {min_cluster_size}")
    if not 0.0 < distance_threshold <= 2.0:
        raise InvalidInput(f"distance_threshold must be in (0, 2], got {distance_threshold}")

    labels = _labels(
        vectors,
        distance_threshold=distance_threshold,
        num_clusters=num_clusters,
        method=num_clusters_method if num_clusters is not None else method,
    )
    groups = [tuple(int(i) for i in np.flatnonzero(labels == label)) for label in np.unique(labels)]
    kept = [g for g in groups if len(g) >= min_cluster_size]
    left_out = sorted(i for g in groups if len(g) < min_cluster_size for i in g)
    kept.sort(key=lambda g: (-len(g), g[0]))
    clusters = tuple(Cluster(members=g, representative=_representative(vectors, g)) for g in kept)
    return Clustering(clusters=clusters, unclustered=tuple(left_out))


def _validated(embeddings: np.ndarray) -> np.ndarray:
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise InvalidInput(f"embeddings must be a non-empty 2-D array, got shape {vectors.shape}")
    if not np.all(np.isfinite(vectors)):
        raise InvalidInput("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InvalidInput("embeddings contain an all-zero row; cosine distance is undefined for it")
    return vectors / norms


def _labels(
    vectors: np.ndarray, *, distance_threshold: float, num_clusters: int | None, method: str
) -> np.ndarray:
    n = vectors.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if method == "ward":
        # Ward needs Euclidean observations; on unit vectors that ranks pairs exactly as cosine does.
        tree = linkage(vectors, method="ward")
    else:
        # Cosine distance of unit rows; clip rounding noise into [0, 2].
        tree = linkage(np.clip(pdist(vectors, metric="cosine"), 0.0, 2.0), method=method)
    if num_clusters is not None:
        return np.asarray(fcluster(tree, t=num_clusters, criterion="maxclust"))
    return np.asarray(fcluster(tree, t=distance_threshold, criterion="distance"))


def _representative(vectors: np.ndarray, members: tuple[int, ...]) -> int:
    rows = vectors[list(members)]
    centroid = rows.mean(axis=0)
    # argmax returns the first maximum, so ties resolve to the smallest index.
    return members[int(np.argmax(rows @ centroid))]
