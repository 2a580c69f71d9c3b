"""Loading detectron2 models as users save them (no Ray): Mask R-CNN and RetinaNet from
DetectionCheckpointer, model-zoo pickles, labels from labels.json or a dataset detectron2 knows, and a
clear error for every bad model."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from serve_app.core.errors import ModelUnavailable
from serve_app.core.layout import to_regions
from serve_app.models.layout import LayoutPredictor, load_cfg
from serve_app.models.source import locate
from tests.d2_models import LABELS, random_model

PAGE = np.full((200, 160, 3), 255, dtype=np.uint8)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {arch: random_model(root / arch, arch) for arch in ("mask_rcnn", "retinanet")}


def copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def edit_config(directory: Path, **changes: object) -> None:
    cfg = load_cfg(directory)
    cfg.defrost()
    for key, value in changes.items():
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = getattr(node, part)
        setattr(node, leaf, value)
    (directory / "config.yaml").write_text(cfg.dump())


def test_mask_rcnn_returns_masks_that_become_polygons(models: dict[str, Path]) -> None:
    predictor = LayoutPredictor(models["mask_rcnn"])
    assert predictor.labels == LABELS and predictor.has_masks
    found = predictor.detect(PAGE, masks=True)
    assert found.masks is not None and found.masks.shape == (len(found.boxes), 200, 160)
    assert predictor.detect(PAGE).masks is None  # only on request
    regions = to_regions(
        found.boxes, found.scores, found.classes, image_size=(200, 160), points_per_pixel=0.5,
        score_threshold=0.0, labels=predictor.labels, masks=found.masks,
    )  # fmt: skip
    assert regions and {r.label for r in regions} <= set(LABELS)
    outlined = [r for r in regions if r.mask_px]
    assert outlined
    for region in outlined:
        assert region.mask_pt is not None
        for polygon_px, polygon_pt in zip(region.mask_px or (), region.mask_pt, strict=True):
            assert np.allclose(np.array(polygon_px) * 0.5, np.array(polygon_pt))


def test_retinanet_loads_and_answers(models: dict[str, Path]) -> None:
    predictor = LayoutPredictor(models["retinanet"])
    assert not predictor.has_masks
    found = predictor.detect(PAGE, masks=True)
    assert found.masks is None and len(found.boxes) > 0
    assert set(found.classes.tolist()) <= {0, 1}


def test_a_model_zoo_pickle_loads_like_the_pth(models: dict[str, Path], tmp_path: Path) -> None:
    import torch

    directory = copy_model(models["retinanet"], tmp_path / "zoo")
    state = torch.load(directory / "model_final.pth", weights_only=True)["model"]
    (directory / "model_final.pth").unlink()
    (directory / "last_checkpoint").unlink()
    with open(directory / "model.pkl", "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in state.items()}, "__author__": "a user"}, f)
    zoo = LayoutPredictor(directory).detect(PAGE)
    pth = LayoutPredictor(models["retinanet"]).detect(PAGE)
    np.testing.assert_allclose(zoo.scores, pth.scores, rtol=1e-5)


def test_labels_can_come_from_a_dataset_detectron2_knows(models: dict[str, Path], tmp_path: Path) -> None:
    directory = tmp_path / "coco"
    random_model(directory, "retinanet", labels=tuple(f"c{i}" for i in range(80)))
    (directory / "labels.json").unlink()
    edit_config(directory, **{"DATASETS.TEST": ("coco_2017_val",)})
    predictor = LayoutPredictor(directory)
    assert len(predictor.labels) == 80 and predictor.labels[0] == "person"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("weights of another model", "does not fit the config"),
        ("labels of another model", "labels.json names 3 classes but the config's NUM_CLASSES is 2"),
        ("no labels", "has no labels.json and its config names no dataset"),
        ("deformable convolution", "needs detectron2's C extension.*deformable convolution"),
        ("rotated boxes", "needs detectron2's C extension.*rotated boxes"),
        ("unknown config key", "config.yaml does not parse as a detectron2 config"),
        ("not an instance model", "META_ARCHITECTURE SemanticSegmentor is not served"),
        ("not a checkpoint", "cannot read checkpoint model_final.pth"),
    ],
)
def test_bad_models_fail_at_load_with_their_reason(
    models: dict[str, Path], tmp_path: Path, breakage: str, message: str
) -> None:
    directory = copy_model(models["mask_rcnn"], tmp_path / "bad")
    if breakage == "weights of another model":
        shutil.copy(models["retinanet"] / "model_final.pth", directory / "model_final.pth")
    elif breakage == "labels of another model":
        (directory / "labels.json").write_text(json.dumps(["a", "b", "c"]))
    elif breakage == "no labels":
        (directory / "labels.json").unlink()
    elif breakage == "deformable convolution":
        edit_config(directory, **{"MODEL.RESNETS.DEFORM_ON_PER_STAGE": [False, True, True, True]})
    elif breakage == "rotated boxes":
        edit_config(directory, **{"MODEL.PROPOSAL_GENERATOR.NAME": "RRPN"})
    elif breakage == "unknown config key":
        with open(directory / "config.yaml", "a") as f:
            f.write("NOT_A_DETECTRON2_KEY: 1\n")
    elif breakage == "not an instance model":
        edit_config(directory, **{"MODEL.META_ARCHITECTURE": "SemanticSegmentor"})
    elif breakage == "not a checkpoint":
        (directory / "model_final.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelUnavailable, match=message):
        LayoutPredictor(files=locate(str(directory)))
