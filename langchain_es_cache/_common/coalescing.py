"""Coalescing concurrent calls (the DataLoader pattern): the queue, no requests.

A call made while none of its kind is in flight is sent at once, alone. Calls
made while one is in flight wait here, and go out together, in bounded
batches, when it returns: no timer, so a lone call waits for nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from langchain_es_cache._common.batching import MAX_DOCS_PER_REQUEST
from langchain_es_cache.types import Refresh

T = TypeVar("T")
W = TypeVar("W")


class Pending(Generic[W]):
    """Waiting calls, oldest first, taken out in batches of bounded weight.

    `weight` is how many documents a call puts in a request; a batch holds
    at most `limit` of them (one call heavier than that goes out alone), and
    `live` tells which waiting calls still want an answer (a cancelled one is
    dropped, never sent).
    """

    def __init__(
        self,
        weight: Callable[[W], int],
        live: Callable[[W], bool],
        limit: int = MAX_DOCS_PER_REQUEST,
    ) -> None:
        if limit < 1:
            raise ValueError("a batch needs room for at least one document")
        self._weight = weight
        self._live = live
        self._limit = limit
        self._queue: deque[W] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def clear(self) -> list[W]:
        """Empty the queue; return what it held."""
        waiters = list(self._queue)
        self._queue.clear()
        return waiters

    def peek(self) -> W | None:
        """The oldest waiting call, left in the queue; `None` if none waits."""
        return self._queue[0] if self._queue else None

    def add(self, waiter: W) -> None:
        """Queue `waiter` for the next batch."""
        self._queue.append(waiter)

    def take(self) -> list[W]:
        """The next batch: the oldest live calls that fit; empty when none wait."""
        batch: list[W] = []
        total = 0
        queue = self._queue
        while queue:
            waiter = queue[0]
            if not self._live(waiter):
                queue.popleft()
                continue
            weight = self._weight(waiter)
            if batch and total + weight > self._limit:
                break
            queue.popleft()
            batch.append(waiter)
            total += weight
        return batch


def split_results(
    calls: list[tuple[str, ...]],
    found: dict[str, T],
    errors: dict[str, Exception],
) -> list[dict[str, T] | Exception]:
    """Each call's share of one read of all their ids: the sources of its ids,
    or the error of the first of its ids that failed (which fails it alone)."""
    out: list[dict[str, T] | Exception] = []
    for ids in calls:
        error = next((errors[i] for i in ids if i in errors), None)
        if error is not None:
            out.append(error)
        else:
            out.append({i: found[i] for i in ids if i in found})
    return out


def strongest_refresh(refreshes: list[Refresh]) -> Refresh:
    """The refresh that satisfies every call of a batch: `True` (refresh now)
    over ``"wait_for"`` over `False`."""
    if True in refreshes:
        return True
    if "wait_for" in refreshes:
        return "wait_for"
    return False
