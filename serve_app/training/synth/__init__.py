"""Synthetic PubLayNet-style document pages for training the layout detector.

Every document is written as a real PDF with PyMuPDF (Base-14 fonts, vector graphics and embedded raster
images), each page is rendered to PNG, and ground-truth boxes for the five PubLayNet categories
(``serve_app.core.layout.LABELS``) are derived from what was actually written: the union of the words found
in the PDF text layer inside a region plus the extents of the graphics drawn for it. Running headers,
footers and page numbers are drawn as distractors and are not labelled, as in PubLayNet.

Everything is deterministic in the seed: all randomness flows from ``random.Random(seed)``.

Modules, bottom-up: ``geometry`` (rectangles), ``canvas`` (the PDF content-stream writer and font
metrics), ``text`` (words and line breaking), ``style`` (document-wide style), ``charts`` (figure
painters), ``blocks`` (paragraphs, headings, lists, tables, figures), ``page`` (page composition, ground
truth, ``generate_document``) and ``dataset`` (the COCO writer and CLI).

CLI::

    python -m serve_app.training.synth --out DIR --seed 0 --docs 50 --pages 4 --dpi 72
"""

from serve_app.training.synth.dataset import document_seeds, main, write_dataset
from serve_app.training.synth.geometry import Rect, intersection_area
from serve_app.training.synth.page import SyntheticDocument, SyntheticPage, TruthRegion, generate_document
from serve_app.training.synth.style import PAGE_SIZES

__all__ = [
    "PAGE_SIZES",
    "Rect",
    "SyntheticDocument",
    "SyntheticPage",
    "TruthRegion",
    "document_seeds",
    "generate_document",
    "intersection_area",
    "main",
    "write_dataset",
]
