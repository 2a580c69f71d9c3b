"""Layout regions: post-processing of raw detections (pure numpy, no Ray, no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from serve_app.core.errors import InvalidInput

LABELS: tuple[str, ...] = ("text", "title", "list", "table", "figure")  # PubLayNet order, class ids 0..4

Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Polygon = tuple[tuple[float, float], ...]  # (x, y) vertices, closed implicitly
MAX_POLYGON_POINTS = 64  # vertices kept per mask outline (evenly spaced along it)


def box_area(box: Box) -> float:
    """The area of a box; 0 for an empty or inverted one."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def box_union(*boxes: Box) -> Box:
    """The smallest box holding all of ``boxes`` (at least one)."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def box_overlap(a: Box, b: Box) -> float:
    """The area two boxes share."""
    return box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def cluster_boxes(boxes: Sequence[Box], *, gap: float) -> list[list[int]]:
    """Indices of ``boxes`` grouped so that boxes closer than ``gap`` share a group (transitively): boxes
    grown by ``gap / 2`` on every side that overlap (with area) are neighbours. Groups are in the order of
    their first box, indices ascending. Pairwise: callers bound the count (``core.pdf.MAX_PAGE_GRAPHICS``)."""
    if not boxes:
        return []
    b = np.asarray(boxes, dtype=np.float64) + np.array([-gap / 2, -gap / 2, gap / 2, gap / 2])
    w = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    h = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    _, component = connected_components(csr_matrix((w > 0) & (h > 0)), directed=False)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(component.tolist()):
        groups.setdefault(c, []).append(i)
    return list(groups.values())


@dataclass(frozen=True)
class Region:
    """One detected region: label, score, box in pixels and in PDF points, and the outline of its mask
    (polygons in pixels and in points) when the model predicts masks and the caller asked for them."""

    label: str
    score: float
    box_px: Box
    box_pt: Box
    mask_px: tuple[Polygon, ...] | None = None
    mask_pt: tuple[Polygon, ...] | None = None


def to_regions(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    *,
    image_size: tuple[int, int],
    points_per_pixel: float,
    score_threshold: float = 0.5,
    max_detections: int = 100,
    labels: Sequence[str] = LABELS,
    masks: np.ndarray | None = None,
) -> list[Region]:
    """Turn raw detections (N x 4 pixel boxes, scores, class ids into ``labels``) into regions.

    ``masks`` (N x H x W booleans, optional) become each region's outline polygons.
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
        if x1 <= x0 or y1 <= y0 or not 0 <= label_id < len(labels):
            continue
        px = (float(x0), float(y0), float(x1), float(y1))
        pt = (
            px[0] * points_per_pixel,
            px[1] * points_per_pixel,
            px[2] * points_per_pixel,
            px[3] * points_per_pixel,
        )
        mask_px = mask_pt = None
        if masks is not None:
            mask_px = mask_polygons(masks[i])
            mask_pt = tuple(
                tuple((x * points_per_pixel, y * points_per_pixel) for x, y in p) for p in mask_px
            )
        kept.append(
            Region(
                label=labels[label_id],
                score=float(scores[i]),
                box_px=px,
                box_pt=pt,
                mask_px=mask_px,
                mask_pt=mask_pt,
            )
        )
    kept.sort(key=lambda r: (round(r.box_px[1]), r.box_px[0]))
    return kept


def mask_polygons(mask: np.ndarray, *, max_points: int = MAX_POLYGON_POINTS) -> tuple[Polygon, ...]:
    """Outlines of the ``True`` areas of an H x W boolean mask, in pixel coordinates (pixel edges, so a
    mask covering pixels 2..4 spans 2.0..5.0), largest area first; at most ``max_points`` vertices each.

    Traced by contourpy (matplotlib's contouring) at the 0.5 level of a one-pixel padded mask, so outlines
    at the image border close; holes are not reported.
    """
    import contourpy

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        return ()
    padded = np.pad(mask, 1).astype(np.float32)
    lines = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate).lines(0.5)
    outlines = []
    for line in lines:
        points = np.asarray(line, dtype=np.float64)[:-1]  # closed lines repeat their first point
        if len(points) < 3:
            continue
        x, y = points[:, 0], points[:, 1]
        area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        if area < 0:  # contourpy walks outer boundaries one way and holes the other
            continue
        if len(points) > max_points:
            points = points[np.linspace(0, len(points), max_points, endpoint=False).astype(int)]
        # Padded index -> pixel-edge coordinate: subtract the pad, add half a pixel.
        outline = tuple((round(float(px) - 0.5, 2), round(float(py) - 0.5, 2)) for px, py in points)
        outlines.append((area, outline))
    outlines.sort(key=lambda item: -item[0])
    return tuple(outline for _, outline in outlines)


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
