"""Several detectron2 models in one Detector replica: memory, and first-request latency cold vs warm.

    python -m benchmarks.model_switch        # or: make bench-models

A Detector (one replica, one torch thread, shared weights on) serves three models by name, as
``configs/serve.yaml`` would list them: the shipped ``layout`` model (default, loaded at start), and two
user models in a real S3-compatible server (moto, over HTTP) that the replica fetched into its node cache
at start: ``invoices`` (the shipped architecture with two classes of its own, saved by
``DetectionCheckpointer`` in fp32) and ``forms`` (the same backbone as a Mask R-CNN). Weights are random:
speed and memory do not depend on them.

Measured on one 72-dpi page through a handle (the ingress adds the same few ms to every case), against
the direct in-process call of the same model (the limit):

- warm: the model is loaded in the replica (median of 7 requests);
- cold, first load: the first request for a model, which builds it, reads its checkpoint from the node
  cache and publishes its weights to the node's shared copy;
- cold, reload: the first request after the multiplexer unloaded the model (``max_models_per_replica``
  is 2 here), which binds the node's shared copy instead of reading the checkpoint.

Replica USS (memory only it uses) and PSS are read with psutil after each step. Writes the section
"Several models in one Detector" of docs/benchmarks.md. Never run as a test.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import psutil

from benchmarks._harness import BENCHMARKS_MD, bench_parser, machine, write_section

MIB = 2**20
HEADING = "## Several models in one Detector"
APP = "model_switch"
REPEATS = 7


def make_user_models(root: Path) -> dict[str, Path]:
    """Two user models on the shipped model's architecture, saved as detectron2 saves them."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from serve_app.models.layout import load_cfg
    from serve_app.models.source import SHIPPED_DIR

    made = {}
    for name, masks in (("invoices", False), ("forms", True)):
        cfg = load_cfg(SHIPPED_DIR)
        cfg.defrost()
        cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
        cfg.MODEL.MASK_ON = masks
        torch.manual_seed(0)
        directory = root / name
        directory.mkdir(parents=True)
        DetectionCheckpointer(build_model(cfg), save_dir=str(directory)).save("model_final")
        (directory / "config.yaml").write_text(cfg.dump())
        (directory / "labels.json").write_text(json.dumps(["header", "total"]))
        made[name] = directory
    return made


def replica_memory() -> dict[str, float]:
    for proc in psutil.process_iter(["cmdline"]):
        if " ".join(proc.info["cmdline"] or []).startswith(f"ray::ServeReplica:{APP}:Detector"):
            info = proc.memory_full_info()
            return {"uss_mib": info.uss / MIB, "pss_mib": info.pss / MIB, "rss_mib": info.rss / MIB}
    raise RuntimeError("Detector replica process not found")


