"""Small PDFs built in code, good and bad, shared by the unit and HTTP tests."""

from __future__ import annotations

import pymupdf

PAGE_WIDTH = 300.0  # points, for every page built here unless a function says otherwise
LINE_GAP = 20.0  # points between baselines in ``text_pdf``
FONT_SIZE = 11.0


def text_line(page: int, line: int) -> str:
    """The text of ``line`` (1-based) on ``page`` (1-based) of a ``text_pdf``."""
    return f"page {page} line {line} alpha beta"


def text_pdf(num_pages: int, *, lines_per_page: int = 5) -> bytes:
    """``num_pages`` pages of ``PAGE_WIDTH`` x (40 + 20 * lines) pt, each with lines ``text_line(page, i)``.

    Line ``i`` has its baseline at y = 20 + 20 * i pt, starting at x = 20 pt.
    """
    with pymupdf.open() as doc:
        for p in range(1, num_pages + 1):
            page = doc.new_page(width=PAGE_WIDTH, height=40 + LINE_GAP * lines_per_page)
            for i in range(1, lines_per_page + 1):
                page.insert_text((20, 20 + LINE_GAP * i), text_line(p, i), fontsize=FONT_SIZE)
        return doc.tobytes()


def encrypted_pdf() -> bytes:
    """A one-page ``text_pdf`` that needs the user password "u" (AES-256) to open."""
    with pymupdf.open(stream=text_pdf(1), filetype="pdf") as doc:
        return doc.tobytes(encryption=pymupdf.mupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")


def zero_page_pdf() -> bytes:
    """A well-formed-enough PDF whose page tree has an empty /Kids array (MuPDF opens it with 0 pages)."""
    return (
        b"%PDF-1.4\n"
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n"
        b"%%EOF\n"
    )


def truncated_pdf() -> bytes:
    """A three-page ``text_pdf`` cut off right after its first page object.

    MuPDF repairs it and reports 3 pages, but pages 2 and 3 do not exist (it would render blank
    Letter pages in their place), and page 1 has lost its content stream.
    """
    pdf = text_pdf(3)
    first_page = pdf.index(b"/Type/Page/")
    return pdf[: pdf.index(b"endobj", first_page) + len(b"endobj\n")]


def huge_page_pdf() -> bytes:
    """One 20,000 x 500 pt page: wider than the PDF spec's 14,400 pt (200 in) limit."""
    with pymupdf.open() as doc:
        doc.new_page(width=20_000, height=500)
        return doc.tobytes()


def not_a_pdf() -> bytes:
    """Bytes that are plainly not a PDF (a short text file)."""
    return b"this is a plain text file, not a PDF\n" * 4


def scanned_pdf() -> bytes:
    """One 300 x 200 pt page holding only an image (black bars on grey): no text layer."""
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 150, 100), False)
    pix.set_rect(pix.irect, (200, 200, 200))
    for y in range(20, 80, 15):
        pix.set_rect(pymupdf.IRect(10, y, 140, y + 6), (0, 0, 0))
    with pymupdf.open() as doc:
        page = doc.new_page(width=PAGE_WIDTH, height=200)
        page.insert_image(page.rect, pixmap=pix)
        return doc.tobytes()


def vector_bomb_pdf(*, depth: int = 3, fan_out: int = 100, lines: int = 1000) -> bytes:
    """One page that draws ``lines * fan_out ** depth`` line segments (10^9 by default) from a 4 KB file:
    Form XObjects that each draw the one below ``fan_out`` times. Reading its text or rendering it takes
    pymupdf far longer than any sane limit: a pathological page."""
    with pymupdf.open() as doc:
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 72), "This page takes forever to draw.", fontsize=FONT_SIZE)
        below = None
        for _level in range(depth + 1):
            xref = doc.get_new_xref()
            if below is None:
                resources = ""
                body = "".join(f"{i % 600} 0 m {600 - i % 600} 792 l S\n" for i in range(lines)).encode()
            else:
                resources = f"/Resources << /XObject << /X {below} 0 R >> >>"
                body = b"q /X Do Q\n" * fan_out
            form = f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] {resources} >>"
            doc.update_object(xref, form)
            doc.update_stream(xref, body)
            below = xref
        draw = doc.get_new_xref()
        doc.update_object(draw, "<< >>")
        doc.update_stream(draw, b"q /Bomb Do Q\n")
        kind, value = doc.xref_get_key(page.xref, "Resources")
        assert kind == "xref", kind
        doc.xref_set_key(int(value.split()[0]), "XObject", f"<< /Bomb {below} 0 R >>")
        kind, contents = doc.xref_get_key(page.xref, "Contents")
        first = contents.strip("[]").strip() if kind == "array" else contents
        doc.xref_set_key(page.xref, "Contents", f"[{first} {draw} 0 R]")
        return doc.tobytes(deflate=True)
