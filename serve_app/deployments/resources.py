"""What a replica was given by Ray, so model threads can match it."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import ray


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
