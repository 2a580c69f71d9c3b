"""Admission: WorkLimit (units of work, refused at once with a retry hint when full), a job's page window."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from serve_app.core.admission import PageWindow, WorkLimit, pages_in_flight
from serve_app.core.errors import Unavailable


def test_admits_while_the_work_fits_and_refuses_past_it() -> None:
    limit = WorkLimit(100, what="sentences")
    assert limit.try_acquire(60)
    assert limit.try_acquire(40)
    assert not limit.try_acquire(1)
    assert (limit.in_flight, limit.refused, limit.peak) == (100, 1, 100)
    limit.release(40)
    assert limit.try_acquire(30)
    assert limit.in_flight == 90


def test_one_request_larger_than_the_limit_runs_alone() -> None:
    limit = WorkLimit(10, what="pages")
    assert limit.try_acquire(500)  # nothing in flight: admitted
    assert not limit.try_acquire(1)
    limit.release(500)
    assert limit.in_flight == 0
    assert limit.try_acquire(1)


def test_admit_raises_unavailable_with_retry_after_and_releases() -> None:
    limit = WorkLimit(4, what="pages of /v1/detect", retry_after_s=2.4)
    with limit.admit(3):
        assert limit.in_flight == 3
        with pytest.raises(Unavailable) as caught, limit.admit(2):
            pass
        assert "3 pages of /v1/detect in progress, limit 4" in caught.value.message
        assert caught.value.retry_after_s == 2
        assert caught.value.status == 503
    assert limit.in_flight == 0
    with pytest.raises(RuntimeError), limit.admit(4):  # released when the block fails too
        raise RuntimeError("boom")
    assert limit.in_flight == 0


def test_resize_keeps_work_in_flight() -> None:
    limit = WorkLimit(8, what="sentences")
    assert limit.try_acquire(8)
    limit.resize(4)
    assert limit.in_flight == 8 and not limit.try_acquire(1)
    limit.release(8)
    assert limit.try_acquire(4) and not limit.try_acquire(1)
    with pytest.raises(ValueError):
        limit.resize(0)
    with pytest.raises(ValueError):
        WorkLimit(0, what="x")


def test_the_retry_hint_crosses_processes() -> None:
    error = pickle.loads(pickle.dumps(Unavailable("busy", retry_after_s=7)))
    assert (error.message, error.retry_after_s) == ("busy", 7)
    assert pickle.loads(pickle.dumps(Unavailable("busy"))).retry_after_s == 1  # the class default


def test_admit_growing_holds_a_unit_before_the_size_is_known() -> None:
    limit = WorkLimit(4, what="pages")
    with limit.admit_growing() as grow_first:
        assert limit.in_flight == 1
        with limit.admit_growing() as grow_second:  # a second request arriving meanwhile holds one too
            assert limit.in_flight == 2
            with pytest.raises(Unavailable):
                grow_second(4)  # 1 + 4 > 4: refused, and it keeps only its one unit
            assert limit.in_flight == 2
        assert limit.in_flight == 1
        grow_first(10)  # alone in flight: a request larger than the limit still runs
        assert limit.in_flight == 10
        with pytest.raises(Unavailable), limit.admit_growing():  # full: refused before it holds anything
            pass
    assert limit.in_flight == 0
    with limit.admit_growing() as grow:
        grow(3)
        grow(2)  # shrinking keeps what is held
        assert limit.in_flight == 3
    assert limit.in_flight == 0


def test_pages_in_flight_follow_the_detector_replicas_within_the_bounds() -> None:
    page = 595 * 842 * 3  # A4 at 72 dpi, RGB
    kwargs = {"per_replica": 4, "maximum": 64, "byte_budget": 512 * 2**20}
    assert [pages_in_flight(n, page_bytes=page, **kwargs) for n in (0, 1, 2, 8)] == [4, 4, 8, 32]
    assert pages_in_flight(100, page_bytes=page, **kwargs) == 64  # the maximum
    big = 2480 * 3508 * 3  # A4 at 300 dpi: 26 MB
    assert pages_in_flight(8, page_bytes=big, **kwargs) == 20  # 512 MiB of page images
    assert pages_in_flight(8, page_bytes=2**40, **kwargs) == 1  # always at least one


def test_page_window_bounds_pages_and_grows_while_they_wait() -> None:
    async def scenario() -> tuple[int, int, int]:
        window = PageWindow(2)
        release = asyncio.Event()

        async def page() -> None:
            async with window:
                await release.wait()

        tasks = [asyncio.create_task(page()) for _ in range(6)]
        await asyncio.sleep(0.01)
        first = window.in_use  # 2 started, 4 wait
        await window.resize(5)  # a replica joined: 3 more start at once
        await asyncio.sleep(0.01)
        grown = window.in_use
        release.set()
        await asyncio.gather(*tasks)
        return first, grown, window.peak

    assert asyncio.run(scenario()) == (2, 5, 5)
