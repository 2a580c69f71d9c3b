"""The ONNX Runtime backends against the torch model, on real texts (no Ray).

The exports come from the node cache that ``make install`` fills
(``python -m serve_app.models.onnx_embedding``); a missing one is exported here, as a replica would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serve_app.core.clustering import cluster_embeddings
from serve_app.core.errors import ModelUnavailable
from serve_app.models.embedding import TorchEncoder, load_sentence_model
from serve_app.models.onnx_embedding import CACHE_ENV, OnnxEncoder, ensure_exported, onnx_path
from tests.examples import DOG_WALKING, NINE_TITLES

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [json.loads(line)["text"] for line in (ROOT / "data" / "topic_texts.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return TorchEncoder(load_sentence_model(num_threads=1)).encode(TEXTS)


@pytest.fixture(scope="module")
def encoders() -> dict[str, OnnxEncoder]:
    return {b: OnnxEncoder(ensure_exported(None, b)[0], num_threads=1) for b in ("onnx", "onnx-int8")}


def test_float_export_is_the_torch_model(encoders: dict[str, OnnxEncoder], torch_vectors: np.ndarray) -> None:
    vectors = encoders["onnx"].encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (400, 384)
    np.testing.assert_allclose(vectors, torch_vectors, atol=2e-5)
    # Batch composition does not change a sentence's vector.
    alone = np.concatenate([encoders["onnx"].encode([t]) for t in TEXTS[:40]])
    np.testing.assert_allclose(alone, vectors[:40], atol=2e-5)


def test_int8_holds_the_quality_bar(encoders: dict[str, OnnxEncoder], torch_vectors: np.ndarray) -> None:
    int8 = encoders["onnx-int8"]
    vectors = int8.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * torch_vectors).sum(axis=1)
    assert cosine.min() >= 0.99, cosine.min()  # every one of the 400 real texts
    # Activations are quantised per batch, so a vector moves a little with its batch; measured >= 0.988.
    alone = np.concatenate([int8.encode([t]) for t in TEXTS[:40]])
    assert (alone * vectors[:40]).sum(axis=1).min() >= 0.98
    assert ((alone * torch_vectors[:40]).sum(axis=1)).min() >= 0.99
    clusters = cluster_embeddings(int8.encode(NINE_TITLES)).clusters
    assert [c.members for c in clusters] == [(0, 1, 2, 3, 4), (5, 6, 7, 8)]
    assert [c.members for c in cluster_embeddings(int8.encode(DOG_WALKING[::-1])).clusters] == [
        (0, 1, 2, 3, 4)
    ]


def test_tokens_are_counted_as_torch_counts_them(encoders: dict[str, OnnxEncoder]) -> None:
    model = TorchEncoder(load_sentence_model(num_threads=1))
    long_text = "word " * 1000  # cut at max_seq_length (256) by both
    for texts in (TEXTS[:50], [long_text], ["", "a"]):
        assert encoders["onnx-int8"].count_tokens(texts) == model.count_tokens(texts)
    assert encoders["onnx"].encode([]).shape == (0, 384)


def test_cache_is_keyed_by_model_and_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    int8, floating = onnx_path(None, "onnx-int8"), onnx_path(None, "onnx")
    assert int8.parent == floating.parent and int8.parent.parent == tmp_path
    assert int8.parent.name.startswith("all-MiniLM-L6-v2-") and int8 != floating
    with pytest.raises(ValueError, match="not an ONNX backend"):
        onnx_path(None, "torch")  # type: ignore[arg-type]


def test_a_model_without_a_fast_tokenizer_is_a_clear_error(
    encoders: dict[str, OnnxEncoder], tmp_path: Path
) -> None:
    graph = ensure_exported(None, "onnx-int8")[0]
    with pytest.raises(ModelUnavailable, match=r"tokenizer\.json"):
        OnnxEncoder(graph, tmp_path)
