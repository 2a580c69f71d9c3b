"""Memory per replica with shared weights on and off: RSS, USS and PSS of every serving process.

    python -m benchmarks.memory            # or: make bench-memory
    python -m benchmarks.memory --quick    # Embedder 1 and 2 replicas only (smoke check)

For each model (Embedder at 1, 2 and 4 replicas; Detector at 1 and 2) and each setting of
``share_weights``, a single-deployment app (``serve_app.app:build_embedder`` / ``build_detector``) is
deployed on a fresh local Ray, every replica is warmed up with real requests, and psutil's
``memory_full_info`` is read for each replica process and for the weights holder (the actor that owns
the node's object store copy). Between settings the app and its holders are removed.

USS (memory only this process uses) is what an extra replica really costs; PSS splits shared pages
between the processes that map them, so summing PSS over all processes gives the total. The marginal
per-replica USS with sharing on and off is compared at N >= 2. Writes docs/memory.json and a plot
docs/memory.png; prints the Markdown table for docs/benchmarks.md. Never run as a test.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks._harness import ROOT, bench_parser, machine, pyplot, save_figure, sentences, write_section

MIB = 2**20
PLAN = {"Embedder": [1, 2, 4], "Detector": [1, 2]}
QUICK_PLAN = {"Embedder": [1, 2]}


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "replica" or "holder"
    rss: int
    uss: int
    pss: int


@dataclass(frozen=True)
class Measurement:
    model: str
    replicas: int
    shared: bool
    processes: list[ProcessMemory]
    load_seconds: list[float]
    weight_bytes: int

    def total(self, field: str) -> int:
        return sum(getattr(p, field) for p in self.processes)

    def replica_values(self, field: str) -> list[int]:
        return [getattr(p, field) for p in self.processes if p.role == "replica"]


def processes(app: str, deployment: str) -> dict[int, str]:
    """pid -> role of the app's replica processes and every weights holder (Ray names its workers)."""
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if title.startswith(f"ray::ServeReplica:{app}:{deployment}"):
            found[proc.info["pid"]] = "replica"
        elif title.startswith("ray::WeightsHolder"):
            found[proc.info["pid"]] = "holder"
    return found


def memory_of(pid: int, role: str) -> ProcessMemory:
    info = psutil.Process(pid).memory_full_info()
    return ProcessMemory(pid=pid, role=role, rss=info.rss, uss=info.uss, pss=info.pss)


def deploy_model(model: str, replicas: int, shared: bool) -> None:
    from ray import serve

    from serve_app.deployments.detector import Detector
    from serve_app.deployments.embedder import Embedder

    deployment: Any = Embedder if model == "Embedder" else Detector
    # A small CPU share each, so 4 replicas fit on 2 cores; torch uses 1 thread per replica.
    options = deployment.options(num_replicas=replicas, ray_actor_options={"num_cpus": 0.1})
    serve.run(options.bind(share_weights=shared), name="memory", route_prefix=None)


def warm_up(model: str, replicas: int) -> list[dict[str, Any]]:
    """Send every replica real work (concurrent requests spread over replicas); return ready() infos."""
    import ray
    from ray import serve

    handle = serve.get_deployment_handle(model, app_name="memory")
    if model == "Embedder":
        texts = sentences()
        batches = [[texts[(i * 16 + k) % len(texts)] for k in range(16)] for i in range(24 * replicas)]
        calls = [handle.embed.remote(batch) for batch in batches]
    else:
        from serve_app.core.pdf import render_pdf
        from serve_app.training.synth import generate_document
        from serve_app.types import PageImage

        images = render_pdf(generate_document(seed=77, num_pages=2, dpi=72).pdf, dpi=72)
        pages = [PageImage(image=ray.put(image)) for image in images]
        calls = [handle.detect.remote(pages[i % len(pages)]) for i in range(4 * replicas)]
    for call in calls:
        call.result(timeout_s=300)
    infos: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(infos) < replicas and time.monotonic() < deadline:
        info = handle.ready.remote().result()
        infos[info["pid"]] = info
    return list(infos.values())


def remove_app_and_holders() -> None:
    import ray
    from ray import serve

    from serve_app.runtime.shared_weights import NAMESPACE

    serve.delete("memory")
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == NAMESPACE:
            ray.kill(ray.get_actor(actor["name"], namespace=NAMESPACE))
    time.sleep(3)


def measure(model: str, replicas: int, shared: bool) -> Measurement:
    deploy_model(model, replicas, shared)
    infos = warm_up(model, replicas)
    time.sleep(2)
    found = processes("memory", model)
    mem = [memory_of(pid, role) for pid, role in sorted(found.items())]
    weight_bytes = max((i["shared_weights"] or {}).get("bytes", 0) for i in infos)
    result = Measurement(
        model=model,
        replicas=replicas,
        shared=shared,
        processes=mem,
        load_seconds=sorted(i["load_seconds"] for i in infos),
        weight_bytes=weight_bytes,
    )
    remove_app_and_holders()
    return result


def weight_size(model: str) -> int:
    """Bytes of parameters and buffers of the model, as loaded in this process."""
    from serve_app.models.embedding import load_sentence_model
    from serve_app.models.layout import LayoutPredictor
    from serve_app.models.weights import arrays_nbytes, module_arrays

    module = load_sentence_model() if model == "Embedder" else LayoutPredictor().model
    return arrays_nbytes(module_arrays(module))


