"""Rectangles, points and colours of synthetic pages: PDF points, origin top-left."""

from __future__ import annotations

from collections.abc import Sequence

Rect = tuple[float, float, float, float]
Color = tuple[float, float, float]
Point = tuple[float, float]

BLACK: Color = (0.0, 0.0, 0.0)


def union(a: Rect | None, b: Rect) -> Rect:
    if a is None:
        return b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def intersection_area(a: Rect, b: Rect) -> float:
    """Area of the intersection of two (x0, y0, x1, y1) rectangles."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def clip(r: Rect, to: Rect) -> Rect:
    return (max(r[0], to[0]), max(r[1], to[1]), min(r[2], to[2]), min(r[3], to[3]))


def grow(r: Rect, d: float) -> Rect:
    return (r[0] - d, r[1] - d, r[2] + d, r[3] + d)


def points_box(points: Sequence[Point]) -> Rect:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))
