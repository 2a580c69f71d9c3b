"""Figure painters: bar, line, scatter and pie charts, flow diagrams and embedded raster images."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import pymupdf

from serve_app.training.synth.canvas import PageCanvas, font_metrics, text_width
from serve_app.training.synth.geometry import BLACK, Color, Point, Rect
from serve_app.training.synth.style import DocStyle
from serve_app.training.synth.text import random_title, random_word


def _centered_text(canvas: PageCanvas, cx: float, baseline: float, text: str, font: str, size: float) -> None:
    canvas.text(cx - text_width(text, font, size) / 2, baseline, text, font, size)


def _axes(canvas: PageCanvas, rng: random.Random, rect: Rect, x_labels: Sequence[str]) -> Rect:
    """Draw y ticks/labels, x labels and the two axes; return the plot area."""
    font, size = "helv", 6.5
    metrics = font_metrics(font)
    scale = rng.choice((1, 10, 100, 1000))
    ticks = [f"{v * scale / 4:g}" for v in range(5)]
    label_w = max(text_width(t, font, size) for t in ticks)
    ext = metrics.extent(size)
    left, right = rect[0] + label_w + 4, rect[2] - 2
    top, bottom = rect[1] + ext / 2 + 1, rect[3] - ext - 3
    if rng.random() < 0.4:
        title = random_title(rng, rng.randint(2, 4))
        if text_width(title, "hebo", 7) < rect[2] - rect[0]:
            _centered_text(canvas, (rect[0] + rect[2]) / 2, rect[1] + metrics.ascender * 7, title, "hebo", 7)
            top += ext + 4
    for i, tick in enumerate(ticks):
        y = bottom - i * (bottom - top) / 4
        baseline = y + (metrics.ascender + metrics.descender) * size / 2
        canvas.text(left - 3 - text_width(tick, font, size), baseline, tick, font, size)
        if i and rng.random() < 0.5:
            canvas.line((left, y), (right, y), (0.8, 0.8, 0.8), 0.4, dash="2 2")
    step = (right - left) / len(x_labels)
    for i, label in enumerate(x_labels):
        cx = left + (i + 0.5) * step
        half = text_width(label, font, size) / 2
        cx = min(max(cx, rect[0] + half), rect[2] - half)
        _centered_text(canvas, cx, rect[3] + metrics.descender * size, label, font, size)
    canvas.line((left, top), (left, bottom), BLACK, 0.7)
    canvas.line((left, bottom), (right, bottom), BLACK, 0.7)
    return (left, top, right, bottom)


def _x_labels(rng: random.Random, n: int, room: float) -> list[str]:
    kind = rng.choice(("year", "letter", "word"))
    if kind == "year":
        start = rng.randint(1990, 2015)
        labels = [str(start + i) for i in range(n)]
    elif kind == "word":
        labels = [random_word(rng)[:5] for _ in range(n)]
    else:
        labels = [chr(65 + i) for i in range(n)]
    if max(text_width(label, "helv", 6.5) for label in labels) > room * 0.9:
        labels = [str(i + 1) for i in range(n)]
    return labels


def bar_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    n, series = rng.randint(3, 8), rng.choice((1, 1, 2, 3))
    labels = _x_labels(rng, n, (rect[2] - rect[0] - 20) / n)
    left, top, right, bottom = _axes(canvas, rng, rect, labels)
    group = (right - left) / n
    bar_w = group * rng.uniform(0.5, 0.8) / series
    for i in range(n):
        for s in range(series):
            h = (bottom - top) * rng.uniform(0.1, 1.0)
            x = left + i * group + (group - bar_w * series) / 2 + s * bar_w
            canvas.fill_rect((x, bottom - h, x + bar_w, bottom), style.palette[s])


def line_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    n = rng.randint(5, 12)
    labels = _x_labels(rng, n, (rect[2] - rect[0] - 20) / n)
    left, top, right, bottom = _axes(canvas, rng, rect, labels)
    step = (right - left) / n
    for s in range(rng.randint(1, 3)):
        level = rng.uniform(0.2, 0.8)
        points: list[Point] = []
        for i in range(n):
            level = min(max(level + rng.uniform(-0.15, 0.15), 0.05), 0.95)
            points.append((left + (i + 0.5) * step, bottom - level * (bottom - top)))
        color = style.palette[s]
        canvas.polyline(points, color, 1.2)
        if rng.random() < 0.6:
            for px, py in points:
                canvas.fill_rect((px - 1.6, py - 1.6, px + 1.6, py + 1.6), color)


def scatter_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    labels = [f"{v:g}" for v in range(0, 6)]
    left, top, right, bottom = _axes(canvas, rng, rect, labels)
    for s in range(rng.randint(1, 2)):
        cx, cy = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
        for _ in range(rng.randint(20, 60)):
            px = left + 3 + (right - left - 6) * min(max(rng.gauss(cx, 0.18), 0.0), 1.0)
            py = bottom - 3 - (bottom - top - 6) * min(max(rng.gauss(cy, 0.18), 0.0), 1.0)
            canvas.fill_rect((px - 1.3, py - 1.3, px + 1.3, py + 1.3), style.palette[s])


def pie_chart(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    font, size = "helv", 6.5
    labels = [random_word(rng)[:8].capitalize() for _ in range(rng.randint(3, 5))]
    legend_w = max(text_width(label, font, size) for label in labels) + 12
    radius = min((rect[3] - rect[1]) / 2 - 1, (rect[2] - rect[0] - legend_w) / 2 - 6)
    if radius < 10:
        bar_chart(canvas, rng, style, rect)
        return
    cx, cy = rect[0] + radius + 1, (rect[1] + rect[3]) / 2
    shares = [rng.uniform(1, 4) for _ in labels]
    angle = -math.pi / 2
    for i, share in enumerate(shares):
        sweep = 2 * math.pi * share / sum(shares)
        steps = max(2, int(sweep * 12))
        arc = [
            (
                cx + radius * math.cos(angle + sweep * k / steps),
                cy + radius * math.sin(angle + sweep * k / steps),
            )
            for k in range(steps + 1)
        ]
        canvas.polygon([(cx, cy), *arc], style.palette[i % len(style.palette)])
        angle += sweep
    metrics = font_metrics(font)
    lx = cx + radius + 12
    y = cy - len(labels) * 10 / 2
    for i, label in enumerate(labels):
        canvas.fill_rect((lx, y + 1, lx + 6, y + 7), style.palette[i % len(style.palette)])
        canvas.text(lx + 9, y + 4 + (metrics.ascender + metrics.descender) * size / 2, label, font, size)
        y += 10


def diagram(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    """A left-to-right flow diagram: labelled boxes joined by arrows."""
    font, size = "helv", 7.0
    metrics = font_metrics(font)
    labels = [random_word(rng).capitalize() for _ in range(rng.randint(2, 5))]
    widths = [text_width(label, font, size) + 10 for label in labels]
    arrow = (rect[2] - rect[0] - sum(widths)) / max(len(labels) - 1, 1)
    if arrow < 12:
        line_chart(canvas, rng, style, rect)
        return
    box_h = min(rect[3] - rect[1], rng.uniform(22, 40))
    top = (rect[1] + rect[3]) / 2 - box_h / 2
    x = rect[0]
    for i, (label, w) in enumerate(zip(labels, widths, strict=True)):
        box = (x, top, x + w, top + box_h)
        canvas.fill_rect(box, _tint(style.palette[i % len(style.palette)]))
        canvas.stroke_rect(box, BLACK, 0.8)
        baseline = top + box_h / 2 + (metrics.ascender + metrics.descender) * size / 2
        canvas.text(x + 5, baseline, label, font, size)
        if i < len(labels) - 1:
            mid = top + box_h / 2
            canvas.line((x + w + 2, mid), (x + w + arrow - 6, mid), BLACK, 0.8)
            tip = x + w + arrow - 2
            canvas.polygon([(tip, mid), (tip - 5, mid - 3), (tip - 5, mid + 3)], BLACK)
        x += w + arrow


def raster(canvas: PageCanvas, rng: random.Random, style: DocStyle, rect: Rect) -> None:
    """One to three embedded raster panels (gradients, blobs and noise), optionally with sub-labels."""
    panels = rng.choice((1, 1, 2, 3))
    gap = 6.0
    sublabels = panels > 1 and rng.random() < 0.6
    font, size = "helv", 7.0
    metrics = font_metrics(font)
    label_h = metrics.extent(size) + 3 if sublabels else 0.0
    panel_w = (rect[2] - rect[0] - gap * (panels - 1)) / panels
    border = rng.random() < 0.3
    for i in range(panels):
        x0 = rect[0] + i * (panel_w + gap)
        box = (x0, rect[1], x0 + panel_w, rect[3] - label_h)
        canvas.image(box, _raster_pixmap(rng, box))
        if border:
            canvas.stroke_rect(box, BLACK, 0.6)
        if sublabels:
            _centered_text(
                canvas, x0 + panel_w / 2, rect[3] + metrics.descender * size, f"({chr(97 + i)})", font, size
            )


def _tint(color: Color) -> Color:
    return (0.75 + 0.25 * color[0], 0.75 + 0.25 * color[1], 0.75 + 0.25 * color[2])


def _raster_pixmap(rng: random.Random, box: Rect) -> pymupdf.Pixmap:
    width = int(min(max((box[2] - box[0]) * 0.6, 32), 192))
    height = int(min(max((box[3] - box[1]) * 0.6, 24), 192))
    gen = np.random.default_rng(rng.getrandbits(32))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx /= width
    yy /= height
    c0, c1 = gen.uniform(0, 1, 3), gen.uniform(0, 1, 3)
    img = c0[None, None, :] * (1 - xx[..., None]) + c1[None, None, :] * yy[..., None]
    for _ in range(int(gen.integers(2, 7))):
        cx, cy, sigma = gen.uniform(0, 1), gen.uniform(0, 1), gen.uniform(0.05, 0.3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        img += blob[..., None] * gen.uniform(-0.6, 0.6, 3)[None, None, :]
    img += gen.normal(0, gen.uniform(0.01, 0.12), img.shape)
    if gen.uniform() < 0.3:
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    pixels = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return pymupdf.Pixmap(pymupdf.csRGB, width, height, pixels.tobytes(), 0)
