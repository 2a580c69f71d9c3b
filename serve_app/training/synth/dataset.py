"""A synthetic training set on disk: PDFs, page PNGs and COCO ``annotations.json``; and its CLI.

CLI::

    python -m serve_app.training.synth --out DIR --seed 0 --docs 50 --pages 4 --dpi 72
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serve_app.core.layout import LABELS
from serve_app.training.synth.page import generate_document


def document_seeds(seed: int, num_docs: int) -> list[int]:
    """Per-document seeds derived deterministically from a dataset seed."""
    rng = random.Random(seed)
    return [rng.getrandbits(63) for _ in range(num_docs)]


def coco_annotation(
    label: str,
    bbox_pt: tuple[float, float, float, float],
    ann_id: int,
    image_id: int,
    scale: float,
    size_px: tuple[int, int],
) -> dict[str, Any]:
    """A COCO annotation of a box in PDF points on an image ``scale`` pixels per point, ``size_px`` (width,
    height): the pixel box clipped to the image and rounded, its rectangle as the segmentation, and the box
    in points as ``bbox_pt``. A box outside the image comes out with a width or height of 0 or less."""
    x0, y0, x1, y1 = bbox_pt
    px0, py0 = max(x0 * scale, 0.0), max(y0 * scale, 0.0)
    px1, py1 = min(x1 * scale, float(size_px[0])), min(y1 * scale, float(size_px[1]))
    w, h = round(px1 - px0, 2), round(py1 - py0, 2)
    px0, py0 = round(px0, 2), round(py0, 2)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": LABELS.index(label) + 1,
        "bbox": [px0, py0, w, h],
        "area": round(w * h, 2),
        "iscrowd": 0,
        "segmentation": [
            [px0, py0, round(px0 + w, 2), py0, round(px0 + w, 2), round(py0 + h, 2), px0, round(py0 + h, 2)]
        ],
        "bbox_pt": [x0, y0, x1, y1],
    }


def write_dataset(out_dir: Path, *, seed: int, num_docs: int, pages_per_doc: int, dpi: int) -> Path:
    """Write PDFs (``pdfs/``), page PNGs (``images/``) and COCO ``annotations.json``; return the JSON path.

    Image ``file_name`` values are relative to ``out_dir`` (use it as the detectron2 image root).
    """
    out_dir = Path(out_dir)
    (out_dir / "pdfs").mkdir(parents=True, exist_ok=True)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    scale = dpi / 72.0
    for doc_index, doc_seed in enumerate(document_seeds(seed, num_docs)):
        document = generate_document(seed=doc_seed, num_pages=pages_per_doc, dpi=dpi)
        pdf_name = f"pdfs/doc_{doc_index:05d}.pdf"
        (out_dir / pdf_name).write_bytes(document.pdf)
        for page in document.pages:
            image_id = len(images) + 1
            file_name = f"images/doc_{doc_index:05d}_p{page.index:03d}.png"
            (out_dir / file_name).write_bytes(page.png)
            images.append(
                {
                    "id": image_id,
                    "file_name": file_name,
                    "width": page.width_px,
                    "height": page.height_px,
                    "pdf": pdf_name,
                    "page_index": page.index,
                    "page_width_pt": page.width_pt,
                    "page_height_pt": page.height_pt,
                }
            )
            for region in page.regions:
                size_px = (page.width_px, page.height_px)
                annotations.append(
                    coco_annotation(
                        region.label, region.bbox_pt, len(annotations) + 1, image_id, scale, size_px
                    )
                )
    coco = {
        "info": {"description": "synthetic PubLayNet-style pages", "seed": seed, "dpi": dpi},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "layout"} for i, name in enumerate(LABELS)
        ],
    }
    path = out_dir / "annotations.json"
    path.write_text(json.dumps(coco, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m serve_app.training.synth",
        description="Write a synthetic PubLayNet-style training set: PDFs, page PNGs, COCO annotations.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=int, default=50, help="number of PDF documents")
    parser.add_argument("--pages", type=int, default=4, help="pages per document")
    parser.add_argument("--dpi", type=int, default=72, help="PNG rendering resolution")
    args = parser.parse_args(argv)
    path = write_dataset(args.out, seed=args.seed, num_docs=args.docs, pages_per_doc=args.pages, dpi=args.dpi)
    print(path)
    return 0
