"""A sentence-transformers model in ONNX Runtime, exported once per node from the local weights (no Ray).

The export runs ``torch.onnx`` over the whole SentenceTransformer (transformer, pooling and normalisation
in one graph), offline, from the files the torch backend loads; nothing is downloaded. ``onnx-int8`` then
quantises the weights of the MatMuls and the token embedding table to int8 with
``onnxruntime.quantization.quantize_dynamic`` (per channel; 27 MiB instead of 87), keeping the
feed-forward output projections of the first three layers in float32: with them quantised, the cosine
to the torch vectors fell to 0.986 on real texts; without, it stays above 0.99 (docs/benchmarks.md,
embedder backends). Serving then needs only ``tokenizers`` and ``onnxruntime``: an
ONNX replica never imports torch once the export is cached.

    python -m serve_app.models.onnx_embedding          # export the default model for every ONNX backend

The cache (``$SERVE_APP_EMBEDDER_CACHE``, default ``~/.cache/serve_app/embedder``) holds one file per
model, backend and recipe; ``make install`` fills it, and a replica that finds it empty exports first.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from serve_app.core.errors import ModelUnavailable
from serve_app.models.embedding import default_model_path, model_files, model_name
from serve_app.models.weights import files_key

Backend = Literal["torch", "onnx", "onnx-int8"]
ONNX_BACKENDS: tuple[Backend, ...] = ("onnx", "onnx-int8")
CACHE_ENV = "SERVE_APP_EMBEDDER_CACHE"
# Anything that changes the exported graph changes the cache key.
RECIPE = (
    "st-onnx-v2: opset 17; int8: dynamic, MatMul and Gather, per-channel QInt8, "
    "FFN output of layers 0-2 float32"
)
# MatMuls left in float32 by onnx-int8 (their activations after GELU have the widest range).
KEEP_FLOAT = re.compile(r"layer\.[012]/output/dense/MatMul$")
_OPSET = 17


def cache_dir() -> Path:
    """Where exports live on this node: ``$SERVE_APP_EMBEDDER_CACHE`` or ``~/.cache/serve_app/embedder``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "serve_app" / "embedder"


def _cache_key(model_path: str | Path | None) -> str:
    import onnxruntime

    digest = hashlib.blake2b(digest_size=8)
    digest.update(files_key(model_files(model_path)).encode())
    digest.update(f"{RECIPE};onnxruntime {onnxruntime.__version__}".encode())
    return digest.hexdigest()


def onnx_path(model_path: str | Path | None, backend: Backend) -> Path:
    """The cached export of the model at ``model_path`` (None: the shipped one) for ``backend``."""
    if backend not in ONNX_BACKENDS:
        raise ValueError(f"not an ONNX backend: {backend!r}")
    return cache_dir() / f"{model_name(model_path)}-{_cache_key(model_path)}" / f"{backend}.onnx"


def export_float(model_path: str | Path | None, out: Path) -> Path:
    """Export the sentence-transformers model at ``model_path`` to ``out`` in float32 (written atomically)."""
    import torch

    from serve_app.models.embedding import load_sentence_model

    model = load_sentence_model(model_path, num_threads=max(1, os.cpu_count() or 1))
    tokenizer = model.tokenizer
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    sample = tokenizer(["an example sentence", "two"], padding=True, return_tensors="pt")

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(names, inputs, strict=True)))["sentence_embedding"]

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        result = Path(work) / "float.onnx"
        axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
        with torch.inference_mode():
            torch.onnx.export(
                Whole().eval(),
                tuple(sample[n] for n in names),
                str(result),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=_OPSET,
                dynamo=False,
            )
        _write_metadata(
            result,
            {
                "dimension": int(model.get_embedding_dimension() or 0),
                "max_seq_length": int(model.max_seq_length or 512),
                "inputs": names,
                "recipe": RECIPE,
            },
        )
        os.replace(result, out)
    return out


