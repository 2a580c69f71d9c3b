"""Clustering quality on real labelled short texts: adjusted Rand index (ARI) against the labels.

    python -m benchmarks.clustering_quality            # prints a table, writes docs/clustering.md

Embeds data/topic_texts.jsonl (Debian package descriptions, 8 topics) with the default model in process,
then clusters with the Clusterer's pure logic, sweeping the distance threshold and also giving the
true number of clusters. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from benchmarks._harness import ROOT
from serve_app.core.clustering import cluster_embeddings
from serve_app.models.embedding import encode, load_sentence_model

THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def predicted_labels(n: int, clusters: tuple[tuple[int, ...], ...]) -> np.ndarray:
    labels = np.full(n, -1)
    for k, members in enumerate(clusters):
        labels[list(members)] = k
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "topic_texts.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "clustering.md")
    args = parser.parse_args()

    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    texts = [r["text"] for r in rows]
    truth = np.array([r["label"] for r in rows])
    topics = sorted(set(truth))
    model = load_sentence_model(num_threads=2)
    start = time.perf_counter()
    vectors = encode(model, texts)
    encode_s = time.perf_counter() - start

    table = []
    for method in ("average", "complete"):
        for threshold in THRESHOLDS:
            result = cluster_embeddings(vectors, distance_threshold=threshold, method=method)
            labels = predicted_labels(len(texts), tuple(c.members for c in result.clusters))
            table.append(
                (
                    method,
                    f"distance_threshold={threshold}",
                    len(result.clusters),
                    adjusted_rand_score(truth, labels),
                )
            )
    for fixed in ("ward", "average", "complete"):
        result = cluster_embeddings(vectors, num_clusters=len(topics), num_clusters_method=fixed)
        labels = predicted_labels(len(texts), tuple(c.members for c in result.clusters))
        table.append(
            (fixed, f"num_clusters={len(topics)}", len(result.clusters), adjusted_rand_score(truth, labels))
        )

    lines = [
        "# Clustering quality",
        "",
        f"Data: `{args.data.relative_to(ROOT)}`: {len(texts)} real short texts "
        "(Debian package descriptions), "
        f"{len(topics)} topics ({', '.join(topics)}); see `data/README.md`.",
        "Embeddings: all-MiniLM-L6-v2 (the Embedder's default model), L2-normalised. "
        "Clustering: `serve_app.core.clustering.cluster_embeddings` (what the Clusterer runs).",
        "Metric: adjusted Rand index against the topic labels (1.0 = perfect, 0 = chance).",
        "Defaults (configs/serve.yaml): average linkage with distance_threshold=0.8 when no `num_clusters` "
        "is given; Ward linkage when it is.",
        f"Command: `python -m benchmarks.clustering_quality`. Machine: {platform.machine()}, "
        f"Python {platform.python_version()}; encoding took {encode_s:.1f} s.",
        "",
        "| linkage | setting | clusters found | ARI |",
        "|---|---|---:|---:|",
        *[f"| {m} | {s} | {k} | {ari:.3f} |" for m, s, k, ari in table],
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)


if __name__ == "__main__":
    main()
