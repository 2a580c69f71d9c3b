"""A contact sheet: labelled pages of a COCO set drawn side by side, to look at the labels by eye.

CLI::

    python -m serve_app.training.real.contact_sheet --data build/real/test --out docs/images/real-labels.png
    python -m serve_app.training.real.contact_sheet --model models/layout_detector --out predictions.png

Boxes are coloured by label (legend at the top); each tile names its source PDF and page. With ``--model``
the same pages (same ``--seed``) show that model's detections (score >= 0.5) instead of the labels, to
put the two sheets side by side. With ``--model`` and ``--failures`` the model runs on every page and
the sheet shows its worst pages (lowest :func:`page_f1`), each as its labels beside its detections::

    python -m serve_app.training.real.contact_sheet --model models/layout_detector --failures \
        --out docs/images/real-failures.png
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from serve_app.core.layout import LABELS, Box
from serve_app.training.metrics import matched_fraction

COLOURS: dict[str, tuple[int, int, int]] = {
    "text": (30, 100, 255),
    "title": (220, 0, 0),
    "list": (0, 160, 0),
    "table": (190, 0, 190),
    "figure": (255, 130, 0),
}


Labelled = list[tuple[str, list[float]]]  # (label, COCO bbox [x, y, w, h] in pixels)
MATCH_IOU = 0.5


def page_f1(truth: Labelled, found: Labelled, *, iou: float = MATCH_IOU) -> float:
    """F1 of one page's detections against its labels: a detection is right when it takes a label's
    region of the same class at IoU >= ``iou`` (``training.metrics.matched_fraction``: one to one, best
    pairs first). A page with neither labels nor detections scores 1."""
    if not truth and not found:
        return 1.0

    def corners(boxes: Labelled) -> list[tuple[str, Box]]:
        return [(label, (x, y, x + w, y + h)) for label, (x, y, w, h) in boxes]

    matched = matched_fraction(corners(truth), corners(found), iou_threshold=iou) * len(truth)
    return 2 * matched / (len(truth) + len(found))


def tile(root: Path, image: dict[str, Any], boxes: Labelled, *, width: int, note: str = "") -> Image.Image:
    """One page with its boxes, scaled to ``width`` pixels wide, captioned with its source (and ``note``)."""
    with Image.open(root / image["file_name"]) as img:
        page = img.convert("RGB")
    draw = ImageDraw.Draw(page)
    for label, (x, y, w, h) in boxes:
        draw.rectangle((x, y, x + w, y + h), outline=COLOURS[label], width=2)
        draw.text((x + 2, y + 1), label[:2], fill=COLOURS[label])
    scale = width / page.width
    page = page.resize((width, round(page.height * scale)), Image.Resampling.LANCZOS)
    caption = Image.new("RGB", (width, 14), "white")
    text = f"{Path(image['source']).name} p{image['page']} {note}".rstrip()
    ImageDraw.Draw(caption).text((2, 1), text, fill=(0, 0, 0))
    out = Image.new("RGB", (width, page.height + 14), "white")
    out.paste(caption, (0, 0))
    out.paste(page, (0, 14))
    return out


def detections(model: Path, data: Path, images: list[dict[str, Any]]) -> dict[int, Labelled]:
    """The model's regions (score >= 0.5) on each image, as (label, COCO bbox)."""
    from serve_app.core.layout import to_regions
    from serve_app.models.layout import LayoutPredictor
    from serve_app.training.evaluate import read_rgb

    predictor = LayoutPredictor(model, num_threads=2)
    found: dict[int, Labelled] = {}
    for image in images:
        pixels = read_rgb(data / image["file_name"])
        boxes, scores, classes = predictor.predict(pixels)
        regions = to_regions(boxes, scores, classes, image_size=pixels.shape[:2], points_per_pixel=1.0)
        found[image["id"]] = [
            (r.label, [r.box_px[0], r.box_px[1], r.box_px[2] - r.box_px[0], r.box_px[3] - r.box_px[1]])
            for r in regions
        ]
    return found


def _labels(coco: dict[str, Any]) -> dict[int, Labelled]:
    by_image: dict[int, Labelled] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append((LABELS[ann["category_id"] - 1], ann["bbox"]))
    return by_image


def _sheet(tiles: list[Image.Image], *, columns: int, width: int) -> Image.Image:
    height = max(t.height for t in tiles)
    rows = -(-len(tiles) // columns)
    legend = 18
    sheet = Image.new("RGB", (columns * (width + 6), legend + rows * (height + 6)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 4
    for label, colour in COLOURS.items():
        draw.rectangle((x, 4, x + 10, 14), outline=colour, width=2)
        draw.text((x + 14, 4), label, fill=(0, 0, 0))
        x += 70
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * (width + 6), legend + (i // columns) * (height + 6)))
    return sheet


def paletted(sheet: Image.Image) -> Image.Image:
    """``sheet`` with 256 colours: the label colours exactly, black, white and greys (a quarter of the
    bytes as PNG; an adaptive palette would shift the label colours)."""
    colours = [*COLOURS.values(), (0, 0, 0), (255, 255, 255)]
    colours += [(g, g, g) for g in range(4, 256, 4)][: 256 - len(colours)]
    palette = Image.new("P", (1, 1))
    palette.putpalette([c for rgb in colours for c in rgb])
    return sheet.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE)


def contact_sheet(
    data: Path, *, pages: int, columns: int, width: int, seed: int, model: Path | None = None
) -> Image.Image:
    """``pages`` pages of the COCO set in ``data`` (drawn with ``seed``), ``columns`` per row; their labels,
    or ``model``'s detections."""
    coco = json.loads((data / "annotations.json").read_text())
    chosen = random.Random(seed).sample(coco["images"], min(pages, len(coco["images"])))
    by_image = detections(model, data, chosen) if model is not None else _labels(coco)
    tiles = [tile(data, img, by_image.get(img["id"], []), width=width) for img in chosen]
    return _sheet(tiles, columns=columns, width=width)


def failure_sheet(data: Path, model: Path, *, pages: int, columns: int, width: int) -> Image.Image:
    """The ``pages`` pages where ``model`` does worst (lowest :func:`page_f1`), each as two tiles: the
    labels, then the detections with the page's F1."""
    coco = json.loads((data / "annotations.json").read_text())
    truth = _labels(coco)
    found = detections(model, data, coco["images"])
    f1 = {img["id"]: page_f1(truth.get(img["id"], []), found[img["id"]]) for img in coco["images"]}
    worst = sorted(coco["images"], key=lambda img: (f1[img["id"]], img["id"]))[:pages]
    tiles: list[Image.Image] = []
    for img in worst:
        tiles.append(tile(data, img, truth.get(img["id"], []), width=width, note="labels"))
        tiles.append(tile(data, img, found[img["id"]], width=width, note=f"model F1 {f1[img['id']]:.2f}"))
    return _sheet(tiles, columns=columns, width=width)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=Path("build/real/test"))
    parser.add_argument("--out", type=Path, default=Path("docs/images/real-labels.png"))
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--width", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="draw this model's detections instead")
    parser.add_argument(
        "--failures", action="store_true", help="with --model: its worst pages, labels beside detections"
    )
    args = parser.parse_args(argv)
    if args.failures:
        if args.model is None:
            parser.error("--failures needs --model")
        sheet = failure_sheet(args.data, args.model, pages=args.pages, columns=args.columns, width=args.width)
    else:
        sheet = contact_sheet(
            args.data,
            pages=args.pages,
            columns=args.columns,
            width=args.width,
            seed=args.seed,
            model=args.model,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paletted(sheet).save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width} x {sheet.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
