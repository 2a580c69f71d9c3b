"""Embedding throughput: direct in-process ``encode`` (the limit) vs ``POST /v1/embed`` through Serve.

    python benchmarks/embed_throughput.py          # or: make bench-embed
    python benchmarks/embed_throughput.py --quick  # shorter runs, for a smoke check

(a) Direct: the Embedder's own ``encode`` in this process, at batch sizes 1..256 and 1 and all torch
    threads; the best rate is the limit on this machine.
(b) Service: configs/serve.yaml deployed on a local Ray (free port on 127.0.0.1); 1, 8 and 32
    concurrent HTTP clients, each sending a few sentences per request, for a fixed time and a bounded
    number of requests. Each setting is repeated and the median is reported.
Prints a table with the ratio b/a and writes it to docs/benchmarks.md. Never run as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadResult:
    sentences_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int


def sentences() -> list[str]:
    rows = (ROOT / "data" / "topic_texts.jsonl").read_text().splitlines()
    return [json.loads(r)["text"] for r in rows if r.strip()]


def direct_rates(texts: list[str], *, threads: int, batch_sizes: list[int], total: int) -> dict[int, float]:
    from serve_app.core.embedding import encode, load_sentence_model

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


async def http_load(
    url: str, texts: list[str], *, clients: int, per_request: int, seconds: float, max_requests: int
) -> LoadResult:
    latencies: list[float] = []
    sent = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker(worker_id: int) -> None:
            nonlocal sent
            i = worker_id * per_request
            while time.perf_counter() < stop_at and len(latencies) < max_requests:
                batch = [texts[(i + k) % len(texts)] for k in range(per_request)]
                i += clients * per_request
                t0 = time.perf_counter()
                response = await client.post("/v1/embed", json={"sentences": batch})
                response.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                sent += per_request

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return LoadResult(sent / elapsed, statistics.median(ordered) * 1e3, p99 * 1e3, len(ordered))


VARIANTS = {
    "shipped": "configs/serve.yaml as shipped: one Embedder replica with 1 torch thread",
    "all-cores": "Embedder num_cpus = all cores (torch threads = cores); Ingress and Clusterer num_cpus 0",
}


def variant_config(name: str, directory: Path) -> Path:
    """Write the config file for a variant (the shipped one, or with the Embedder given every core)."""
    from serve_app.launch import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    if name == "all-cores":
        for dep in raw["applications"][0]["deployments"]:
            dep["ray_actor_options"]["num_cpus"] = os.cpu_count() if dep["name"] == "Embedder" else 0
    path = directory / f"serve-{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def start_service(config: Path, *, env_vars: dict[str, str] | None = None) -> str:
    """Deploy ``config`` on a local Ray (started here if needed) at a free port; return its base URL."""
    import ray

    from serve_app.launch import deploy, free_port, load_config

    port = free_port()
    if not ray.is_initialized():
        ray.init(namespace="serve", include_dashboard=False, log_to_driver=False)
    deploy(load_config(config, port=port, env_vars=env_vars))
    return f"http://127.0.0.1:{port}"


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Embedding throughput: direct vs Serve over HTTP")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke check)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--per-request", type=int, default=4, help="sentences per HTTP request")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
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

    from ray import serve

    service: dict[tuple[str, int], LoadResult] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            url = start_service(variant_config(variant, Path(tmp)))
            asyncio.run(
                http_load(url, texts, clients=8, per_request=args.per_request, seconds=3, max_requests=500)
            )
            for clients in (1, 8, 32):
                runs = [
                    asyncio.run(
                        http_load(
                            url,
                            texts,
                            clients=clients,
                            per_request=args.per_request,
                            seconds=seconds,
                            max_requests=20_000,
                        )
                    )
                    for _ in range(repeats)
                ]
                median = sorted(runs, key=lambda r: r.sentences_per_s)[len(runs) // 2]
                service[(variant, clients)] = median
                print(
                    f"service {variant} clients={clients}: {median.sentences_per_s:.0f} sentences/s "
                    f"(runs: {', '.join(f'{r.sentences_per_s:.0f}' for r in runs)}), "
                    f"p50 {median.p50_ms:.0f} ms, p99 {median.p99_ms:.0f} ms",
                    flush=True,
                )
            serve.shutdown()

    lines = [
        "## Embedding throughput (issue: foundation)",
        "",
        f"Command: `make bench-embed` (`python benchmarks/embed_throughput.py`). Machine: {machine()}.",
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


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section starting with ``heading`` in ``path`` (or append it)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nMeasured, never asserted in tests.\n\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    path.write_text(text)


if __name__ == "__main__":
    main()
