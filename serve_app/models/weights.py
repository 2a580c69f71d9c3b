"""A PyTorch module's weights as plain numpy arrays, and a module rebuilt on top of such arrays (no Ray).

This is what lets every replica on a node share one copy of a model: the arrays live once in the Ray
object store (see ``serve_app.runtime.shared_weights``), each replica maps them read-only and binds
them as its module's parameters and buffers with ``torch.from_numpy`` (no copy).

The bound tensors point into read-only shared memory: only inference (``torch.inference_mode``) may
run on such a module. Nothing in this app trains or edits weights in a replica.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

WeightArrays = dict[str, np.ndarray]


def _tensors(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer (persistent or not) with its full name; tied ones appear once per name."""
    return [
        *module.named_parameters(remove_duplicate=False),
        *module.named_buffers(remove_duplicate=False),
    ]


def distinct_tensors(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer once, under its first name, however many names it has (tied weights)."""
    seen: set[int] = set()
    out = []
    for name, tensor in _tensors(module):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            out.append((name, tensor))
    return out


def module_arrays(module: torch.nn.Module) -> WeightArrays:
    """The module's parameters and buffers as contiguous numpy arrays, one per distinct tensor.

    A tensor reachable under several names (tied weights) is exported once, under its first name;
    ``bind_arrays`` binds it back under all of them. The arrays share memory with the module where
    they are already contiguous; copy them before the module changes.
    """
    return {name: tensor.detach().cpu().contiguous().numpy() for name, tensor in distinct_tensors(module)}


def bind_arrays(module: torch.nn.Module, arrays: Mapping[str, np.ndarray]) -> int:
    """Make ``arrays`` the module's parameters and buffers, without copying; return the bytes bound.

    The module may have been built on the ``meta`` device (nothing allocated) or normally (its own
    tensors are released). Every parameter and buffer must be covered, with the same shape and dtype;
    otherwise ``ValueError`` names the differences and the module is left unchanged.
    """
    import torch

    entries = _tensors(module)
    distinct = distinct_tensors(module)
    first_name = {id(tensor): name for name, tensor in distinct}
    problems = []
    for source, tensor in distinct:
        array = arrays.get(source)
        if array is None:
            problems.append(f"{source}: missing")
        elif tuple(array.shape) != tuple(tensor.shape) or str(array.dtype) != _numpy_dtype(tensor):
            problems.append(
                f"{source}: {array.dtype}{list(array.shape)} for {_numpy_dtype(tensor)}{list(tensor.shape)}"
            )
    extra = sorted(set(arrays) - set(first_name.values()))
    problems += [f"{name}: not in the module" for name in extra]
    if problems:
        raise ValueError(f"weights do not fit the module ({len(problems)}): {'; '.join(problems[:5])}")

    shared: dict[str, torch.Tensor] = {}
    with warnings.catch_warnings():
        # Object store arrays are read-only; torch warns that writing to the tensor would be undefined.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for source in first_name.values():
            shared[source] = torch.from_numpy(arrays[source])
    parameters: dict[str, torch.nn.Parameter] = {}
    for name, tensor in entries:
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        source = first_name[id(tensor)]
        if attr in owner._parameters:
            if source not in parameters:  # tied names share one Parameter, as before
                parameters[source] = torch.nn.Parameter(shared[source], requires_grad=False)
            owner._parameters[attr] = parameters[source]
        else:
            owner._buffers[attr] = shared[source]
    return sum(int(arrays[name].nbytes) for name in shared)


def _numpy_dtype(tensor: torch.Tensor) -> str:
    import torch

    return str(torch.empty((), dtype=tensor.dtype).numpy().dtype)


def map_every_page(arrays: Mapping[str, np.ndarray], page_size: int = 4096) -> None:
    """Read one byte of every memory page of ``arrays``, so they are all mapped into this process now.

    Shared weights cost no extra memory when mapped (the pages exist once, in the object store), but a
    page is counted in a process's RSS only from the first time it is read. Without this, RSS would keep
    rising for as long as requests reach rows of an embedding table that no request used before.
    """
    for array in arrays.values():
        if array.nbytes:
            flat = array.reshape(-1).view(np.uint8)
            int(flat[::page_size].sum())


def arrays_nbytes(arrays: Mapping[str, np.ndarray]) -> int:
    return sum(int(a.nbytes) for a in arrays.values())


def files_key(paths: Iterable[Path]) -> str:
    """A short key for a model stored in these files: path, size and modification time of each.

    Replicas that load the same files get the same key, so they find the same shared copy; new weights
    written over the old ones change the key.
    """
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(Path(p).resolve() for p in paths):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()
