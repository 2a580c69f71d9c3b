"""Generate ``k8s/kuberay.yaml``, a KubeRay ``RayService``, from ``configs/serve.yaml``: one source of truth.

Replicas, resources and tunables live in ``configs/serve.yaml`` only. The manifest's ``serveConfigV2`` is
that file's text with one deliberate change (``http_options.host``, see ``pod_serve_config_text``), and the
worker group is sized from it: every deployment at its maximum replicas, plus room for the page render
tasks, must fit in ``maxReplicas`` workers of size ``WORKER``.

    python -m serve_app.deploy_manifests --write           # regenerate k8s/kuberay.yaml (make manifests)
    python -m serve_app.deploy_manifests --check           # exit 1 if k8s/kuberay.yaml is out of date
    python -m serve_app.deploy_manifests --serve-config P  # the pod's Serve config, to P (docker/Dockerfile)
    python -m serve_app.deploy_manifests                   # print the manifest

Pure Python (YAML and text only, no Ray), so it runs in the unit tier and while the image is built.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import math
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal

import yaml

from serve_app.settings import JobRunnerConfig, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE_CONFIG_PATH = REPO_ROOT / "configs" / "serve.yaml"
LOCK_PATH = REPO_ROOT / "requirements.lock"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
MANIFEST_PATH = REPO_ROOT / "k8s" / "kuberay.yaml"

MiB = 1024**2
GiB = 1024**3

# ---- what an operator changes here (then `make manifests`) -------------------------------------------------

RAYSERVICE_NAME = "serve-app"
# Image name; the tag is "<pyproject version>-ray<Ray version>", the same as `make docker` builds. To run it
# from a registry, push it there and patch the image (`kustomize edit set image serve-app=REGISTRY/...`).
IMAGE_NAME = "serve-app"
# The base image's (rayproject/ray) non-root user `ray` and its group `users`; docker/Dockerfile runs as them.
IMAGE_UID = 1000
IMAGE_GID = 100
# Where JobRunner keeps jobs (SERVE_APP_STORE_URL, see README "Storage"): an s3://bucket/prefix you own.
STORE_URL = "s3://change-me-serve-app/serve-app"
AWS_REGION = "us-east-1"
# Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (created by the operator, never in this repo).
S3_SECRET_NAME = "serve-app-s3"
# Secret with key `password`, for the optional GCS fault tolerance (Redis) section.
REDIS_SECRET_NAME = "serve-app-redis"
# Ray autoscaler: how long a worker without replicas or tasks lives, and whether upscaling is rate-limited.
AUTOSCALER_IDLE_TIMEOUT_S = 120
AUTOSCALER_UPSCALING_MODE = "Default"

# In a pod the Serve proxy must listen on the pod IP (KubeRay's serve Service and probes reach it there), not
# on 127.0.0.1 as configs/serve.yaml does for a laptop. This is the only change made to configs/serve.yaml.
POD_HTTP_HOST = "0.0.0.0"
# Render/inspect/annotate Ray tasks (JobRunner.user_config.render_num_cpus each) that worker sizing keeps room
# for next to every replica at max; further tasks wait for a CPU share or make the autoscaler add a worker.
RENDER_TASK_HEADROOM = 3
# Workers allowed beyond what first-fit packing needs: Serve spreads replicas over nodes, so real placements
# can fragment. It costs nothing until used: the autoscaler starts a worker only for what it cannot place.
SPARE_WORKERS = 1
# /dev/shm (a memory-backed emptyDir) exceeds the object store by this, so Ray never falls back to /tmp.
SHM_MARGIN = 256 * MiB
RAY_METRICS_PORT = 8080


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
        return f"{self.milli_cpus / 1000:g} CPU, {_human(self.memory)}"


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
    def shm_size(self) -> int:
        return self.object_store_memory + SHM_MARGIN

    @property
    def capacity(self) -> Resources:
        """What Ray may place on this pod."""
        return Resources(self.cpus * 1000, self.ray_memory)

    @property
    def container(self) -> Resources:
        """The container's requests and limits."""
        return Resources(self.cpus * 1000, self.memory)


