from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from tests.examples import NINE_TITLES, assert_same_embeddings


def embed(http: httpx.Client, sentences: list[str]) -> np.ndarray:
    response = http.post("/v1/embed", json={"sentences": sentences})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(sentences) and body["dimension"] == 384
    return np.array(body["embeddings"], dtype=np.float32)


def test_embeddings_are_unit_vectors_in_request_order(http: httpx.Client) -> None:
    vectors = embed(http, NINE_TITLES)
    assert vectors.shape == (9, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = embed(http, [NINE_TITLES[4]])
    assert_same_embeddings(single, vectors[4:5])


def test_concurrent_requests_are_batched_without_mixing_answers(http: httpx.Client) -> None:
    expected = {s: embed(http, [s])[0] for s in NINE_TITLES}
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: (i, embed(http, [NINE_TITLES[i % 9]])), range(48)))
    got = np.concatenate([vectors for _, vectors in answers])
    assert_same_embeddings(got, np.array([expected[NINE_TITLES[i % 9]] for i, _ in answers]))


def test_request_larger_than_a_batch_is_served(http: httpx.Client) -> None:
    sentences = [f"sentence number {i} about dogs and parks" for i in range(150)]
    vectors = embed(http, sentences)
    assert vectors.shape == (150, 384)


def test_base64_encoding_is_the_same_vectors(http: httpx.Client) -> None:
    response = http.post("/v1/embed", json={"sentences": NINE_TITLES, "encoding_format": "base64"})
    assert response.status_code == 200, response.text
    packed = response.json()["embeddings"]
    assert all(isinstance(row, str) for row in packed)
    decoded = np.stack([np.frombuffer(base64.b64decode(row), dtype="<f4") for row in packed])
    np.testing.assert_array_equal(decoded, embed(http, NINE_TITLES))  # same batch, same vectors
    wrong = http.post("/v1/embed", json={"sentences": ["a"], "encoding_format": "hex"})
    assert wrong.status_code == 422 and "encoding_format" in wrong.text
