"""PDF pages to pixels with pymupdf (pure: no Ray)."""

from __future__ import annotations

import numpy as np
import pymupdf


def render_page(page: pymupdf.Page, *, dpi: int) -> np.ndarray:
    """Render ``page`` at ``dpi`` to a writable H x W x 3 uint8 RGB array."""
    pix = page.get_pixmap(dpi=dpi, alpha=False, colorspace=pymupdf.csRGB)
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, 3).copy()


def render_pdf(pdf: bytes, *, dpi: int) -> list[np.ndarray]:
    """Render every page of an in-memory PDF (see ``render_page``)."""
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return [render_page(page, dpi=dpi) for page in doc]
