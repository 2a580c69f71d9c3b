"""What arranging detected regions does on real pages: COCO AP after each step, and reading order.

On the labelled real test pages (``serve_app.training.real``), each page is rendered again from its
source PDF with its words, graphics and ruled tables (``serve_app.core.pdf.render_document_page``, as the
service does), detected at the service's default score threshold (0.5), and arranged step by step
(``serve_app.core.arrange``): raw detections, ruled tables, drawings made figures, figures snapped to
graphics, snapped to lines, empty regions dropped, titles by their fonts, text no region held, running
heads dropped, fragments merged, lists told by their item markers. Each variant is scored with COCO AP
against the labels (detections below 0.5 are absent from every variant, so the numbers are the service's
operating point, not the model's full AP), and, per class, by the share of labelled regions lying (90% or
more) inside a region of their label (``training.metrics.contained_counts``): what a user reading the
result finds.

Reading order: Kendall's tau per page (``arrange.order_tau``) between the regions' order and the order of
their text in the PDF's content stream, for the arranged regions and for the old top-to-bottom sort, on
the detections and on the labels themselves (which isolates the ordering from the detector).

CLI::

    python -m serve_app.training.arrangement --model models/layout_detector --data build/real/test
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf

from serve_app.core import arrange
from serve_app.core.layout import LABELS, Box, Region, to_regions
from serve_app.core.pdf import render_document_page
from serve_app.models.layout import DEFAULT_MODEL_DIR, LayoutPredictor
from serve_app.training.evaluate import coco_ap, coco_detection
from serve_app.training.metrics import contained_counts


@dataclass(frozen=True)
class Page:
    """What the steps read of one page: its text lines, its graphics, its size in points and its image's
    scale (``arrange.scale_region``: regions found on a page without detections get pixel boxes too)."""

    lines: list[arrange.TextLine]
    graphics: list[Box]
    tables: list[Box]
    width: float
    height: float
    scale: Region | None = None


Step = Callable[[list[Region], Page], list[Region]]
STEPS: tuple[tuple[str, Step], ...] = (
    ("raw detections", lambda r, p: r),
    ("ruled tables", lambda r, p: arrange.tables_from_rules(r, p.tables, like=p.scale)),
    (
        "drawings made figures",
        lambda r, p: arrange.figures_from_graphics(
            r, p.graphics, p.lines, page_height=p.height, like=p.scale
        ),
    ),
    (
        "figures snapped to graphics",
        lambda r, p: arrange.snap_to_graphics(
            r, p.graphics, p.lines, page_width=p.width, page_height=p.height
        ),
    ),
    (
        "snapped to lines",
        lambda r, p: arrange.snap_to_lines(r, p.lines, page_width=p.width, page_height=p.height),
    ),
    ("empty regions dropped", lambda r, p: arrange.drop_empty(r, p.lines)),
    ("titles by their fonts", lambda r, p: arrange.titles_from_fonts(r, p.lines)),
    ("text no region held", lambda r, p: arrange.text_from_lines(r, p.lines, like=p.scale)),
    ("running heads dropped", lambda r, p: arrange.drop_margins(r, p.lines, page_height=p.height)),
    ("fragments merged", lambda r, p: arrange.merge_fragments(r, p.lines)),
    ("lists told by their items", lambda r, p: arrange.lists_from_items(arrange.reading_order(r), p.lines)),
)
# Measured beside the steps, each on the output of the step it names (not cumulative).
VARIANTS: tuple[tuple[str, str, Step], ...] = (
    (
        "snapped, only regions holding no line even alone dropped",
        "snapped to lines",
        lambda r, p: arrange.drop_empty(r, p.lines, contested=False),
    ),
    (
        "every step but the figures' snap to graphics",
        "drawings made figures",
        lambda r, p: _chain(STEPS[4:], r, p),
    ),
)


def _chain(steps: Sequence[tuple[str, Step]], regions: list[Region], page: Page) -> list[Region]:
    for _, step in steps:
        regions = step(regions, page)
    return regions


def top_to_bottom(regions: Sequence[Region]) -> list[Region]:
    """The order results had before reading order: top to bottom, then left to right."""
    return sorted(regions, key=lambda r: (round(r.box_pt[1]), r.box_pt[0]))


def truth_regions(annotations: list[dict[str, Any]]) -> list[Region]:
    regions = []
    for ann in annotations:
        x0, y0, x1, y1 = ann["bbox_pt"]
        box = (float(x0), float(y0), float(x1), float(y1))
        regions.append(Region(label=LABELS[ann["category_id"] - 1], score=1.0, box_px=box, box_pt=box))
    return regions


def mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def measure(model: Path, data: Path, corpus: Path, *, threads: int, score_threshold: float) -> dict[str, Any]:
    coco = json.loads((data / "annotations.json").read_text())
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    predictor = LayoutPredictor(model, num_threads=threads)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in STEPS}
    results.update({name: [] for name, _, _ in VARIANTS})
    held: dict[str, dict[str, list[int]]] = {name: {} for name in results}  # step -> label -> [inside, all]
    tau: dict[str, list[float | None]] = {
        "detections, arranged": [],
        "detections, top to bottom": [],
        "labels, reading order": [],
        "labels, top to bottom": [],
    }
    for image in coco["images"]:
        with pymupdf.open(corpus / "root" / image["source"]) as doc:
            pixels, content = render_document_page(doc, image["page"] - 1, dpi=72)
            width, height = doc[image["page"] - 1].rect.width, doc[image["page"] - 1].rect.height
        words = content.words
        boxes, scores, classes = predictor.predict(pixels)
        regions = to_regions(
            boxes,
            scores,
            classes,
            image_size=pixels.shape[:2],
            points_per_pixel=1.0,
            score_threshold=score_threshold,
        )
        scale = arrange.scale_region(1.0)  # pages rendered at 72 dpi: a pixel is a point
        page = Page(arrange.text_lines(words), content.graphics, content.tables, width, height, scale)
        after: dict[str, list[Region]] = {}
        for name, step in STEPS:
            regions = after[name] = step(regions, page)
        for name, source, step in VARIANTS:
            after[name] = step(after[source], page)
        labelled = [
            (LABELS[a["category_id"] - 1], tuple(a["bbox_pt"])) for a in by_image.get(image["id"], [])
        ]
        for name, found in after.items():
            results[name] += [
                coco_detection(image["id"], r.box_px, r.score, LABELS.index(r.label)) for r in found
            ]
            for label, counts in contained_counts(labelled, [(r.label, r.box_pt) for r in found]).items():
                total = held[name].setdefault(label, [0, 0])
                total[0], total[1] = total[0] + counts[0], total[1] + counts[1]
        tau["detections, arranged"].append(arrange.order_tau(regions, words))  # the last step orders them
        tau["detections, top to bottom"].append(arrange.order_tau(top_to_bottom(regions), words))
        truth = truth_regions(by_image.get(image["id"], []))
        tau["labels, reading order"].append(arrange.order_tau(arrange.reading_order(truth), words))
        tau["labels, top to bottom"].append(arrange.order_tau(top_to_bottom(truth), words))
    pymupdf.TOOLS.reset_mupdf_warnings()
    steps = {name: coco_ap(data / "annotations.json", found) for name, found in results.items()}
    for name, by_label in held.items():
        steps[name]["contained"] = {
            label: by_label[label][0] / by_label[label][1] for label in LABELS if label in by_label
        }
    return {
        "model": str(model),
        "data": str(data),
        "pages": len(coco["images"]),
        "score_threshold": score_threshold,
        "steps": steps,
        "kendall_tau": {
            name: {"mean": mean(values), "pages": sum(v is not None for v in values)}
            for name, values in tau.items()
        },
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [
        f"| step (cumulative, detections >= {result['score_threshold']}) | AP | AP50 | "
        + " | ".join(f"AP50 {label}" for label in LABELS)
        + " |",
        "|---|---|---|" + "---|" * len(LABELS),
    ]
    for name, m in result["steps"].items():
        per = " | ".join(f"{m['per_class'][label]['AP50']:.3f}" for label in LABELS)
        rows.append(f"| {name} | {m['AP']:.3f} | {m['AP50']:.3f} | {per} |")
    rows += ["", "| step | " + " | ".join(f"contained {label}" for label in LABELS) + " |"]
    rows.append("|---|" + "---|" * len(LABELS))
    for name, m in result["steps"].items():
        held = m.get("contained", {})
        rows.append(
            f"| {name} | " + " | ".join(f"{held[x]:.3f}" if x in held else "n/a" for x in LABELS) + " |"
        )
    rows += ["", "| regions ordered | Kendall's tau (mean) | pages |", "|---|---|---|"]
    for name, t in result["kendall_tau"].items():
        value = f"{t['mean']:.3f}" if t["mean"] is not None else "n/a"
        rows.append(f"| {name} | {value} | {t['pages']} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--data", type=Path, default=Path("build/real/test"))
    parser.add_argument("--corpus", type=Path, default=Path("build/real/texlive"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("--output", type=Path, default=None, help="json (default: <model>/arrangement.json)")
    args = parser.parse_args(argv)
    pymupdf.TOOLS.mupdf_display_errors(False)
    result = measure(
        args.model, args.data, args.corpus, threads=args.threads, score_threshold=args.score_threshold
    )
    output = args.output or args.model / "arrangement.json"
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
