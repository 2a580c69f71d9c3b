"""The real model, loaded in process without Ray."""

from __future__ import annotations

import numpy as np
import pytest

from serve_app.core.clustering import cluster_embeddings
from serve_app.core.errors import ModelUnavailable
from serve_app.models.embedding import default_model_path, encode, load_sentence_model, split_rows
from tests.examples import DOG_WALKING, NINE_TITLES


def test_split_rows() -> None:
    parts = split_rows(np.arange(12).reshape(6, 2), [1, 0, 3, 2])
    assert [p.shape[0] for p in parts] == [1, 0, 3, 2]
    assert parts[3].tolist() == [[8, 9], [10, 11]]
    with pytest.raises(ValueError, match="sum"):
        split_rows(np.zeros((3, 2)), [1, 1])


def test_missing_model_directory_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(ModelUnavailable, match="no sentence-transformers model"):
        load_sentence_model(str(tmp_path))


def test_default_model_ships_in_a_package() -> None:
    assert (default_model_path() / "model.safetensors").is_file()


def test_encode_is_normalised_float32_and_clusters_the_example() -> None:
    model = load_sentence_model(num_threads=1)
    vectors = encode(model, NINE_TITLES)
    assert vectors.dtype == np.float32 and vectors.shape == (9, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batch composition must not change a sentence's vector (dynamic batching relies on it).
    np.testing.assert_allclose(encode(model, DOG_WALKING[:1]), vectors[:1], atol=1e-5)
    result = cluster_embeddings(vectors)
    assert [c.members for c in result.clusters] == [(0, 1, 2, 3, 4), (5, 6, 7, 8)]
