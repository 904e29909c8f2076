"""The sync coalescer: threads' calls made while one is in flight share the
next request (pure logic, a fake send)."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from langchain_es_cache._twins import Coalescer
from tests.twins import Background, wait_until


def test_threads_waiting_behind_a_call_share_the_next_request() -> None:
    batches: list[list[int]] = []
    release = threading.Event()
    mode = ["items"]

    def send(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        if len(batches) == 1:
            release.wait()
        if mode[0] == "down" and len(items) > 1:
            raise ConnectionError("down")
        return [i * 10 if i % 2 else ValueError(str(i)) for i in items]

    coalescer: Coalescer[int, int] = Coalescer(send, lambda i: 1)
    for batch_mode in ("items", "down"):
        mode[0] = batch_mode
        batches.clear()
        release.clear()
        first = Background(lambda: coalescer.call(1))
        wait_until(lambda: len(batches) == 1)
        rest = [Background(partial(coalescer.call, i)) for i in (3, 4, 5)]
        wait_until(lambda: len(coalescer._pending) == 3)
        release.set()
        assert first.result() == 10
        outcomes: list[object] = []
        for call in rest:
            try:
                outcomes.append(call.result())
            except Exception as exc:
                outcomes.append(type(exc))
        assert batches == [[1], [3, 4, 5]]
        if batch_mode == "items":
            assert outcomes == [30, ValueError, 50]
        else:
            assert outcomes == [ConnectionError] * 3
    # Idle again: a lone call is a request of its own.
    batches.clear()
    release.set()
    assert coalescer.call(7) == 70
    assert batches == [[7]]


def test_a_lone_error_is_raised_to_its_caller() -> None:
    def send(items: list[int]) -> list[int | Exception]:
        raise ConnectionError("down")

    coalescer: Coalescer[int, int] = Coalescer(send, lambda i: 1)
    with pytest.raises(ConnectionError):
        coalescer.call(1)
    assert not coalescer._busy
