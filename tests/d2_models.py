"""detectron2 models as a user makes them, for the tests: trained with the stock ``DefaultTrainer``, or built
by ``build_model`` and saved by ``DetectionCheckpointer`` (random weights). Small on purpose (ResNet-18,
narrow heads, 128-pixel inputs), so they train and load in seconds on 2 cores.

The trained model has its own two classes, ``stamp`` (red squares) and ``signature`` (blue bars), drawn on
white "pages"; ``pdf_with_shapes`` makes a real PDF page with the same shapes for the served model to find.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf

LABELS = ("stamp", "signature")
RED = (220, 30, 30)
BLUE = (30, 30, 220)
PAGE_PX = (160, 128)  # training image height, width: a page at the tiny config's 128-pixel input size


def tiny_cfg(num_classes: int) -> Any:
    from serve_app.training.detector_config import build_cfg

    cfg = build_cfg(tiny=True)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    cfg.MODEL.RETINANET.NUM_CLASSES = num_classes
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def _shapes_page(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
    height, width = PAGE_PX
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    boxes = []
    # A red square (stamp) in the top half, a blue bar (signature) in the bottom half.
    side = int(rng.integers(24, 40))
    x, y = int(rng.integers(4, width - side - 4)), int(rng.integers(4, height // 2 - side))
    image[y : y + side, x : x + side] = RED
    boxes.append((0, [x, y, x + side, y + side]))
    w, h = int(rng.integers(40, 90)), int(rng.integers(8, 16))
    x, y = int(rng.integers(4, width - w - 4)), int(rng.integers(height // 2 + 4, height - h - 4))
    image[y : y + h, x : x + w] = BLUE
    boxes.append((1, [x, y, x + w, y + h]))
    return image, boxes


def train_tiny(out_dir: Path, *, iterations: int = 100, seed: int = 0) -> Path:
    """Train a two-class Faster R-CNN with detectron2's stock ``DefaultTrainer``, as its tutorial does,
    and write what a user would upload: ``config.yaml`` (``cfg.dump()``), ``model_final.pth``,
    ``labels.json`` (plus the trainer's own ``last_checkpoint``, ``metrics.json`` and events file)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.engine import DefaultTrainer
    from detectron2.structures import BoxMode
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    images = out_dir.parent / f"{out_dir.name}-images"
    images.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(16):
        image, boxes = _shapes_page(rng)
        path = images / f"{i}.png"
        Image.fromarray(image).save(path)
        records.append(
            {
                "file_name": str(path),
                "image_id": i,
                "height": image.shape[0],
                "width": image.shape[1],
                "annotations": [
                    {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": cls} for cls, box in boxes
                ],
            }
        )
    name = f"shapes_{out_dir.name}"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: records)
        MetadataCatalog.get(name).thing_classes = list(LABELS)
    cfg = tiny_cfg(len(LABELS))
    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = ()
    cfg.SOLVER.MAX_ITER = iterations
    cfg.SOLVER.BASE_LR = 0.02
    cfg.SOLVER.WARMUP_ITERS = 10
    cfg.SOLVER.STEPS = ()
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    cfg.SOLVER.CHECKPOINT_PERIOD = 10 * iterations
    cfg.OUTPUT_DIR = str(out_dir)
    cfg.SEED = seed
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    # A handful of iterations from scratch do not make a good detector: keep every detection, so the
    # served model always answers with its own labels (what the tests check), whatever its scores.
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    (out_dir / "config.yaml").write_text(cfg.dump())
    (out_dir / "labels.json").write_text(json.dumps(list(LABELS)))
    return out_dir


def random_model(out_dir: Path, architecture: str, *, labels: tuple[str, ...] = LABELS) -> Path:
    """A model built by ``build_model`` with random weights and saved by ``DetectionCheckpointer``:
    ``architecture`` is ``mask_rcnn`` or ``retinanet``. Score thresholds are low so it finds something."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    cfg = tiny_cfg(len(labels))
    if architecture == "mask_rcnn":
        cfg.MODEL.MASK_ON = True
        cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 16
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    elif architecture == "retinanet":
        cfg.MODEL.META_ARCHITECTURE = "RetinaNet"
        cfg.MODEL.BACKBONE.NAME = "build_retinanet_resnet_fpn_backbone"
        cfg.MODEL.RESNETS.OUT_FEATURES = ["res3", "res4", "res5"]
        cfg.MODEL.FPN.IN_FEATURES = ["res3", "res4", "res5"]
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[16], [32], [64], [128], [256]]
        cfg.MODEL.RETINANET.NUM_CONVS = 1
        cfg.MODEL.RETINANET.SCORE_THRESH_TEST = 0.0
        cfg.MODEL.RETINANET.TOPK_CANDIDATES_TEST = 50
    else:
        raise ValueError(architecture)
    torch.manual_seed(0)
    model = build_model(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    DetectionCheckpointer(model, save_dir=str(out_dir)).save("model_final")
    (out_dir / "config.yaml").write_text(cfg.dump())
    (out_dir / "labels.json").write_text(json.dumps(list(labels)))
    return out_dir


def upload(client: Any, bucket: str, prefix: str, directory: Path) -> str:
    """Copy the files of ``directory`` (not sub-folders) to ``s3://bucket/prefix/``; return that URI."""
    for path in sorted(directory.iterdir()):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.name}")
    return f"s3://{bucket}/{prefix}/"


def pdf_with_shapes() -> tuple[bytes, dict[str, tuple[float, float, float, float]]]:
    """A one-page PDF (Letter) with a red square and a blue bar, as the tiny model was trained on, and
    their rectangles in PDF points by label."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    shapes = {"stamp": (200.0, 120.0, 360.0, 280.0), "signature": (150.0, 560.0, 450.0, 610.0)}
    for label, colour in (("stamp", RED), ("signature", BLUE)):
        fill = tuple(c / 255 for c in colour)
        page.draw_rect(pymupdf.Rect(*shapes[label]), color=fill, fill=fill)
    data: bytes = doc.tobytes()
    return data, shapes
