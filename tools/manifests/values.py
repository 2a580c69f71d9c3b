"""The operator's values for k8s/kuberay.yaml, read from ``k8s/values.yaml``.

Every key is required and unknown keys are rejected, so a typo fails ``make manifests`` with a message
that names it instead of being ignored. Memory is a Kubernetes quantity (``8Gi``, ``512Mi``) or bytes;
CPU is cores (``1``, ``0.5``) or millicores (``500m``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, NonNegativeInt, PositiveInt

from tools.manifests.sizing import PodSize, Resources

_MEMORY_UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def parse_memory(value: Any) -> int:
    """Bytes of a memory quantity: ``8Gi``, ``512Mi``, ``1073741824`` (binary suffixes only)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"memory {value!r}: give bytes or a quantity such as 512Mi or 8Gi")
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", str(value).strip())
    if match is None:
        raise ValueError(f"memory {value!r}: give bytes or a quantity such as 512Mi or 8Gi")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]


def parse_milli_cpus(value: Any) -> int:
    """Thousandths of a CPU: ``500m`` -> 500, ``0.5`` -> 500, ``2`` -> 2000."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"cpu {value!r}: give cores (0.5) or millicores (500m)")
    text = str(value).strip()
    try:
        milli = int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)
    except ValueError:
        raise ValueError(f"cpu {value!r}: give cores (0.5) or millicores (500m)") from None
    if milli <= 0:
        raise ValueError(f"cpu {value!r} must be positive")
    return milli


Memory = Annotated[int, BeforeValidator(parse_memory)]
MilliCpus = Annotated[int, BeforeValidator(parse_milli_cpus)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Image(_Strict):
    name: str
    uid: NonNegativeInt
    gid: NonNegativeInt


class Secrets(_Strict):
    s3: str
    redis: str
    api_keys: str


class Autoscaler(_Strict):
    idle_timeout_s: NonNegativeInt
    upscaling_mode: Literal["Default", "Conservative", "Aggressive"]
    cpu: MilliCpus
    memory: Memory

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu, self.memory)


class Pod(_Strict):
    cpus: PositiveInt
    memory: Memory
    object_store_memory: Memory
    system_reserved_memory: Memory

    @property
    def size(self) -> PodSize:
        """As the sizing code sees it (raises ``ValueError`` if no memory is left for replicas)."""
        return PodSize(self.cpus, self.memory, self.object_store_memory, self.system_reserved_memory)


class Values(_Strict):
    """k8s/values.yaml: see the comments there for what each value does."""

    name: str
    image: Image
    store_url: str
    aws_region: str
    secrets: Secrets
    autoscaler: Autoscaler
    worker: Pod
    head: Pod
    shm_margin: Memory
    render_task_headroom: NonNegativeInt
    spare_workers: NonNegativeInt


def parse_values(text: str) -> Values:
    """``Values`` from the YAML text of a values file (raises pydantic's ``ValidationError``)."""
    return Values.model_validate(yaml.safe_load(text) or {})


def load_values(path: Path) -> Values:
    return parse_values(path.read_text())
