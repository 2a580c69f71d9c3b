"""Embedding throughput: direct in-process ``encode`` (the limit) vs ``POST /v1/embed`` through Serve.

    python -m benchmarks.embed_throughput          # or: make bench-embed
    python -m benchmarks.embed_throughput --quick  # shorter runs, for a smoke check

(a) Direct: the Embedder's own ``encode`` in this process, at batch sizes 1..256 and 1 and all torch
    threads; the best rate is the limit on this machine.
(b) Service: configs/serve.yaml deployed on a local Ray (free port on 127.0.0.1); 1, 8 and 32
    concurrent HTTP clients, each sending a few sentences per request, for a fixed time and a bounded
    number of requests. Each setting is repeated and the median is reported.
Prints a table with the ratio b/a and writes it to docs/benchmarks.md. Never run as a test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks._harness import (
    Run,
    bench_parser,
    http_embed_load,
    machine,
    median_run,
    sentences,
    start_service,
    stop_service,
    strided_batches,
    write_section,
)


def direct_rates(texts: list[str], *, threads: int, batch_sizes: list[int], total: int) -> dict[int, float]:
    from serve_app.models.embedding import encode, load_sentence_model

    model = load_sentence_model(num_threads=threads)
    encode(model, texts[:64])  # warm-up
    rates = {}
    for batch in batch_sizes:
        n = min(total, max(batch * 4, 64)) if batch == 1 else total
        chunk = (texts * (n // len(texts) + 1))[:n]
        start = time.perf_counter()
        for i in range(0, n, batch):
            encode(model, chunk[i : i + batch], batch_size=batch)
        rates[batch] = n / (time.perf_counter() - start)
    return rates


def http_run(
    url: str, texts: list[str], *, clients: int, per_request: int, seconds: float, max_requests: int
) -> Run:
    """``clients`` closed-loop HTTP clients, ``per_request`` sentences each; any failed request aborts."""
    batches = strided_batches(texts, per_request, clients)
    load = http_embed_load(url, batches, clients=clients, seconds=seconds, max_requests=max_requests)
    return asyncio.run(load).summary()


VARIANTS = {
    "shipped": "configs/serve.yaml as shipped: one Embedder replica with 1 torch thread",
    "all-cores": "Embedder num_cpus = all cores (torch threads = cores); Ingress and Clusterer num_cpus 0",
}


def variant_config(name: str, directory: Path) -> Path:
    """Write the config file for a variant (the shipped one, or with the Embedder given every core)."""
    from tools.launch import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    if name == "all-cores":
        for dep in raw["applications"][0]["deployments"]:
            dep["ray_actor_options"]["num_cpus"] = os.cpu_count() if dep["name"] == "Embedder" else 0
    path = directory / f"serve-{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def main() -> None:
    parser = bench_parser(
        "Embedding throughput: direct vs Serve over HTTP", quick_help="short runs (smoke check)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--per-request", type=int, default=4, help="sentences per HTTP request")
    args = parser.parse_args()
    repeats, seconds, total = (1, 4.0, 512) if args.quick else (args.repeats, args.seconds, 2048)
    texts = sentences()

    cores = os.cpu_count() or 1
    direct: dict[tuple[int, int], float] = {}
    for threads in sorted({1, cores}):
        for batch, rate in direct_rates(
            texts, threads=threads, batch_sizes=[1, 16, 64, 128, 256], total=total
        ).items():
            direct[(threads, batch)] = rate
            print(f"direct threads={threads} batch={batch}: {rate:.0f} sentences/s", flush=True)
    (best_threads, best_batch), limit = max(direct.items(), key=lambda kv: kv[1])
    one_thread_limit = max(r for (t, _), r in direct.items() if t == 1)

    service: dict[tuple[str, int], Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            url = start_service(variant_config(variant, Path(tmp)))
            http_run(url, texts, clients=8, per_request=args.per_request, seconds=3, max_requests=500)
            for clients in (1, 8, 32):
                runs = [
                    http_run(
                        url,
                        texts,
                        clients=clients,
                        per_request=args.per_request,
                        seconds=seconds,
                        max_requests=20_000,
                    )
                    for _ in range(repeats)
                ]
                median = median_run(runs)
                service[(variant, clients)] = median
                print(
                    f"service {variant} clients={clients}: {median.sentences_per_s:.0f} sentences/s "
                    f"(runs: {', '.join(f'{r.sentences_per_s:.0f}' for r in runs)}), "
                    f"p50 {median.p50_ms:.0f} ms, p99 {median.p99_ms:.0f} ms",
                    flush=True,
                )
            stop_service()

    lines = [
        "## Embedding throughput",
        "",
        f"Command: `make bench-embed` (`python -m benchmarks.embed_throughput`). Machine: {machine()}.",
        f"Run on {time.strftime('%Y-%m-%d')}; medians of {repeats} runs of {seconds:.0f} s each; "
        f"{args.per_request} short real sentences (data/topic_texts.jsonl) per HTTP request.",
        "Service: 1 Embedder replica, dynamic batching up to 64 sentences (5 ms wait), proxy, ingress and "
        "the load generator all on the same machine. Variants: "
        + "; ".join(f"*{k}*: {v}" for k, v in VARIANTS.items())
        + ".",
        "",
        "(a) Direct in-process `encode` (the limit):",
        "",
        "| torch threads | batch 1 | batch 16 | batch 64 | batch 128 | batch 256 |",
        "|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {t} | " + " | ".join(f"{direct[(t, b)]:.0f}" for b in (1, 16, 64, 128, 256)) + " |"
            for t in sorted({1, cores})
        ],
        "",
        f"Limit: {limit:.0f} sentences/s ({best_threads} threads, batch {best_batch}); "
        f"best with 1 thread: {one_thread_limit:.0f} sentences/s.",
        "",
        "(b) `POST /v1/embed` through the running service:",
        "",
        "| variant | clients | sentences/s | p50 ms | p99 ms | ratio b/a (limit) | vs 1-thread direct |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {v} | {c} | {r.sentences_per_s:.0f} | {r.p50_ms:.0f} | {r.p99_ms:.0f} | "
            f"{r.sentences_per_s / limit:.2f} | {r.sentences_per_s / one_thread_limit:.2f} |"
            for (v, c), r in service.items()
        ],
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.quick:
        write_section(args.out, "## Embedding throughput", report)


if __name__ == "__main__":
    main()
