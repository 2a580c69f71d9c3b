"""Wire types that callers of the deployments need, importable without importing a deployment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ray

from serve_app.core.layout import Region

__all__ = ["PageImage", "Region"]


@dataclass(frozen=True)
class PageImage:
    """A rendered page: ``image`` is an ObjectRef to an H x W x 3 uint8 RGB array in the object store.

    The reference is nested in this record on purpose: Ray does not resolve nested references, so the
    pixels stay in the object store until a Detector replica reads them (zero-copy on the same node).
    The caller must keep the reference alive (its owner must not exit) until the answer arrives.
    """

    image: ray.ObjectRef[np.ndarray]
    points_per_pixel: float = 1.0