def quantize_int8(float_file: Path, out: Path) -> Path:
    """The float32 export ``float_file`` with int8 weights (the recipe above), at ``out`` (written
    atomically; the metadata comes along)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    matmuls = [n.name for n in onnx.load(str(float_file)).graph.node if n.op_type == "MatMul"]
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        result = Path(work) / "int8.onnx"
        quantize_dynamic(
            float_file,
            result,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gather"],
            nodes_to_exclude=[n for n in matmuls if KEEP_FLOAT.search(n)],
        )
        os.replace(result, out)
    return out


def _write_metadata(path: Path, values: dict[str, Any]) -> None:
    import onnx

    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = "serve_app", json.dumps(values)
    onnx.save(graph, str(path))


def ensure_exported(model_path: str | Path | None, backend: Backend) -> tuple[Path, bool]:
    """The cached export for ``backend``, exporting it first if the cache lacks it (``onnx-int8`` is
    quantised from the cached ``onnx`` export, so the model is exported from torch once per node).
    Returns the file and whether it was made now."""
    path = onnx_path(model_path, backend)
    if path.is_file():
        return path, False
    try:
        if backend == "onnx":
            return export_float(model_path, path), True
        float_file, _ = ensure_exported(model_path, "onnx")
        return quantize_int8(float_file, path), True
    except ModelUnavailable:
        raise
    except Exception as exc:  # torch.onnx and onnxruntime raise many kinds; the reason is what counts
        raise ModelUnavailable(
            f"cannot export the embedding model to ONNX ({backend}) in {path.parent}: {exc}; "
            "set the application arg embedder_backend: torch to serve it with torch"
        ) from exc


class OnnxEncoder:
    """Tokenise with the model's ``tokenizer.json`` and run the exported graph in ONNX Runtime."""

    def __init__(
        self, graph_file: Path, model_path: str | Path | None = None, *, num_threads: int = 1
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        directory = Path(model_path) if model_path is not None else default_model_path()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, num_threads)
        options.inter_op_num_threads = 1
        # Idle intra-op threads would spin on the CPU the other replicas need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(graph_file), options, providers=["CPUExecutionProvider"]
        )
        meta = json.loads(self._session.get_modelmeta().custom_metadata_map["serve_app"])
        self.dimension: int = meta["dimension"]
        self.max_seq_length: int = meta["max_seq_length"]
        self._inputs: list[str] = meta["inputs"]
        tokenizer_file = directory / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelUnavailable(f"the ONNX backend needs {tokenizer_file} (a fast tokenizer)")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(self.max_seq_length)
        self._tokenizer.no_padding()

    def _feeds(self, sentences: list[str]) -> dict[str, np.ndarray]:
        encodings = self._tokenizer.encode_batch(sentences)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        columns = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: columns[name] for name in self._inputs}

    def encode(self, sentences: list[str], *, batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 rows, L2-normalised in the graph; sorted by length within a call, as
        sentence-transformers does, so short texts are not padded to long ones."""
        if not sentences:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = np.argsort([-len(s) for s in sentences], kind="stable")
        out = np.empty((len(sentences), self.dimension), dtype=np.float32)
        for start in range(0, len(sentences), batch_size):
            rows = order[start : start + batch_size]
            (vectors,) = self._session.run(["embedding"], self._feeds([sentences[i] for i in rows]))
            out[rows] = vectors
        return out

    def count_tokens(self, sentences: list[str]) -> int:
        """Tokens read for ``sentences``, special tokens included, each cut at ``max_seq_length``."""
        return sum(len(e.ids) for e in self._tokenizer.encode_batch(sentences))


def main() -> None:
    parser = argparse.ArgumentParser(description="Export an embedding model for the ONNX backends (offline).")
    parser.add_argument(
        "--model", default=None, help="sentence-transformers directory (default: the shipped one)"
    )
    parser.add_argument("--backend", choices=ONNX_BACKENDS, action="append", help="default: both")
    args = parser.parse_args()
    for backend in args.backend or ONNX_BACKENDS:
        path, made = ensure_exported(args.model, backend)
        size = path.stat().st_size / 2**20
        print(f"{backend}: {path} ({size:.1f} MiB{', exported now' if made else ', already cached'})")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
