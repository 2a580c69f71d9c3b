"""Side by side, in one run on one machine: the direct model call, the gunicorn baseline, this service.

    python -m benchmarks.compare           # or: make bench-compare   (about 14 minutes on 2 cores)
    python -m benchmarks.compare --quick   # 1 repeat of 3 s (smoke check; nothing written)

The same embed workload (4 real sentences per request, closed loop) at 1, 8 and 32 concurrent clients:

(a) direct: ``encode`` in this process on batches of clients x 4 sentences, the limit (best of 1 and
    all torch threads);
(b) gunicorn: benchmarks/baseline_gunicorn (FastAPI + gunicorn --preload, 3 uvicorn workers,
    max_requests 50, the seed article's recipe), ``POST /v1/embed`` over HTTP;
(c) service over HTTP: configs/serve.yaml as shipped, ``POST /v1/embed``;
(d) service through handles: ``Embedder.embed`` called from another Ray job
    (``python -m benchmarks.handle_load``, a separate driver process).

The Embedder autoscales (1 to 2 replicas) while the service is measured, as shipped; the report gives
the replica count at the end.
For each: sentences/s, p50 and p99 latency (medians of ``--repeats`` runs), and the PSS of the serving
processes after the load. Cold start: from the start command (``gunicorn ...`` / ``serve run
configs/serve.yaml``) to the first answered ``/v1/embed``. Writes docs/compare.json, docs/compare.png and
the section of docs/benchmarks.md. Never run as a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from benchmarks._harness import (
    ROOT,
    Run,
    bench_parser,
    http_embed_load,
    machine,
    median_run,
    percentiles_ms,
    pyplot,
    save_figure,
    sentences,
    start_service,
    strided_batches,
    write_section,
)
from benchmarks.baseline_gunicorn.launch import (
    booted_worker_pids,
    log_path,
    model_load_seconds,
    start_gunicorn,
    stop_gunicorn,
    tree_memory,
    wait_ready,
    wait_workers,
)

MIB = 2**20
CLIENTS = (1, 8, 32)
PER_REQUEST = 4
SYSTEMS = {
    "direct": "direct in-process encode (the limit)",
    "gunicorn": "gunicorn --preload, 3 uvicorn workers (HTTP)",
    "service-http": "this service, POST /v1/embed (HTTP)",
    "service-handle": "this service, Embedder handle from another Ray job",
}
# Processes of the service that answer /v1/embed and /v1/cluster (the rest of the app detects PDFs).
EMBED_PATH = (
    "ServeReplica:serve_app:Ingress",
    "ServeReplica:serve_app:Embedder",
    "ServeReplica:serve_app:Clusterer",
    "ProxyActor",
    "ServeController",
    "WeightsHolder",
)


def direct_run(model: Any, texts: list[str], clients: int, seconds: float) -> Run:
    """The best a caller in this process can do: every client's sentences encoded as one batch."""
    from serve_app.models.embedding import encode

    size = clients * PER_REQUEST
    latencies: list[float] = []
    i = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        batch = [texts[(i + k) % len(texts)] for k in range(size)]
        i += size
        t0 = time.perf_counter()
        encode(model, batch, batch_size=max(64, size))
        latencies += [time.perf_counter() - t0] * clients  # every client waited for the whole batch
    elapsed = time.perf_counter() - began
    return Run(len(latencies) * PER_REQUEST / elapsed, *percentiles_ms(latencies), len(latencies))


def http_run(url: str, texts: list[str], clients: int, seconds: float) -> Run:
    """``clients`` closed-loop HTTP clients; failed requests are counted, not retried."""
    batches = strided_batches(texts, PER_REQUEST, clients)
    load = http_embed_load(url, batches, clients=clients, seconds=seconds, count_errors=True)
    return asyncio.run(load).summary()


