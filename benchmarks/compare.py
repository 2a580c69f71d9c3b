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
import statistics
import subprocess
import sys
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
from serve_app.models.embedding import SentenceEncoder
from serve_app.models.onnx_embedding import OnnxEncoder, ensure_exported
from serve_app.settings import AppArgs
from tools.launch import serve_env

MIB = 2**20
CLIENTS = (1, 8, 32)
PER_REQUEST = 4
# One option at a time over Serve's defaults, then what configs/serve.env ships (each on a fresh `serve run`).
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "default": ("Serve's defaults (Python proxy)", {}),
    "haproxy": ("RAY_SERVE_ENABLE_HA_PROXY=1", {"RAY_SERVE_ENABLE_HA_PROXY": "1"}),
    "throughput": ("RAY_SERVE_THROUGHPUT_OPTIMIZED=1", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}),
    "grpc": ("RAY_SERVE_USE_GRPC_BY_DEFAULT=1", {"RAY_SERVE_USE_GRPC_BY_DEFAULT": "1"}),
    "quiet-logs": ("access log off, log level WARNING", {}),
    "shipped": ("as shipped: configs/serve.env (HAProxy + throughput-optimised)", serve_env()),
}
SYSTEMS = {
    "direct": "direct in-process encode, same backend (the limit)",
    "gunicorn": "gunicorn --preload, 3 workers, torch (the seed's recipe)",
    "gunicorn-same": "gunicorn --preload, 3 workers, same backend as the service",
    "shipped": "this service, POST /v1/embed (HTTP)",
    "handle": "this service, Embedder handle from another Ray job",
}
# Processes of the service that answer /v1/embed and /v1/cluster (the rest of the app detects PDFs).
EMBED_PATH = (
    "haproxy",
    "ServeReplica:serve_app:Ingress",
    "ServeReplica:serve_app:Embedder",
    "ServeReplica:serve_app:Clusterer",
    "ProxyActor",
    "ServeController",
    "WeightsHolder",
)


def direct_run(encoder: SentenceEncoder, texts: list[str], clients: int, seconds: float) -> Run:
    """The best a caller in this process can do: every client's sentences encoded as one batch."""
    size = clients * PER_REQUEST
    latencies: list[float] = []
    i = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        batch = [texts[(i + k) % len(texts)] for k in range(size)]
        i += size
        t0 = time.perf_counter()
        encoder.encode(batch, batch_size=max(64, size))
        latencies += [time.perf_counter() - t0] * clients  # every client waited for the whole batch
    elapsed = time.perf_counter() - began
    return Run(len(latencies) * PER_REQUEST / elapsed, *percentiles_ms(latencies), len(latencies))


def http_run(url: str, texts: list[str], clients: int, seconds: float) -> Run:
    """``clients`` closed-loop HTTP clients; failed requests are counted, not retried."""
    batches = strided_batches(texts, PER_REQUEST, clients)
    load = http_embed_load(url, batches, clients=clients, seconds=seconds, count_errors=True)
    return asyncio.run(load).summary()


def handle_run(clients: int, seconds: float, env: dict[str, str]) -> Run:
    """benchmarks/handle_load.py as another Ray job (its own driver process) against the running app."""
    env = env | {"RAY_ADDRESS": "auto", "PYTHONPATH": str(ROOT)}
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
            or proc.info["name"] in ("raylet", "gcs_server", "haproxy")
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


def variant_env(variant: str) -> dict[str, str]:
    """This process's environment without Serve's switches, plus the variant's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
    return base | VARIANTS[variant][1]


def variant_config(variant: str, port: int) -> dict[str, Any]:
    """configs/serve.yaml at ``port``; variants other than the shipped one drop the replicas' Serve
    switch (RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP) so that each measures one option over Serve's defaults."""
    from tools.launch import DEFAULT_CONFIG

    raw: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["http_options"]["port"] = port
    if variant != "shipped":
        for app in raw["applications"]:
            env_vars = app.get("runtime_env", {}).get("env_vars", {})
            for name in [n for n in env_vars if n.startswith("RAY_SERVE_")]:
                del env_vars[name]
    if variant == "quiet-logs":
        raw["logging_config"] |= {"enable_access_log": False, "log_level": "WARNING"}
    return raw


