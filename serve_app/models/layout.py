"""detectron2 detectors: build a model once from its config, load its checkpoint, predict pages (no Ray).

The shipped layout model and any user's detectron2 model load the same way (``serve_app.models.source``
finds their files).

Used by the Detector deployment and by training/evaluation alike; training-only code (export, metrics)
lives in ``serve_app.training``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serve_app.core.errors import InvalidInput, ModelUnavailable
from serve_app.core.layout import check_page_image
from serve_app.models.source import (
    CONFIG_FILE,
    LABELS_FILE,
    SHIPPED,
    SHIPPED_DIR,
    ModelFiles,
    locate,
    read_labels,
)

if TYPE_CHECKING:
    import torch
    from detectron2.config import CfgNode

DEFAULT_MODEL_DIR = SHIPPED_DIR
WEIGHTS_FILE = "model_fp16.pth"  # the shipped model's checkpoint (half precision; see its MODEL_CARD.md)
# META_ARCHITECTUREs whose inference returns "instances" (boxes, scores, classes and maybe masks).
ARCHITECTURES = ("GeneralizedRCNN", "RetinaNet", "FCOS", "PanopticFPN")
SMOKE_IMAGE_SIZE = 64  # pixels: a blank page run once at load, so a model that cannot run fails at load
MAX_POLYGON_POINTS = 64


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


def load_cfg(path: Path) -> CfgNode:
    """Read a ``config.yaml`` (as ``cfg.dump()`` writes it) over detectron2's defaults.

    ``path`` may also be a model directory holding ``config.yaml``.
    """
    import_detectron2()
    from detectron2.config import get_cfg

    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.is_file():
        raise ModelUnavailable(f"detectron2 config not found: {path}")
    cfg = get_cfg()
    try:
        cfg.merge_from_file(str(path))
    except Exception as exc:  # yacs raises KeyError, ValueError, AssertionError, yaml errors...
        raise ModelUnavailable(
            f"{path.name} does not parse as a detectron2 config: {type(exc).__name__}: {exc}"
        ) from None
    return cfg


def num_classes(cfg: CfgNode) -> int:
    """The class count the model's head was built for."""
    arch = str(cfg.MODEL.META_ARCHITECTURE)
    if arch == "RetinaNet":
        return int(cfg.MODEL.RETINANET.NUM_CLASSES)
    if arch == "FCOS":
        return int(cfg.MODEL.FCOS.NUM_CLASSES)
    return int(cfg.MODEL.ROI_HEADS.NUM_CLASSES)


def check_architecture(cfg: CfgNode) -> None:
    """``ModelUnavailable`` for what cannot run here: detectron2's C extension is not built for this
    Python, so deformable convolution and rotated boxes are out; so are models without instance output."""
    arch = str(cfg.MODEL.META_ARCHITECTURE)
    if arch not in ARCHITECTURES:
        raise ModelUnavailable(
            f"META_ARCHITECTURE {arch} is not served (instance detectors only: {', '.join(ARCHITECTURES)})"
        )
    needs_extension = []
    if any(bool(x) for x in cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE):
        needs_extension.append("deformable convolution (MODEL.RESNETS.DEFORM_ON_PER_STAGE)")
    if "Rotated" in str(cfg.MODEL.ANCHOR_GENERATOR.NAME) or str(cfg.MODEL.PROPOSAL_GENERATOR.NAME) == "RRPN":
        needs_extension.append("rotated boxes (RRPN / RotatedAnchorGenerator)")
    if "Rotated" in str(cfg.MODEL.ROI_HEADS.NAME):
        needs_extension.append(f"rotated boxes ({cfg.MODEL.ROI_HEADS.NAME})")
    if needs_extension:
        raise ModelUnavailable(
            "this model needs detectron2's C extension, which is not available on this Python: "
            + "; ".join(needs_extension)
        )