# Worker pods: 2 CPU / 8 GiB, a common node shape (4 GiB per CPU). To change, edit these numbers and run
# `make manifests`: minReplicas/maxReplicas are recomputed from configs/serve.yaml, and the generator fails
# if a single replica no longer fits one worker. On bigger workers, also raise num_cpus in configs/serve.yaml
# (torch threads follow it). The object store holds page images in flight (bounded by max_pages_in_flight and
# max_running_jobs) and request bodies; beyond it Ray spills to disk, which is slow.
WORKER = PodSize(cpus=2, memory=8 * GiB, object_store_memory=1 * GiB, system_reserved_memory=1 * GiB)
# Head pod: GCS, dashboard, Serve controller, a Serve proxy and the autoscaler's sidecar; no replicas or tasks
# (rayStartParams num-cpus "0"). Its object store takes request bodies that the head's proxy forwards.
HEAD = PodSize(cpus=1, memory=4 * GiB, object_store_memory=1 * GiB, system_reserved_memory=1 * GiB)
AUTOSCALER_RESOURCES = Resources(milli_cpus=500, memory=512 * MiB)


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


# ---- reading the sources -----------------------------------------------------------------------------------


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


def image_ref(app_version: str, ray_version: str) -> str:
    return f"{IMAGE_NAME}:{image_tag(app_version, ray_version)}"


def pod_serve_config_text(serve_text: str) -> str:
    """configs/serve.yaml as it must run in a pod: ``http_options.host`` is ``0.0.0.0``; nothing else changes.

    The text (comments included) is kept; only the ``host:`` line under ``http_options`` is rewritten (or
    added). Raises ``ValueError`` if the result parses to anything but the original with that key changed.
    """
    lines = serve_text.splitlines(keepends=True)
    note = "# pod/container: listen on every interface (the one change from configs/serve.yaml)"
    start = next((i for i, line in enumerate(lines) if re.match(r"http_options:\s*(#.*)?$", line)), None)
    if start is None:
        suffix = "" if serve_text.endswith("\n") or not serve_text else "\n"
        out = f"{serve_text}{suffix}\nhttp_options:\n  host: {POD_HTTP_HOST}  {note}\n"
    else:
        host_at = None
        for i in range(start + 1, len(lines)):
            line = lines[i]
            if line.strip() and not line[0].isspace():
                break  # the next top-level key: http_options has no host
            if re.match(r"\s+host:", line):
                host_at = i
                break
        if host_at is None:
            lines.insert(start + 1, f"  host: {POD_HTTP_HOST}  {note}\n")
        else:
            indent = lines[host_at][: len(lines[host_at]) - len(lines[host_at].lstrip())]
            lines[host_at] = f"{indent}host: {POD_HTTP_HOST}  {note}\n"
        out = "".join(lines)
    expected = copy.deepcopy(yaml.safe_load(serve_text)) or {}
    expected.setdefault("http_options", {})["host"] = POD_HTTP_HOST
    if yaml.safe_load(out) != expected:
        raise ValueError(
            "could not rewrite http_options.host in configs/serve.yaml without changing anything else"
        )
    return out


# ---- sizing ------------------------------------------------------------------------------------------------


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


