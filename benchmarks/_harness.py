"""What the benchmark scripts share: the local service, the closed-loop load, the report helpers.

Importing this module starts nothing and does not import Ray (``start_service`` imports it when called).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"


def sentences() -> list[str]:
    """The real short texts of data/topic_texts.jsonl, in file order."""
    rows = (ROOT / "data" / "topic_texts.jsonl").read_text().splitlines()
    return [json.loads(r)["text"] for r in rows if r.strip()]


def machine() -> str:
    """One line about this machine for the reports: cores, CPU model, memory, OS, Python."""
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


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section starting with ``heading`` in ``path`` (or append it)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nMeasured, never asserted in tests.\n\n"
    section = section.rstrip("\n") + "\n\n"  # a blank line before the next heading
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    path.write_text(text)


def start_service(config: Path, *, env_vars: dict[str, str] | None = None) -> str:
    """Deploy ``config`` on a local Ray (started here if needed) at a free port; return its base URL."""
    import ray

    from tools.launch import deploy, free_port, load_config, use_serve_env

    port = free_port()
    if not ray.is_initialized():
        use_serve_env()
        ray.init(namespace="serve", include_dashboard=False, log_to_driver=False)
    deploy(load_config(config, port=port, env_vars=env_vars))
    return f"http://127.0.0.1:{port}"


def stop_service() -> None:
    """Shut Serve down and leave this process's Ray, so the next ``start_service`` starts a fresh one.
    (With HAProxy, configs/serve.env, Serve does not start again in a Ray it was shut down in: the old
    controller outlives its 30 s shutdown and the new client attaches to it as it dies.)"""
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


# --- closed-loop load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A load run as the reports show it: rate and latency of the requests that succeeded."""

    sentences_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int = 0


def percentiles_ms(latencies: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in ms of latencies in seconds; NaN for none. p99: the value at rank int(0.99 n)."""
    ordered = sorted(latencies) or [float("nan")]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def median_run(runs: Sequence[Run]) -> Run:
    """The run with the median rate (the upper middle one for an even count)."""
    return sorted(runs, key=lambda r: r.sentences_per_s)[len(runs) // 2]


@dataclass(frozen=True)
class Load:
    """What ``closed_loop`` saw: one (finished at, latency) pair per request that succeeded."""

    samples: list[tuple[float, float]]  # (time.perf_counter() when it finished, latency s)
    sentences: int  # sentences in the requests that succeeded
    errors: int  # requests that failed (counted, not retried)
    elapsed: float  # seconds from the first request sent to the last answer

    @property
    def requests(self) -> int:
        return len(self.samples)

    def summary(self) -> Run:
        p50, p99 = percentiles_ms([latency for _, latency in self.samples])
        return Run(self.sentences / self.elapsed, p50, p99, self.requests, self.errors)


Batches = Callable[[int], Iterator[list[str]]]  # client number -> the batches that client sends


def strided_batches(texts: Sequence[str], per_request: int, clients: int) -> Batches:
    """Client ``w`` sends texts ``w*per_request ...`` onwards in steps of ``clients*per_request``
    (cycling), so the clients together walk through ``texts`` in order, ``per_request`` at a time."""

    def batches(worker: int) -> Iterator[list[str]]:
        i = worker * per_request
        while True:
            yield [texts[(i + k) % len(texts)] for k in range(per_request)]
            i += clients * per_request

    return batches


async def closed_loop(
    send: Callable[[list[str]], Awaitable[bool]],
    batches: Batches,
    *,
    clients: int,
    seconds: float | None = None,
    max_requests: int | None = None,
) -> Load:
    """``clients`` concurrent callers, each sending its next batch as soon as its last one is answered.

    ``send`` returns whether the request succeeded (a failure is counted, not retried); an exception
    from it ends the run. Each caller stops when its batches run out, after ``seconds``, or once
    ``max_requests`` requests have succeeded, whichever comes first.
    """
    samples: list[tuple[float, float]] = []
    sent = errors = 0
    stop_at = time.perf_counter() + seconds if seconds is not None else None

    def done() -> bool:
        return (stop_at is not None and time.perf_counter() >= stop_at) or (
            max_requests is not None and len(samples) >= max_requests
        )

    async def caller(worker: int) -> None:
        nonlocal sent, errors
        mine = batches(worker)
        while not done():
            batch = next(mine, None)
            if batch is None:
                return
            began = time.perf_counter()
            ok = await send(batch)
            finished = time.perf_counter()
            if ok:
                samples.append((finished, finished - began))
                sent += len(batch)
            else:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(caller(w) for w in range(clients)))
    return Load(samples, sent, errors, time.perf_counter() - began)


async def http_embed_load(
    url: str,
    batches: Batches,
    *,
    clients: int,
    seconds: float | None = None,
    max_requests: int | None = None,
    timeout: float = 60.0,
    count_errors: bool = False,
) -> Load:
    """``closed_loop`` of ``POST /v1/embed`` over one connection per client.

    A non-200 answer raises (``count_errors=False``) or is counted as an error together with
    connection failures (``count_errors=True``).
    """
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

        async def send(batch: list[str]) -> bool:
            try:
                response = await client.post("/v1/embed", json={"sentences": batch})
            except httpx.TransportError:
                if not count_errors:
                    raise
                return False
            if count_errors:
                return response.status_code == 200
            response.raise_for_status()
            return True

        return await closed_loop(send, batches, clients=clients, seconds=seconds, max_requests=max_requests)


# --- command line and plots -------------------------------------------------------------------------


def bench_parser(description: str, *, quick_help: str | None = None) -> argparse.ArgumentParser:
    """The options every report-writing script has: ``--quick`` (a smoke check that writes nothing) and
    ``--out`` (the Markdown file whose section it replaces, docs/benchmarks.md)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD)
    return parser


def pyplot() -> Any:
    """``matplotlib.pyplot`` drawing to files only (the Agg backend), imported only when a plot is made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