def main() -> None:
    bench_parser(__doc__).parse_args()
    import ray
    from ray import serve

    from serve_app.core.pdf import render_pdf
    from serve_app.deployments.detector import Detector
    from serve_app.models.layout import LayoutPredictor
    from serve_app.models.source import MODEL_CACHE_ENV
    from serve_app.training.synth import generate_document
    from serve_app.types import PageImage
    from tests.d2_models import upload
    from tests.s3_server import make_bucket, moto_s3_server, s3_client, s3_env

    page = render_pdf(generate_document(seed=77, num_pages=1, dpi=72).pdf, dpi=72)[0]
    work = Path(tempfile.mkdtemp(prefix="bench_models_"))
    local = make_user_models(work / "models")

    # The limit: the direct in-process call, one thread, same page.
    direct = {}
    for name, directory in {"layout": None, **local}.items():
        predictor = LayoutPredictor(directory, num_threads=1)
        predictor.detect(page)
        times = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            predictor.detect(page)
            times.append(time.perf_counter() - began)
        direct[name] = statistics.median(times)
        del predictor

    rows: list[dict[str, Any]] = []
    with moto_s3_server() as endpoint:
        make_bucket(endpoint, "models")
        client = s3_client(endpoint)
        uris = {name: upload(client, "models", name, directory) for name, directory in local.items()}
        env = s3_env(endpoint) | {MODEL_CACHE_ENV: str(work / "cache"), "HF_HUB_OFFLINE": "1"}
        ray.init(namespace="serve", include_dashboard=False, log_to_driver=False)
        try:
            began = time.perf_counter()
            deployment = cast(Any, Detector).options(
                num_replicas=1,
                ray_actor_options={"num_cpus": 1, "runtime_env": {"env_vars": env}},
                user_config={
                    "models": {"layout": "shipped", **uris},
                    "default_model": "layout",
                    "max_models_per_replica": 2,
                },
            )
            serve.run(deployment.bind(), name=APP, route_prefix=None)
            start_s = time.perf_counter() - began
            handle = serve.get_deployment_handle("Detector", app_name=APP)
            image = PageImage(image=ray.put(page))

            def request(name: str) -> float:
                version = handle.resolve.remote(name).result()
                routed = handle.options(multiplexed_model_id=version.model_id)
                t0 = time.perf_counter()
                routed.detect.remote(image, model=version).result(timeout_s=300)
                return time.perf_counter() - t0

            def step(what: str, name: str, seconds: float) -> None:
                memory = replica_memory()
                rows.append({"step": what, "model": name, "seconds": seconds, **memory})
                print(
                    f"{what:28} {name:9} {seconds * 1000:8.0f} ms  USS {memory['uss_mib']:.0f} MiB",
                    flush=True,
                )

            step("start (layout loaded)", "layout", 0.0)
            request("layout")
            step("warm", "layout", statistics.median(request("layout") for _ in range(REPEATS)))
            step("cold, first load", "invoices", request("invoices"))
            step("warm", "invoices", statistics.median(request("invoices") for _ in range(REPEATS)))
            step("cold, first load", "forms", request("forms"))  # unloads layout (LRU of 2)
            step("warm", "forms", statistics.median(request("forms") for _ in range(REPEATS)))
            step("cold, reload", "layout", request("layout"))  # unloads invoices
            step("warm", "layout", statistics.median(request("layout") for _ in range(REPEATS)))
            step("cold, reload", "invoices", request("invoices"))
            loaded = handle.ready.remote().result()["models_loaded"]
        finally:
            serve.shutdown()
            ray.shutdown()

    sizes = {n: sum(p.stat().st_size for p in d.glob("*.pth")) / MIB for n, d in local.items()}
    lines = [
        HEADING,
        "",
        f"`make bench-models` (benchmarks/model_switch.py), {machine()}.",
        "One Detector replica (1 torch thread, shared weights on, `max_models_per_replica: 2`) serving",
        "three models by name: the shipped `layout` (default, loaded at start), `invoices` (Faster R-CNN",
        f"R-18, checkpoint {sizes['invoices']:.0f} MB fp32) and `forms` (Mask R-CNN R-18,"
        f" {sizes['forms']:.0f} MB), both fetched from a moto S3 server into the node cache when the",
        f"replica started ({start_s:.1f} s from `serve.run` to ready, three models checked). One 72-dpi page",
        "per request through a handle; warm = median of 7; direct = the same model called in-process",
        "(median of 7), the limit. Memory: the replica process after each step (psutil).",
        "",
        "| step | model | latency | direct | direct / latency | replica USS | replica PSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows[1:]:
        limit = direct[row["model"]]
        lines.append(
            f"| {row['step']} | {row['model']} | {row['seconds'] * 1000:.0f} ms | {limit * 1000:.0f} ms"
            f" | {limit / row['seconds']:.2f} | {row['uss_mib']:.0f} MiB | {row['pss_mib']:.0f} MiB |"
        )
    first = rows[0]
    lines += [
        "",
        f"At start (layout only): replica USS {first['uss_mib']:.0f} MiB, PSS {first['pss_mib']:.0f} MiB."
        f" Loaded at the end: {', '.join(sorted(loaded))}. Replica USS after the first warm request"
        f" {rows[1]['uss_mib']:.0f} MiB, highest {max(r['uss_mib'] for r in rows):.0f} MiB, at the end"
        f" {rows[-1]['uss_mib']:.0f} MiB.",
        "A reload after an eviction binds the node's shared copy (its holder keeps it for",
        "`HOLDER_IDLE_EXIT_S` after the last replica used it), so it skips reading the checkpoint; a first",
        "load reads the checkpoint from the node cache and publishes the copy.",
    ]
    section = "\n".join(lines)
    print(section)
    write_section(BENCHMARKS_MD, HEADING, section)
    print(f"wrote {BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