def handle_run(clients: int, seconds: float) -> Run:
    """benchmarks/handle_load.py as another Ray job (its own driver process) against the running app."""
    env = os.environ | {"RAY_ADDRESS": "auto", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.handle_load", "--clients", str(clients),
         "--seconds", str(seconds), "--per-request", str(PER_REQUEST)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(report["sentences_per_s"], report["p50_ms"], report["p99_ms"], report["requests"])


def ray_processes() -> dict[int, str]:
    """pid -> title of every process of the local Ray (workers, raylet, GCS, agents), not this driver."""
    found = {}
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        if proc.info["pid"] == os.getpid():
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if (
            cmdline.startswith("ray::")
            or proc.info["name"] in ("raylet", "gcs_server")
            or ("ray/_private" in cmdline or "ray/dashboard" in cmdline or "ray/autoscaler" in cmdline)
        ):
            found[proc.info["pid"]] = cmdline.split()[0] if cmdline.startswith("ray::") else proc.info["name"]
    return found


def service_memory() -> dict[str, float]:
    """PSS (MiB) of the processes on the embed path, the rest of the app, and Ray's own processes."""
    totals = {"embed_path": 0.0, "rest_of_app": 0.0, "ray_system": 0.0}
    for pid, title in ray_processes().items():
        try:
            pss = psutil.Process(pid).memory_full_info().pss / MIB
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(part in title for part in EMBED_PATH):
            totals["embed_path"] += pss
        elif title.startswith("ray::ServeReplica:serve_app:"):
            totals["rest_of_app"] += pss
        else:
            totals["ray_system"] += pss
    return {k: round(v, 1) for k, v in totals.items()}


def cold_start_service(directory: Path) -> float:
    """Seconds from ``serve run <config>`` (a fresh local Ray) to the first answered ``/v1/embed``."""
    from tools.launch import DEFAULT_CONFIG, free_port

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    port = free_port()
    raw["http_options"]["port"] = port
    config = directory / "serve-cold.yaml"
    config.write_text(yaml.safe_dump(raw))
    serve_bin = Path(sys.executable).parent / "serve"
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(serve_bin), "run", str(config)], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("serve run exited before answering")
                try:
                    if client.post("/v1/embed", json={"sentences": ["hello"]}).status_code == 200:
                        return time.perf_counter() - began
                except httpx.TransportError:
                    pass
                if time.perf_counter() - began > 300:
                    raise TimeoutError("serve run did not answer within 300 s")
                time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # serve run shuts Serve and its Ray down on Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)


def measure(name: str, run_once: Any, repeats: int) -> dict[int, Run]:
    """Median of ``repeats`` runs at each client count."""
    results = {}
    for clients in CLIENTS:
        runs = [run_once(clients) for _ in range(repeats)]
        results[clients] = median_run(runs)
        r = results[clients]
        print(
            f"{name} clients={clients}: {r.sentences_per_s:.0f} sentences/s "
            f"(runs {[round(x.sentences_per_s) for x in runs]}), p50 {r.p50_ms:.0f} ms, "
            f"p99 {r.p99_ms:.0f} ms, errors {sum(x.errors for x in runs)}",
            flush=True,
        )
    return results


def main() -> None:
    parser = bench_parser("direct vs gunicorn baseline vs this service")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    repeats, seconds = (1, 3.0) if args.quick else (args.repeats, args.seconds)
    texts = sentences()
    results: dict[str, dict[int, Run]] = {}
    memory: dict[str, Any] = {}
    cold: dict[str, Any] = {}

    # (b) gunicorn: cold start, load, memory of master + workers, restarts seen in its log.
    from tools.launch import free_port

    port = free_port()
    proc = start_gunicorn(port)
    try:
        cold["gunicorn_s"] = round(wait_ready(f"http://127.0.0.1:{port}", 300, proc), 2)
        wait_workers(proc.pid, 3, 60)
        cold["gunicorn_model_load_s"] = model_load_seconds(log_path(proc))
        booted_before = len(booted_worker_pids(log_path(proc)))
        url = f"http://127.0.0.1:{port}"
        http_run(url, texts, 8, 2)  # warm-up
        results["gunicorn"] = measure("gunicorn", lambda c: http_run(url, texts, c, seconds), repeats)
        rows = tree_memory(proc.pid)
        memory["gunicorn"] = {
            "pss_mib": round(sum(r["pss"] for r in rows) / MIB, 1),
            "processes": len(rows),
            "worker_restarts": len(booted_worker_pids(log_path(proc))) - booted_before,
        }
    finally:
        stop_gunicorn(proc)
    print(f"gunicorn memory {memory['gunicorn']}, cold start {cold}", flush=True)

    # Cold start of the service: `serve run` on a fresh local Ray.
    with tempfile.TemporaryDirectory() as tmp:
        cold["service_s"] = round(cold_start_service(Path(tmp)), 2)
    print(f"cold start {cold}", flush=True)

    # (a) direct, in this process: the limit, best of 1 thread and all cores.
    import torch

    from serve_app.models.embedding import encode, load_sentence_model

    model = load_sentence_model(num_threads=1)
    encode(model, texts[:64])
    per_threads = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        per_threads[threads] = measure(
            f"direct threads={threads}", lambda c: direct_run(model, texts, c, seconds), repeats
        )
    results["direct"] = {
        c: max((per_threads[t][c] for t in per_threads), key=lambda r: r.sentences_per_s) for c in CLIENTS
    }

    # (c) and (d): the shipped service on a local Ray in this process; handles from another job.
    from ray import serve

    from tools.launch import DEFAULT_CONFIG

    url = start_service(DEFAULT_CONFIG)
    try:
        http_run(url, texts, 8, 3)  # warm-up
        results["service-http"] = measure("service-http", lambda c: http_run(url, texts, c, seconds), repeats)
        memory["service"] = service_memory()
        results["service-handle"] = measure("service-handle", lambda c: handle_run(c, seconds), repeats)
        memory["service_embedder_replicas"] = (
            serve.status().applications["serve_app"].deployments["Embedder"].replica_states
        )
    finally:
        serve.shutdown()
    print(f"service memory {memory}", flush=True)

    report = render(results, memory, cold, per_threads, repeats, seconds)
    print(report)
    if args.quick:
        return
    (ROOT / "docs" / "compare.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
                "results": {s: {c: asdict(r) for c, r in v.items()} for s, v in results.items()},
                "direct_by_threads": {
                    t: {c: asdict(r) for c, r in v.items()} for t, v in per_threads.items()
                },
                "memory": memory,
                "cold_start": cold,
            },
            indent=1,
            default=str,
        )
    )
    plot(results, ROOT / "docs" / "compare.png")
    write_section(args.out, "## Side by side: direct, gunicorn baseline, this service", report)