def report(results: list[Measurement], sizes: dict[str, int]) -> str:
    lines = [
        "| model | replicas | sharing | replica USS MiB (median) | replica RSS MiB (median) | "
        "holder USS MiB | total USS MiB | total PSS MiB | load s (median) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        holder = sum(p.uss for p in r.processes if p.role == "holder")
        lines.append(
            f"| {r.model} | {r.replicas} | {'on' if r.shared else 'off'} | "
            f"{statistics.median(r.replica_values('uss')) / MIB:.0f} | "
            f"{statistics.median(r.replica_values('rss')) / MIB:.0f} | {holder / MIB:.0f} | "
            f"{r.total('uss') / MIB:.0f} | {r.total('pss') / MIB:.0f} | "
            f"{statistics.median(r.load_seconds):.1f} |"
        )
    lines += [
        "",
        "What sharing changes per replica, with N replicas on the node (replica USS: median over the N "
        "replicas; with one replica every library page is unique to it, so N >= 2 is the fair view). Total "
        "PSS includes the holder process (a Ray worker of about 50 MiB plus the weights):",
        "",
        "| model | weights MiB | N | replica USS off | replica USS on | saved per replica | "
        "saved / weights | total PSS off | total PSS on |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, size in sizes.items():
        by_key = {(r.replicas, r.shared): r for r in results if r.model == model}
        for n in sorted({r.replicas for r in results if r.model == model and r.replicas > 1}):
            if (n, False) not in by_key or (n, True) not in by_key:
                continue
            off, on = by_key[(n, False)], by_key[(n, True)]
            uss_off = statistics.median(off.replica_values("uss"))
            uss_on = statistics.median(on.replica_values("uss"))
            lines.append(
                f"| {model} | {size / MIB:.0f} | {n} | {uss_off / MIB:.0f} | {uss_on / MIB:.0f} | "
                f"{(uss_off - uss_on) / MIB:.0f} | {(uss_off - uss_on) / size:.2f} | "
                f"{off.total('pss') / MIB:.0f} | {on.total('pss') / MIB:.0f} |"
            )
    return "\n".join(lines)


def plot(results: list[Measurement], path: Path) -> None:
    models = sorted({r.model for r in results}, reverse=True)
    fig, axes = pyplot().subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for shared, style in ((False, "o--"), (True, "s-")):
            rows = sorted(
                (r for r in results if r.model == model and r.shared == shared), key=lambda r: r.replicas
            )
            if not rows:
                continue
            xs = [r.replicas for r in rows]
            label = "sharing on" if shared else "sharing off"
            ax.plot(xs, [r.total("pss") / MIB for r in rows], style, label=f"{label}: total PSS")
            ax.plot(xs, [r.total("uss") / MIB for r in rows], style, alpha=0.5, label=f"{label}: total USS")
        ax.set_title(f"{model}: memory of all replicas + holder")
        ax.set_xlabel("replicas")
        ax.set_ylabel("MiB")
        ax.set_xticks(sorted({r.replicas for r in results if r.model == model}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    parser = bench_parser("Replica memory with shared weights on and off")
    parser.add_argument("--render", action="store_true", help="rewrite the tables from docs/memory.json")
    args = parser.parse_args()
    plan = QUICK_PLAN if args.quick else PLAN
    if args.render:
        saved = json.loads((ROOT / "docs" / "memory.json").read_text())
        loaded = [
            Measurement(**{**r, "processes": [ProcessMemory(**p) for p in r["processes"]]})
            for r in saved["results"]
        ]
        write_report(args.out, loaded, saved["sizes"], saved["machine"], saved.get("date", "see memory.json"))
        return

    import ray

    ray.init(namespace="serve", include_dashboard=False, log_to_driver=False)
    results: list[Measurement] = []
    for model, counts in plan.items():
        for shared in (False, True):
            for replicas in counts:
                began = time.perf_counter()
                result = measure(model, replicas, shared)
                results.append(result)
                print(
                    f"{model} x{replicas} sharing={'on' if shared else 'off'}: replica USS MiB "
                    f"{[round(u / MIB) for u in result.replica_values('uss')]}, total PSS "
                    f"{result.total('pss') / MIB:.0f} MiB, load s {result.load_seconds} "
                    f"({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
    ray.shutdown()
    sizes = {model: weight_size(model) for model in plan}
    print(report(results, sizes))
    if args.quick:
        return
    date = time.strftime("%Y-%m-%d")
    (ROOT / "docs" / "memory.json").write_text(
        json.dumps(
            {"machine": machine(), "date": date, "sizes": sizes, "results": [asdict(r) for r in results]},
            indent=1,
        )
    )
    write_report(args.out, results, sizes, machine(), date)


def write_report(out: Path, results: list[Measurement], sizes: dict[str, int], host: str, date: str) -> None:
    plot(results, ROOT / "docs" / "memory.png")
    section = "\n".join(
        [
            "## Memory per replica: shared weights on and off",
            "",
            f"Command: `make bench-memory` (`python -m benchmarks.memory`). Machine: {host}. Run on {date}.",
            "Each row: a single-deployment app with N replicas (0.1 CPU, 1 torch thread each) on a fresh "
            "deployment, every replica warmed up with real requests, then psutil `memory_full_info` of each "
            "replica process and of the weights holder. Totals add every replica and the holder. "
            "Plot: [memory.png](memory.png); raw numbers: [memory.json](memory.json).",
            "",
            report(results, sizes),
            "",
        ]
    )
    write_section(out, "## Memory per replica", section)


if __name__ == "__main__":
    main()
