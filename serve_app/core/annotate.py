"""Draw layout regions on a page image as a PNG, for people to look at (pure: Pillow, no Ray)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from serve_app.core.errors import InvalidInput
from serve_app.core.layout import LABELS, Box, Polygon, check_page_image

Colour = tuple[int, int, int]
# (label, score, box_px) or (label, score, box_px, mask outline polygons in pixels or None)
Drawn = tuple[str, float, Box] | tuple[str, float, Box, tuple[Polygon, ...] | None]

# One colour per label (matplotlib's tab10), readable on white paper.
LABEL_COLOURS: dict[str, Colour] = {
    "text": (31, 119, 180),  # blue
    "title": (214, 39, 40),  # red
    "list": (44, 160, 44),  # green
    "table": (255, 127, 14),  # orange
    "figure": (148, 103, 189),  # purple
}

# Colours for the labels of other models (matplotlib's tab20, without the five above), in label order.
PALETTE: tuple[Colour, ...] = (
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
)  # fmt: skip


def label_colours(labels: Sequence[str]) -> dict[str, Colour]:
    """A colour per label: PubLayNet's five keep theirs, other labels take the palette in order (cycling)."""
    others = iter(PALETTE * (1 + len(labels) // len(PALETTE)))
    return {label: LABEL_COLOURS.get(label) or next(others) for label in labels}


FONT_SIZE = 12  # px, Pillow's built-in font
LEGEND_ROW_HEIGHT = 20  # px per row of the legend strip under the page
_PAD = 4
_SWATCH = 12
_PNG_COMPRESS_LEVEL = 1  # PNG is lossless at any level; 1 is several times faster than the default 6


def legend_height(width: int, labels: Sequence[str] = LABELS) -> int:
    """Height in pixels of the legend strip that ``draw_regions`` adds under an image ``width`` pixels wide.

    The legend lists every label in one row, wrapping onto more rows when the image is narrow.
    """
    return LEGEND_ROW_HEIGHT * len(_legend_rows(width, labels))


def draw_regions(image: np.ndarray, regions: Sequence[Drawn], *, labels: Sequence[str] = LABELS) -> bytes:
    """PNG of ``image`` with each ``(label, score, box_px[, mask_px])`` region outlined in its label's colour.

    ``labels`` are the model's class names (they make the legend). Each box gets a "label score" tag at its
    top-left corner; a mask's outline polygons are drawn inside it, thinner. A legend strip of
    ``legend_height(W, labels)`` pixels is added below the page, so the PNG is W x (H + legend_height).
    ``image`` is not modified.
    """
    check_page_image(image)
    colours = label_colours(labels)
    for label, _, box, *_ in regions:
        if label not in colours:
            raise InvalidInput(f"unknown region label {label!r}; expected one of {', '.join(labels)}")
        if not all(math.isfinite(v) for v in box):
            raise InvalidInput(f"region box {box} has a coordinate that is not a finite number")
    height, width = image.shape[:2]
    canvas = Image.new("RGB", (width, height + legend_height(width, labels)), (255, 255, 255))
    canvas.paste(Image.fromarray(image))
    draw = ImageDraw.Draw(canvas)
    font = _font()
    line = max(2, round(min(width, height) / 500))
    for label, score, (x0, y0, x1, y1), *mask in regions:
        colour = colours[label]
        for polygon in (mask[0] if mask else None) or ():
            if len(polygon) >= 3:
                draw.polygon(
                    [(float(x), float(y)) for x, y in polygon], outline=colour, width=max(1, line // 2)
                )
        box = (round(x0), round(y0), max(round(x0), round(x1)), max(round(y0), round(y1)))
        draw.rectangle(box, outline=colour, width=line)
        tag = f"{label} {score:.2f}"
        _, _, tag_w, tag_h = draw.textbbox((0, 0), tag, font=font)
        tag_h += 2
        top = box[1] - tag_h if box[1] - tag_h >= 0 else box[1] + line  # above the box, else just inside
        draw.rectangle((box[0], top, box[0] + tag_w + 4, top + tag_h), fill=colour)
        draw.text((box[0] + 2, top), tag, fill=(255, 255, 255), font=font)
    _draw_legend(draw, top=height, width=width, colours=colours)
    out = io.BytesIO()
    canvas.save(out, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return out.getvalue()


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_SIZE)


def _legend_entry_width(label: str) -> int:
    return _SWATCH + _PAD + round(_font().getlength(label)) + 3 * _PAD


def _legend_rows(width: int, labels: Sequence[str]) -> list[list[str]]:
    rows: list[list[str]] = [[]]
    used = _PAD
    for label in labels:
        needed = _legend_entry_width(label)
        if rows[-1] and used + needed > width:
            rows.append([])
            used = _PAD
        rows[-1].append(label)
        used += needed
    return rows


def _draw_legend(draw: ImageDraw.ImageDraw, *, top: int, width: int, colours: dict[str, Colour]) -> None:
    draw.line((0, top, width, top), fill=(128, 128, 128))
    for r, row in enumerate(_legend_rows(width, list(colours))):
        y = top + r * LEGEND_ROW_HEIGHT + (LEGEND_ROW_HEIGHT - _SWATCH) // 2
        x = _PAD
        for label in row:
            draw.rectangle((x, y, x + _SWATCH - 1, y + _SWATCH - 1), fill=colours[label])
            draw.text((x + _SWATCH + _PAD, y - 1), label, fill=(0, 0, 0), font=_font())
            x += _legend_entry_width(label)
