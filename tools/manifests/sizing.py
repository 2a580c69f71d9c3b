"""How many Ray worker pods ``configs/serve.yaml`` needs: a first-fit-decreasing bin packer.

Pure: it takes the parsed Serve config (a mapping) and pod sizes, and returns numbers. No files, no YAML
text, no Kubernetes; ``tools.manifests.render`` turns the result into the manifest.

Every deployment at its maximum replicas, plus room for ``render_task_headroom`` page render tasks, must fit
in the worker group's ``maxReplicas`` workers. Packing is by item, not by totals: two 2 GiB replicas do not
share a worker that offers 3 GiB, however much room the totals say is left.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from serve_app.settings import JobRunnerConfig, parse_settings

MiB = 1024**2
GiB = 1024**3


def human(nbytes: int) -> str:
    """``1.5 GiB``, ``512 MiB`` or ``no memory``: for comments and messages."""
    if nbytes == 0:
        return "no memory"
    return f"{nbytes / GiB:g} GiB" if nbytes >= GiB else f"{nbytes / MiB:g} MiB"


@dataclass(frozen=True)
class Resources:
    """Logical Ray resources: CPU in thousandths (exact sums of 0.05s) and ``memory`` in bytes."""

    milli_cpus: int
    memory: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.milli_cpus + other.milli_cpus, self.memory + other.memory)

    def fits_in(self, capacity: Resources) -> bool:
        return self.milli_cpus <= capacity.milli_cpus and self.memory <= capacity.memory

    def __str__(self) -> str:
        return f"{self.milli_cpus / 1000:g} CPU, {human(self.memory)}"


@dataclass(frozen=True)
class Demand:
    """One replica (or render task) that Ray must place on a worker."""

    name: str
    resources: Resources


@dataclass(frozen=True)
class PodSize:
    """One Ray pod: its container's CPU and memory (requests == limits) and how Ray splits the memory."""

    cpus: int
    memory: int
    object_store_memory: int
    # Raylet, dashboard and runtime-env agents, the Serve proxy: real memory that Ray does not offer to tasks.
    system_reserved_memory: int

    def __post_init__(self) -> None:
        if self.ray_memory <= 0:
            raise ValueError(f"{self}: object store and system reserve leave no memory for replicas")

    @property
    def ray_memory(self) -> int:
        """Ray's logical ``memory`` (rayStartParams ``memory``): what replicas may reserve on this pod.

        Set explicitly because /dev/shm (the object store) is charged to the pod's memory limit: the limit
        alone (what KubeRay passes by default) would let Ray promise memory that the object store is using.
        """
        return self.memory - self.object_store_memory - self.system_reserved_memory

    @property
    def capacity(self) -> Resources:
        """What Ray may place on this pod."""
        return Resources(self.cpus * 1000, self.ray_memory)

    @property
    def container(self) -> Resources:
        """The container's requests and limits."""
        return Resources(self.cpus * 1000, self.memory)


@dataclass(frozen=True)
class WorkerGroupSizing:
    """How many ``worker`` pods configs/serve.yaml needs, and why (totals, for the manifest's comments)."""

    worker: PodSize
    min_workers: int
    start_workers: int
    max_workers: int
    packed_at_max: int
    demand_at_min: Resources
    demand_at_max: Resources
    lines: tuple[str, ...]


