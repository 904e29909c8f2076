"""What differs for real between the async tests and their generated sync twins."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from elastic_transport import AiohttpHttpNode, NodeConfig, Urllib3HttpNode

T = TypeVar("T")


async def async_gather(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run all `calls` at once as tasks of one event loop."""
    return list(await asyncio.gather(*(call() for call in calls)))


def gather(calls: list[Callable[[], T]]) -> list[T]:
    """Run all `calls` at once, one thread each."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


class AsyncCountingNode(AiohttpHttpNode):
    """elasticsearch-py's async HTTP node, counting the requests it sends."""

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)
        self.sent = 0

    async def perform_request(self, *args: Any, **kwargs: Any) -> Any:
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
