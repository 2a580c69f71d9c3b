"""Start, probe, measure and stop the classic baseline (gunicorn --preload, see README.md).

From a benchmark (run from the repository root as ``python -m benchmarks.<name>``):

    from benchmarks.baseline_gunicorn.launch import start_gunicorn, stop_gunicorn, tree_memory, wait_ready

    proc = start_gunicorn(port)
    try:
        cold_start_s = wait_ready(f"http://127.0.0.1:{port}", timeout=120, proc=proc)
        table = tree_memory(proc.pid)
    finally:
        stop_gunicorn(proc)

``python -m benchmarks.baseline_gunicorn.launch`` runs a short smoke check (see ``main``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CONFIG = HERE / "gunicorn_conf.py"
# The gunicorn next to the running interpreter: .venv/bin/gunicorn when run with .venv/bin/python.
GUNICORN = Path(sys.executable).parent / "gunicorn"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
PROBE_BODY = {"sentences": ["Is the baseline ready?"]}


@dataclass(frozen=True)
class Run:
    """What ``start_gunicorn`` knows about one started master."""

    started: float  # time.perf_counter() just before the command was started
    log: Path  # gunicorn's stdout and stderr


_RUNS: dict[int, Run] = {}


def start_gunicorn(
    port: int, *, log_dir: Path | None = None, backend: str = "torch"
) -> subprocess.Popen[bytes]:
    """Start the baseline on 127.0.0.1:``port`` in its own process group; output goes to a log file.

    The log is ``log_dir``/gunicorn-<port>.log (default: a new temporary directory, left in place);
    ``log_path(proc)`` returns it.
    """
    directory = log_dir if log_dir is not None else Path(tempfile.mkdtemp(prefix="baseline-gunicorn-"))
    log = directory / f"gunicorn-{port}.log"
    env = {**os.environ, **OFFLINE_ENV, "BASELINE_BIND": f"127.0.0.1:{port}", "BASELINE_BACKEND": backend}
    command = [str(GUNICORN), "-c", str(CONFIG), "main:app"]
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    _RUNS[proc.pid] = Run(started=started, log=log)
    return proc


def log_path(proc: subprocess.Popen[bytes]) -> Path:
    """The log file of a master started by ``start_gunicorn``."""
    return _RUNS[proc.pid].log


def wait_ready(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds from the start command until ``/healthz`` and then a first ``/v1/embed`` answered 200.

    The clock starts when ``start_gunicorn`` started ``proc`` (default: the master it started last).
    Raises ``RuntimeError`` if the master exits first, ``TimeoutError`` after ``timeout`` seconds.
    """
    run = _RUNS[proc.pid] if proc is not None else list(_RUNS.values())[-1]
    deadline = run.started + timeout
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for path, body in (("/healthz", None), ("/v1/embed", PROBE_BODY)):
            while not _answers_200(client, path, body):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {proc.returncode}; see {run.log}")
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{url}{path} did not answer 200 within {timeout} s; see {run.log}")
                time.sleep(0.05)
    return time.perf_counter() - run.started


def _answers_200(client: httpx.Client, path: str, body: dict[str, Any] | None) -> bool:
    try:
        response = client.get(path) if body is None else client.post(path, json=body)
    except httpx.TransportError:
        return False
    return response.status_code == 200


def stop_gunicorn(proc: subprocess.Popen[bytes], *, grace_s: float = 30.0) -> None:
    """SIGTERM the process group (master and workers), SIGKILL whatever is left after ``grace_s``.

    Signals go to the group only while the master is not yet reaped (so its pid, the group id, cannot
    have been reused); workers that outlive it are killed through their psutil handles.
    """
    if proc.poll() is not None:
        return
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(family, timeout=5)
    for leftover in alive:
        leftover.kill()
    psutil.wait_procs(alive, timeout=5)


def tree_memory(pid: int) -> list[dict[str, Any]]:
    """rss, uss and pss (bytes) of the master ``pid`` and of every descendant, master first.

    ``role`` is "master", "worker" (a child of the master) or "descendant" (deeper). Processes that exit
    while being measured (workers restarted by max_requests) are left out.
    """
    master = psutil.Process(pid)
    children = set(master.children())
    rows = []
    for proc in [master, *master.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        role = "master" if proc.pid == pid else "worker" if proc in children else "descendant"
        rows.append({"pid": proc.pid, "role": role, "rss": info.rss, "uss": info.uss, "pss": info.pss})
    return rows


def worker_pids(pid: int) -> set[int]:
    """Pids of the master's current workers; poll it to see workers come and go."""
    try:
        return {child.pid for child in psutil.Process(pid).children()}
    except psutil.NoSuchProcess:
        return set()


def wait_workers(pid: int, count: int, timeout: float) -> set[int]:
    """Wait until the master has ``count`` workers (``wait_ready`` can return before the last is forked)."""
    deadline = time.perf_counter() + timeout
    while len(pids := worker_pids(pid)) < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(pids)} of {count} workers after {timeout} s")
        time.sleep(0.05)
    return pids