def deployments(serve_config: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Every deployment entry of every application."""
    for app in serve_config.get("applications") or []:
        yield from app.get("deployments") or []


def replica_range(deployment: Mapping[str, Any]) -> tuple[int, int, int]:
    """(min, initial, max) replicas of one deployment entry of configs/serve.yaml (Serve's defaults: 1)."""
    name = deployment.get("name", "?")
    auto = deployment.get("autoscaling_config")
    if auto:
        low = int(auto.get("min_replicas", 1))
        high = int(auto.get("max_replicas", 1))
        initial = auto.get("initial_replicas")
        return low, (low if initial is None else int(initial)), high
    count = deployment.get("num_replicas", 1)
    if not isinstance(count, int):
        raise ValueError(
            f"{name}: num_replicas {count!r} cannot be sized; give a number or autoscaling_config"
        )
    return count, count, count


def replica_resources(deployment: Mapping[str, Any]) -> Resources:
    """What one replica reserves: ``ray_actor_options`` num_cpus (Serve's default 1), memory (default 0)."""
    name = deployment.get("name", "?")
    if deployment.get("placement_group_bundles"):
        raise ValueError(f"{name}: placement_group_bundles are not sized by this generator")
    options = deployment.get("ray_actor_options") or {}
    if options.get("num_gpus") or options.get("resources"):
        raise ValueError(f"{name}: GPUs or custom resources need a worker group of their own")
    return Resources(round(float(options.get("num_cpus", 1)) * 1000), int(options.get("memory", 0)))


def render_task_demands(serve_config: Mapping[str, Any], headroom: int) -> list[Demand]:
    """``headroom`` tasks of JobRunner's ``render_num_cpus`` (its user_config validated as at start-up)."""
    out: list[Demand] = []
    for dep in deployments(serve_config):
        if dep.get("name") == "JobRunner":
            config = parse_settings(JobRunnerConfig, dep.get("user_config"), where="JobRunner user_config")
            task = Resources(round(config.render_num_cpus * 1000), 0)
            out += [Demand(f"render task {i + 1}", task) for i in range(headroom)]
    return out


def demands(
    serve_config: Mapping[str, Any], at: Literal["min", "initial", "max"], render_task_headroom: int
) -> list[Demand]:
    """Every replica at ``at`` replicas, one entry each, plus the render task headroom."""
    index = {"min": 0, "initial": 1, "max": 2}[at]
    out: list[Demand] = []
    for dep in deployments(serve_config):
        count = replica_range(dep)[index]
        out += [Demand(f"{dep['name']} {i + 1}", replica_resources(dep)) for i in range(count)]
    return out + render_task_demands(serve_config, render_task_headroom)


def total(items: Iterable[Demand]) -> Resources:
    """The sum of ``items``' resources."""
    result = Resources(0, 0)
    for item in items:
        result = result + item.resources
    return result


def workers_needed(items: Sequence[Demand], worker: PodSize) -> int:
    """Workers that hold ``items`` (first-fit decreasing), never fewer than the totals need.

    Raises ``ValueError`` if one item alone does not fit a worker.
    """
    capacity = worker.capacity
    bins: list[Resources] = []
    for item in sorted(items, key=lambda d: (d.resources.memory, d.resources.milli_cpus), reverse=True):
        if not item.resources.fits_in(capacity):
            raise ValueError(
                f"{item.name} ({item.resources}) does not fit one worker ({capacity}); grow the worker pod"
            )
        for i, used in enumerate(bins):
            if (used + item.resources).fits_in(capacity):
                bins[i] = used + item.resources
                break
        else:
            bins.append(item.resources)
    need = total(items)
    by_cpu = math.ceil(need.milli_cpus / capacity.milli_cpus)
    by_memory = math.ceil(need.memory / capacity.memory)
    return max(len(bins), by_cpu, by_memory)


def size_worker_group(
    serve_config: Mapping[str, Any], worker: PodSize, *, render_task_headroom: int, spare_workers: int
) -> WorkerGroupSizing:
    """Worker group bounds for configs/serve.yaml: max holds every deployment at max replicas (+ spare).

    ``spare_workers`` are allowed beyond what first-fit packing needs, because Serve spreads replicas over
    nodes and real placements can fragment; the autoscaler starts one only for what it cannot place.
    """
    at_min = demands(serve_config, "min", render_task_headroom)
    at_max = demands(serve_config, "max", render_task_headroom)
    at_initial = demands(serve_config, "initial", render_task_headroom)
    packed = workers_needed(at_max, worker)
    min_workers = workers_needed(at_min, worker)
    start_workers = min(max(workers_needed(at_initial, worker), min_workers), packed)
    lines = []
    for dep in deployments(serve_config):
        low, _, high = replica_range(dep)
        each = replica_resources(dep)
        count = str(low) if low == high else f"{low}..{high}"
        lines.append(f"{dep['name']:<10} {count:>4} x ({each})")
    renders = render_task_demands(serve_config, render_task_headroom)
    if renders:
        lines.append(
            f"{'render':<10} {len(renders):>4} x ({renders[0].resources}) tasks (JobRunner render_num_cpus)"
        )
    return WorkerGroupSizing(
        worker=worker,
        min_workers=min_workers,
        start_workers=start_workers,
        max_workers=packed + spare_workers,
        packed_at_max=packed,
        demand_at_min=total(at_min),
        demand_at_max=total(at_max),
        lines=tuple(lines),
    )
