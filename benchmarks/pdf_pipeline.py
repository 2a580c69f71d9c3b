"""PDF pipeline: pages per second through /v1/jobs vs the direct in-process loop, and responsiveness.

    python -m benchmarks.pdf_pipeline           # or: make bench-pdf
    python -m benchmarks.pdf_pipeline --quick   # small documents, one repeat (smoke check)

(a) Direct: in this process, page after page: render with pymupdf, predict with the shipped layout
    model, attach the text layer's words (exactly the per-page work of the service), with 1 torch thread
    (what one Detector replica runs) and with every core.
(b) Service: configs/serve.yaml on a local Ray (free port, jobs in a temporary local store) with the
    Detector pinned to 1 and to 2 replicas; a generated PDF goes to POST /v1/jobs and the clock stops
    when GET /v1/jobs/{id} says succeeded. The service does more per page than (a): it also draws the
    annotated page and writes the page JSON, PNG and job state to the store.
(c) Responsiveness: p50/p99 latency of GET /healthz and POST /v1/cluster (nine sentences), one request
    at a time, on the idle service and while a long job runs, as shipped and with one Detector replica.
Each throughput setting is repeated and the median reported. Writes a section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from benchmarks._harness import (
    bench_parser,
    machine,
    percentiles_ms,
    start_service,
    stop_service,
    write_section,
)

DPI = 72
SEED = 2_026_112  # not a training or evaluation seed
NINE_TITLES = [
    "A man is walking his dog.",
    "A woman takes her dog for a walk in the park.",
    "Dog walking tips for busy owners",
    "The best leashes for walking large dogs",
    "How often should you walk your puppy?",
    "How to overcome the fear of public speaking",
    "Ten tips for giving a great presentation",
    "Public speaking skills for beginners",
    "How to calm your nerves before a speech",
]


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    count: int


def latency(samples: list[float]) -> Latency:
    return Latency(*percentiles_ms(samples), len(samples))


def direct_pages_per_s(pdf: bytes, pages: int, *, threads: int) -> float:
    from serve_app.core.analysis import page_result
    from serve_app.core.layout import to_regions
    from serve_app.core.pdf import PageInfo, render_page_at
    from serve_app.models.layout import LayoutPredictor

    predictor = LayoutPredictor(None, num_threads=threads)
    predictor.predict(render_page_at(pdf, 0, dpi=DPI)[0])  # warm-up
    start = time.perf_counter()
    for index in range(pages):
        image, content = render_page_at(pdf, index, dpi=DPI)
        boxes, scores, classes = predictor.predict(image)
        regions = to_regions(boxes, scores, classes, image_size=image.shape[:2], points_per_pixel=72 / DPI)
        info = PageInfo(index + 1, image.shape[1] * 72 / DPI, image.shape[0] * 72 / DPI)
        page_result(
            info,
            regions,
            content.words,
            graphics=content.graphics,
            tables=content.tables,
            points_per_pixel=72 / DPI,
        )
    return pages / (time.perf_counter() - start)


def service_config(directory: Path, *, detector_replicas: int | None) -> Path:
    """configs/serve.yaml, with the Detector pinned to ``detector_replicas`` (None: as shipped)."""
    from tools.launch import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    if detector_replicas is not None:
        for dep in raw["applications"][0]["deployments"]:
            if dep["name"] == "Detector":
                dep.pop("autoscaling_config", None)
                dep["num_replicas"] = detector_replicas
    path = directory / f"serve-detector-{detector_replicas}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def start_pipeline_service(directory: Path, *, detector_replicas: int | None) -> str:
    """``service_config`` deployed, its jobs stored in ``directory``/store."""
    config = service_config(directory, detector_replicas=detector_replicas)
    return start_service(config, env_vars={"SERVE_APP_STORE_URL": (directory / "store").as_uri()})


def submit(http: httpx.Client, pdf: bytes) -> str:
    response = http.post(f"/v1/jobs?dpi={DPI}", content=pdf, headers={"content-type": "application/pdf"})
    response.raise_for_status()
    job_id: str = response.json()["id"]
    return job_id


def job_finished(http: httpx.Client, job_id: str) -> bool:
    state = http.get(f"/v1/jobs/{job_id}").json()
    if state["status"] == "failed":
        raise RuntimeError(f"job failed: {state['error']}")
    return bool(state["status"] == "succeeded")


def job_pages_per_s(http: httpx.Client, pdf: bytes, pages: int) -> float:
    start = time.perf_counter()
    job_id = submit(http, pdf)
    while not job_finished(http, job_id):
        time.sleep(0.1)
    return pages / (time.perf_counter() - start)


def probe(http: httpx.Client, samples: dict[str, list[float]]) -> None:
    t0 = time.perf_counter()
    http.get("/healthz").raise_for_status()
    t1 = time.perf_counter()
    http.post("/v1/cluster", json={"sentences": NINE_TITLES}).raise_for_status()
    t2 = time.perf_counter()
    samples["healthz"].append(t1 - t0)
    samples["cluster"].append(t2 - t1)


def responsiveness(http: httpx.Client, pdf: bytes, *, idle_probes: int) -> dict[str, tuple[Latency, Latency]]:
    idle: dict[str, list[float]] = {"healthz": [], "cluster": []}
    for _ in range(idle_probes):
        probe(http, idle)
    busy: dict[str, list[float]] = {"healthz": [], "cluster": []}
    job_id = submit(http, pdf)
    while not job_finished(http, job_id):
        probe(http, busy)
        time.sleep(0.05)
    return {name: (latency(idle[name]), latency(busy[name])) for name in idle}


def run_throughput(pdf: bytes, warm_up: bytes, *, pages: int, repeats: int) -> str:
    cores = os.cpu_count() or 1
    direct: dict[int, list[float]] = {}
    for threads in sorted({1, cores}):
        direct[threads] = [direct_pages_per_s(pdf, pages, threads=threads) for _ in range(repeats)]
        print(f"direct threads={threads}: {[f'{r:.2f}' for r in direct[threads]]} pages/s", flush=True)

    service: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for replicas in (1, 2):
            url = start_pipeline_service(Path(tmp), detector_replicas=replicas)
            with httpx.Client(base_url=url, timeout=120) as http:
                job_pages_per_s(http, warm_up, 4)
                service[replicas] = [job_pages_per_s(http, pdf, pages) for _ in range(repeats)]
                runs = [f"{r:.2f}" for r in service[replicas]]
                print(f"service detector={replicas}: {runs} pages/s", flush=True)
            stop_service()

    one_thread = statistics.median(direct[1])
    best_direct = max(statistics.median(r) for r in direct.values())
    return "\n".join(
        [
            "## PDF pipeline throughput",
            "",
            "Command: `make bench-pdf` (`python -m benchmarks.pdf_pipeline`; this part alone: "
            f"`--part throughput`). Machine: {machine()}.",
            f"Run on {time.strftime('%Y-%m-%d')}. Generated documents (serve_app.training.synth, "
            f"seed {SEED}) rendered at {DPI} dpi; median of {repeats} runs over a {pages}-page PDF.",
            "The service's per-page work includes drawing the annotated page and writing page JSON, PNG and "
            "job state to the store (a local directory here); the direct loop renders, predicts, reads the "
            "text and arranges the regions. Each Detector replica runs one torch thread.",
            "",
            "(a) Direct in-process loop and (b) `POST /v1/jobs` end to end (submit to `succeeded`):",
            "",
            "| setting | pages/s (median) | runs | vs direct, 1 thread | vs direct, best |",
            "|---|---:|---|---:|---:|",
            *[
                f"| direct, {t} torch thread{'s' if t > 1 else ''} | {statistics.median(r):.2f} | "
                f"{', '.join(f'{x:.2f}' for x in r)} | {statistics.median(r) / one_thread:.2f} | "
                f"{statistics.median(r) / best_direct:.2f} |"
                for t, r in direct.items()
            ],
            *[
                f"| service, {n} Detector replica{'s' if n > 1 else ''} | "
                f"{statistics.median(r):.2f} | {', '.join(f'{x:.2f}' for x in r)} | "
                f"{statistics.median(r) / one_thread:.2f} | {statistics.median(r) / best_direct:.2f} |"
                for n, r in service.items()
            ],
            "",
        ]
    )


RESPONSIVENESS_VARIANTS = {
    "shipped": ("configs/serve.yaml as shipped (Detector autoscaling 1-2, target 8 queued pages)", None),
    "two-detectors": ("Detector pinned to 2 replicas (both cores detect)", 2),
}


def run_responsiveness(long_pdf: bytes, *, job_pages: int, idle_probes: int) -> str:

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, replicas) in RESPONSIVENESS_VARIANTS.items():
            url = start_pipeline_service(Path(tmp), detector_replicas=replicas)
            with httpx.Client(base_url=url, timeout=120) as http:
                probe(http, {"healthz": [], "cluster": []})  # warm-up
                for request, (idle, busy) in responsiveness(http, long_pdf, idle_probes=idle_probes).items():
                    print(f"{name} {request}: idle p99 {idle.p99_ms:.1f} ms, busy p99 {busy.p99_ms:.1f} ms")
                    label = "GET /healthz" if request == "healthz" else "POST /v1/cluster (9 sentences)"
                    rows.append(
                        f"| {name} | {label} | {idle.p50_ms:.1f} | {idle.p99_ms:.1f} | {busy.p50_ms:.1f} | "
                        f"{busy.p99_ms:.1f} | {busy.p99_ms / idle.p99_ms:.2f} | "
                        f"{idle.count} idle, {busy.count} busy |"
                    )
            stop_service()
    return "\n".join(
        [
            "## PDF pipeline responsiveness",
            "",
            "Command: `make bench-pdf` (this part alone: `python -m benchmarks.pdf_pipeline --part "
            f"responsiveness`). Machine: {machine()}. Run on {time.strftime('%Y-%m-%d')}.",
            f"One request at a time, {idle_probes} on the idle service, then for as long as a "
            f"{job_pages}-page job runs ({DPI} dpi). Variants: "
            + "; ".join(f"*{k}*: {v[0]}" for k, v in RESPONSIVENESS_VARIANTS.items())
            + ". Detector replicas and the page render/annotate tasks run at nice +5.",
            "",
            "| variant | request | idle p50 ms | idle p99 ms | during job p50 ms | during job p99 ms | "
            "p99 ratio | samples |",
            "|---|---|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = bench_parser(
        "PDF pipeline throughput and responsiveness",
        quick_help="small documents, one repeat, nothing written",
    )
    parser.add_argument("--pages", type=int, default=100, help="pages of the throughput document")
    parser.add_argument("--job-pages", type=int, default=200, help="pages of the long job in (c)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=["all", "throughput", "responsiveness"], default="all")
    args = parser.parse_args()
    pages, job_pages, repeats = (8, 16, 1) if args.quick else (args.pages, args.job_pages, args.repeats)

    from serve_app.training.synth import generate_document

    if args.part in ("all", "throughput"):
        pdf = generate_document(seed=SEED, num_pages=pages, dpi=DPI).pdf
        warm_up = generate_document(seed=SEED + 2, num_pages=4, dpi=DPI).pdf
        report = run_throughput(pdf, warm_up, pages=pages, repeats=repeats)
        print(report, flush=True)
        if not args.quick:
            write_section(args.out, "## PDF pipeline throughput", report)
    if args.part in ("all", "responsiveness"):
        long_pdf = generate_document(seed=SEED + 1, num_pages=job_pages, dpi=DPI).pdf
        report = run_responsiveness(long_pdf, job_pages=job_pages, idle_probes=50 if args.quick else 200)
        print(report, flush=True)
        if not args.quick:
            write_section(args.out, "## PDF pipeline responsiveness", report)


if __name__ == "__main__":
    main()
