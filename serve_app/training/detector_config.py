"""detectron2 configuration of the layout detector: a small Faster R-CNN trained from scratch on CPU.

The model is a Faster R-CNN (no masks) with a ResNet-18 FPN backbone. There are no pretrained weights here,
so every normalisation is GroupNorm (batch-size independent, works from a random init) and nothing is
frozen. Pages are rendered at 72 dpi (about 612 x 792 px) and resized so the short side is ``INPUT_SIZE``;
layout regions are large and regular, so low resolution is enough and buys training iterations on 2 cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serve_app.core.layout import LABELS

if TYPE_CHECKING:
    from detectron2.config import CfgNode

INPUT_SIZE = 448  # short side of the network input in pixels (72-dpi pages: 612 -> 448)
MAX_INPUT_SIZE = 672  # long-side cap (72-dpi letter/A4 pages at 448 short side are 580/634 long)
# Heights over widths of the anchors: titles and one-line captions are very wide, text columns are tall.
ASPECT_RATIOS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
ANCHOR_SIZES: tuple[int, ...] = (24, 48, 96, 192, 384)  # one size per FPN level p2..p6
# ImageNet statistics in RGB order; with GroupNorm everywhere the exact values matter little.
PIXEL_MEAN_RGB: tuple[float, ...] = (123.675, 116.28, 103.53)
PIXEL_STD_RGB: tuple[float, ...] = (58.395, 57.12, 57.375)


def build_cfg(*, weights: str | None = None, tiny: bool = False) -> CfgNode:
    """Return the layout detector's config; ``tiny=True`` gives a very small variant for fast unit tests.

    ``weights`` is a detectron2 checkpoint path (``MODEL.WEIGHTS``); ``None`` means random initialisation.
    """
    from detectron2.config import get_cfg

    cfg = get_cfg()
    _model(cfg)
    _backbone(cfg)
    _proposals(cfg)
    _heads(cfg)
    _input(cfg)
    _solver(cfg)
    cfg.MODEL.WEIGHTS = weights or ""
    if tiny:
        _shrink(cfg)
    return cfg


def _model(cfg: CfgNode) -> None:
    cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.MASK_ON = False
    cfg.MODEL.KEYPOINT_ON = False
    cfg.MODEL.LOAD_PROPOSALS = False
    cfg.MODEL.PIXEL_MEAN = list(PIXEL_MEAN_RGB)
    cfg.MODEL.PIXEL_STD = list(PIXEL_STD_RGB)
    cfg.SEED = 20240101
    cfg.CUDNN_BENCHMARK = False
    cfg.VIS_PERIOD = 0


def _backbone(cfg: CfgNode) -> None:
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0  # random init: train every stage, stem included
    resnets = cfg.MODEL.RESNETS
    resnets.DEPTH = 18
    resnets.RES2_OUT_CHANNELS = 64  # required for ResNet-18/34 (basic blocks)
    resnets.STEM_OUT_CHANNELS = 64
    resnets.NUM_GROUPS = 1
    resnets.WIDTH_PER_GROUP = 64
    resnets.STRIDE_IN_1X1 = False  # torchvision-style blocks; irrelevant for basic blocks but explicit
    resnets.RES5_DILATION = 1
    resnets.DEFORM_ON_PER_STAGE = [False, False, False, False]  # deformable conv needs the C extension
    resnets.NORM = "GN"
    resnets.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 128
    cfg.MODEL.FPN.NORM = "GN"
    cfg.MODEL.FPN.FUSE_TYPE = "sum"


def _proposals(cfg: CfgNode) -> None:
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
    cfg.MODEL.ANCHOR_GENERATOR.NAME = "DefaultAnchorGenerator"
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[s] for s in ANCHOR_SIZES]
    cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [list(ASPECT_RATIOS)]
    rpn = cfg.MODEL.RPN
    rpn.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
    rpn.BATCH_SIZE_PER_IMAGE = 256
    # A page holds about 5-30 regions: a few hundred proposals are plenty and keep the ROI heads cheap.
    rpn.PRE_NMS_TOPK_TRAIN = 1000
    rpn.POST_NMS_TOPK_TRAIN = 300
    rpn.PRE_NMS_TOPK_TEST = 500
    rpn.POST_NMS_TOPK_TEST = 200
    rpn.NMS_THRESH = 0.7


def _heads(cfg: CfgNode) -> None:
    roi = cfg.MODEL.ROI_HEADS
    roi.NAME = "StandardROIHeads"
    roi.NUM_CLASSES = len(LABELS)  # class ids 0..4; COCO category ids 1..5 map onto them in order
    roi.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    roi.BATCH_SIZE_PER_IMAGE = 128
    roi.POSITIVE_FRACTION = 0.25
    roi.SCORE_THRESH_TEST = 0.05  # low, so COCO AP sees the whole precision/recall curve
    roi.NMS_THRESH_TEST = 0.4  # layout regions never overlap
    box = cfg.MODEL.ROI_BOX_HEAD
    box.NAME = "FastRCNNConvFCHead"
    box.NUM_CONV = 0
    box.NUM_FC = 2
    box.FC_DIM = 1024
    box.POOLER_RESOLUTION = 7
    box.POOLER_SAMPLING_RATIO = 0
    box.POOLER_TYPE = "ROIAlignV2"
    box.CLS_AGNOSTIC_BBOX_REG = False
    cfg.TEST.DETECTIONS_PER_IMAGE = 100


def _input(cfg: CfgNode) -> None:
    cfg.INPUT.FORMAT = "RGB"
    cfg.INPUT.MIN_SIZE_TRAIN = (INPUT_SIZE,)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.MAX_SIZE_TRAIN = MAX_INPUT_SIZE
    cfg.INPUT.MIN_SIZE_TEST = INPUT_SIZE
    cfg.INPUT.MAX_SIZE_TEST = MAX_INPUT_SIZE
    cfg.INPUT.RANDOM_FLIP = "none"  # mirrored text is not a page layout
    cfg.INPUT.CROP.ENABLED = False
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = False
    cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True


def _solver(cfg: CfgNode) -> None:
    solver = cfg.SOLVER
    solver.IMS_PER_BATCH = 2
    solver.BASE_LR = 5e-4  # AdamW; warmup then cosine to zero over MAX_ITER (training.train.CosineLR)
    solver.WEIGHT_DECAY = 0.05
    solver.WEIGHT_DECAY_NORM = 0.0
    solver.MAX_ITER = 2000
    solver.WARMUP_ITERS = 100
    solver.WARMUP_FACTOR = 0.01
    solver.WARMUP_METHOD = "linear"
    solver.CHECKPOINT_PERIOD = 100
    solver.CLIP_GRADIENTS.ENABLED = True
    solver.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
    solver.CLIP_GRADIENTS.CLIP_VALUE = 5.0
    solver.CLIP_GRADIENTS.NORM_TYPE = 2.0
    solver.AMP.ENABLED = False
    cfg.TEST.EVAL_PERIOD = 0


def _shrink(cfg: CfgNode) -> None:
    """A tiny variant: narrow FPN and head, few proposals, small input (unit tests only)."""
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 64
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[8], [16], [32], [64], [128]]
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 100
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 50
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 100
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.TEST.DETECTIONS_PER_IMAGE = 20
    cfg.INPUT.MIN_SIZE_TRAIN = (128,)
    cfg.INPUT.MAX_SIZE_TRAIN = 192
    cfg.INPUT.MIN_SIZE_TEST = 128
    cfg.INPUT.MAX_SIZE_TEST = 192
    cfg.SOLVER.MAX_ITER = 2
    cfg.SOLVER.WARMUP_ITERS = 1
