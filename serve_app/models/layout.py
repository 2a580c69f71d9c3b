"""The layout detector: build the detectron2 model once, load its weights, predict pages (no Ray).

Used by the Detector deployment and by training/evaluation alike; training-only code (export, metrics)
lives in ``serve_app.training``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serve_app.core.errors import InvalidInput, ModelUnavailable
from serve_app.core.layout import check_page_image

if TYPE_CHECKING:
    import torch
    from detectron2.config import CfgNode

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "layout_detector"
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model_fp16.pth"


def import_detectron2() -> Any:
    """``detectron2.modeling``, or ``ModelUnavailable`` saying how to install detectron2."""
    try:
        import detectron2.modeling
    except (ImportError, OSError) as exc:
        raise ModelUnavailable(
            f"detectron2 is not importable ({type(exc).__name__}: {exc}); "
            "install it with scripts/install_detectron2.sh"
        ) from exc
    return detectron2.modeling


def load_cfg(model_dir: Path) -> CfgNode:
    """Read ``config.yaml`` from an exported model directory."""
    import_detectron2()
    from detectron2.config import get_cfg

    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise ModelUnavailable(f"layout detector config not found: {path} (train and export the model first)")
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    return cfg


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load an exported (fp16) state dict and return it in fp32."""
    import torch

    if not Path(path).is_file():
        raise ModelUnavailable(
            f"layout detector weights not found: {path} (train and export the model first)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


class LayoutPredictor:
    """A layout detector held in memory: ``predict`` maps an RGB page image to boxes, scores and class ids.

    With ``cfg`` given the model is built from it (random weights unless ``MODEL.WEIGHTS`` names a
    checkpoint); otherwise ``config.yaml`` and ``model_fp16.pth`` are read from ``model_dir``
    (default ``models/layout_detector``). With ``weights`` given (every parameter and buffer, as
    ``serve_app.models.weights.module_arrays`` exports them), the model is built on the ``meta`` device
    and bound to those arrays without a copy; the weights file is not read.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        cfg: CfgNode | None = None,
        num_threads: int = 1,
        weights: Mapping[str, np.ndarray] | None = None,
    ):
        import torch

        modeling = import_detectron2()
        torch.set_num_threads(num_threads)
        self.num_threads = num_threads
        state: dict[str, torch.Tensor] | None = None
        if cfg is None:
            model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
            cfg = load_cfg(model_dir)
            if weights is None:
                state = load_state_dict(model_dir / WEIGHTS_FILE)
        else:
            cfg = cfg.clone()
        self.cfg = cfg
        if weights is not None:
            self.model = _build_on_weights(modeling, cfg, weights)
        else:
            self.model = modeling.build_model(cfg)
        if state is not None:
            self.model.load_state_dict(state, strict=True)
        elif weights is None and cfg.MODEL.WEIGHTS:
            from detectron2.checkpoint import DetectionCheckpointer

            DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        self.model.eval()
        self.input_format = str(cfg.INPUT.FORMAT)
        # Built once, as detectron2's DefaultPredictor does.
        from detectron2.data import transforms as T

        min_size = int(cfg.INPUT.MIN_SIZE_TEST)
        self.aug = T.ResizeShortestEdge([min_size, min_size], int(cfg.INPUT.MAX_SIZE_TEST))

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect regions on an H x W x 3 uint8 RGB image.

        Returns boxes (N x 4 float32, x0, y0, x1, y1 in input pixels), scores (N float32) and class ids
        (N int64, indices into ``LABELS``), best score first.
        """
        import torch

        image = _check_image(image)
        height, width = image.shape[:2]
        if self.input_format == "BGR":
            image = image[:, :, ::-1]
        resized = self.aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)), dtype=torch.float32)
        with torch.inference_mode():
            instances = self.model([{"image": tensor, "height": height, "width": width}])[0]["instances"]
        boxes = instances.pred_boxes.tensor.numpy().astype(np.float32).reshape(-1, 4)
        scores = instances.scores.numpy().astype(np.float32).reshape(-1)
        classes = instances.pred_classes.numpy().astype(np.int64).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order], classes[order]


def weight_files(model_dir: Path | None = None) -> list[Path]:
    """The files a shipped model is loaded from (``serve_app.models.weights.files_key`` keys on them)."""
    model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    return [model_dir / CONFIG_FILE, model_dir / WEIGHTS_FILE]


def _build_on_weights(modeling: Any, cfg: CfgNode, weights: Mapping[str, np.ndarray]) -> torch.nn.Module:
    """Build the architecture without allocating its tensors, then bind ``weights`` (zero-copy)."""
    import torch

    from serve_app.models.weights import bind_arrays

    meta_cfg = cfg.clone()
    meta_cfg.defrost()
    meta_cfg.MODEL.DEVICE = "meta"  # build_model moves the model to MODEL.DEVICE
    with torch.device("meta"):
        model = modeling.build_model(meta_cfg)
    bind_arrays(model, weights)
    return model


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    check_page_image(image)
    if min(image.shape[:2]) < 8:
        raise InvalidInput(f"image too small: {image.shape[1]} x {image.shape[0]} pixels")
    return image
