"""Closed-loop load on the Embedder through a deployment handle, run as its own Ray job.

    RAY_ADDRESS=auto python -m benchmarks.handle_load --clients 8 --seconds 10 --per-request 4

Connects to the running cluster (another job than the one that deployed the app), runs ``--clients``
concurrent callers of ``Embedder.embed`` for ``--seconds``, and prints one JSON line: sentences per
second, p50 and p99 latency in ms, requests. Used by benchmarks/compare.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import ray
from ray import serve

from benchmarks._harness import closed_loop, sentences, strided_batches
from serve_app.client import APP_NAME


async def load(clients: int, seconds: float, per_request: int) -> dict[str, float | str]:
    texts = sentences()
    handle = serve.get_deployment_handle("Embedder", app_name=APP_NAME)
    await handle.embed.remote(texts[:per_request])  # first call resolves the replicas

    async def send(batch: list[str]) -> bool:
        vectors = await handle.embed.remote(batch)
        assert vectors.shape[0] == len(batch)
        return True

    batches = strided_batches(texts, per_request, clients)
    run = (await closed_loop(send, batches, clients=clients, seconds=seconds)).summary()
    return {
        "sentences_per_s": run.sentences_per_s,
        "p50_ms": run.p50_ms,
        "p99_ms": run.p99_ms,
        "requests": run.requests,
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