def _deployments(serve_config: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for app in serve_config.get("applications") or []:
        yield from app.get("deployments") or []


def render_task_demands(serve_config: Mapping[str, Any]) -> list[Demand]:
    """``RENDER_TASK_HEADROOM`` tasks of JobRunner's ``render_num_cpus`` (validated as at start-up)."""
    out: list[Demand] = []
    for dep in _deployments(serve_config):
        if dep.get("name") == "JobRunner":
            config = parse_settings(JobRunnerConfig, dep.get("user_config"), where="JobRunner user_config")
            task = Resources(round(config.render_num_cpus * 1000), 0)
            out += [Demand(f"render task {i + 1}", task) for i in range(RENDER_TASK_HEADROOM)]
    return out


def demands(serve_config: Mapping[str, Any], at: Literal["min", "initial", "max"]) -> list[Demand]:
    """Every replica at ``at`` replicas, one entry each, plus the render task headroom."""
    index = {"min": 0, "initial": 1, "max": 2}[at]
    out: list[Demand] = []
    for dep in _deployments(serve_config):
        count = replica_range(dep)[index]
        out += [Demand(f"{dep['name']} {i + 1}", replica_resources(dep)) for i in range(count)]
    return out + render_task_demands(serve_config)


def total(items: Iterable[Demand]) -> Resources:
    result = Resources(0, 0)
    for item in items:
        result = result + item.resources
    return result


def workers_needed(items: Sequence[Demand], worker: PodSize) -> int:
    """Workers that hold ``items`` (first-fit decreasing), never fewer than the totals need."""
    capacity = worker.capacity
    bins: list[Resources] = []
    for item in sorted(items, key=lambda d: (d.resources.memory, d.resources.milli_cpus), reverse=True):
        if not item.resources.fits_in(capacity):
            raise ValueError(
                f"{item.name} ({item.resources}) does not fit one worker ({capacity}); grow WORKER"
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


def size_worker_group(serve_config: Mapping[str, Any], worker: PodSize = WORKER) -> WorkerGroupSizing:
    """Worker group bounds for configs/serve.yaml: max holds every deployment at max replicas (+ spare)."""
    at_min, at_max = demands(serve_config, "min"), demands(serve_config, "max")
    packed = workers_needed(at_max, worker)
    min_workers = workers_needed(at_min, worker)
    start_workers = min(max(workers_needed(demands(serve_config, "initial"), worker), min_workers), packed)
    lines = []
    for dep in _deployments(serve_config):
        low, _, high = replica_range(dep)
        each = replica_resources(dep)
        count = str(low) if low == high else f"{low}..{high}"
        lines.append(f"{dep['name']:<10} {count:>4} x ({each})")
    renders = render_task_demands(serve_config)
    if renders:
        lines.append(
            f"{'render':<10} {len(renders):>4} x ({renders[0].resources}) tasks (JobRunner render_num_cpus)"
        )
    return WorkerGroupSizing(
        worker=worker,
        min_workers=min_workers,
        start_workers=start_workers,
        max_workers=packed + SPARE_WORKERS,
        packed_at_max=packed,
        demand_at_min=total(at_min),
        demand_at_max=total(at_max),
        lines=tuple(lines),
    )


# ---- the manifest ------------------------------------------------------------------------------------------


def _human(nbytes: int) -> str:
    if nbytes == 0:
        return "no memory"
    return f"{nbytes / GiB:g} GiB" if nbytes >= GiB else f"{nbytes / MiB:g} MiB"


def quantity(nbytes: int) -> str:
    """A Kubernetes memory quantity: ``8Gi``, ``1280Mi`` or plain bytes."""
    if nbytes % GiB == 0:
        return f"{nbytes // GiB}Gi"
    if nbytes % MiB == 0:
        return f"{nbytes // MiB}Mi"
    return str(nbytes)


def _cpu_quantity(milli_cpus: int) -> str:
    return str(milli_cpus // 1000) if milli_cpus % 1000 == 0 else f"{milli_cpus}m"


def _block(text: str, spaces: int) -> str:
    """``text`` indented by ``spaces`` (blank lines left empty), without its final newline."""
    pad = " " * spaces
    lines = text.splitlines(keepends=True)
    return "".join(pad + line if line.strip() else "\n" for line in lines).rstrip("\n")


def _resources(resources: Resources) -> str:
    """Container resources with requests == limits."""
    cpu, memory = _cpu_quantity(resources.milli_cpus), quantity(resources.memory)
    return f'requests:\n  cpu: "{cpu}"\n  memory: {memory}\nlimits:\n  cpu: "{cpu}"\n  memory: {memory}\n'


_ENV = """\
- name: SERVE_APP_STORE_URL  # where JobRunner keeps jobs and results (README "Storage"): your bucket
  value: "${store_url}"
  # or from a ConfigMap you manage:  valueFrom: {configMapKeyRef: {name: serve-app, key: store_url}}
- name: AWS_ACCESS_KEY_ID  # S3 credentials from a Secret (see the top of this file)
  valueFrom:
    secretKeyRef:
      name: ${s3_secret}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: ${s3_secret}
      key: AWS_SECRET_ACCESS_KEY
- name: AWS_DEFAULT_REGION
  value: "${aws_region}"
# An S3-compatible store (MinIO, Ceph, R2, ...) instead of AWS S3: its URL.
# - name: AWS_ENDPOINT_URL
#   value: "http://minio.minio.svc.cluster.local:9000"
- name: HF_HUB_OFFLINE  # weights are baked into the image: never reach for a model hub
  value: "1"
- name: TRANSFORMERS_OFFLINE
  value: "1"
- name: TOKENIZERS_PARALLELISM
  value: "false"
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
"""

_POD_SECURITY = """\
securityContext:  # the image's non-root `ray` user (docker/Dockerfile USER)
  runAsUser: ${uid}
  runAsGroup: ${gid}
  runAsNonRoot: true
"""

_SHM_VOLUME = """\
volumes:
  - name: shm  # Ray's object store: memory-backed, so it counts in the pod's memory limit
    emptyDir:
      medium: Memory
      sizeLimit: ${shm_size}  # object-store-memory + margin, so Ray never falls back to /tmp
"""

_MANIFEST = """\
# GENERATED by `make manifests` (python -m serve_app.deploy_manifests --write) from configs/serve.yaml,
# requirements.lock, pyproject.toml and the settings at the top of serve_app/deploy_manifests.py.
# Do not edit by hand: tests/unit/test_deploy_manifests.py fails while this file and its sources differ.
#
# serve_app as a KubeRay RayService (ray.io/v1, KubeRay >= 1.3). To deploy it:
#   1. Build and push the image:
#        make docker IMAGE=REGISTRY/${image} && docker push REGISTRY/${image}
#      then point both `image:` entries below at it, e.g. with a kustomize overlay:
#        kustomize edit set image ${image_name}=REGISTRY/${image}
#   2. Create the S3 credentials Secret (keys never go into this file):
#        kubectl create secret generic ${s3_secret} \\
#          --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=...
#      With IAM roles for service accounts (or workload identity) instead, drop the two secretKeyRef entries
#      and set serviceAccountName in both pod templates.
#   3. Set the bucket (STORE_URL), region and, for MinIO & co., AWS_ENDPOINT_URL in
#      serve_app/deploy_manifests.py (or patch them in a kustomize overlay), run `make manifests`, then:
#        kubectl apply -f k8s/kuberay.yaml
#   4. kubectl port-forward svc/${name}-serve-svc 8000:${serve_port}   then   curl 127.0.0.1:8000/readyz
#
# What to change where:
#   - replicas, CPU/memory per replica, autoscaling bounds, user_config: configs/serve.yaml, then
#     `make manifests` (serveConfigV2 below is that file; the worker group's bounds are recomputed from it).
#     A change to serveConfigV2 alone is applied in place; a change to rayClusterConfig makes KubeRay start a
#     new cluster and switch traffic when it is ready (zero-downtime upgrade; needs room for both meanwhile).
#   - worker pod size (CPU, memory, object store): WORKER in serve_app/deploy_manifests.py, `make manifests`.
#
# Worker sizing, computed from configs/serve.yaml (Ray logical resources; `memory` is a reservation):
${sizing}
#   all at max replicas: ${at_max}; at min replicas: ${at_min}
#   one worker offers Ray ${worker_cpus} CPU and ${worker_ray_memory} (rayStartParams num-cpus, memory) =
#      ${worker_memory} container - ${worker_store} object store
#      - ${worker_reserved} for raylet, agents and the Serve proxy
#   -> first-fit packing needs ${packed} worker(s) at max replicas and ${min_workers} at min replicas;
#      maxReplicas = ${packed} + ${spare} spare (Serve spreads replicas over nodes, so placements fragment;
#      the autoscaler starts a worker only for a replica or task that it cannot place).
apiVersion: ray.io/v1
kind: RayService
metadata:
  name: ${name}
  labels:
    app.kubernetes.io/name: ${name}
    app.kubernetes.io/version: "${app_version}"
spec:
  # configs/serve.yaml verbatim, with one deliberate change: http_options.host is 0.0.0.0, because in a pod
  # the Serve proxy must listen on the pod IP (KubeRay's serve Service and probes reach it there). KubeRay
  # takes this field as a string and deploys it through the dashboard on the head pod.
  serveConfigV2: |
${serve_config}
  rayClusterConfig:
    rayVersion: "${ray_version}"  # the Ray in the image (requirements.lock, docker/Dockerfile FROM)
    enableInTreeAutoscaling: true  # Ray autoscaler sidecar: adds workers for replicas/tasks it cannot place
    autoscalerOptions:
      upscalingMode: ${upscaling_mode}  # Conservative rate-limits upscaling; Default does not
      idleTimeoutSeconds: ${idle_timeout}  # a worker without replicas or tasks is removed after this
      imagePullPolicy: IfNotPresent
      resources:
${autoscaler_resources}
    # Optional GCS fault tolerance: with an external Redis the head pod can restart without losing the Serve
    # apps, and workers keep serving meanwhile (recommended for RayService in production; KubeRay >= 1.3).
    # Run a Redis you trust (a managed one, or your own with persistence), create its password Secret:
    #   kubectl create secret generic ${redis_secret} --from-literal=password=...
    # and uncomment:
    # gcsFaultToleranceOptions:
    #   redisAddress: "redis.redis.svc.cluster.local:6379"
    #   redisPassword:
    #     valueFrom:
    #       secretKeyRef:
    #         name: ${redis_secret}
    #         key: password
    headGroupSpec:
      # No replicas or tasks on the head (num-cpus "0"): it runs the GCS, the dashboard, the Serve controller
      # and one Serve proxy (proxy_location: EveryNode).
      rayStartParams:
${head_params}
      template:
        metadata:
          labels:
            app.kubernetes.io/name: ${name}
        spec:
${head_security}
          containers:
            - name: ray-head
              image: ${image}  # change to your registry's copy (step 1)
              imagePullPolicy: IfNotPresent
              # No command or args: KubeRay runs `ray start --head` with rayStartParams (the image's CMD is
              # only for standalone `docker run`).
              ports:
                - containerPort: 6379
                  name: gcs-server
                - containerPort: 8265
                  name: dashboard
                - containerPort: 10001
                  name: client
                - containerPort: ${serve_port}
                  name: serve
                - containerPort: ${metrics_port}
                  name: metrics
              resources:
${head_resources}
              env:
${env}
              volumeMounts:
                - name: shm
                  mountPath: /dev/shm
${head_volumes}
    workerGroupSpecs:
      - groupName: workers
        # Bounds for the Ray autoscaler (Serve autoscaling adds replicas; pending ones add workers).
        replicas: ${start_workers}
        minReplicas: ${min_workers}
        maxReplicas: ${max_workers}
        rayStartParams:
${worker_params}
        template:
          metadata:
            labels:
              app.kubernetes.io/name: ${name}
          spec:
${worker_security}
            containers:
              - name: ray-worker
                image: ${image}  # change to your registry's copy (step 1)
                imagePullPolicy: IfNotPresent
                # No command or args: KubeRay runs `ray start` with rayStartParams.
                ports:
                  - containerPort: ${serve_port}
                    name: serve
                  - containerPort: ${metrics_port}
                    name: metrics
                resources:  # requests == limits == rayStartParams num-cpus: Ray sees exactly what the pod has
${worker_resources}
                env:
${env_worker}
                volumeMounts:
                  - name: shm
                    mountPath: /dev/shm
${worker_volumes}
"""


def _params(params: Mapping[str, str]) -> str:
    return "".join(f'{key}: "{value}"\n' for key, value in params.items())


def _shm_volume(pod: PodSize) -> str:
    return Template(_SHM_VOLUME).substitute(shm_size=quantity(pod.shm_size))


def head_start_params(head: PodSize = HEAD) -> dict[str, str]:
    return {
        "num-cpus": "0",
        "dashboard-host": "0.0.0.0",
        "object-store-memory": str(head.object_store_memory),
    }


def worker_start_params(worker: PodSize = WORKER) -> dict[str, str]:
    # num-cpus equals the container's CPU limit; memory is what replicas may reserve (see PodSize.ray_memory).
    return {
        "num-cpus": str(worker.cpus),
        "memory": str(worker.ray_memory),
        "object-store-memory": str(worker.object_store_memory),
    }


def render_manifest(
    serve_text: str,
    *,
    ray_version: str,
    app_version: str,
    worker: PodSize = WORKER,
    head: PodSize = HEAD,
) -> str:
    """The RayService manifest (text with comments) for configs/serve.yaml's text ``serve_text``."""
    serve_config: dict[str, Any] = yaml.safe_load(serve_text)
    pod_text = pod_serve_config_text(serve_text)
    sizing = size_worker_group(serve_config, worker)
    serve_port = int((serve_config.get("http_options") or {}).get("port", 8000))
    env = Template(_ENV).substitute(store_url=STORE_URL, s3_secret=S3_SECRET_NAME, aws_region=AWS_REGION)
    security = Template(_POD_SECURITY).substitute(uid=IMAGE_UID, gid=IMAGE_GID)
    text = Template(_MANIFEST).substitute(
        name=RAYSERVICE_NAME,
        image=image_ref(app_version, ray_version),
        image_name=IMAGE_NAME,
        app_version=app_version,
        ray_version=ray_version,
        s3_secret=S3_SECRET_NAME,
        redis_secret=REDIS_SECRET_NAME,
        serve_port=serve_port,
        metrics_port=RAY_METRICS_PORT,
        sizing="\n".join(f"#   {line}" for line in sizing.lines),
        at_max=str(sizing.demand_at_max),
        at_min=str(sizing.demand_at_min),
        worker_cpus=worker.cpus,
        worker_ray_memory=_human(worker.ray_memory),
        worker_memory=_human(worker.memory),
        worker_store=_human(worker.object_store_memory),
        worker_reserved=_human(worker.system_reserved_memory),
        packed=sizing.packed_at_max,
        spare=SPARE_WORKERS,
        min_workers=sizing.min_workers,
        start_workers=sizing.start_workers,
        max_workers=sizing.max_workers,
        serve_config=_block(pod_text, 4),
        upscaling_mode=AUTOSCALER_UPSCALING_MODE,
        idle_timeout=AUTOSCALER_IDLE_TIMEOUT_S,
        autoscaler_resources=_block(_resources(AUTOSCALER_RESOURCES), 8),
        head_params=_block(_params(head_start_params(head)), 8),
        head_security=_block(security, 10),
        head_resources=_block(_resources(head.container), 16),
        env=_block(env, 16),
        head_volumes=_block(_shm_volume(head), 10),
        worker_params=_block(_params(worker_start_params(worker)), 10),
        worker_security=_block(security, 12),
        worker_resources=_block(_resources(worker.container), 18),
        env_worker=_block(env, 18),
        worker_volumes=_block(_shm_volume(worker), 12),
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
) -> str:
    """The manifest for the repository's configs/serve.yaml, requirements.lock and pyproject.toml."""
    return render_manifest(
        serve_config_path.read_text(),
        ray_version=pinned_ray_version(lock_path.read_text()),
        app_version=project_version(pyproject_path.read_text()),
    )


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print, ``--write`` or ``--check`` k8s/kuberay.yaml; ``--serve-config PATH`` for the image."""
    parser = argparse.ArgumentParser(
        prog="python -m serve_app.deploy_manifests",
        description="Generate k8s/kuberay.yaml (KubeRay RayService) from configs/serve.yaml.",
    )
    mode = parser.add_mutually_exclusive_group()
    shown = _shown(MANIFEST_PATH)
    mode.add_argument("--write", action="store_true", help=f"regenerate {shown}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the manifest differs from its sources")
    mode.add_argument(
        "--serve-config",
        type=Path,
        metavar="PATH",
        help="write configs/serve.yaml as it runs in a container (http_options.host 0.0.0.0) to PATH",
    )
    args = parser.parse_args(argv)
    if args.serve_config is not None:
        args.serve_config.write_text(pod_serve_config_text(SERVE_CONFIG_PATH.read_text()))
        return 0
    text = generate()
    if args.write:
        MANIFEST_PATH.parent.mkdir(parents=True, exist_ok=True)
        MANIFEST_PATH.write_text(text)
        print(f"wrote {shown}")
        return 0
    if args.check:
        current = MANIFEST_PATH.read_text() if MANIFEST_PATH.exists() else ""
        if current == text:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True), shown, "generated"
        )
        sys.stderr.writelines(diff)
        print(f"{shown} is out of date: run `make manifests`", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
