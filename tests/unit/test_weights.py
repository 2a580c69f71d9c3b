"""Weights as numpy arrays and modules bound to them (serve_app.models.weights): the logic under sharing."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from serve_app.models.embedding import encode, load_sentence_model, model_files
from serve_app.models.layout import LayoutPredictor, weight_files
from serve_app.models.weights import arrays_nbytes, bind_arrays, files_key, map_every_page, module_arrays
from serve_app.runtime.process import shared_memory_fraction
from serve_app.training import synth
from tests.examples import NINE_TITLES

pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")


class Tied(torch.nn.Module):
    """A small module with a tied weight, a persistent and a non-persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 10, bias=False)
        self.out.weight = self.embed.weight
        self.norm = torch.nn.BatchNorm1d(4)
        self.register_buffer("offsets", torch.arange(4, dtype=torch.float32), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.embed(ids) + self.offsets))


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """A content hash of names, dtypes, shapes and bytes: the tests' proof that weights never change."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def read_only_copies(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a replica gets from the object store: arrays that cannot be written."""
    copies = {name: array.copy() for name, array in arrays.items()}
    for array in copies.values():
        array.flags.writeable = False
    return copies


def test_tied_weights_are_exported_once_and_bound_back_tied() -> None:
    torch.manual_seed(0)
    module = Tied().eval()
    arrays = module_arrays(module)
    assert "out.weight" not in arrays and "embed.weight" in arrays
    assert "offsets" in arrays and "norm.num_batches_tracked" in arrays
    ids = torch.tensor([1, 2, 3])
    with torch.inference_mode():
        expected = module(ids)

    shared = read_only_copies(arrays)
    bound = bind_arrays(module, shared)
    assert bound == arrays_nbytes(arrays)
    assert module.out.weight is module.embed.weight
    assert np.shares_memory(module.embed.weight.detach().numpy(), shared["embed.weight"])
    assert np.shares_memory(module.offsets.numpy(), shared["offsets"])
    assert not module.embed.weight.requires_grad
    with torch.inference_mode():
        assert torch.equal(module(ids), expected)


def test_weights_that_do_not_fit_are_refused_and_the_module_is_unchanged() -> None:
    module = Tied()
    arrays = module_arrays(module)
    before = module.embed.weight
    missing = {k: v for k, v in arrays.items() if k != "norm.weight"}
    with pytest.raises(ValueError, match=r"norm\.weight: missing"):
        bind_arrays(module, missing)
    with pytest.raises(ValueError, match=r"embed\.weight: float64\[10, 4\] for float32\[10, 4\]"):
        bind_arrays(module, {**arrays, "embed.weight": arrays["embed.weight"].astype(np.float64)})
    with pytest.raises(ValueError, match=r"extra: not in the module"):
        bind_arrays(module, {**arrays, "extra": np.zeros(1, dtype=np.float32)})
    assert module.embed.weight is before


def test_module_built_on_meta_is_complete_after_binding() -> None:
    torch.manual_seed(1)
    reference = Tied().eval()
    arrays = read_only_copies(module_arrays(reference))
    with torch.device("meta"):
        skeleton = Tied()
    bind_arrays(skeleton, arrays)
    skeleton.eval()
    assert not any(t.is_meta for t in [*skeleton.parameters(), *skeleton.buffers()])
    ids = torch.tensor([0, 9, 4])
    with torch.inference_mode():
        assert torch.equal(skeleton(ids), reference(ids))


def test_every_page_can_be_mapped_for_any_shape() -> None:
    arrays = read_only_copies({**module_arrays(Tied()), "empty": np.zeros((0, 3), dtype=np.float32)})
    assert arrays["norm.num_batches_tracked"].ndim == 0
    before = arrays_digest(arrays)
    map_every_page(arrays)  # reads only: read-only arrays are fine
    assert arrays_digest(arrays) == before


def test_digest_and_files_key_follow_the_content(tmp_path: Path) -> None:
    arrays = module_arrays(Tied())
    assert arrays_digest(arrays) == arrays_digest({k: v.copy() for k, v in arrays.items()})
    changed = {k: v.copy() for k, v in arrays.items()}
    changed["offsets"][0] += 1
    assert arrays_digest(changed) != arrays_digest(arrays)

    weights = tmp_path / "model.bin"
    weights.write_bytes(b"a" * 10)
    key = files_key([weights])
    assert key == files_key([weights]) and len(key) == 16
    weights.write_bytes(b"b" * 11)
    assert files_key([weights]) != key


def test_shared_memory_fraction_sees_only_shared_mappings(tmp_path: Path) -> None:
    module = Tied()
    assert shared_memory_fraction(module) == 0.0  # ordinary private memory
    path = tmp_path / "shm.bin"
    size = sum(a.nbytes for a in module_arrays(module).values())
    path.write_bytes(b"\0" * (size + 4096))
    mapping = np.memmap(path, mode="r+", dtype=np.uint8)  # MAP_SHARED, like the object store
    arrays, offset = {}, 0
    for name, array in module_arrays(module).items():
        view = mapping[offset : offset + array.nbytes].view(array.dtype).reshape(array.shape)
        view[...] = array
        arrays[name], offset = view, offset + array.nbytes
    bind_arrays(module, arrays)
    assert shared_memory_fraction(module) == (1.0 if os.path.exists("/proc/self/maps") else 0.0)
    del mapping


def test_sentence_model_bound_to_read_only_copies_encodes_identically() -> None:
    model = load_sentence_model()
    expected = encode(model, NINE_TITLES)
    arrays = read_only_copies(module_arrays(model))
    digest = arrays_digest(arrays)
    assert bind_arrays(model, arrays) > 80 * 2**20  # all-MiniLM-L6-v2: about 87 MiB of fp32 weights
    np.testing.assert_array_equal(encode(model, NINE_TITLES), expected)
    assert arrays_digest(arrays) == digest  # inference never writes to the shared weights
    assert len(model_files()) >= 5


def test_detector_built_on_shared_weights_predicts_identically() -> None:
    document = synth.generate_document(seed=7, num_pages=1, dpi=72)
    with Image.open(io.BytesIO(document.pages[0].png)) as image:
        page = np.asarray(image.convert("RGB"))
    loaded = LayoutPredictor()
    arrays = read_only_copies(module_arrays(loaded.model))
    on_weights = LayoutPredictor(weights=arrays)
    assert all(
        np.shares_memory(t.detach().numpy(), arrays[name]) for name, t in on_weights.model.named_parameters()
    )
    for got, want in zip(on_weights.predict(page), loaded.predict(page), strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(weight_files()) == 3 and all(p.is_file() for p in weight_files())
