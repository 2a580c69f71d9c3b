"""k8s/kuberay.yaml, a KubeRay ``RayService``, from its sources: one source of truth for each part.

- ``configs/serve.yaml``: the ``serveConfigV2`` text (with one edit, see ``tools.manifests.serve_config``)
  and, through ``tools.manifests.sizing``, the worker group's bounds;
- ``k8s/values.yaml``: what an operator sets (names, Secrets, bucket, pod sizes, autoscaler);
- ``k8s/kuberay.yaml.tmpl``: the manifest's layout and comments, a ``string.Template``;
- ``requirements.lock`` and ``pyproject.toml``: the Ray version and the image tag.

Pure Python (YAML and text only, no Ray), so it runs in the unit tier.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path
from string import Template
from typing import Any

import yaml

from tools.manifests.serve_config import pod_serve_config_text
from tools.manifests.sizing import GiB, MiB, PodSize, Resources, WorkerGroupSizing, human, size_worker_group
from tools.manifests.values import Values, load_values

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIG_PATH = REPO_ROOT / "configs" / "serve.yaml"
LOCK_PATH = REPO_ROOT / "requirements.lock"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
VALUES_PATH = REPO_ROOT / "k8s" / "values.yaml"
TEMPLATE_PATH = REPO_ROOT / "k8s" / "kuberay.yaml.tmpl"
SERVE_ENV_PATH = REPO_ROOT / "configs" / "serve.env"


def read_env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines (``configs/serve.env``); blank lines and ``#`` comments skipped."""
    pairs = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name.strip()):
                raise ValueError(f"not a NAME=value line: {line!r}")
            pairs[name.strip()] = value.strip()
    return pairs


def env_entries(pairs: dict[str, str], indent: int) -> str:
    """Container ``env`` list entries for ``pairs``, each marked as coming from configs/serve.env."""
    return "\n".join(
        f'{" " * indent}- {{name: {name}, value: "{value}"}}  # configs/serve.env'
        for name, value in pairs.items()
    )


def pinned_ray_version(lock_text: str) -> str:
    """The Ray version pinned in requirements.lock (``ray==X``)."""
    versions = re.findall(r"^ray==([^\s;#]+)\s*$", lock_text, flags=re.MULTILINE)
    if len(versions) != 1:
        raise ValueError(f"requirements.lock must pin ray exactly once (ray==X), found {versions}")
    return str(versions[0])


def project_version(pyproject_text: str) -> str:
    """``project.version`` from pyproject.toml."""
    return str(tomllib.loads(pyproject_text)["project"]["version"])


def image_tag(app_version: str, ray_version: str) -> str:
    """``0.1.0-ray2.60.0``: the app's version and the Ray it runs (what `make docker` tags)."""
    return f"{app_version}-ray{ray_version}"


def quantity(nbytes: int) -> str:
    """A Kubernetes memory quantity: ``8Gi``, ``1280Mi`` or plain bytes."""
    if nbytes % GiB == 0:
        return f"{nbytes // GiB}Gi"
    if nbytes % MiB == 0:
        return f"{nbytes // MiB}Mi"
    return str(nbytes)


