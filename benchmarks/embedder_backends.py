"""The Embedder's backends side by side, in process: speed and quality against torch, on real texts.

    python -m benchmarks.embedder_backends          # or: make bench-backends   (about 3 minutes on 2 cores)

For torch, ONNX Runtime float32 and ONNX Runtime int8 (serve_app.models.onnx_embedding): sentences/s of
``encode`` at batch 1, 16 and 64 with 1 and all threads (median of 3 runs of 3 s over
data/topic_texts.jsonl); cosine of every one of the 400 texts to the torch vector; how far a vector
moves with its batch (each text alone vs in batches of 64); the nine-title example; adjusted Rand index
on the 8 topics with the Clusterer's defaults and with Ward at 8 clusters; load time and file size.
Writes the section of docs/benchmarks.md. Never run as a test.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score

from benchmarks._harness import ROOT, bench_parser, machine, write_section
from serve_app.core.clustering import cluster_embeddings
from serve_app.models.embedding import SentenceEncoder, TorchEncoder, default_model_path, load_sentence_model
from serve_app.models.onnx_embedding import OnnxEncoder, ensure_exported
from serve_app.settings import ClustererConfig
from tests.examples import NINE_TITLES

BACKENDS = ("torch", "onnx", "onnx-int8")
BATCHES = (1, 16, 64)


def load(backend: str, threads: int) -> tuple[SentenceEncoder, float, float]:
    """The encoder, seconds to load it, and its weights file in MiB."""
    began = time.perf_counter()
    if backend == "torch":
        encoder: SentenceEncoder = TorchEncoder(load_sentence_model(num_threads=threads))
        size = (default_model_path() / "model.safetensors").stat().st_size
    else:
        path, _ = ensure_exported(None, "onnx" if backend == "onnx" else "onnx-int8")
        encoder = OnnxEncoder(path, num_threads=threads)
        size = path.stat().st_size
    return encoder, time.perf_counter() - began, size / 2**20


def rate(encoder: SentenceEncoder, texts: list[str], batch: int, seconds: float) -> float:
    runs = []
    for _ in range(3):
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            start = done % len(texts)
            chunk = (texts * 2)[start : start + batch]
            encoder.encode(chunk, batch_size=batch)
            done += len(chunk)
        runs.append(done / (time.perf_counter() - began))
    return statistics.median(runs)


def labels_of(n: int, clusters: Any) -> np.ndarray:
    labels = np.full(n, -1)
    for k, cluster in enumerate(clusters):
        labels[list(cluster.members)] = k
    return labels


def main() -> None:
    parser = bench_parser("the Embedder's backends: speed and quality")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows = [
        json.loads(line) for line in (ROOT / "data" / "topic_texts.jsonl").read_text().splitlines() if line
    ]
    texts, truth = [r["text"] for r in rows], [r["label"] for r in rows]
    seconds = 0.5 if args.quick else args.seconds
    defaults = ClustererConfig()
    threads_options = sorted({1, os.cpu_count() or 1})
    reference = TorchEncoder(load_sentence_model(num_threads=1)).encode(texts)
    results: dict[str, dict[str, Any]] = {}
    for backend in BACKENDS:
        result: dict[str, Any] = {}
        for threads in threads_options:
            encoder, load_s, size = load(backend, threads)
            encoder.encode(texts[:64])  # warm-up
            result[f"threads_{threads}"] = {b: rate(encoder, texts, b, seconds) for b in BATCHES}
        result |= {"load_s": load_s, "size_mib": size}
        vectors = encoder.encode(texts)
        cosine = (vectors * reference).sum(axis=1)
        alone = np.concatenate([encoder.encode([t]) for t in texts])
        moved = (alone * vectors).sum(axis=1)
        nine = [c.members for c in cluster_embeddings(encoder.encode(NINE_TITLES)).clusters]
        default_clusters = cluster_embeddings(
            vectors, distance_threshold=defaults.distance_threshold, method=defaults.linkage
        ).clusters
        ward = cluster_embeddings(vectors, num_clusters=8, num_clusters_method="ward").clusters
        result |= {
            "cosine_min": float(cosine.min()),
            "cosine_median": float(np.median(cosine)),
            "batch_cosine_min": float(moved.min()),
            "nine_titles_exact": nine == [(0, 1, 2, 3, 4), (5, 6, 7, 8)],
            "ari_default": adjusted_rand_score(truth, labels_of(len(texts), default_clusters)),
            "ari_ward8": adjusted_rand_score(truth, labels_of(len(texts), ward)),
        }
        results[backend] = result
        print(backend, json.dumps(result, default=str), flush=True)
    report = render(results, threads_options, seconds)
    print(report)
    if not args.quick:
        write_section(args.out, "## Embedder backends", report)


def render(results: dict[str, dict[str, Any]], threads_options: list[int], seconds: float) -> str:
    torch_rates = results["torch"]
    lines = [
        "## Embedder backends",
        "",
        f"Command: `make bench-backends` (`python -m benchmarks.embedder_backends`). Machine: {machine()}. "
        f"Run on {time.strftime('%Y-%m-%d')}. In process, no Ray: `encode` over the 400 real texts of "
        f"`data/topic_texts.jsonl`, median of 3 runs of {seconds:.0f} s per cell. Quality is against the "
        "torch vectors of the same texts; ARI against the 8 topic labels (docs/clustering.md). The Embedder "
        "runs one thread per replica as shipped.",
        "",
        "| backend | threads | batch 1 | batch 16 | batch 64 | vs torch, batch 16 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend, r in results.items():
        for threads in threads_options:
            rates = r[f"threads_{threads}"]
            ratio = rates[16] / torch_rates[f"threads_{threads}"][16]
            cells = " | ".join(f"{rates[b]:.0f}" for b in BATCHES)
            lines.append(f"| {backend} | {threads} | {cells} | {ratio:.2f}x |")
    lines += [
        "",
        "| backend | file MiB | load s (imports done, files cached) | cosine to torch, min / median "
        "| same text alone vs in a batch, min cosine | nine titles exact | ARI, defaults | ARI, Ward 8 |",
        "|---|---:|---:|---|---:|---|---:|---:|",
    ]
    for backend, r in results.items():
        lines.append(
            f"| {backend} | {r['size_mib']:.0f} | {r['load_s']:.2f} | {r['cosine_min']:.4f} / "
            f"{r['cosine_median']:.4f} | {r['batch_cosine_min']:.4f} | "
            f"{'yes' if r['nine_titles_exact'] else 'NO'} "
            f"| {r['ari_default']:.3f} | {r['ari_ward8']:.3f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
