"""Tests for the synthetic PubLayNet-style page generator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from serve_app.core.layout import LABELS
from serve_app.training import synth

SEED = 3
DOCS = 4
PAGES = 3
DPI = 72
Box = tuple[float, float, float, float]
IMAGE_KEYS = {"id", "file_name", "width", "height", "pdf", "page_index", "page_width_pt", "page_height_pt"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_dataset(
        tmp_path_factory.mktemp("synth"), seed=SEED, num_docs=DOCS, pages_per_doc=PAGES, dpi=DPI
    )


@pytest.fixture(scope="module")
def coco(dataset: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dataset.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def documents() -> list[synth.SyntheticDocument]:
    return [synth.generate_document(seed=s, num_pages=2) for s in range(4)]


def _anns_by_image(coco: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        out[ann["image_id"]].append(ann)
    return out


def _xyxy(bbox: list[float]) -> Box:
    x, y, w, h = bbox
    return (x, y, x + w, y + h)


def _centre_inside(word: tuple[Any, ...], box: Box) -> bool:
    cx, cy = (word[0] + word[2]) / 2, (word[1] + word[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def test_same_seed_gives_identical_annotations(dataset: Path, tmp_path: Path) -> None:
    again = synth.write_dataset(tmp_path / "a", seed=SEED, num_docs=DOCS, pages_per_doc=PAGES, dpi=DPI)
    assert again.read_bytes() == dataset.read_bytes()
    first_pdf = dataset.parent / "pdfs" / "doc_00000.pdf"
    assert (again.parent / "pdfs" / "doc_00000.pdf").read_bytes() == first_pdf.read_bytes()


def test_different_seed_gives_different_annotations(dataset: Path, tmp_path: Path) -> None:
    other = synth.write_dataset(tmp_path / "b", seed=SEED + 1, num_docs=DOCS, pages_per_doc=PAGES, dpi=DPI)
    assert other.read_bytes() != dataset.read_bytes()


def test_coco_structure(coco: dict[str, Any]) -> None:
    assert [(c["id"], c["name"]) for c in coco["categories"]] == list(enumerate(LABELS, start=1))
    assert len(coco["images"]) == DOCS * PAGES
    for img in coco["images"]:
        assert set(img) >= IMAGE_KEYS
        assert (img["page_width_pt"], img["page_height_pt"]) in synth.PAGE_SIZES.values()
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids))
    for ann in coco["annotations"]:
        assert ann["iscrowd"] == 0
        assert ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3], abs=0.05)


def test_boxes_inside_page_with_positive_size(coco: dict[str, Any]) -> None:
    images = {img["id"]: img for img in coco["images"]}
    for ann in coco["annotations"]:
        img = images[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0
        assert x >= 0 and y >= 0 and x + w <= img["width"] and y + h <= img["height"]
        x0, y0, x1, y1 = ann["bbox_pt"]
        assert 0 <= x0 < x1 <= img["page_width_pt"] and 0 <= y0 < y1 <= img["page_height_pt"]


def test_no_two_boxes_of_a_page_overlap(coco: dict[str, Any]) -> None:
    for anns in _anns_by_image(coco).values():
        for i, a in enumerate(anns):
            for b in anns[i + 1 :]:
                assert synth.intersection_area(_xyxy(a["bbox"]), _xyxy(b["bbox"])) == 0
                assert synth.intersection_area(tuple(a["bbox_pt"]), tuple(b["bbox_pt"])) == 0


def test_pixel_boxes_agree_with_point_boxes(coco: dict[str, Any]) -> None:
    scale = DPI / 72
    for ann in coco["annotations"]:
        px = _xyxy(ann["bbox"])
        for p, q in zip(px, ann["bbox_pt"], strict=True):
            assert abs(p - q * scale) <= 1.0


def test_pixel_boxes_scale_with_dpi(tmp_path: Path) -> None:
    data = json.loads(synth.write_dataset(tmp_path, seed=1, num_docs=1, pages_per_doc=1, dpi=144).read_text())
    img = data["images"][0]
    assert img["width"] == pytest.approx(img["page_width_pt"] * 2, abs=1)
    for ann in data["annotations"]:
        for p, q in zip(_xyxy(ann["bbox"]), ann["bbox_pt"], strict=True):
            assert abs(p - q * 2) <= 1.0


def test_every_category_appears(coco: dict[str, Any]) -> None:
    counts = Counter(ann["category_id"] for ann in coco["annotations"])
    assert set(counts) == set(range(1, len(LABELS) + 1))


def test_pdfs_open_with_right_page_count_and_pngs_match(dataset: Path, coco: dict[str, Any]) -> None:
    root = dataset.parent
    for pdf in {img["pdf"] for img in coco["images"]}:
        with pymupdf.open(root / pdf) as doc:
            assert doc.page_count == PAGES
    for img in coco["images"]:
        pix = pymupdf.Pixmap(str(root / img["file_name"]))
        assert (pix.width, pix.height) == (img["width"], img["height"])


def test_text_boxes_contain_text_layer_words(dataset: Path, coco: dict[str, Any]) -> None:
    anns = _anns_by_image(coco)
    textual = {LABELS.index(n) + 1 for n in ("text", "title", "list")}
    docs: dict[str, pymupdf.Document] = {}
    try:
        for img in coco["images"]:
            doc = docs.setdefault(img["pdf"], pymupdf.open(dataset.parent / img["pdf"]))
            words = doc[img["page_index"]].get_text("words")
            for ann in anns[img["id"]]:
                box = tuple(ann["bbox_pt"])
                inside = [w for w in words if _centre_inside(w, box)]
                assert inside or ann["category_id"] not in textual
                if ann["category_id"] in textual:
                    # Tight: the box is exactly the union of the words it contains.
                    union = (
                        min(w[0] for w in inside),
                        min(w[1] for w in inside),
                        max(w[2] for w in inside),
                        max(w[3] for w in inside),
                    )
                    assert union == pytest.approx(box, abs=0.01)
    finally:
        for doc in docs.values():
            doc.close()


def test_every_word_is_labelled_or_a_distractor(documents: list[synth.SyntheticDocument]) -> None:
    for document in documents:
        with pymupdf.open(stream=document.pdf, filetype="pdf") as doc:
            for page in document.pages:
                boxes = [r.bbox_pt for r in page.regions] + list(page.distractors)
                for word in doc[page.index].get_text("words"):
                    assert sum(_centre_inside(word, b) for b in boxes) == 1, word


def test_headers_and_footers_are_not_labelled(documents: list[synth.SyntheticDocument]) -> None:
    n_distractor_words = 0
    for document in documents:
        with pymupdf.open(stream=document.pdf, filetype="pdf") as doc:
            for page in document.pages:
                words = doc[page.index].get_text("words")
                for box in page.distractors:
                    for region in page.regions:
                        assert synth.intersection_area(box, region.bbox_pt) == 0
                    for word in words:
                        if _centre_inside(word, box):
                            n_distractor_words += 1
                            assert not any(_centre_inside(word, r.bbox_pt) for r in page.regions)
    assert n_distractor_words > 0


def test_generate_document_is_deterministic() -> None:
    a = synth.generate_document(seed=11, num_pages=2)
    b = synth.generate_document(seed=11, num_pages=2)
    assert a.pdf == b.pdf
    assert [p.regions for p in a.pages] == [p.regions for p in b.pages]
    assert synth.generate_document(seed=12, num_pages=2).pages[0].regions != a.pages[0].regions


def test_cli_writes_dataset(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    assert synth.main(["--out", str(out), "--seed", "0", "--docs", "1", "--pages", "2", "--dpi", "72"]) == 0
    data = json.loads((out / "annotations.json").read_text())
    assert len(data["images"]) == 2
    assert (out / data["images"][0]["file_name"]).is_file()


def test_package_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serve_app.training.synth", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--out" in done.stdout
