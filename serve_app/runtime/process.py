"""The replica process: CPUs Ray gave it, its priority, and where its memory lies (Linux /proc, glibc)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import ray

from serve_app.models.weights import distinct_tensors

if TYPE_CHECKING:
    import torch


def replica_cpus(default: float = 1.0) -> float:
    """CPUs Ray assigned to the current actor (``ray_actor_options.num_cpus``)."""
    if not ray.is_initialized():
        return default
    return float(ray.get_runtime_context().get_assigned_resources().get("CPU", default))


def torch_threads(cpus: float) -> int:
    """Intra-op threads for a replica with ``cpus`` CPUs: the nearest whole number, at least one."""
    return max(1, math.floor(cpus + 0.5))


def set_process_nice(value: int) -> int:
    """Set the nice value of every thread of this process (Linux nice is per thread; threads created
    later inherit it from their creator). ``value`` is clamped to 0..19; returns the calling thread's
    nice value afterwards (unchanged where lowering it needs privileges the process lacks)."""
    value = max(0, min(19, value))
    tasks = Path("/proc/self/task")
    thread_ids = [int(t.name) for t in tasks.iterdir()] if tasks.exists() else [0]
    for tid in thread_ids:
        # A thread may have ended meanwhile; lowering below the start value needs privileges.
        with contextlib.suppress(PermissionError, ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, tid, value)
    return os.getpriority(os.PRIO_PROCESS, 0)


def shared_memory_fraction(module: torch.nn.Module, maps_file: Path = Path("/proc/self/maps")) -> float:
    """Fraction of the module's weight bytes that lie in shared memory mappings of this process
    (``rw-s``: the object store). Private memory and private file mappings count as not shared.
    Returns 0.0 where ``/proc`` is not available."""
    if not maps_file.exists():
        return 0.0
    shared: list[tuple[int, int]] = []
    for line in maps_file.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].endswith("s"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            shared.append((start, end))
    total = inside = 0
    for _, tensor in distinct_tensors(module):
        size = tensor.numel() * tensor.element_size()
        address = tensor.data_ptr()
        total += size
        if any(start <= address and address + size <= end for start, end in shared):
            inside += size
    return inside / total if total else 0.0


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so a module's released private
    weights stop counting in the process's memory. A no-op where glibc is not the C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)
