"""Layout regions: post-processing of raw detections (pure numpy, no Ray, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serve_app.core.errors import InvalidInput

LABELS: tuple[str, ...] = ("text", "title", "list", "table", "figure")  # PubLayNet order, class ids 0..4

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class Region:
    """One detected layout region: label, score, box in pixels and in PDF points."""

    label: str
    score: float
    box_px: Box
    box_pt: Box


def to_regions(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    *,
    image_size: tuple[int, int],
    points_per_pixel: float,
    score_threshold: float = 0.5,
    max_detections: int = 100,
) -> list[Region]:
    """Turn raw detections (N x 4 pixel boxes, scores, class ids) into regions.

    Keeps detections with ``score >= score_threshold``, at most ``max_detections`` of the best scores,
    clips boxes to the image (``image_size`` is height, width), drops empty ones and orders the result
    top-to-bottom, then left-to-right.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    classes = np.asarray(classes).reshape(-1)
    if not len(boxes) == len(scores) == len(classes):
        raise InvalidInput(
            f"detections disagree in length: {len(boxes)} boxes, {len(scores)} scores, {len(classes)}"
        )
    if points_per_pixel <= 0:
        raise InvalidInput(f"points_per_pixel must be positive, got {points_per_pixel}")
    height, width = image_size
    order = np.argsort(-scores, kind="stable")
    kept: list[Region] = []
    for i in order:
        if scores[i] < score_threshold or len(kept) >= max_detections:
            break
        x0, y0, x1, y1 = np.clip(boxes[i], 0, [width, height, width, height])
        label_id = int(classes[i])
        if x1 <= x0 or y1 <= y0 or not 0 <= label_id < len(LABELS):
            continue
        px = (float(x0), float(y0), float(x1), float(y1))
        pt = (
            px[0] * points_per_pixel,
            px[1] * points_per_pixel,
            px[2] * points_per_pixel,
            px[3] * points_per_pixel,
        )
        kept.append(Region(label=LABELS[label_id], score=float(scores[i]), box_px=px, box_pt=pt))
    kept.sort(key=lambda r: (round(r.box_px[1]), r.box_px[0]))
    return kept


def check_page_image(image: object) -> None:
    """Raise ``InvalidInput`` unless ``image`` is a non-empty H x W x 3 uint8 array."""
    if (
        isinstance(image, np.ndarray)
        and image.ndim == 3
        and image.shape[2] == 3
        and image.dtype == np.uint8
        and min(image.shape[:2]) > 0
    ):
        return
    described = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
    raise InvalidInput(f"a page image must be an H x W x 3 uint8 array, got {described.strip()}")
