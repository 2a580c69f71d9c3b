"""Cluster tier: multi-node Ray clusters started locally (marked ``cluster``; run by ``make test``).

``ray.cluster_utils.Cluster`` starts real Ray nodes (a raylet, an object store and workers each) as
separate processes on this machine: a head node with no CPUs, so that no replica runs on it (as on
KubeRay), and two worker nodes with 2 logical CPUs each. ``configs/serve.yaml`` is deployed onto it with
three changes (see ``cluster_config``). Every wait in this tier is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import ray._private.state
import yaml
from ray import serve
from ray._common.utils import get_ray_address_file
from ray._private.node import Node
from ray.cluster_utils import Cluster
from ray.serve.schema import ServeDeploySchema

from tools.launch import APP_NAME, DEFAULT_CONFIG, deploy, free_port, load_config
from tools.wait import wait_until

SCALED = ("Embedder", "Detector")  # pinned to one replica per worker node
REPLICAS = 2
WORKER_CPUS = 2  # logical: Embedder 2 x 0.4 + Detector 2 x 0.5 + 3 x 0.05 = 1.95 fit on ONE worker
# Logical too (a scheduling hint, like the replicas' `memory`): what all replicas reserve (9.5 GiB) fits on
# one worker, so Serve can bring everything back on the survivor when the other worker dies.
WORKER_MEMORY = 12 * 1024**3
DEPLOY_TIMEOUT_S = 600  # four models load at once on 2 real cores


@dataclass(frozen=True)
class ServeCluster:
    """A running multi-node cluster with the app deployed on it."""

    cluster: Cluster
    workers: tuple[Node, ...]
    url: str  # the HTTP proxy, on the head node only

    @property
    def head_node_id(self) -> str:
        assert self.cluster.head_node is not None
        return str(self.cluster.head_node.node_id)

    def worker(self, node_id: str) -> Node:
        return next(w for w in self.workers if w.node_id == node_id)


def cluster_config(directory: Path) -> Path:
    """``configs/serve.yaml`` changed for several Ray nodes on one machine; returns the file written.

    - ``proxy_location: HeadOnly``: with ``EveryNode`` Serve starts a proxy on every node that has a
      replica, each binding ``http_options.host:port``. Here every "node" is a set of processes on the
      same machine (same IP), so all but the first proxy would fail to bind the port. On a real cluster
      (KubeRay) each node is its own machine (pod) and ``EveryNode`` is right.
    - Embedder and Detector: ``num_replicas: 2`` instead of autoscaling, so Serve's default SPREAD
      scheduling places one replica of each on each worker node.
    """
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["proxy_location"] = "HeadOnly"
    for app in raw["applications"]:
        for dep in app["deployments"]:
            if dep["name"] in SCALED:
                dep.pop("autoscaling_config", None)
                dep["num_replicas"] = REPLICAS
    path = directory / "serve.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _read_address_file() -> str | None:
    path = Path(get_ray_address_file(None))
    return path.read_text() if path.exists() else None


def _restore_address_file(content: str | None) -> None:
    """``Cluster`` writes its address to /tmp/ray/ray_current_cluster (and deletes the file when it shuts
    down). While it is there, any ``ray.init()`` without an address on this machine (the app tier, a
    benchmark, ``make run``) would join this test cluster instead of starting its own: put back what was
    there. Everything here connects by explicit address."""
    path = Path(get_ray_address_file(None))
    if content is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(content)


def replica_nodes(deployment: str | None = None) -> dict[str, str]:
    """Node ID of every live replica actor of the app (or of one deployment), by actor name.

    Serve names replica actors ``SERVE_REPLICA::<app>#<deployment>#<id>``. The node comes from the GCS
    actor table (``ray._private.state.actors``): unlike ``ray.util.state.list_actors`` it needs no
    dashboard, and this cluster runs none (like the app tier). An actor on a node that just died stays
    ALIVE here until the GCS notices the node is gone.
    """
    prefix = f"SERVE_REPLICA::{APP_NAME}#" + (f"{deployment}#" if deployment else "")
    return system_actor_nodes(prefix)


def system_actor_nodes(prefix: str) -> dict[str, str]:
    """Node ID of every live actor whose name starts with ``prefix``, by actor name."""
    actors = ray._private.state.actors(actor_state_name="ALIVE").values()
    return {a["Name"]: a["Address"]["NodeID"] for a in actors if a["Name"].startswith(prefix)}


def wait_http_ok(url: str, path: str, *, timeout_s: float) -> None:
    """Poll ``GET url+path`` until it answers 200 (connection errors and 503s are waited out)."""
    last = [""]

    def ok() -> bool:
        try:
            response = httpx.get(url + path, timeout=10)
        except httpx.TransportError as exc:
            last[0] = repr(exc)
            return False
        last[0] = f"{response.status_code} {response.text[:300]}"
        return response.status_code == 200

    wait_until(ok, timeout_s, interval_s=0.5, message=lambda: f"{path} not 200; last: {last[0]}")


@pytest.fixture(scope="session")
def serve_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeCluster]:
    """A head node (0 CPUs: proxy and controller only) and two 2-CPU worker nodes, with the app deployed."""
    address_file = _read_address_file()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    _restore_address_file(address_file)
    try:
        workers = tuple(cluster.add_node(num_cpus=WORKER_CPUS, memory=WORKER_MEMORY) for _ in range(2))
        cluster.wait_for_nodes(timeout=60)
        ray.init(address=cluster.address, namespace="serve", log_to_driver=False)
        try:
            # The driver must sit on the head: a node a driver is attached to cannot be removed.
            assert cluster.head_node is not None
            assert ray.get_runtime_context().get_node_id() == cluster.head_node.node_id
            tmp = tmp_path_factory.mktemp("cluster")
            # Every node is on this machine, so a local directory is shared by all of them (a real
            # multi-machine cluster needs s3://, see the app tier).
            store = (tmp / "store").resolve()
            config: ServeDeploySchema = load_config(
                cluster_config(tmp), port=free_port(), env_vars={"SERVE_APP_STORE_URL": store.as_uri()}
            )
            deploy(config, timeout_s=DEPLOY_TIMEOUT_S)
            url = f"http://127.0.0.1:{config.http_options.port}"
            wait_http_ok(url, "/readyz", timeout_s=120)
            yield ServeCluster(cluster=cluster, workers=workers, url=url)
        finally:
            serve.shutdown()
            ray.shutdown()
    finally:
        cluster.shutdown()
        _restore_address_file(address_file)


@pytest.fixture(scope="session")
def http(serve_cluster: ServeCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_cluster.url, timeout=120) as client:
        yield client
