"""Ray tasks for the CPU-heavy page work, so no replica's event loop ever renders or draws.

Each rendered page is the return value of a task: it goes into the object store once, owned by the
caller, and Detector replicas read it by reference. The tasks delegate to pure ``serve_app.core``.

The PDF reaches ``render_task`` as a reference nested in a ``PdfRef`` (Ray does not resolve nested
references): a worker process reads and parses a document once and keeps it open for the next pages
of the same document (a small per-process cache), instead of parsing the whole PDF for every page.

Rendering and drawing are batch work: their worker processes run at a higher nice value (like the
Detector's, ``JobRunnerConfig.render_nice_increment``), so interactive requests win the CPU.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymupdf
import ray
from PIL import Image

from serve_app.core.analysis import AnalyzeResult
from serve_app.core.annotate import Drawn, draw_regions
from serve_app.core.layout import LABELS
from serve_app.core.markdown import document_markdown
from serve_app.core.pdf import PageContent, inspect_pdf, open_document, render_document_page, table_markdown
from serve_app.runtime.process import set_process_nice

# Tasks are retried if their worker process dies (not on application errors such as a bad page).
_RETRIES = 2
# Documents kept open per worker process (a few concurrent jobs; each holds its PDF bytes).
_OPEN_DOCUMENTS = 2

_base_nice: int | None = None
_documents: OrderedDict[str, pymupdf.Document] = OrderedDict()


@dataclass(frozen=True)
class PdfRef:
    """A PDF in the object store, by reference: a render worker fetches and parses it once."""

    ref: ray.ObjectRef[bytes]


def _as_batch_work(nice_increment: int) -> None:
    global _base_nice
    if _base_nice is None:  # the worker's own value, before we first changed it
        _base_nice = os.getpriority(os.PRIO_PROCESS, 0)
    target = _base_nice + nice_increment
    if os.getpriority(os.PRIO_PROCESS, 0) != target:
        set_process_nice(target)


def _document(pdf: PdfRef) -> pymupdf.Document:
    key = pdf.ref.hex()
    doc = _documents.get(key)
    if doc is None:
        doc = open_document(ray.get(pdf.ref))
        _documents[key] = doc
        while len(_documents) > _OPEN_DOCUMENTS:
            _documents.popitem(last=False)[1].close()
    _documents.move_to_end(key)
    return doc


def _render(pdf: PdfRef, index: int, *, dpi: int, nice_increment: int) -> tuple[np.ndarray, PageContent]:
    _as_batch_work(nice_increment)
    return render_document_page(_document(pdf), index, dpi=dpi)


def _page_png(pdf: PdfRef, index: int, *, dpi: int, nice_increment: int) -> bytes:
    _as_batch_work(nice_increment)
    image, _ = render_document_page(_document(pdf), index, dpi=dpi)
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _markdown(pdf: PdfRef, result: AnalyzeResult, *, nice_increment: int) -> str:
    _as_batch_work(nice_increment)
    doc = _document(pdf)
    tables = {
        (page.number, i): table_markdown(doc, page.number, region.box)
        for page in result.pages
        for i, region in enumerate(page.regions)
        if region.label == "table"
    }
    return document_markdown(result, tables=tables)


def _annotate(
    image: np.ndarray, regions: list[Drawn], *, labels: Sequence[str] = LABELS, nice_increment: int
) -> bytes:
    _as_batch_work(nice_increment)
    return draw_regions(image, regions, labels=labels)


# (Typed Any: Ray's stubs do not model keyword arguments of remote functions.)
_remote: Any = ray.remote
# Validate a PDF and list its pages: ``.remote(pdf, dpi=, max_pages=, max_page_pixels=)``.
# (Short, and on the path of an upload's answer: it keeps the normal priority.)
inspect_task: Any = _remote(max_retries=_RETRIES)(inspect_pdf)
# Page ``index`` (0-based) as pixels and its content (words, graphics, ruled tables): two objects, two refs.
# ``.remote(PdfRef(ref), index, dpi=, nice_increment=)``
render_task: Any = _remote(num_returns=2, max_retries=_RETRIES)(_render)
# The page with its regions drawn, as PNG bytes:
# ``.remote(image, [(label, score, box_px, mask_px | None), ...], labels=, nice_increment=)``.
annotate_task: Any = _remote(max_retries=_RETRIES)(_annotate)
# The analysis as Markdown, tables read from the PDF's own structure:
# ``.remote(PdfRef(ref), result, nice_increment=)``.
markdown_task: Any = _remote(max_retries=_RETRIES)(_markdown)
# Page ``index`` (0-based) as a PNG, nothing drawn: ``.remote(PdfRef(ref), index, dpi=, nice_increment=)``.
page_png_task: Any = _remote(max_retries=_RETRIES)(_page_png)