def booted_worker_pids(log: Path) -> list[int]:
    """Every worker the master forked, from its "Booting worker with pid: N" log lines, in order.

    Exact even for workers that live shorter than a polling interval of ``worker_pids``.
    """
    return [int(m) for m in re.findall(r"Booting worker with pid: (\d+)", log.read_text(errors="replace"))]


def max_requests_exits(log: Path) -> int:
    """Workers that stopped because they reached max_requests (uvicorn's "Maximum request limit" line).

    Counts a worker as soon as it starts exiting, before its replacement is booted.
    """
    return log.read_text(errors="replace").count("Maximum request limit of")


def model_load_seconds(log: Path) -> float | None:
    """The model load time main.py logged at import (in the master), or None if not logged yet."""
    found = re.search(r"baseline model loaded in ([0-9.]+) s", log.read_text(errors="replace"))
    return float(found.group(1)) if found else None


def format_memory(rows: list[dict[str, Any]]) -> str:
    """The ``tree_memory`` table in MiB, with a total line."""
    mib = 1024**2
    lines = [f"{'pid':>8} {'role':<10} {'rss MiB':>9} {'uss MiB':>9} {'pss MiB':>9}"]
    total = {"pid": "", "role": "total", **{k: sum(r[k] for r in rows) for k in ("rss", "uss", "pss")}}
    for r in [*rows, total]:
        sizes = " ".join(f"{r[k] / mib:>9.1f}" for k in ("rss", "uss", "pss"))
        lines.append(f"{r['pid']:>8} {r['role']:<10} {sizes}")
    return "\n".join(lines)


def main() -> None:
    """Smoke check: start, embed, cluster the nine titles, print memory, send requests, count workers."""
    from tests.examples import DOG_WALKING, NINE_TITLES, PUBLIC_SPEAKING

    parser = argparse.ArgumentParser(description="Smoke check of the gunicorn --preload baseline")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--requests", type=int, default=200, help="embed requests for the restart count")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    proc = start_gunicorn(args.port)
    try:
        cold = wait_ready(url, timeout=120, proc=proc)
        print(f"cold start {cold:.2f} s (model load in the master {model_load_seconds(log_path(proc))} s)")
        with httpx.Client(base_url=url, timeout=30) as client:
            embedded = client.post("/v1/embed", json={"sentences": NINE_TITLES[:4]}).json()
            print(f"embed: count {embedded['count']}, dimension {embedded['dimension']}")
            body = client.post("/v1/cluster", json={"sentences": NINE_TITLES}).json()
            groups = [[m["text"] for m in c["members"]] for c in body["clusters"]]
            print(f"cluster: sizes {[len(g) for g in groups]}, unclustered {len(body['unclustered'])}")
            print(f"cluster matches the expected grouping: {groups == [DOG_WALKING, PUBLIC_SPEAKING]}")
            wait_workers(proc.pid, 3, timeout=60)
            print(format_memory(tree_memory(proc.pid)))
            first_workers = len(booted_worker_pids(log_path(proc)))
            seen = worker_pids(proc.pid)
            began = time.perf_counter()
            for i in range(args.requests):
                client.post("/v1/embed", json={"sentences": [NINE_TITLES[i % 9]]}).raise_for_status()
                seen |= worker_pids(proc.pid)
            elapsed = time.perf_counter() - began
        booted = booted_worker_pids(log_path(proc))
        print(
            f"{args.requests} requests in {elapsed:.1f} s: {len(seen)} distinct worker pids polled, "
            f"{len(booted)} workers booted in all ({len(booted) - first_workers} restarts so far), "
            f"{max_requests_exits(log_path(proc))} workers reached max_requests"
        )
        print(format_memory(tree_memory(proc.pid)))
    finally:
        stop_gunicorn(proc)
        print(f"stopped (exit {proc.returncode}); log: {log_path(proc)}")


if __name__ == "__main__":
    main()