def cpu_quantity(milli_cpus: int) -> str:
    """A Kubernetes CPU quantity: ``2`` or ``500m``."""
    return str(milli_cpus // 1000) if milli_cpus % 1000 == 0 else f"{milli_cpus}m"


def fill(template: str, fields: dict[str, Any]) -> str:
    """``template`` without its ``##`` lines, every ``${placeholder}`` replaced from ``fields``.

    Raises ``ValueError`` unless the placeholders and ``fields`` are the same set of names, so a typo on
    either side fails here instead of leaving a value out of the manifest.
    """
    body = Template("".join(line for line in template.splitlines(keepends=True) if not line.startswith("##")))
    names = set(body.get_identifiers())
    if not body.is_valid() or names != set(fields):
        raise ValueError(
            f"template placeholders and filled values differ: unknown {sorted(names - set(fields))}, "
            f"unused {sorted(set(fields) - names)} (or a stray '$'; write '$$' for one)"
        )
    return body.substitute(fields)


def _pod_fields(prefix: str, pod: PodSize, shm_margin: int) -> dict[str, str]:
    """A pod's container resources (requests == limits), object store and /dev/shm size."""
    return {
        f"{prefix}_cpu": cpu_quantity(pod.container.milli_cpus),
        f"{prefix}_memory": quantity(pod.container.memory),
        f"{prefix}_object_store_memory": str(pod.object_store_memory),
        # The object store lives in /dev/shm (memory-backed): a margin more, so Ray never falls back to /tmp.
        f"{prefix}_shm_size": quantity(pod.object_store_memory + shm_margin),
    }


def render_manifest(
    serve_text: str,
    *,
    ray_version: str,
    app_version: str,
    values: Values,
    template: str,
    serve_env: dict[str, str] | None = None,
) -> str:
    """The RayService manifest (text with comments) for configs/serve.yaml's text ``serve_text``;
    ``serve_env`` (default: configs/serve.env) goes into the environment of every Ray container."""
    if serve_env is None:
        serve_env = read_env_file(SERVE_ENV_PATH.read_text())
    serve_config: dict[str, Any] = yaml.safe_load(serve_text)
    pod_text = pod_serve_config_text(serve_text)
    worker, head = values.worker.size, values.head.size
    sizing = size_worker_group(
        serve_config,
        worker,
        render_task_headroom=values.render_task_headroom,
        spare_workers=values.spare_workers,
    )
    autoscaler = values.autoscaler.resources
    text = fill(
        template,
        {
            "name": values.name,
            "image": f"{values.image.name}:{image_tag(app_version, ray_version)}",
            "image_name": values.image.name,
            "uid": values.image.uid,
            "gid": values.image.gid,
            "app_version": app_version,
            "ray_version": ray_version,
            "store_url": values.store_url,
            "aws_region": values.aws_region,
            "s3_secret": values.secrets.s3,
            "redis_secret": values.secrets.redis,
            "keys_secret": values.secrets.api_keys,
            "serve_port": int((serve_config.get("http_options") or {}).get("port", 8000)),
            "serve_config": textwrap.indent(pod_text, " " * 4).rstrip("\n"),
            "serve_env_head": env_entries(serve_env, 16),
            "serve_env_worker": env_entries(serve_env, 18),
            "upscaling_mode": values.autoscaler.upscaling_mode,
            "idle_timeout_s": values.autoscaler.idle_timeout_s,
            "autoscaler_cpu": cpu_quantity(autoscaler.milli_cpus),
            "autoscaler_memory": quantity(autoscaler.memory),
            # The worker group and the comment that explains its bounds.
            "sizing": "\n".join(f"#   {line}" for line in sizing.lines),
            "at_max": str(sizing.demand_at_max),
            "at_min": str(sizing.demand_at_min),
            "packed": sizing.packed_at_max,
            "spare": values.spare_workers,
            "start_workers": sizing.start_workers,
            "min_workers": sizing.min_workers,
            "max_workers": sizing.max_workers,
            # rayStartParams num-cpus equals the container's CPU limit; memory is what replicas may reserve
            # (see PodSize.ray_memory).
            "worker_cpus": worker.cpus,
            "worker_ray_memory": str(worker.ray_memory),
            "worker_ray_memory_human": human(worker.ray_memory),
            "worker_memory_human": human(worker.memory),
            "worker_object_store_human": human(worker.object_store_memory),
            "worker_reserved_human": human(worker.system_reserved_memory),
            **_pod_fields("worker", worker, values.shm_margin),
            **_pod_fields("head", head, values.shm_margin),
        },
    )
    _self_check(text, pod_text, sizing)
    return text


def _self_check(text: str, pod_text: str, sizing: WorkerGroupSizing) -> None:
    """The emitted text must parse, carry the pod config verbatim and hold every replica at max."""
    manifest = yaml.safe_load(text)
    spec = manifest["spec"]
    if spec["serveConfigV2"] != pod_text:
        raise RuntimeError("serveConfigV2 does not round-trip through the YAML block")
    group = spec["rayClusterConfig"]["workerGroupSpecs"][0]
    capacity = sizing.worker.capacity
    room = Resources(capacity.milli_cpus * group["maxReplicas"], capacity.memory * group["maxReplicas"])
    if not sizing.demand_at_max.fits_in(room):
        raise RuntimeError(f"maxReplicas {group['maxReplicas']} x ({capacity}) < {sizing.demand_at_max}")


def generate(
    serve_config_path: Path = SERVE_CONFIG_PATH,
    lock_path: Path = LOCK_PATH,
    pyproject_path: Path = PYPROJECT_PATH,
    values_path: Path = VALUES_PATH,
    template_path: Path = TEMPLATE_PATH,
) -> str:
    """The manifest for the repository's sources (the defaults) or for the files given."""
    return render_manifest(
        serve_config_path.read_text(),
        ray_version=pinned_ray_version(lock_path.read_text()),
        app_version=project_version(pyproject_path.read_text()),
        values=load_values(values_path),
        template=template_path.read_text(),
    )
