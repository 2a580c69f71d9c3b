"""Closed-loop load on the Embedder through a deployment handle, run as its own Ray job.

    RAY_ADDRESS=auto python benchmarks/handle_load.py --clients 8 --seconds 10 --per-request 4

Connects to the running cluster (another job than the one that deployed the app), runs ``--clients``
concurrent callers of ``Embedder.embed`` for ``--seconds``, and prints one JSON line: sentences per
second, p50 and p99 latency in ms, requests. Used by benchmarks/compare.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import ray
from embed_throughput import sentences
from ray import serve

from serve_app.client import APP_NAME


async def load(clients: int, seconds: float, per_request: int) -> dict[str, float]:
    texts = sentences()
    handle = serve.get_deployment_handle("Embedder", app_name=APP_NAME)
    await handle.embed.remote(texts[:per_request])  # first call resolves the replicas
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def caller(worker_id: int) -> None:
        i = worker_id * per_request
        while time.perf_counter() < stop_at:
            batch = [texts[(i + k) % len(texts)] for k in range(per_request)]
            i += clients * per_request
            began = time.perf_counter()
            vectors = await handle.embed.remote(batch)
            latencies.append(time.perf_counter() - began)
            assert vectors.shape[0] == per_request

    began = time.perf_counter()
    await asyncio.gather(*(caller(w) for w in range(clients)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "sentences_per_s": len(ordered) * per_request / elapsed,
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
        "requests": len(ordered),
        "job_id": ray.get_runtime_context().get_job_id(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--per-request", type=int, default=4)
    args = parser.parse_args()
    ray.init(address="auto", namespace="serve", log_to_driver=False)
    print(json.dumps(asyncio.run(load(args.clients, args.seconds, args.per_request))), flush=True)


if __name__ == "__main__":
    main()
