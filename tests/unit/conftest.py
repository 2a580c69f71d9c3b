"""Unit tier: pure logic only. Any attempt to start or join Ray fails the test."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def refuse(*_: Any, **__: Any) -> NoReturn:
        raise RuntimeError("unit tests must not start Ray; move this test to tests/app")

    monkeypatch.setattr(ray, "init", refuse)
