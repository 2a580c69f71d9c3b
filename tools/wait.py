"""One way to wait for something: poll a predicate until it holds or a deadline passes (like Ray's own
``wait_for_condition`` in its tests). Used by the launch helpers, the test fixtures and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float,
    *,
    interval_s: float = 0.2,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that; raise ``TimeoutError``
    with ``message`` (a string, or a function called at the deadline) after ``timeout_s`` seconds.
    Exceptions from ``predicate`` propagate at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"after {timeout_s:g} s: {text}")
        time.sleep(interval_s)
