"""Ray tasks for the CPU-heavy page work, so no replica's event loop ever renders or draws.

Each rendered page is the return value of a task: it goes into the object store once, owned by the
caller, and Detector replicas read it by reference. The tasks delegate to pure ``serve_app.core``.
"""

from __future__ import annotations

from typing import Any

import ray

from serve_app.core.annotate import draw_regions
from serve_app.core.pdf import inspect_pdf, render_page_at

# Tasks are retried if their worker process dies (not on application errors such as a bad page).
# (Typed Any: Ray's stubs do not model keyword arguments of remote functions.)
_RETRIES = 2
_remote: Any = ray.remote

# Validate a PDF and list its pages: ``.remote(pdf, dpi=, max_pages=, max_page_pixels=)``.
inspect_task: Any = _remote(max_retries=_RETRIES)(inspect_pdf)
# Page ``index`` (0-based) as pixels and its text-layer words: two objects, two references.
render_task: Any = _remote(num_returns=2, max_retries=_RETRIES)(render_page_at)
# The page with its regions drawn, as PNG bytes: ``.remote(image, [(label, score, box_px), ...])``.
annotate_task: Any = _remote(max_retries=_RETRIES)(draw_regions)