def model_labels(files: ModelFiles, cfg: CfgNode) -> tuple[str, ...]:
    """Class names: ``labels.json`` beside the config, else the metadata of the config's dataset.

    Raises ``ModelUnavailable`` when there are none or their count differs from the model's classes.
    """
    if files.labels is not None:
        labels = read_labels(files.labels)
        where = LABELS_FILE
    else:
        labels, where = _dataset_labels(cfg)
        if not labels:
            raise ModelUnavailable(
                f"model {files.uri} has no {LABELS_FILE} and its config names no dataset detectron2 knows "
                f"the classes of; add {LABELS_FILE} with the class names in class-id order"
            )
    expected = num_classes(cfg)
    if len(labels) != expected:
        raise ModelUnavailable(
            f"model {files.uri}: {where} names {len(labels)} classes "
            f"but the config's NUM_CLASSES is {expected}"
        )
    return tuple(labels)


def _dataset_labels(cfg: CfgNode) -> tuple[list[str], str]:
    try:
        import detectron2.data.datasets  # noqa: F401  (registers the built-in datasets' metadata)
        from detectron2.data import MetadataCatalog
    except ImportError:
        return [], ""
    for name in [*cfg.DATASETS.TEST, *cfg.DATASETS.TRAIN]:
        classes = MetadataCatalog.get(name).get("thing_classes", None)
        if classes:
            return [str(c) for c in classes], f"dataset {name}"
    return [], ""


@dataclass(frozen=True)
class Detections:
    """What the model found on one image, best score first; ``masks``: N x H x W booleans, or None."""

    boxes: np.ndarray  # N x 4 float32, x0, y0, x1, y1 in input pixels
    scores: np.ndarray  # N float32
    classes: np.ndarray  # N int64, indices into the model's labels
    masks: np.ndarray | None = None


