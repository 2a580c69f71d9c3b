"""Memory creep: RSS of every replica over 20,000 ``/v1/embed`` requests and 2,000 detected pages.

    python -m benchmarks.creep            # or: make bench-creep   (about 25 minutes on 2 cores)
    python -m benchmarks.creep --quick    # 1,000 requests and 40 pages (smoke check)

configs/serve.yaml is deployed with the Embedder at 1 replica and the Detector at 2 (pinned, so that no
autoscaling adds or removes processes during the run). After a warm-up (1,000 requests, batches of the
longest sentences, one 20-page job), 8 HTTP clients send 20,000 embed requests (1 to 8 real sentences
each) while 20 jobs of 100 pages each (2,000 pages) run through ``/v1/jobs``. A sampler reads the RSS of
every replica process each 2 s. Reported per replica: RSS after warm-up, at the end, the largest, growth
in per cent, and whether its process changed (a restart). Writes docs/creep.json and docs/creep.png and
the section of docs/benchmarks.md. Never run as a test.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import yaml

from benchmarks._harness import (
    ROOT,
    bench_parser,
    http_embed_load,
    machine,
    pyplot,
    save_figure,
    sentences,
    start_service,
    write_section,
)

MIB = 2**20
DPI = 72
SEED = 424_242


def replica_processes() -> dict[int, str]:
    """pid -> "Deployment" for every replica of the app (Ray titles its worker processes)."""
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if title.startswith("ray::ServeReplica:serve_app:"):
            # "ray::ServeReplica:serve_app:Embedder" (Ray may append the running method after a dot)
            found[proc.info["pid"]] = title.split()[0].rsplit(":", 1)[1].split(".")[0]
        elif title.startswith("ray::WeightsHolder"):
            found[proc.info["pid"]] = "WeightsHolder"
    return found


class Sampler(threading.Thread):
    """Reads the RSS of every replica process every ``period`` seconds."""

    def __init__(self, period: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.period = period
        self.samples: list[tuple[float, int, str, int]] = []  # (t, pid, deployment, rss)
        self.started = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            now = time.monotonic() - self.started
            for pid, name in replica_processes().items():
                try:
                    self.samples.append((now, pid, name, psutil.Process(pid).memory_info().rss))
                except psutil.NoSuchProcess:
                    continue
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def config(directory: Path) -> Path:
    from tools.launch import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for dep in raw["applications"][0]["deployments"]:
        if dep["name"] in ("Embedder", "Detector"):
            dep.pop("autoscaling_config", None)
            dep["num_replicas"] = 1 if dep["name"] == "Embedder" else 2
    path = directory / "serve-creep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def embed_load(url: str, texts: list[str], *, requests: int, clients: int) -> tuple[int, int]:
    """Send ``requests`` embed requests (request i: 1 + i % 8 sentences) from ``clients`` concurrent
    clients, each taking the next request as soon as it is free; return (ok, failed)."""
    counter = iter(range(requests))  # shared: the clients together send each request once

    def batches(_: int) -> Iterator[list[str]]:
        for i in counter:
            yield [texts[(i * 7 + k) % len(texts)] for k in range(1 + i % 8)]

    load = await http_embed_load(url, batches, clients=clients, timeout=120, count_errors=True)
    return load.requests, load.errors


async def embed_longest(url: str, texts: list[str], *, rounds: int = 5) -> None:
    """Warm-up for the largest shapes the load can produce: 8 concurrent requests of the 8 longest texts
    (the Embedder merges them into one batch of 64 of the longest sentences)."""
    longest = sorted(texts, key=len)[-8:]
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for _ in range(rounds):
            responses = await asyncio.gather(
                *(client.post("/v1/embed", json={"sentences": longest}) for _ in range(8))
            )
            assert all(r.status_code == 200 for r in responses)


def run_jobs(url: str, pdf: bytes, *, jobs: int, dpi: int = DPI) -> int:
    """Submit ``jobs`` copies of ``pdf`` two at a time (the runner's max_running_jobs); return pages done."""
    pages = 0
    with httpx.Client(base_url=url, timeout=120) as http:
        waiting = list(range(jobs))
        running: list[str] = []
        while waiting or running:
            while waiting and len(running) < 2:
                waiting.pop()
                response = http.post(
                    f"/v1/jobs?dpi={dpi}", content=pdf, headers={"content-type": "application/pdf"}
                )
                response.raise_for_status()
                running.append(response.json()["id"])
            time.sleep(1.0)
            for job_id in list(running):
                state = http.get(f"/v1/jobs/{job_id}").json()
                if state["status"] == "failed":
                    raise RuntimeError(f"job {job_id} failed: {state['error']}")
                if state["status"] == "succeeded":
                    pages += state["pages_done"]
                    running.remove(job_id)
    return pages


def summarise(samples: list[tuple[float, int, str, int]], load_start: float) -> list[dict[str, object]]:
    rows = []
    for pid in sorted({s[1] for s in samples}):
        mine = [s for s in samples if s[1] == pid]
        after_warm = [s for s in mine if s[0] >= load_start]
        if not after_warm:
            continue
        base = after_warm[0][3]
        end = after_warm[-1][3]
        rows.append(
            {
                "deployment": mine[0][2],
                "pid": pid,
                "rss_after_warm_up_mib": round(base / MIB, 1),
                "rss_end_mib": round(end / MIB, 1),
                "rss_max_mib": round(max(s[3] for s in after_warm) / MIB, 1),
                "growth_pct": round(100 * (end - base) / base, 2),
                "max_growth_pct": round(100 * (max(s[3] for s in after_warm) - base) / base, 2),
                "seen_from_s": round(mine[0][0], 1),
                "seen_until_s": round(mine[-1][0], 1),
            }
        )
    return rows


def plot(samples: list[tuple[float, int, str, int]], load_start: float, load_end: float, path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(9, 4.5))
    for pid in sorted({s[1] for s in samples}):
        mine = [s for s in samples if s[1] == pid]
        ax.plot([s[0] for s in mine], [s[3] / MIB for s in mine], label=f"{mine[0][2]} (pid {pid})")
    ax.axvspan(load_start, load_end, color="grey", alpha=0.1, label="measured load")
    ax.set_xlabel("seconds since the service was up")
    ax.set_ylabel("RSS MiB")
    ax.set_title("RSS of every serve_app process: 20,000 embed requests + 2,000 pages")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    save_figure(fig, path)


def main() -> None:
    args = bench_parser("RSS over a long mixed load: no creep, no restarts").parse_args()
    requests, jobs, job_pages = (1_000, 2, 20) if args.quick else (20_000, 20, 100)

    from serve_app.training.synth import generate_document

    texts = sentences()
    pdf = generate_document(seed=SEED, num_pages=job_pages, dpi=DPI).pdf
    warm_pdf = generate_document(seed=SEED + 1, num_pages=20, dpi=DPI).pdf
    with tempfile.TemporaryDirectory() as tmp:
        url = start_service(
            config(Path(tmp)), env_vars={"SERVE_APP_STORE_URL": (Path(tmp) / "store").as_uri()}
        )
        sampler = Sampler()
        sampler.start()
        asyncio.run(embed_load(url, texts, requests=1_000, clients=8))
        asyncio.run(embed_longest(url, texts))
        run_jobs(url, warm_pdf, jobs=1)
        time.sleep(4)
        load_start = time.monotonic() - sampler.started
        pids_before = replica_processes()
        began = time.perf_counter()
        embed_result: list[tuple[int, int]] = []
        embedder = threading.Thread(
            target=lambda: embed_result.append(
                asyncio.run(embed_load(url, texts, requests=requests, clients=8))
            )
        )
        embedder.start()
        pages = run_jobs(url, pdf, jobs=jobs)
        embed_seconds = time.perf_counter() - began
        embedder.join()
        elapsed = time.perf_counter() - began
        time.sleep(4)
        load_end = time.monotonic() - sampler.started
        pids_after = replica_processes()
        sampler.stop()

        from ray import serve

        serve.shutdown()

    ok, failed = embed_result[0]
    rows = summarise(sampler.samples, load_start)
    restarted = sorted(set(pids_before) - set(pids_after))
    worst = max((r for r in rows if r["deployment"] != "WeightsHolder"), key=lambda r: r["growth_pct"])
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "embed_requests_ok": ok,
        "embed_requests_failed": failed,
        "pages": pages,
        "load_seconds": round(elapsed, 1),
        "jobs_seconds": round(embed_seconds, 1),
        "replica_processes_gone": restarted,
        "new_processes": sorted(set(pids_after) - set(pids_before)),
        "rows": rows,
    }
    print(json.dumps(result, indent=1))
    if args.quick:
        return
    (ROOT / "docs" / "creep.json").write_text(json.dumps({**result, "samples": sampler.samples}))
    plot(sampler.samples, load_start, load_end, ROOT / "docs" / "creep.png")
    table = [
        "| process | pid | RSS after warm-up MiB | RSS at end MiB | max MiB | growth % | max growth % |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r['deployment']} | {r['pid']} | {r['rss_after_warm_up_mib']} | {r['rss_end_mib']} | "
            f"{r['rss_max_mib']} | {r['growth_pct']} | {r['max_growth_pct']} |"
            for r in rows
        ],
    ]
    section = "\n".join(
        [
            "## Memory creep over a long run",
            "",
            f"Command: `make bench-creep` (`python -m benchmarks.creep`). Machine: {machine()}. "
            f"Run on {result['date']}.",
            "configs/serve.yaml, Embedder pinned at 1 replica and Detector at 2, shared weights on. "
            "After a warm-up (1,000 embed requests, batches of the longest sentences, one 20-page job), "
            "8 clients sent "
            f"{ok:,} `/v1/embed` requests (1 to 8 sentences; {failed} failed) while {jobs} jobs of "
            f"{job_pages} pages ran ({pages:,} pages detected) in {elapsed:.0f} s. RSS sampled every 2 s: "
            "[creep.png](creep.png), [creep.json](creep.json).",
            "",
            *table,
            "",
            f"Largest growth of a replica: {worst['deployment']} {worst['growth_pct']}% "
            f"(target: at most 5%). Replica processes that went away during the run (restarts): "
            f"{len(restarted)}.",
            "",
        ]
    )
    write_section(args.out, "## Memory creep", section)
    print(section)


if __name__ == "__main__":
    main()