def start_variant(variant: str, directory: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """``serve run`` (a fresh local Ray) of the variant's config and environment; returns the process,
    the base URL and the seconds from the command to the first answered ``/v1/embed`` (cold start)."""
    from tools.launch import free_port

    port = free_port()
    config = directory / f"serve-{variant}.yaml"
    config.write_text(yaml.safe_dump(variant_config(variant, port)))
    serve_bin = Path(sys.executable).parent / "serve"
    url = f"http://127.0.0.1:{port}"
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(serve_bin), "run", str(config)], cwd=ROOT, env=variant_env(variant),
        stdout=(directory / f"serve-{variant}.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    with httpx.Client(base_url=url, timeout=10) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve run exited before answering; see {directory}/serve-{variant}.log")
            try:
                if client.post("/v1/embed", json={"sentences": ["hello"]}).status_code == 200:
                    return proc, url, time.perf_counter() - began
            except httpx.TransportError:
                pass
            if time.perf_counter() - began > 300:
                stop_variant(proc)
                raise TimeoutError("serve run did not answer within 300 s")
            time.sleep(0.1)


def stop_variant(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # serve run shuts Serve and its Ray down on Ctrl-C
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)


def embedder_replicas() -> int:
    """Embedder replicas running now (the Serve REST API is not up without the dashboard: count the
    replica processes instead)."""
    return sum("ServeReplica:serve_app:Embedder" in title for title in ray_processes().values())


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


def gunicorn_part(
    backend: str, texts: list[str], repeats: int, seconds: float
) -> tuple[dict[int, Run], dict[str, Any], dict[str, Any]]:
    """The baseline with ``backend``: load, memory of master + workers, restarts, cold start."""
    from tools.launch import free_port

    port = free_port()
    proc = start_gunicorn(port, backend=backend)
    try:
        cold: dict[str, float | None] = {"s": round(wait_ready(f"http://127.0.0.1:{port}", 300, proc), 2)}
        wait_workers(proc.pid, 3, 60)
        cold["model_load_s"] = model_load_seconds(log_path(proc))
        booted_before = len(booted_worker_pids(log_path(proc)))
        url = f"http://127.0.0.1:{port}"
        http_run(url, texts, 8, 2)  # warm-up
        results = measure(f"gunicorn {backend}", lambda c: http_run(url, texts, c, seconds), repeats)
        rows = tree_memory(proc.pid)
        memory = {
            "pss_mib": round(sum(r["pss"] for r in rows) / MIB, 1),
            "processes": len(rows),
            "worker_restarts": len(booted_worker_pids(log_path(proc))) - booted_before,
        }
    finally:
        stop_gunicorn(proc)
    print(f"gunicorn {backend}: memory {memory}, cold start {cold}", flush=True)
    return results, memory, cold


def alternate(variants: list[str], *, rounds: int, repeats: int, seconds: float) -> None:
    """Variants in turn, each on a fresh `serve run`, ``rounds`` times; every run's sentences/s."""
    texts = sentences()
    logs = ROOT / "build" / "bench-compare"
    logs.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[int, list[float]]] = {v: {8: [], 32: []} for v in variants}
    for round_number in range(1, rounds + 1):
        for variant in variants:
            proc, url, _ = start_variant(variant, logs)
            try:
                http_run(url, texts, 8, 3)  # warm-up
                for clients in (8, 32):
                    got = [http_run(url, texts, clients, seconds).sentences_per_s for _ in range(repeats)]
                    runs[variant][clients] += got
                    print(
                        f"round {round_number} {variant} clients={clients}: {[round(r) for r in got]}",
                        flush=True,
                    )
            finally:
                stop_variant(proc)
    print("| variant | 8 clients, every run | 32 clients, every run | median 8 | median 32 |")
    print("|---|---|---|---:|---:|")
    for variant, by_clients in runs.items():
        cells = " | ".join(", ".join(f"{r:.0f}" for r in by_clients[c]) for c in (8, 32))
        medians = " | ".join(f"{statistics.median(by_clients[c]):.0f}" for c in (8, 32))
        print(f"| {VARIANTS[variant][0]} | {cells} | {medians} |")


