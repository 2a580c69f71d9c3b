from __future__ import annotations

import numpy as np
import pytest

from serve_app.core.clustering import cluster_embeddings
from serve_app.core.errors import InvalidInput


def two_groups() -> np.ndarray:
    # Rows 0, 2, 4 point near +x, rows 1, 3 near +y: two clear groups, cosine distance ~1 between them.
    return np.array(
        [[1.0, 0.05, 0.0], [0.0, 1.0, 0.1], [1.0, -0.05, 0.0], [0.1, 1.0, 0.0], [1.0, 0.0, 0.02]],
        dtype=np.float32,
    )


def test_threshold_finds_two_groups_largest_first() -> None:
    result = cluster_embeddings(two_groups(), distance_threshold=0.5)
    assert [c.members for c in result.clusters] == [(0, 2, 4), (1, 3)]
    assert result.unclustered == ()


def test_small_threshold_keeps_every_row_apart() -> None:
    result = cluster_embeddings(two_groups(), distance_threshold=1e-6)
    assert len(result.clusters) == 5


def test_large_threshold_merges_everything() -> None:
    result = cluster_embeddings(two_groups(), distance_threshold=1.9)
    assert [c.members for c in result.clusters] == [(0, 1, 2, 3, 4)]


@pytest.mark.parametrize("method", ["ward", "average", "complete"])
def test_num_clusters_overrides_threshold(method: str) -> None:
    result = cluster_embeddings(
        two_groups(), distance_threshold=1.9, num_clusters=2, num_clusters_method=method
    )  # type: ignore[arg-type]
    assert [c.members for c in result.clusters] == [(0, 2, 4), (1, 3)]


def test_min_cluster_size_moves_small_groups_to_unclustered() -> None:
    result = cluster_embeddings(two_groups(), distance_threshold=0.5, min_cluster_size=3)
    assert [c.members for c in result.clusters] == [(0, 2, 4)]
    assert result.unclustered == (1, 3)


def test_representative_is_member_closest_to_centroid() -> None:
    vectors = np.array([[1.0, 0.3], [1.0, 0.0], [1.0, -0.3], [-1.0, 0.0]])
    result = cluster_embeddings(vectors, distance_threshold=0.5)
    assert result.clusters[0].members == (0, 1, 2)
    assert result.clusters[0].representative == 1


def test_scale_of_rows_does_not_matter() -> None:
    vectors = two_groups()
    scaled = vectors * np.array([[1.0], [7.0], [0.5], [3.0], [2.0]], dtype=np.float32)
    assert cluster_embeddings(vectors) == cluster_embeddings(scaled)


def test_identical_input_gives_identical_output() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    assert cluster_embeddings(vectors) == cluster_embeddings(vectors.copy())
    assert cluster_embeddings(vectors, num_clusters=4) == cluster_embeddings(vectors.copy(), num_clusters=4)


def test_every_row_appears_exactly_once() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 5))
    result = cluster_embeddings(vectors, distance_threshold=0.7, min_cluster_size=2)
    seen = sorted([i for c in result.clusters for i in c.members] + list(result.unclustered))
    assert seen == list(range(60))
    sizes = [len(c.members) for c in result.clusters]
    assert sizes == sorted(sizes, reverse=True)


def test_single_row_is_one_cluster() -> None:
    result = cluster_embeddings(np.ones((1, 4)))
    assert [c.members for c in result.clusters] == [(0,)]
    assert result.clusters[0].representative == 0


@pytest.mark.parametrize(
    ("embeddings", "kwargs", "message"),
    [
        (np.zeros((0, 3)), {}, "non-empty 2-D"),
        (np.ones(3), {}, "non-empty 2-D"),
        (np.array([[1.0, np.nan]]), {}, "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), {}, "all-zero row"),
        (np.eye(3), {"num_clusters": 4}, "num_clusters"),
        (np.eye(3), {"num_clusters": 0}, "num_clusters"),
        (np.eye(3), {"min_cluster_size": 0}, "min_cluster_size"),
        (np.eye(3), {"distance_threshold": 0.0}, "distance_threshold"),
    ],
)
def test_bad_input_raises_invalid_input(
    embeddings: np.ndarray, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        cluster_embeddings(embeddings, **kwargs)  # type: ignore[arg-type]
