"""Serve replica autoscaling, shown on 127.0.0.1: bounded load in, replicas and latency over time out.

    python -m benchmarks.autoscaling          # or: make bench-autoscaling   (about 5 minutes)

configs/serve.yaml is deployed as shipped (its autoscaling_config for Embedder and Detector), except
that downscale_delay_s is shortened to 30 s so the scale-down fits the run. Phases: idle, then a fixed
time of load (embedding clients on /v1/embed, plus PDF jobs and synchronous /v1/detect calls that keep
Detector requests queued), then idle again until both deployments are back to one replica (bounded).
Every second the script records RUNNING replicas per deployment and the latency of finished requests.
Writes docs/autoscaling.png and the run's settings and summary to docs/autoscaling.json (which the
hand-written docs/autoscaling.md discusses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from benchmarks._harness import (
    ROOT,
    http_embed_load,
    machine,
    pyplot,
    save_figure,
    sentences,
    start_service,
    strided_batches,
)

DEPLOYMENTS = ("Embedder", "Detector")


@dataclass
class Timeline:
    t0: float = field(default_factory=time.perf_counter)
    replicas: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    embed: list[tuple[float, float]] = field(default_factory=list)  # (finished at, latency s)
    detect: list[tuple[float, float]] = field(default_factory=list)

    def now(self) -> float:
        return time.perf_counter() - self.t0


def demo_config(directory: Path, downscale_delay_s: float) -> tuple[Path, dict[str, dict[str, object]]]:
    from tools.launch import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    used: dict[str, dict[str, object]] = {}
    for dep in raw["applications"][0]["deployments"]:
        if dep["name"] in DEPLOYMENTS:
            dep["autoscaling_config"]["downscale_delay_s"] = downscale_delay_s
            used[dep["name"]] = dict(dep["autoscaling_config"]) | {
                "max_ongoing_requests": dep["max_ongoing_requests"],
                "num_cpus": dep["ray_actor_options"]["num_cpus"],
            }
    path = directory / "serve-autoscaling.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, used


def watch_replicas(timeline: Timeline, stop: threading.Event) -> None:
    from ray import serve

    while not stop.is_set():
        app = serve.status().applications.get("serve_app")
        counts = {}
        for name in DEPLOYMENTS:
            states = app.deployments[name].replica_states if app and name in app.deployments else {}
            counts[name] = int(states.get("RUNNING", 0))
        timeline.replicas.append((timeline.now(), counts))
        stop.wait(1.0)


async def embed_load(url: str, timeline: Timeline, *, clients: int, until: float) -> None:
    """``clients`` closed-loop clients, 4 of the first 300 sentences per request, until ``until``."""
    batches = strided_batches(sentences()[:300], 4, clients)
    load = await http_embed_load(url, batches, clients=clients, seconds=until - timeline.now())
    timeline.embed += [(finished - timeline.t0, latency) for finished, latency in load.samples]


async def detect_load(
    url: str, timeline: Timeline, *, pdf: bytes, job_pdf: bytes, clients: int, until: float
) -> None:
    headers = {"content-type": "application/pdf"}
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        for _ in range(2):  # two long jobs keep 2 x max_pages_in_flight pages queued at the Detector
            (await client.post("/v1/jobs", content=job_pdf, headers=headers)).raise_for_status()

        async def worker() -> None:
            while timeline.now() < until:
                began = time.perf_counter()
                (await client.post("/v1/detect", content=pdf, headers=headers)).raise_for_status()
                timeline.detect.append((timeline.now(), time.perf_counter() - began))

        await asyncio.gather(*(worker() for _ in range(clients)))


def plot(timeline: Timeline, path: Path, *, load: tuple[float, float]) -> None:
    fig, (top, bottom) = pyplot().subplots(2, 1, figsize=(9, 6), sharex=True)
    times = [t for t, _ in timeline.replicas]
    for name, style in zip(DEPLOYMENTS, ("-", "--"), strict=True):
        top.step(times, [c[name] for _, c in timeline.replicas], style, where="post", label=name)
    top.set_ylabel("RUNNING replicas")
    top.set_ylim(0, 3)
    top.legend(loc="upper right")
    for series, label in (
        (timeline.embed, "POST /v1/embed (4 sentences)"),
        (timeline.detect, "POST /v1/detect"),
    ):
        buckets: dict[int, list[float]] = {}
        for t, latency in series:
            buckets.setdefault(int(t // 5) * 5, []).append(latency * 1e3)
        xs = sorted(buckets)
        bottom.plot(
            xs, [statistics.median(buckets[x]) for x in xs], marker=".", label=f"{label}, p50 per 5 s"
        )
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds since start")
    bottom.legend(loc="upper right")
    for axis in (top, bottom):
        axis.axvspan(*load, color="orange", alpha=0.15)
    top.set_title("Serve autoscaling on 127.0.0.1 (load in the shaded window)")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve autoscaling demonstration")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds before the load")
    parser.add_argument("--load", type=float, default=90.0, help="seconds of load")
    parser.add_argument("--cooldown", type=float, default=150.0, help="at most this long after the load")
    parser.add_argument("--downscale-delay", type=float, default=30.0)
    parser.add_argument("--embed-clients", type=int, default=48)
    parser.add_argument("--detect-clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()

    import ray
    from ray import serve

    from serve_app.training.synth import generate_document

    pdf = generate_document(seed=99_001, num_pages=3, dpi=72).pdf
    job_pdf = generate_document(seed=99_002, num_pages=60, dpi=72).pdf
    with tempfile.TemporaryDirectory() as tmp:
        config, used = demo_config(Path(tmp), args.downscale_delay)
        url = start_service(config, env_vars={"SERVE_APP_STORE_URL": (Path(tmp) / "store").as_uri()})
        timeline = Timeline()
        stop = threading.Event()
        watcher = threading.Thread(target=watch_replicas, args=(timeline, stop), daemon=True)
        watcher.start()
        time.sleep(args.idle)
        load = (timeline.now(), timeline.now() + args.load)

        async def drive() -> None:
            await asyncio.gather(
                embed_load(url, timeline, clients=args.embed_clients, until=load[1]),
                detect_load(
                    url, timeline, pdf=pdf, job_pdf=job_pdf, clients=args.detect_clients, until=load[1]
                ),
            )

        asyncio.run(drive())
        deadline = timeline.now() + args.cooldown
        while timeline.now() < deadline:
            _, counts = timeline.replicas[-1]
            if all(counts[name] == 1 for name in DEPLOYMENTS) and timeline.now() > load[1] + 20:
                break
            time.sleep(1.0)
        time.sleep(5.0)
        stop.set()
        watcher.join()
        serve.shutdown()
        ray.shutdown()

    peak = {name: max(c[name] for _, c in timeline.replicas) for name in DEPLOYMENTS}
    first_up = {name: next((t for t, c in timeline.replicas if c[name] > 1), None) for name in DEPLOYMENTS}
    back_down = {
        name: next((t for t, c in timeline.replicas if t > load[1] and c[name] == 1), None)
        for name in DEPLOYMENTS
    }
    plot(timeline, args.out / "autoscaling.png", load=load)
    summary = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "load_window_s": [round(load[0], 1), round(load[1], 1)],
        "embed_clients": args.embed_clients,
        "detect_clients": args.detect_clients,
        "peak_replicas": peak,
        "first_scaled_up_at_s": {k: (round(v, 1) if v else None) for k, v in first_up.items()},
        "back_to_one_at_s": {k: (round(v, 1) if v else None) for k, v in back_down.items()},
        "embed_requests": len(timeline.embed),
        "detect_requests": len(timeline.detect),
        "autoscaling_config_used": used,
    }
    print(json.dumps(summary, indent=2))
    (args.out / "autoscaling.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
