"""One copy of a model's weights per node, in the Ray object store, for every replica on that node.

On each node, a small actor (``WeightsHolder``, no CPU) owns one object: the model's parameters and
buffers as numpy arrays. The first replica of a model on a node loads the model from its files and
publishes the arrays: it writes them to a scratch file on the node, and the holder reads that file
and puts the arrays into the object store (so the holder owns the object and the publishing replica
never maps a second, transient copy; the holder needs numpy, not torch). Every replica (the first
included) then maps the object read-only from the node's shared memory and binds the arrays as its
module's weights (``serve_app.models.weights``), so the node holds the weights once however many
replicas it runs.

Holders are named ``<kind>:<key>:<node id>`` in the ``serve_app_weights`` namespace and detached, so
they outlive any one replica; the key changes with the model files, so new weights get a new holder.
Replicas touch their holder from their health check; a holder that nobody touched for
``HOLDER_IDLE_EXIT_S`` (the app was deleted or moved) removes itself and frees the object.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
from ray.exceptions import ObjectLostError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_attempt

from serve_app.models.weights import WeightArrays, arrays_nbytes, bind_arrays, map_every_page, module_arrays
from serve_app.runtime.process import release_freed_memory, shared_memory_fraction

if TYPE_CHECKING:
    import torch
    from ray.actor import ActorHandle

logger = logging.getLogger("ray.serve")

NAMESPACE = "serve_app_weights"
HOLDER_IDLE_EXIT_S = 600.0
_ATTEMPTS = 3


class WeightsHolder:
    """Owns the object store copy of one model's weights on one node."""

    def __init__(self, idle_exit_s: float) -> None:
        self._refs: list[ray.ObjectRef] | None = None
        self._touched = time.monotonic()
        self._idle_exit_s = idle_exit_s
        threading.Thread(target=self._exit_when_idle, name="weights-idle-exit", daemon=True).start()

    def get(self) -> list[ray.ObjectRef] | None:
        """``[ref]`` to the published weights (nested, so the caller gets the reference), or None."""
        self._touched = time.monotonic()
        return self._refs

    def publish(self, path: str) -> list[ray.ObjectRef]:
        """Put the arrays of the ``.npz`` file at ``path`` into the object store, unless a racing replica
        published first; return the references every replica should use."""
        self._touched = time.monotonic()
        if self._refs is None:
            with np.load(path) as data:
                arrays = {name: data[name] for name in data.files}
            self._refs = [ray.put(arrays)]
            logger.info("holding %.1f MiB of weights (%d arrays)", arrays_nbytes(arrays) / 2**20, len(arrays))
            del arrays
            gc.collect()
            release_freed_memory()
        return self._refs

    def touch(self) -> None:
        self._touched = time.monotonic()

    def _exit_when_idle(self) -> None:
        while True:
            time.sleep(min(30.0, self._idle_exit_s / 4))
            if time.monotonic() - self._touched > self._idle_exit_s:
                logger.info("no replica used these weights for %.0f s; exiting", self._idle_exit_s)
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return


_remote: Any = ray.remote
HolderActor = _remote(num_cpus=0, max_restarts=0)(WeightsHolder)


@dataclass
class SharedWeights:
    """What a replica keeps: its holder (to touch) and the arrays its module is bound to."""

    holder_name: str
    holder: ActorHandle
    arrays: WeightArrays
    nbytes: int

    def touch(self) -> None:
        """Tell the holder the weights are in use (fire and forget; called from health checks)."""
        self.holder.touch.remote()

    def info(self) -> dict[str, Any]:
        return {"holder": self.holder_name, "bytes": self.nbytes, "arrays": len(self.arrays)}


@dataclass(frozen=True)
class LoadedWeights:
    """How a replica's model weights were loaded: what its ``ready()`` reports and its health check
    keeps alive. Where the weights live is measured once, here, not on every ``/readyz``."""

    shared: SharedWeights | None
    load_seconds: float
    in_shared_memory: float

    @classmethod
    def measure(cls, module: torch.nn.Module, shared: SharedWeights | None, began: float) -> LoadedWeights:
        """``began``: ``time.perf_counter()`` when loading started."""
        return cls(
            shared=shared,
            load_seconds=time.perf_counter() - began,
            in_shared_memory=round(shared_memory_fraction(module), 4),
        )

    def report(self) -> dict[str, Any]:
        return {
            "load_seconds": round(self.load_seconds, 3),
            "shared_weights": self.shared.info() if self.shared else None,
            "weights_in_shared_memory": self.in_shared_memory,
            "pid": os.getpid(),
        }

    def touch(self) -> None:
        """Called from Serve's health check: tells the holder (if any) its weights are in use."""
        if self.shared is not None:
            self.shared.touch()


def _holder(kind: str, key: str) -> tuple[str, ActorHandle]:
    node_id = ray.get_runtime_context().get_node_id()
    name = f"{kind}:{key}:{node_id}"
    handle = HolderActor.options(
        name=name,
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote(HOLDER_IDLE_EXIT_S)
    return name, handle


def _with_holder(kind: str, key: str, call: Callable[[str, ActorHandle], Any]) -> Any:
    # A holder can exit (idle) between our lookup and our call, or before we read its object (which
    # then dies with it, as its owner); the next attempt creates a new holder.
    for attempt in Retrying(
        retry=retry_if_exception_type((RayActorError, ObjectLostError)),
        stop=stop_after_attempt(_ATTEMPTS),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    ):
        with attempt:
            return call(*_holder(kind, key))
    raise AssertionError("tenacity either returns or re-raises")


def published_weights(kind: str, key: str) -> SharedWeights | None:
    """The node's shared weights for this model if a replica already published them, else None.

    A caller that builds its module on these arrays (``bind_arrays``) needs no ``bind_shared_weights``.
    """

    def call(name: str, holder: ActorHandle) -> SharedWeights | None:
        refs: list[ray.ObjectRef] | None = ray.get(holder.get.remote())
        if refs is None:
            return None
        arrays: WeightArrays = ray.get(refs[0])
        map_every_page(arrays)
        return SharedWeights(holder_name=name, holder=holder, arrays=arrays, nbytes=arrays_nbytes(arrays))

    result: SharedWeights | None = _with_holder(kind, key, call)
    return result


def bind_shared_weights(kind: str, key: str, module: torch.nn.Module) -> SharedWeights:
    """Bind ``module`` to the node's shared copy of its weights, publishing them first if needed.

    ``module`` holds the weights it was loaded with (or is already bound to the published arrays);
    afterwards its parameters and buffers are read-only views of the object store copy, and the
    private memory it held is given back to the OS.
    """

    def call(name: str, holder: ActorHandle) -> SharedWeights:
        refs: list[ray.ObjectRef] | None = ray.get(holder.get.remote())
        if refs is None:
            # The holder is on this node (node affinity), so it can read a file this replica writes.
            with tempfile.TemporaryDirectory(prefix="serve_app_weights_") as scratch:
                path = Path(scratch) / "weights.npz"
                np.savez(path, **module_arrays(module))
                refs = ray.get(holder.publish.remote(str(path)))
        arrays: WeightArrays = ray.get(refs[0])
        nbytes = bind_arrays(module, arrays)
        map_every_page(arrays)
        return SharedWeights(holder_name=name, holder=holder, arrays=arrays, nbytes=nbytes)

    shared: SharedWeights = _with_holder(kind, key, call)
    gc.collect()
    release_freed_memory()
    logger.info(
        "%s bound to %.1f MiB of shared weights (%s)", kind, shared.nbytes / 2**20, shared.holder_name
    )
    return shared
