from __future__ import annotations

import numpy as np
import pymupdf

from serve_app.core.pdf import render_page, render_pdf


def make_pdf() -> bytes:
    with pymupdf.open() as doc:
        page = doc.new_page(width=200, height=100)
        page.draw_rect(pymupdf.Rect(10, 10, 60, 40), color=(1, 0, 0), fill=(1, 0, 0))
        doc.new_page(width=100, height=300)
        return doc.tobytes()


def test_render_pdf_gives_rgb_arrays_at_the_requested_dpi() -> None:
    first, second = render_pdf(make_pdf(), dpi=144)
    assert first.shape == (200, 400, 3) and second.shape == (600, 200, 3)
    assert first.dtype == np.uint8 and first.flags.writeable
    assert first[50, 60].tolist() == [255, 0, 0]  # inside the red square (2 px per point)
    assert first[150, 300].tolist() == [255, 255, 255]


def test_render_page_matches_render_pdf() -> None:
    with pymupdf.open(stream=make_pdf(), filetype="pdf") as doc:
        np.testing.assert_array_equal(render_page(doc[0], dpi=72), render_pdf(make_pdf(), dpi=72)[0])
