"""A hand-written PDF content-stream writer that records what it paints, and Base-14 font metrics.

``PageCanvas`` emits raw content-stream operators so the exact painted extents of every graphic are known:
they become part of the ground-truth boxes (see ``page.regions_from_page``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import pymupdf

from serve_app.training.synth.geometry import BLACK, Color, Point, Rect, grow, points_box, union

# ---------------------------------------------------------------------------------------------- fonts


@dataclass(frozen=True)
class FontMetrics:
    """Ascender/descender and per-WinAnsi-byte advances (at size 1) of a Base-14 font."""

    code: str
    ascender: float
    descender: float
    advances: tuple[float, ...]

    def extent(self, size: float) -> float:
        """Height of a text line's glyph box (what the PDF text layer reports) at ``size``."""
        return (self.ascender - self.descender) * size


@cache
def font_metrics(code: str) -> FontMetrics:
    """Metrics of a Base-14 font (``helv``, ``tibo``, ...) for WinAnsi-encoded text."""
    font = pymupdf.Font(code)
    advances: list[float] = []
    for byte in range(256):
        char = bytes([byte]).decode("cp1252", errors="ignore")
        advances.append(float(font.glyph_advance(ord(char))) if char and byte >= 32 else 0.0)
    return FontMetrics(code, float(font.ascender), float(font.descender), tuple(advances))


@lru_cache(maxsize=1 << 16)
def _unit_width(code: str, text: str) -> float:
    advances = font_metrics(code).advances
    return sum(advances[b] for b in text.encode("cp1252"))


def text_width(text: str, font: str, size: float) -> float:
    """Advance width of ``text`` in points."""
    return _unit_width(font, text) * size


def _pdf_string(text: str) -> str:
    raw = text.encode("cp1252").decode("latin-1")
    return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


# --------------------------------------------------------------------------------------------- canvas


@dataclass(frozen=True)
class Part:
    """A drawn region: its label (None for distractors), allotted rect and extents of drawn graphics."""

    label: str | None
    rect: Rect
    graphics: Rect | None


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _rgb(c: Color) -> str:
    return " ".join(_num(v) for v in c)


class PageCanvas:
    """Accumulates one page's PDF content stream (top-left coordinates) and its region parts."""

    def __init__(self, height: float) -> None:
        self.height = height
        self.ops: list[str] = []
        self.fonts: set[str] = set()
        self.images: list[tuple[Rect, pymupdf.Pixmap]] = []
        self.parts: list[Part] = []
        self._open: tuple[str | None, Rect] | None = None
        self._graphics: Rect | None = None

    def begin_part(self, label: str | None, rect: Rect) -> None:
        """Start a region; graphics drawn until the next call count towards its extents."""
        self._close()
        self._open = (label, rect)

    def finish(self) -> list[Part]:
        self._close()
        return self.parts

    def _close(self) -> None:
        if self._open is not None:
            self.parts.append(Part(self._open[0], self._open[1], self._graphics))
        self._open = None
        self._graphics = None

    def _mark(self, r: Rect) -> None:
        self._graphics = union(self._graphics, r)

    def _y(self, y: float) -> str:
        return _num(self.height - y)

    def text(
        self,
        x: float,
        baseline: float,
        text: str,
        font: str,
        size: float,
        *,
        color: Color = BLACK,
        word_spacing: float = 0.0,
    ) -> None:
        self.fonts.add(font)
        self.ops.append(
            f"BT /{font} {_num(size)} Tf {_num(word_spacing)} Tw {_rgb(color)} rg "
            f"1 0 0 1 {_num(x)} {self._y(baseline)} Tm ({_pdf_string(text)}) Tj ET"
        )

    def fill_rect(self, r: Rect, color: Color) -> None:
        self._mark(r)
        self.ops.append(
            f"q {_rgb(color)} rg {_num(r[0])} {self._y(r[3])} {_num(r[2] - r[0])} {_num(r[3] - r[1])} re f Q"
        )

    def stroke_rect(self, r: Rect, color: Color, width: float) -> None:
        """Stroke a rectangle so that the painted outline lies exactly inside ``r``."""
        self._mark(r)
        h = width / 2
        inner = (r[0] + h, r[1] + h, r[2] - h, r[3] - h)
        self.ops.append(
            f"q {_num(width)} w 0 j {_rgb(color)} RG {_num(inner[0])} {self._y(inner[3])} "
            f"{_num(inner[2] - inner[0])} {_num(inner[3] - inner[1])} re S Q"
        )

    def line(self, a: Point, b: Point, color: Color, width: float, dash: str = "") -> None:
        """Straight line with butt caps; its painted extents are tracked exactly for axis-aligned lines."""
        h = width / 2
        x0, x1 = sorted((a[0], b[0]))
        y0, y1 = sorted((a[1], b[1]))
        if y0 == y1:
            self._mark((x0, y0 - h, x1, y1 + h))
        elif x0 == x1:
            self._mark((x0 - h, y0, x1 + h, y1))
        else:
            self._mark((x0 - h, y0 - h, x1 + h, y1 + h))
        dash_op = f"[{dash}] 0 d " if dash else ""
        self.ops.append(
            f"q {_num(width)} w 0 J {dash_op}{_rgb(color)} RG {_num(a[0])} {self._y(a[1])} m "
            f"{_num(b[0])} {self._y(b[1])} l S Q"
        )

    def polyline(self, points: Sequence[Point], color: Color, width: float) -> None:
        self._mark(grow(points_box(points), width / 2))
        path = " ".join(f"{_num(x)} {self._y(y)} {'m' if i == 0 else 'l'}" for i, (x, y) in enumerate(points))
        self.ops.append(f"q {_num(width)} w 1 j 1 J {_rgb(color)} RG {path} S Q")

    def polygon(self, points: Sequence[Point], color: Color) -> None:
        self._mark(points_box(points))
        path = " ".join(f"{_num(x)} {self._y(y)} {'m' if i == 0 else 'l'}" for i, (x, y) in enumerate(points))
        self.ops.append(f"q {_rgb(color)} rg {path} h f Q")

    def image(self, r: Rect, pixmap: pymupdf.Pixmap) -> None:
        self._mark(r)
        self.images.append((r, pixmap))

    def write_to(self, doc: pymupdf.Document, page: pymupdf.Page) -> None:
        """Attach the content stream, fonts and images to ``page``."""
        for font in sorted(self.fonts):
            page.insert_font(fontname=font)
        xref = doc.get_new_xref()
        doc.update_object(xref, "<<>>")
        doc.update_stream(xref, "\n".join(self.ops).encode("latin-1"))
        page.set_contents(xref)
        for rect, pixmap in self.images:
            page.insert_image(pymupdf.Rect(*rect), pixmap=pixmap, keep_proportion=False)
