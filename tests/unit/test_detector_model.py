"""Tests for the layout detector's config, predictor, fp16 export and training loop (tiny random models)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from serve_app.core.errors import InvalidInput, ModelUnavailable
from serve_app.core.layout import LABELS
from serve_app.models.layout import CONFIG_FILE, WEIGHTS_FILE, LayoutPredictor, load_cfg
from serve_app.training import synth
from serve_app.training.detector_config import build_cfg
from serve_app.training.export import export_model

MAX_WEIGHT_BYTES = 50 * 1024 * 1024
# detectron2's anchor generator calls torch.meshgrid without ``indexing`` (third-party, harmless).
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    document = synth.generate_document(seed=5, num_pages=1, dpi=36)
    with Image.open(io.BytesIO(document.pages[0].png)) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def predictor() -> LayoutPredictor:
    torch.manual_seed(0)
    return LayoutPredictor(cfg=build_cfg(tiny=True), num_threads=1)


def test_config_describes_a_gn_resnet18_faster_rcnn() -> None:
    cfg = build_cfg()
    assert cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
    assert not cfg.MODEL.MASK_ON
    assert cfg.MODEL.DEVICE == "cpu"
    assert cfg.MODEL.RESNETS.DEPTH == 18
    assert cfg.MODEL.RESNETS.NORM == cfg.MODEL.FPN.NORM == "GN"
    assert cfg.MODEL.BACKBONE.FREEZE_AT == 0
    assert len(LABELS) == cfg.MODEL.ROI_HEADS.NUM_CLASSES == 5
    assert cfg.INPUT.RANDOM_FLIP == "none"
    assert min(cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS[0]) <= 0.1


def test_full_model_fits_the_weight_budget_in_fp16() -> None:
    from detectron2.modeling import build_model

    model = build_model(build_cfg())
    n_params = sum(p.numel() for p in model.state_dict().values() if p.is_floating_point())
    assert 2 * n_params < MAX_WEIGHT_BYTES


def test_predict_returns_typed_arrays(predictor: LayoutPredictor, page: np.ndarray) -> None:
    boxes, scores, classes = predictor.predict(page)
    n = len(scores)
    assert boxes.shape == (n, 4) and boxes.dtype == np.float32
    assert scores.shape == (n,) and scores.dtype == np.float32
    assert classes.shape == (n,) and classes.dtype == np.int64
    assert n <= predictor.cfg.TEST.DETECTIONS_PER_IMAGE
    assert np.all((scores >= 0) & (scores <= 1)) and np.all(np.diff(scores) <= 0)
    assert np.all((classes >= 0) & (classes < len(LABELS)))
    height, width = page.shape[:2]
    assert np.all(boxes >= -1e-3)
    assert np.all(boxes[:, [0, 2]] <= width + 1e-3) and np.all(boxes[:, [1, 3]] <= height + 1e-3)


def test_predict_rejects_non_rgb_images(predictor: LayoutPredictor) -> None:
    with pytest.raises(InvalidInput):
        predictor.predict(np.zeros((64, 64), dtype=np.uint8))
    with pytest.raises(InvalidInput):
        predictor.predict(np.zeros((64, 64, 3), dtype=np.float32))


def test_missing_model_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="config"):
        LayoutPredictor(tmp_path)
    (tmp_path / CONFIG_FILE).write_text(build_cfg(tiny=True).dump(), encoding="utf-8")
    with pytest.raises(ModelUnavailable, match="no checkpoint"):
        LayoutPredictor(tmp_path)


def test_fp16_export_roundtrip(predictor: LayoutPredictor, page: np.ndarray, tmp_path: Path) -> None:
    export_model(predictor.model, predictor.cfg, tmp_path)
    reloaded = load_cfg(tmp_path)
    for section in ("MODEL", "INPUT", "TEST"):
        assert yaml.safe_load(reloaded[section].dump()) == yaml.safe_load(predictor.cfg[section].dump())
    stored = torch.load(tmp_path / WEIGHTS_FILE, weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    loaded = LayoutPredictor(tmp_path, num_threads=1)
    original = predictor.model.state_dict()
    for name, value in loaded.model.state_dict().items():
        assert value.dtype == original[name].dtype
        torch.testing.assert_close(value, original[name], rtol=1e-3, atol=1e-4)
    # Same weights up to fp16 rounding: round the original model the same way, then outputs must agree.
    rounded = LayoutPredictor(cfg=predictor.cfg, num_threads=1)
    rounded.model.load_state_dict(loaded.model.state_dict())
    for a, b in zip(rounded.predict(page), loaded.predict(page), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


TINY_RUN = "--tiny --docs 1 --pages 2 --dpi 36 --batch 1 --log-period 1 --threads 1 --checkpoint-period 1"


def _tiny_run(tmp_path: Path, *flags: str) -> list[dict[str, Any]]:
    """Train the tiny model into ``tmp_path/run``; return the lines of its ``metrics.jsonl``."""
    from serve_app.training import train

    out = tmp_path / "run"
    paths = ["--out", str(out), "--data", str(tmp_path / "data")]
    train.train(train.parse_args([*TINY_RUN.split(), *paths, *flags]), process_start=time.monotonic())
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_tiny_training_run_checkpoints_and_exports(tmp_path: Path) -> None:
    out, export = tmp_path / "run", tmp_path / "export"
    records = _tiny_run(tmp_path, "--max-iter", "3", "--export", str(export))
    losses = [r for r in records if "total_loss" in r]
    assert [r["iteration"] for r in losses] == [0, 1, 2]
    assert all(np.isfinite(r["total_loss"]) and r["max_iter"] == 3 for r in losses)
    assert [r["event"] for r in records if "event" in r][-2:] == ["train_end", "exported"]
    # A checkpoint every iteration, the two most recent kept, plus the final one.
    checkpoints = sorted(path.name for path in out.glob("model_*.pth"))
    assert checkpoints == ["model_0000001.pth", "model_0000002.pth", "model_final.pth"]
    boxes, _, _ = LayoutPredictor(export, num_threads=1).predict(np.full((80, 60, 3), 255, dtype=np.uint8))
    assert boxes.shape[1] == 4


def test_tiny_training_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _tiny_run(tmp_path, "--max-iter", "3")
    # As if the run had been killed after the checkpoint of iteration 1.
    (out / "model_final.pth").unlink()
    (out / "last_checkpoint").write_text("model_0000001.pth", encoding="utf-8")
    before = len((out / "metrics.jsonl").read_text().splitlines())
    records = _tiny_run(tmp_path, "--max-iter", "3", "--resume")[before:]
    starts = [r for r in records if r.get("event") == "train_start"]
    assert [(r["start_iter"], r["max_iter"]) for r in starts] == [(2, 3)]
    assert [r["iteration"] for r in records if "total_loss" in r] == [2]
    assert (out / "model_final.pth").is_file()


def test_lr_schedule_warms_up_then_anneals_to_zero() -> None:
    from serve_app.training.train import lr_factor

    factors = [lr_factor(i, total=100, warmup=10, warmup_factor=0.01) for i in range(101)]
    assert factors[0] == pytest.approx(0.01)
    assert factors[10] == pytest.approx(1.0)
    steps = np.diff(factors)
    assert np.all(steps[:10] > 0) and np.all(steps[10:] <= 0)
    assert factors[100] == pytest.approx(0.0, abs=1e-12)


def test_tiny_fine_tune_mixes_real_pages_at_the_asked_share(tmp_path: Path) -> None:
    # The first run makes the tiny synthetic set; the second also reads it as the "real" set.
    _tiny_run(tmp_path, "--max-iter", "1", "--export", str(tmp_path / "first"))
    records = _tiny_run(
        tmp_path,
        *("--max-iter", "2", "--real-data", str(tmp_path / "data"), "--real-share", "0.5"),
        *("--class-balance", "1.0"),
        *("--init", str(tmp_path / "first" / "model_fp16.pth")),
    )
    starts = [r for r in records if r.get("event") == "train_start"]
    assert (starts[-1]["real_share"], starts[-1]["class_balance"]) == (0.5, 1.0)
    assert [r["iteration"] for r in records if "total_loss" in r][-2:] == [0, 1]


def test_real_repeat_factor_gives_real_pages_their_share() -> None:
    from serve_app.training.train import parse_args, real_repeat_factor

    # 2,000 synthetic pages drawn once per epoch; 4,000 real pages at half the samples: 0.5 each.
    assert real_repeat_factor(2000, 4000, 0.5) == pytest.approx(0.5)
    factor = real_repeat_factor(3000, 1000, 0.25)
    assert 1000 * factor / (3000 + 1000 * factor) == pytest.approx(0.25)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            real_repeat_factor(10, 10, bad)
    with pytest.raises(ValueError, match="need pages"):
        real_repeat_factor(0, 10, 0.5)
    with pytest.raises(SystemExit):
        parse_args(["--real-share", "0.5"])  # without --real-data
    with pytest.raises(SystemExit):
        parse_args(["--real-data", "x", "--class-balance", "1.0"])  # without --real-share


def test_balanced_factors_favour_rare_classes_and_keep_the_mean() -> None:
    from serve_app.training.train import balanced_factors

    def page(*classes: int) -> dict[str, object]:
        return {"annotations": [{"category_id": c} for c in classes]}

    # Class 0 on every page, class 1 on one page in four.
    records = [page(0, 1)] + [page(0)] * 3
    plain = balanced_factors(records, 0.5, None)
    assert plain.tolist() == [0.5] * 4
    tilted = balanced_factors(records, 0.5, 1.0)
    assert float(tilted.mean()) == pytest.approx(0.5)
    # The rare page is drawn sqrt(1 / 0.25) = 2 times as often as the others.
    assert float(tilted[0] / tilted[1]) == pytest.approx(2.0)
    assert tilted[1] == tilted[2] == tilted[3]
    with pytest.raises(ValueError, match="positive"):
        balanced_factors(records, 0.5, 0.0)