def main() -> None:
    parser = bench_parser("direct vs gunicorn baseline vs this service, and Serve's HTTP options A/B")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    parser.add_argument(
        "--alternate",
        metavar="A,B",
        help="only A/B two variants, alternating A B A B (--rounds), at 8 and 32 clients: drift on a "
        "noisy machine hits both alike (printed, nothing written)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    repeats, seconds = (1, 3.0) if args.quick else (args.repeats, args.seconds)
    if args.alternate:
        alternate(args.alternate.split(","), rounds=args.rounds, repeats=max(2, repeats), seconds=seconds)
        return
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    texts = sentences()
    backend = AppArgs().embedder_backend
    results: dict[str, dict[int, Run]] = {}
    memory: dict[str, Any] = {}
    cold: dict[str, Any] = {}

    # (b) gunicorn, twice: the seed's torch recipe, and the service's backend.
    for name, baseline_backend in (("gunicorn", "torch"), ("gunicorn-same", backend)):
        results[name], memory[name], cold[name] = gunicorn_part(baseline_backend, texts, repeats, seconds)

    # (a) direct, in this process, with the service's backend: the limit, best of 1 thread and all cores.
    per_threads = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        encoder = OnnxEncoder(ensure_exported(None, backend)[0], num_threads=threads)
        encoder.encode(texts[:64])
        per_threads[threads] = measure(
            f"direct {backend} threads={threads}",
            lambda c, encoder=encoder: direct_run(encoder, texts, c, seconds),
            repeats,
        )
    results["direct"] = {
        c: max((per_threads[t][c] for t in per_threads), key=lambda r: r.sentences_per_s) for c in CLIENTS
    }

    # (c) every variant over HTTP, each on a fresh `serve run`; (d) handles for the shipped one.
    logs = ROOT / "build" / "bench-compare"  # each variant's config and `serve run` log, kept
    logs.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        proc, url, cold[variant] = start_variant(variant, logs)
        try:
            http_run(url, texts, 8, 3)  # warm-up
            results[variant] = measure(
                variant,
                lambda c, url=url: http_run(url, texts, c, seconds),
                repeats,
            )
            memory[variant] = service_memory() | {"embedder_replicas": embedder_replicas()}
            if variant == "shipped":
                env = variant_env(variant)
                results["handle"] = measure(
                    "handle",
                    lambda c, env=env: handle_run(c, seconds, env),
                    repeats,
                )
        finally:
            stop_variant(proc)
        print(f"{variant}: memory {memory[variant]}, cold start {cold[variant]:.1f} s", flush=True)

    report = render(results, memory, cold, per_threads, repeats, seconds, backend)
    print(report)
    if args.quick:
        return
    (ROOT / "docs" / "compare.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
                "backend": backend,
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
    backend: str,
) -> str:
    direct = results["direct"]
    lines = [
        "## Side by side: direct, gunicorn baseline, this service",
        "",
        f"Command: `make bench-compare` (`python -m benchmarks.compare`). Machine: {machine()}. "
        f"Run on {time.strftime('%Y-%m-%d')}, all in one run; medians of {repeats} runs of {seconds:.0f} s; "
        f"{PER_REQUEST} real sentences per request, closed loop; load generator on the same machine. "
        f"Embedder backend: `{backend}` (the service's default), in the direct call too. "
        "Plot: [compare.png](compare.png); raw numbers: [compare.json](compare.json).",
        "",
        "### The HTTP path, option by option",
        "",
        "Each row is a fresh `serve run configs/serve.yaml` with one of Ray Serve's options set in the "
        "environment of its Ray processes, over Serve's defaults; the last row is what `configs/serve.env` "
        "ships. Sentences/s of `POST /v1/embed`, and the ratio to the direct call at the same clients.",
        "",
        "| variant | 1 client | 8 clients | 32 clients | p50 ms, 1 client | p99 ms, 32 clients "
        "| failed | cold start s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, (label, _) in VARIANTS.items():
        if variant not in results:
            continue
        r = results[variant]
        cells = " | ".join(
            f"{r[c].sentences_per_s:.0f} ({r[c].sentences_per_s / direct[c].sentences_per_s:.2f}x)"
            for c in CLIENTS
        )
        failed = sum(r[c].errors for c in CLIENTS)
        lines.append(
            f"| {label} | {cells} | {r[1].p50_ms:.0f} | {r[32].p99_ms:.0f} | {failed} | {cold[variant]:.1f} |"
        )
    lines += [
        "",
        "### Against the direct call and the gunicorn baseline",
        "",
        "| system | clients | sentences/s | vs direct | vs gunicorn, same backend | p50 ms | p99 ms "
        "| failed requests |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for system, label in SYSTEMS.items():
        if system not in results:
            continue
        for clients in CLIENTS:
            row = results[system][clients]
            rate = row.sentences_per_s
            same = results["gunicorn-same"][clients].sentences_per_s
            lines.append(
                f"| {label} | {clients} | {rate:.0f} | {rate / direct[clients].sentences_per_s:.2f} | "
                f"{rate / same:.2f} | {row.p50_ms:.0f} | {row.p99_ms:.0f} | {row.errors} |"
            )
    threads = ", ".join(
        f"{t} thread(s): " + "/".join(f"{v[c].sentences_per_s:.0f}" for c in CLIENTS)
        for t, v in per_threads.items()
    )
    lines += [
        "",
        f"Direct ({backend}), sentences/s at {'/'.join(map(str, CLIENTS))} clients by threads: {threads}; "
        "the table uses the better one.",
        "",
        "Memory after the load (PSS, MiB; PSS splits shared pages between the processes that map them, "
        "so the sums are totals):",
        "",
        "| what | PSS MiB |",
        "|---|---:|",
    ]
    for name in ("gunicorn", "gunicorn-same"):
        if name in memory:
            m = memory[name]
            lines.append(
                f"| {SYSTEMS[name]}: master + workers ({m['processes']} processes) | {m['pss_mib']:.0f} |"
            )
    for variant in ("shipped", "default"):
        if variant in memory:
            m = memory[variant]
            label = VARIANTS[variant][0]
            lines += [
                f"| service ({label}), embed path: HTTP proxy, controller, Ingress, Embedder, Clusterer "
                f"| {m['embed_path']:.0f} |",
                f"| service ({label}), rest of the app: Detector, JobRunner | {m['rest_of_app']:.0f} |",
                f"| service ({label}), Ray itself: raylet, GCS, agents, idle workers "
                f"| {m['ray_system']:.0f} |",
            ]
    restarts = {n: memory[n]["worker_restarts"] for n in ("gunicorn", "gunicorn-same") if n in memory}
    replicas = {v: memory[v]["embedder_replicas"] for v in VARIANTS if v in memory}
    colds = ", ".join(f"{v} {cold[v]:.1f} s" for v in VARIANTS if v in cold)
    lines += [
        "",
        f"gunicorn workers restarted by max_requests during the load: {restarts}. Embedder replicas "
        f"at the end of each variant's load (it autoscales 1 to 2, as shipped): {replicas}.",
        "",
        "Cold start, start command to the first answered `/v1/embed`: "
        + ", ".join(
            f"{SYSTEMS[n]} {cold[n]['s']} s (model load {cold[n]['model_load_s']} s)" for n in restarts
        )
        + f"; `serve run configs/serve.yaml` (starts Ray, all five deployments, both models): {colds}.",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, dict[int, Run]], path: Path) -> None:
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(11, 4))
    for system, label in SYSTEMS.items():
        if system not in results:
            continue
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
