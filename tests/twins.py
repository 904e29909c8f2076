"""What differs for real between the async tests and their generated sync twins."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


async def async_gather(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run all `calls` at once as tasks of one event loop."""
    return list(await asyncio.gather(*(call() for call in calls)))


def gather(calls: list[Callable[[], T]]) -> list[T]:
    """Run all `calls` at once, one thread each."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))
