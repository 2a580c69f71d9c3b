"""Box-matching metrics for evaluating layout detectors (training and tests; serving never needs them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serve_app.core.layout import Box


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes ``a`` (N x 4) and ``b`` (M x 4) as float arrays, and their pairwise intersections (N x M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return a, b, w * h


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N x 4) and ``b`` (M x 4) in x0, y0, x1, y1 form."""
    a, b, inter = _intersections(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def matched_fraction(
    truth: Sequence[tuple[str, Box]], predicted: Sequence[tuple[str, Box]], *, iou_threshold: float = 0.5
) -> float:
    """Fraction of ground-truth boxes matched one-to-one by a same-label prediction at IoU >= threshold.

    Greedy matching by descending IoU; each prediction matches at most one ground-truth box.
    """
    if not truth:
        return 1.0
    matched = 0
    for label in {lab for lab, _ in truth}:
        gt = np.array([box for lab, box in truth if lab == label])
        pr = np.array([box for lab, box in predicted if lab == label]).reshape(-1, 4)
        if len(pr) == 0:
            continue
        ious = iou_matrix(gt, pr)
        pairs = sorted(((ious[i, j], i, j) for i in range(len(gt)) for j in range(len(pr))), reverse=True)
        used_gt: set[int] = set()
        used_pr: set[int] = set()
        for iou, i, j in pairs:
            if iou < iou_threshold:
                break
            if i not in used_gt and j not in used_pr:
                used_gt.add(i)
                used_pr.add(j)
        matched += len(used_gt)
    return matched / len(truth)


def inside_fraction_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise share of each box of ``a`` (N x 4) that lies inside each box of ``b`` (M x 4)."""
    a, _, inter = _intersections(a, b)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    return np.where(area[:, None] > 0, inter / np.where(area[:, None] > 0, area[:, None], 1), 0.0)


def contained_counts(
    truth: Sequence[tuple[str, Box]], predicted: Sequence[tuple[str, Box]], *, min_inside: float = 0.9
) -> dict[str, tuple[int, int]]:
    """Per label: (ground-truth boxes with at least ``min_inside`` of their area inside one same-label
    prediction, ground-truth boxes). Not one to one: one prediction may hold several boxes (a region
    that takes two paragraphs still holds each), so this asks "is it inside a region of the right label",
    not "is it found as its own region"."""
    counts: dict[str, tuple[int, int]] = {}
    for label in {lab for lab, _ in truth}:
        gt = np.array([box for lab, box in truth if lab == label])
        pr = np.array([box for lab, box in predicted if lab == label]).reshape(-1, 4)
        held = int((inside_fraction_matrix(gt, pr).max(axis=1) >= min_inside).sum()) if len(pr) else 0
        counts[label] = (held, len(gt))
    return counts
