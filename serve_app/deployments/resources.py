"""What a replica was given by Ray, so model threads can match it."""

from __future__ import annotations

import math

import ray


def replica_cpus(default: float = 1.0) -> float:
    """CPUs Ray assigned to the current actor (``ray_actor_options.num_cpus``)."""
    if not ray.is_initialized():
        return default
    return float(ray.get_runtime_context().get_assigned_resources().get("CPU", default))


def torch_threads(cpus: float) -> int:
    """Intra-op threads for a replica with ``cpus`` CPUs: the nearest whole number, at least one."""
    return max(1, math.floor(cpus + 0.5))