def render(
    results: dict[str, dict[int, Run]],
    memory: dict[str, Any],
    cold: dict[str, Any],
    per_threads: dict[int, dict[int, Run]],
    repeats: int,
    seconds: float,
) -> str:
    lines = [
        "## Side by side: direct, gunicorn baseline, this service",
        "",
        f"Command: `make bench-compare` (`python -m benchmarks.compare`). Machine: {machine()}. "
        f"Run on {time.strftime('%Y-%m-%d')}, all in one run; medians of {repeats} runs of {seconds:.0f} s; "
        f"{PER_REQUEST} real sentences per request, closed loop; load generator on the same machine. "
        "Plot: [compare.png](compare.png); raw numbers: [compare.json](compare.json).",
        "",
        "| system | clients | sentences/s | vs direct | p50 ms | p99 ms | failed requests |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system, label in SYSTEMS.items():
        for clients in CLIENTS:
            r = results[system][clients]
            limit = results["direct"][clients].sentences_per_s
            lines.append(
                f"| {label} | {clients} | {r.sentences_per_s:.0f} | {r.sentences_per_s / limit:.2f} | "
                f"{r.p50_ms:.0f} | {r.p99_ms:.0f} | {r.errors} |"
            )
    threads = ", ".join(
        f"{t} thread(s): " + "/".join(f"{v[c].sentences_per_s:.0f}" for c in CLIENTS)
        for t, v in per_threads.items()
    )
    gunicorn, service = memory["gunicorn"], memory["service"]
    lines += [
        "",
        f"Direct, sentences/s at {'/'.join(map(str, CLIENTS))} clients by torch threads: {threads}; "
        "the table uses the better one.",
        "",
        "Memory after the load (PSS, MiB; PSS splits shared pages between the processes that map them, "
        "so the sums are totals):",
        "",
        "| what | PSS MiB |",
        "|---|---:|",
        f"| gunicorn: master + workers ({gunicorn['processes']} processes) | {gunicorn['pss_mib']:.0f} |",
        f"| service, embed path: proxy, controller, Ingress, Embedder, Clusterer, weights holder | "
        f"{service['embed_path']:.0f} |",
        f"| service, rest of the app: Detector, JobRunner | {service['rest_of_app']:.0f} |",
        f"| Ray itself: raylet, GCS, agents, idle workers | {service['ray_system']:.0f} |",
        "",
        f"gunicorn workers restarted by max_requests during its load: {gunicorn['worker_restarts']}. "
        "The Embedder autoscaled (1 to 2 replicas) during the service's runs, as shipped; replicas at "
        f"the end: {memory['service_embedder_replicas']}.",
        "",
        f"Cold start, start command to first answered `/v1/embed`: gunicorn {cold['gunicorn_s']} s "
        f"(model load in the master {cold['gunicorn_model_load_s']} s); `serve run configs/serve.yaml` "
        f"{cold['service_s']} s (starts Ray, all five deployments, both models). Per-replica model load "
        "times with and without sharing are in the memory table above.",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, dict[int, Run]], path: Path) -> None:
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(11, 4))
    for system, label in SYSTEMS.items():
        xs = list(CLIENTS)
        left.plot(xs, [results[system][c].sentences_per_s for c in xs], "o-", label=label)
        right.plot(xs, [results[system][c].p99_ms for c in xs], "o-", label=label)
    for ax, title, unit in ((left, "throughput", "sentences/s"), (right, "p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(CLIENTS), [str(c) for c in CLIENTS])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    right.set_yscale("log")
    left.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
