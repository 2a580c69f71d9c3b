"""Export a trained layout detector as the Detector serves it: fp16 weights, a clean ``config.yaml`` and
``labels.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from serve_app.core.layout import LABELS
from serve_app.models.layout import CONFIG_FILE, LABELS_FILE, WEIGHTS_FILE

if TYPE_CHECKING:
    import torch
    from detectron2.config import CfgNode


def fp16_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with floating-point tensors stored in half precision."""
    return {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).clone()
        for k, v in model.state_dict().items()
    }


def export_model(model: torch.nn.Module, cfg: CfgNode, out_dir: Path) -> Path:
    """Write ``model_fp16.pth``, ``config.yaml`` and ``labels.json`` into ``out_dir``; return it."""
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(fp16_state_dict(model), out_dir / WEIGHTS_FILE)
    export_cfg = cfg.clone()
    export_cfg.defrost()
    export_cfg.MODEL.WEIGHTS = ""
    export_cfg.DATASETS.TRAIN = ()
    export_cfg.DATASETS.TEST = ()
    export_cfg.OUTPUT_DIR = ""
    (out_dir / CONFIG_FILE).write_text(export_cfg.dump(), encoding="utf-8")
    (out_dir / LABELS_FILE).write_text(json.dumps(list(LABELS)) + "\n", encoding="utf-8")
    return out_dir
