"""Detector speed: seconds per page for the shipped layout model vs detectron2's R50-FPN at 800 px.

    python -m benchmarks.detector_speed          # or: make bench-detector

Both models see the same pages (synthetic documents rendered by pymupdf at 72 dpi), in one process, with
the same number of torch threads; each resizes the page to its own test size (shipped: short side from its
config.yaml; R50-FPN: 800 px, detectron2's standard). R50-FPN has random weights (speed does not depend on
them; none can be downloaded here). Median over the pages after a warm-up. Also times what the service
does to the shipped model's regions on each page after detection (``core.arrange.arrange_regions``: ruled
tables, drawings made figures, figures snapped to graphics and regions to lines, empty regions dropped,
titles told by their fonts, left-over lines made text, running heads dropped, fragments merged, reading
order, lists), and reading for it the page's graphics and ruled tables (``core.pdf.page_drawings``) and
its words' fonts (``core.pdf.word_fonts``), both part of rendering. Writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pymupdf
import torch

from benchmarks._harness import BENCHMARKS_MD, ROOT, machine, write_section
from serve_app.core import arrange
from serve_app.core.layout import to_regions
from serve_app.core.pdf import PageContent, open_document, page_drawings, render_document_page, word_fonts
from serve_app.models.layout import LayoutPredictor
from serve_app.training.synth import generate_document

Page = tuple[np.ndarray, PageContent, float, float]  # image, words and graphics, width and height in points
Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes, scores, classes


def pages(count: int, dpi: int) -> tuple[list[Page], list[float], list[float]]:
    """``count`` rendered pages, and the seconds reading each one's graphics and tables, and its words'
    fonts, took."""
    rendered: list[Page] = []
    graphics: list[float] = []
    fonts: list[float] = []
    seed = 31_337
    while len(rendered) < count:
        document = generate_document(seed=seed, num_pages=min(4, count - len(rendered)), dpi=dpi)
        with open_document(document.pdf) as doc:
            for index in range(doc.page_count):
                image, content = render_document_page(doc, index, dpi=dpi)
                page = doc.load_page(index)
                start = time.perf_counter()
                page_drawings(page)
                graphics.append(time.perf_counter() - start)
                textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_WORDS)
                words = textpage.extractWORDS()
                start = time.perf_counter()
                word_fonts(words, textpage.extractDICT()["blocks"])
                fonts.append(time.perf_counter() - start)
                rendered.append((image, content, page.rect.width, page.rect.height))
        seed += 1
    return rendered, graphics, fonts


def arrange_seconds(rendered: list[Page], predictions: list[Prediction], dpi: int) -> list[float]:
    """Seconds per page that arranging the model's regions takes (detection not counted)."""
    times = []
    for (image, content, width, height), (boxes, scores, classes) in zip(rendered, predictions, strict=True):
        regions = to_regions(boxes, scores, classes, image_size=image.shape[:2], points_per_pixel=72 / dpi)
        start = time.perf_counter()
        arrange.arrange_regions(
            regions,
            content.words,
            page_width=width,
            page_height=height,
            graphics=content.graphics,
            tables=content.tables,
        )
        times.append(time.perf_counter() - start)
    return times


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


def seconds_per_page(
    predictor: LayoutPredictor, images: list[np.ndarray]
) -> tuple[list[float], list[Prediction]]:
    """Seconds per page (after a warm-up) and the predictions, in page order."""
    predictor.predict(images[0])  # warm-up
    times, predictions = [], []
    for image in images:
        start = time.perf_counter()
        predictions.append(predictor.predict(image))
        times.append(time.perf_counter() - start)
    return times, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description="Detector seconds per page: shipped vs R50-FPN")
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "layout_detector")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rendered, graphics, fonts = pages(args.pages, dpi=72)
    images = [image for image, *_ in rendered]
    shipped = LayoutPredictor(args.model, num_threads=args.threads)
    shipped_size = int(shipped.cfg.INPUT.MIN_SIZE_TEST)
    shipped_name = f"shipped R18-FPN ({shipped_size} px)"
    shipped_times, shipped_predictions = seconds_per_page(shipped, images)
    results = {
        shipped_name: shipped_times,
        "detectron2 R50-FPN (800 px)": seconds_per_page(r50_fpn_predictor(args.threads), images)[0],
    }
    medians = {name: statistics.median(times) for name, times in results.items()}
    base = medians["detectron2 R50-FPN (800 px)"]
    arranging = arrange_seconds(rendered, shipped_predictions, dpi=72)
    words = statistics.median(len(c.words) for _, c, _, _ in rendered)
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
        f"Arranging the shipped model's regions (`core.arrange`) on the same pages (median {words:.0f} words "
        "a page), after detection, in milliseconds:",
        "",
        "| step | median ms/page | min | max | share of the shipped model's detection time |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {step} | {statistics.median(t) * 1e3:.1f} | {min(t) * 1e3:.1f} | {max(t) * 1e3:.1f} | "
            f"{statistics.median(t) / medians[shipped_name]:.1%} |"
            for step, t in (
                ("reading the page's graphics and ruled tables (in the render task)", graphics),
                ("reading the words' fonts (in the render task)", fonts),
                (
                    "tables, figures, snap, drop, titles, left-over lines, merge, reading order, lists",
                    arranging,
                ),
            )
        ],
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section(args.out, "## Detector speed", report)


if __name__ == "__main__":
    main()
