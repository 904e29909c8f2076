"""What differs for real between the async tests and their generated sync twins."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from elastic_transport import AiohttpHttpNode, NodeConfig, Urllib3HttpNode

T = TypeVar("T")

GUARD_SECONDS = 60.0
"""How long a test waits for a condition before failing: a bound on a hang,
never a measure of speed."""


async def async_gather(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run all `calls` at once as tasks of one event loop."""
    return list(await asyncio.gather(*(call() for call in calls)))


def gather(calls: list[Callable[[], T]]) -> list[T]:
    """Run all `calls` at once, one thread each."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def async_burst_size() -> int:
    """Concurrent callers of a burst in async tests: tasks of one event loop."""
    return 64


def burst_size() -> int:
    """Concurrent callers of a burst in sync tests: threads."""
    return 32


async def async_wait_until(condition: Callable[[], bool]) -> None:
    """Return once `condition()` holds; fail after `GUARD_SECONDS`."""
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {GUARD_SECONDS} s")
        await asyncio.sleep(0.01)


def wait_until(condition: Callable[[], bool]) -> None:
    """Return once `condition()` holds; fail after `GUARD_SECONDS`."""
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {GUARD_SECONDS} s")
        time.sleep(0.01)


class AsyncBackground(Generic[T]):
    """A call running as a task of its own while the test goes on."""

    def __init__(self, call: Callable[[], Awaitable[T]]) -> None:
        self._task = asyncio.ensure_future(call())

    def done(self) -> bool:
        return self._task.done()

    async def result(self) -> T:
        """Its result; fails if it has not finished in `GUARD_SECONDS`."""
        return await asyncio.wait_for(self._task, GUARD_SECONDS)


class Background(Generic[T]):
    """A call running in a thread of its own while the test goes on."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._future: Future[T] = Future()

        def run() -> None:
            try:
                self._future.set_result(call())
            except BaseException as exc:
                self._future.set_exception(exc)

        threading.Thread(target=run, daemon=True).start()

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> T:
        """Its result; fails if it has not finished in `GUARD_SECONDS`."""
        return self._future.result(GUARD_SECONDS)


def async_coalesces() -> bool:
    """Whether concurrent calls on one cache share requests: the async
    classes coalesce them."""
    return True


def coalesces() -> bool:
    """Whether concurrent calls on one cache share requests: the sync
    classes do too, across threads, but how many overlap depends on when the
    threads run, so the sync tests assert no fixed count."""
    return False


class AsyncCountingNode(AiohttpHttpNode):
    """elasticsearch-py's async HTTP node, counting the requests it sends."""

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)
        self.sent = 0

    # elastic-transport types the async node's method as its sync base's.
    async def perform_request(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Any:
        self.sent += 1
        return await super().perform_request(*args, **kwargs)


class CountingNode(Urllib3HttpNode):
    """elasticsearch-py's sync HTTP node, counting the requests it sends."""

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self.sent = 0

    def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.sent += 1
        return super().perform_request(*args, **kwargs)


def requests_sent(client: Any) -> int:
    """Requests sent by a client made with ``node_class=`` a counting node."""
    return sum(node.sent for node in client.transport.node_pool.all())
