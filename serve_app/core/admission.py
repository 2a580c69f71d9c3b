"""Admission by amount of work: excess load is refused at once (503 + Retry-After), not queued for minutes.

Serve's ``max_queued_requests`` bounds the queue in front of a deployment in *requests*; a request here
may carry 1 sentence or 10,000, one page or twenty. ``WorkLimit`` bounds what a caller has sent and not
yet had answered in *units of work* (sentences, pages): a request is admitted while the units in flight
plus its own fit the limit, and always when nothing is in flight (so one request larger than the limit
still runs on an idle service, alone). Pure logic, one instance per caller (an ingress replica, a runner).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from serve_app.core.errors import Unavailable


class WorkLimit:
    """At most ``limit`` units in flight (see the module docstring); ``what`` names the unit in messages."""

    def __init__(self, limit: int, *, what: str, retry_after_s: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.what = what
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.peak = 0
        self.refused = 0

    def try_acquire(self, units: int, *, held: int = 0) -> bool:
        """Take ``units`` more if they fit, or if nothing but the caller's own ``held`` units is in flight;
        False, and nothing taken, if not."""
        if self.in_flight != held and self.in_flight + units > self.limit:
            self.refused += 1
            return False
        self.in_flight += units
        self.peak = max(self.peak, self.in_flight)
        return True

    def release(self, units: int) -> None:
        self.in_flight = max(0, self.in_flight - units)

    def _busy(self) -> Unavailable:
        return Unavailable(
            f"the service is busy ({self.in_flight} {self.what} in progress, limit {self.limit}); "
            "retry shortly",
            retry_after_s=self.retry_after_s,
        )

    @contextmanager
    def admit_growing(self) -> Iterator[Callable[[int], None]]:
        """Hold one unit for the block (or raise ``Unavailable`` at once), before the size of the request is
        known; the block calls the function it gets with the real size once it knows it, which takes the
        rest (or raises ``Unavailable``; a request that is the only one in flight always fits). So many
        requests arriving together cannot all pass before any of them counts."""
        held = 0

        def grow(units: int) -> None:
            nonlocal held
            if units <= held:
                return
            if not self.try_acquire(units - held, held=held):
                raise self._busy()
            held = units

        if not self.try_acquire(1):
            raise self._busy()
        held = 1
        try:
            yield grow
        finally:
            self.release(held)

    @contextmanager
    def admit(self, units: int) -> Iterator[None]:
        """Hold ``units`` for the block, or raise ``Unavailable`` (503, Retry-After) at once."""
        if not self.try_acquire(units):
            raise self._busy()
        try:
            yield
        finally:
            self.release(units)

    def resize(self, limit: int) -> None:
        """A new limit (a new ``user_config``); work in flight is kept and counts against it."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit


def pages_in_flight(
    replicas: int, *, per_replica: int, maximum: int, page_bytes: int, byte_budget: int
) -> int:
    """Pages one job keeps alive at once: ``per_replica`` for every running Detector replica (so a job
    uses the whole cluster, and rendering the next pages overlaps detecting these), within ``maximum``
    and within ``byte_budget`` of page images in the object store (``page_bytes`` each). At least 1."""
    by_memory = byte_budget // max(1, page_bytes)
    return max(1, min(per_replica * max(1, replicas), maximum, by_memory))


class PageWindow:
    """At most ``limit`` pages of one document alive at once; the limit may change while it runs
    (Detector replicas come and go), and pages waiting for a slot start as soon as it grows."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self.in_use = 0
        self.peak = 0
        self._changed = asyncio.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    async def resize(self, limit: int) -> None:
        async with self._changed:
            self._limit = max(1, limit)
            self._changed.notify_all()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_use < self._limit)
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)

    async def __aexit__(self, *_: object) -> None:
        async with self._changed:
            self.in_use -= 1
            self._changed.notify()
