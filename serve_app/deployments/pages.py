"""Ray tasks for the CPU-heavy page work, so no replica's event loop ever renders or draws.

Each rendered page is the return value of a task: it goes into the object store once, owned by the
caller, and Detector replicas read it by reference. The tasks delegate to pure ``serve_app.core``.
Rendering and drawing are batch work: their worker processes run at a higher nice value (like the
Detector's), so interactive requests win the CPU when it is contended.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import ray

from serve_app.core.annotate import draw_regions
from serve_app.core.layout import Box
from serve_app.core.pdf import Word, inspect_pdf, render_page_at
from serve_app.deployments.resources import set_process_nice

# Tasks are retried if their worker process dies (not on application errors such as a bad page).
# (Typed Any: Ray's stubs do not model keyword arguments of remote functions.)
_RETRIES = 2
BATCH_NICE_INCREMENT = 5
_remote: Any = ray.remote
_niced = False


def _as_batch_work() -> None:
    global _niced
    if not _niced:  # once per worker process; it only ever runs these tasks
        set_process_nice(os.getpriority(os.PRIO_PROCESS, 0) + BATCH_NICE_INCREMENT)
        _niced = True


def _render(pdf: bytes, index: int, *, dpi: int) -> tuple[np.ndarray, list[Word]]:
    _as_batch_work()
    return render_page_at(pdf, index, dpi=dpi)


def _annotate(image: np.ndarray, regions: list[tuple[str, float, Box]]) -> bytes:
    _as_batch_work()
    return draw_regions(image, regions)


# Validate a PDF and list its pages: ``.remote(pdf, dpi=, max_pages=, max_page_pixels=)``.
# (Short, and on the path of an upload's answer: it keeps the normal priority.)
inspect_task: Any = _remote(max_retries=_RETRIES)(inspect_pdf)
# Page ``index`` (0-based) as pixels and its text-layer words: two objects, two references.
render_task: Any = _remote(num_returns=2, max_retries=_RETRIES)(_render)
# The page with its regions drawn, as PNG bytes: ``.remote(image, [(label, score, box_px), ...])``.
annotate_task: Any = _remote(max_retries=_RETRIES)(_annotate)