class LayoutPredictor:
    """A detectron2 model in memory: ``detect`` maps an RGB page image to boxes, scores, classes (and masks).

    Built one of three ways:

    - from a model's files (``files``, or ``model_dir``: a directory as ``serve_app.models.source`` reads it;
      default: the shipped layout model). The checkpoint goes through detectron2's ``DetectionCheckpointer``,
      so every format it reads loads; weights that do not fit the config raise ``ModelUnavailable``;
    - from ``cfg`` (random weights unless ``MODEL.WEIGHTS`` names a checkpoint), for training and tests;
    - with ``weights`` (every parameter and buffer, as ``serve_app.models.weights.module_arrays`` exports
      them): the model is built on the ``meta`` device and bound to those arrays without a copy; the
      checkpoint is not read.

    Every model built from files runs once on a blank image before it is returned, so a model that cannot
    run here fails at load, not on the first page.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        files: ModelFiles | None = None,
        cfg: CfgNode | None = None,
        labels: tuple[str, ...] | None = None,
        num_threads: int = 1,
        weights: Mapping[str, np.ndarray] | None = None,
    ):
        import torch

        modeling = import_detectron2()
        torch.set_num_threads(num_threads)
        self.num_threads = num_threads
        if cfg is None:
            if files is None:
                files = locate(str(model_dir) if model_dir is not None else SHIPPED)
            cfg = load_cfg(files.config)
            check_architecture(cfg)
            labels = model_labels(files, cfg)
        else:
            cfg = cfg.clone()
            labels = labels or tuple(f"class_{i}" for i in range(num_classes(cfg)))
        cfg.defrost()
        cfg.MODEL.DEVICE = "cpu"
        self.cfg = cfg
        self.files = files
        self.labels: tuple[str, ...] = tuple(labels)
        self.has_masks = bool(cfg.MODEL.MASK_ON) and str(cfg.MODEL.META_ARCHITECTURE) != "RetinaNet"
        try:
            if weights is not None:
                self.model = _build_on_weights(modeling, cfg, weights)
            else:
                self.model = modeling.build_model(cfg)
        except ImportError as exc:
            raise ModelUnavailable(f"this model needs detectron2's C extension ({exc})") from None
        except Exception as exc:
            raise ModelUnavailable(
                f"detectron2 cannot build this model: {type(exc).__name__}: {exc}"
            ) from None
        if weights is None and files is not None:
            load_checkpoint(self.model, files.checkpoint)
        elif weights is None and cfg.MODEL.WEIGHTS:
            load_checkpoint(self.model, Path(cfg.MODEL.WEIGHTS))
        self.model.eval()
        self.input_format = str(cfg.INPUT.FORMAT)
        # Built once, as detectron2's DefaultPredictor does.
        from detectron2.data import transforms as T

        min_size = int(cfg.INPUT.MIN_SIZE_TEST)
        self.aug = T.ResizeShortestEdge([min_size, min_size], int(cfg.INPUT.MAX_SIZE_TEST))
        if files is not None:
            self._smoke_test()

    def _smoke_test(self) -> None:
        blank = np.full((SMOKE_IMAGE_SIZE, SMOKE_IMAGE_SIZE, 3), 255, dtype=np.uint8)
        try:
            self.detect(blank, masks=self.has_masks)
        except ImportError as exc:
            raise ModelUnavailable(f"this model needs detectron2's C extension ({exc})") from None
        except Exception as exc:
            raise ModelUnavailable(f"the model fails on a blank page: {type(exc).__name__}: {exc}") from None

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, scores and class ids on an H x W x 3 uint8 RGB image (see ``detect``)."""
        found = self.detect(image)
        return found.boxes, found.scores, found.classes

    def detect(self, image: np.ndarray, *, masks: bool = False) -> Detections:
        """Detect regions on an H x W x 3 uint8 RGB image, best score first.

        ``masks``: also return each region's mask (H x W booleans), when the model predicts masks.
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
        found_masks = None
        if masks and instances.has("pred_masks"):
            found_masks = instances.pred_masks.numpy().astype(bool).reshape(-1, height, width)[order]
        return Detections(boxes[order], scores[order], classes[order], found_masks)


def load_checkpoint(model: torch.nn.Module, path: Path) -> None:
    """Load a checkpoint with detectron2's ``DetectionCheckpointer`` (``.pth``, ``.pkl``, fp16 or fp32),
    keeping its usual tolerance (old pixel_mean/std and cell_anchors keys), and raise ``ModelUnavailable``
    when anything else does not fit: missing keys (they would stay random), unexpected keys, wrong shapes."""
    from detectron2.checkpoint import DetectionCheckpointer

    class Checked(DetectionCheckpointer):
        incompatible: Any = None

        def _load_model(self, checkpoint: Any) -> Any:
            self.incompatible = super()._load_model(checkpoint)
            return self.incompatible

    if not Path(path).is_file():  # fvcore would log "no checkpoint" and keep random weights
        raise ModelUnavailable(f"checkpoint not found: {path}")
    checkpointer = Checked(model)
    try:
        checkpointer.load(str(path))
    except Exception as exc:
        raise ModelUnavailable(
            f"cannot read checkpoint {Path(path).name}: {type(exc).__name__}: {exc}"
        ) from None
    found = checkpointer.incompatible
    problems = []
    if found is not None:
        shapes = [f"{k} {tuple(a)} in file, {tuple(b)} in model" for k, a, b in found.incorrect_shapes]
        shaped = {k for k, _, _ in found.incorrect_shapes}
        missing = [k for k in found.missing_keys if k not in shaped]
        for what, keys in (
            ("wrong shape", shapes),
            ("missing", missing),
            ("unexpected", found.unexpected_keys),
        ):
            if keys:
                listed = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
                problems.append(f"{len(keys)} {what}: {listed}")
    if problems:
        raise ModelUnavailable(
            f"checkpoint {Path(path).name} does not fit the config ({'; '.join(problems)}); "
            "was it trained with this config.yaml?"
        )


def weight_files(model_dir: Path | None = None) -> list[Path]:
    """The files a model is loaded from (``serve_app.models.weights.files_key`` keys on them)."""
    return locate(str(model_dir) if model_dir is not None else SHIPPED).paths


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
