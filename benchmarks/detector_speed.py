"""Detector speed: seconds per page for the shipped layout model vs detectron2's R50-FPN at 800 px.

    python -m benchmarks.detector_speed          # or: make bench-detector

Both models see the same pages (synthetic documents rendered by pymupdf at 72 dpi), in one process, with
the same number of torch threads; each resizes the page to its own test size (shipped: short side from its
config.yaml; R50-FPN: 800 px, detectron2's standard). R50-FPN has random weights (speed does not depend on
them; none can be downloaded here). Median over the pages after a warm-up. Writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._harness import BENCHMARKS_MD, ROOT, machine, write_section
from serve_app.core.pdf import render_pdf
from serve_app.models.layout import LayoutPredictor
from serve_app.training.synth import generate_document


def pages(count: int, dpi: int) -> list[np.ndarray]:
    images: list[np.ndarray] = []
    seed = 31_337
    while len(images) < count:
        document = generate_document(seed=seed, num_pages=min(4, count - len(images)), dpi=dpi)
        images += render_pdf(document.pdf, dpi=dpi)
        seed += 1
    return images


def r50_fpn_predictor(threads: int) -> LayoutPredictor:
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"))
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 5
    cfg.INPUT.MIN_SIZE_TEST = 800
    cfg.INPUT.MAX_SIZE_TEST = 1333
    cfg.INPUT.FORMAT = "RGB"
    return LayoutPredictor(cfg=cfg, num_threads=threads)


def seconds_per_page(predictor: LayoutPredictor, images: list[np.ndarray]) -> list[float]:
    predictor.predict(images[0])  # warm-up
    times = []
    for image in images:
        start = time.perf_counter()
        predictor.predict(image)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description="Detector seconds per page: shipped vs R50-FPN")
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "layout_detector")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    images = pages(args.pages, dpi=72)
    shipped = LayoutPredictor(args.model, num_threads=args.threads)
    shipped_size = int(shipped.cfg.INPUT.MIN_SIZE_TEST)
    results = {
        f"shipped R18-FPN ({shipped_size} px)": seconds_per_page(shipped, images),
        "detectron2 R50-FPN (800 px)": seconds_per_page(r50_fpn_predictor(args.threads), images),
    }
    medians = {name: statistics.median(times) for name, times in results.items()}
    base = medians["detectron2 R50-FPN (800 px)"]
    lines = [
        "## Detector speed",
        "",
        f"Command: `make bench-detector` (`python -m benchmarks.detector_speed`). Machine: {machine()}; "
        f"torch {torch.__version__}, {args.threads} torch threads, {platform.python_implementation()}.",
        f"Run on {time.strftime('%Y-%m-%d')}: {len(images)} synthetic pages rendered at 72 dpi "
        f"({images[0].shape[1]}x{images[0].shape[0]} px and similar), one at a time, median after a warm-up.",
        "",
        "| model | median s/page | min | max | speed-up vs R50-FPN |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {name} | {medians[name]:.3f} | {min(t):.3f} | {max(t):.3f} | {base / medians[name]:.1f}x |"
            for name, t in results.items()
        ],
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section(args.out, "## Detector speed", report)


if __name__ == "__main__":
    main()
