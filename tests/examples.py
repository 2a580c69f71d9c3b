"""Shared inputs for the tests."""

from __future__ import annotations

DOG_WALKING = [
    "Dog Walking: 10 Simple Steps",
    "The Secrets of Dog Walking",
    "Why You Need To Dog Walking",
    "The Art of Dog Walking",
    "The Joy of Dog Walking",
]
PUBLIC_SPEAKING = [
    "Public Speaking For The Modern Age",
    "Learn The Art of Public Speaking",
    "Master The Art of Public Speaking",
    "The Best Way To Public Speaking",
]
NINE_TITLES = DOG_WALKING + PUBLIC_SPEAKING


def assert_same_embeddings(got: object, expected: object) -> None:
    """The same sentences' vectors, computed in other batches. The default Embedder backend
    (onnx-int8) quantises activations per batch, so a vector moves a little with its batch (cosine to
    itself >= 0.98 measured, docs/benchmarks.md); a mixed-up answer is another sentence's vector, so
    each row must also be nearer its own expected row than any other sentence's."""
    import numpy as np

    a, b = np.asarray(got, dtype=np.float32), np.asarray(expected, dtype=np.float32)
    assert a.shape == b.shape, (a.shape, b.shape)
    cosine = a @ b.T
    assert np.diag(cosine).min() >= 0.98, np.diag(cosine)
    others = np.where(b @ b.T > 0.9999, -np.inf, cosine)  # rows of other sentences only
    assert (np.diag(cosine) > others.max(axis=1, initial=-np.inf)).all(), cosine
