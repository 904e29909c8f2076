"""Coalescing that only the async classes do: cancelling callers, and the
queue's rules (pure logic, no server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import AsyncElasticsearchCache
from langchain_es_cache._common.coalescing import Pending, strongest_refresh
from langchain_es_cache._twins import AsyncCoalescer
from tests.twins import async_wait_until
from utils import es_server

LLM = "model=coalesce temperature=0"


class GatedClient(AsyncElasticsearch):
    """The real client; its requests wait for `gate` to open."""

    gate: asyncio.Event

    async def perform_request(self, method: str, path: str, **kwargs: Any) -> Any:
        await self.gate.wait()
        return await super().perform_request(method, path, **kwargs)


def waiting(cache: AsyncElasticsearchCache) -> int:
    """How many lookups wait behind the one in flight."""
    return pending(cache._reads)


def pending(coalescer: AsyncCoalescer[Any, Any]) -> int:
    """How many calls wait behind the one `coalescer` has in flight."""
    lane = coalescer._lanes.get(asyncio.get_running_loop())
    return 0 if lane is None else len(lane.pending)


@pytest.mark.parametrize("cancelled", [0, 5])
async def test_cancelling_one_caller_leaves_the_others_their_answers(
    es_conn: es_server.Connection, index_name: str, cancelled: int
) -> None:
    """Caller 0 sends alone; the others wait for it. Cancelling either the
    sender or a waiter leaves every other caller its own answer."""
    client = GatedClient(es_conn.url, **es_conn.client_auth())
    GatedClient.gate = asyncio.Event()
    GatedClient.gate.set()
    cache = AsyncElasticsearchCache(index_name, client=client)
    for i in range(32):
        await cache.aupdate(f"q{i}", LLM, [Generation(text=f"a{i}")])
    # The first lookup's request is held until the others wait behind it.
    GatedClient.gate.clear()
    tasks = [asyncio.create_task(cache.alookup(f"q{i}", LLM)) for i in range(32)]
    await async_wait_until(lambda: waiting(cache) == 31)
    tasks[cancelled].cancel()
    # Cancelled before its request (or the one it waits for) is answered.
    await async_wait_until(tasks[cancelled].done)
    GatedClient.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[cancelled], asyncio.CancelledError)
    for i, result in enumerate(results):
        if i != cancelled:
            assert result == [Generation(text=f"a{i}")]
    # The cache goes on serving, alone and together.
    assert await cache.alookup("q1", LLM) == [Generation(text="a1")]
    assert waiting(cache) == 0
    await client.close()


def test_pending_takes_live_calls_oldest_first_within_the_limit() -> None:
    dead = {"b"}
    pending: Pending[tuple[str, int]] = Pending(
        lambda w: w[1], lambda w: w[0] not in dead, limit=5
    )
    for waiter in [("a", 2), ("b", 9), ("c", 3), ("d", 1), ("e", 7), ("f", 1)]:
        pending.add(waiter)
    assert pending.take() == [("a", 2), ("c", 3)]
    assert pending.take() == [("d", 1)]
    # Heavier than the limit: alone.
    assert pending.take() == [("e", 7)]
    assert pending.take() == [("f", 1)]
    assert pending.take() == []
    with pytest.raises(ValueError, match="at least one"):
        Pending(lambda w: 1, lambda w: True, limit=0)


def test_strongest_refresh() -> None:
    assert strongest_refresh([False, False]) is False
    assert strongest_refresh([False, "wait_for"]) == "wait_for"
    assert strongest_refresh(["wait_for", True, False]) is True


async def test_each_caller_gets_its_own_result_or_error() -> None:
    """A request that fails fails each caller of its batch; an item that
    fails fails its caller alone; the lane is idle after."""
    batches: list[list[int]] = []
    release = asyncio.Event()
    mode = ["down"]

    async def send(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        if len(items) == 1:
            await release.wait()
            return [items[0] * 10]
        if mode[0] == "down":
            raise ConnectionError("down")
        return [i * 10 if i % 2 else ValueError(str(i)) for i in items]

    coalescer: AsyncCoalescer[int, int] = AsyncCoalescer(send, lambda i: 1)
    for batch_mode in ("down", "items"):
        mode[0] = batch_mode
        release.clear()
        batches.clear()
        lone = asyncio.create_task(coalescer.call(1))
        await async_wait_until(lambda: batches == [[1]])
        rest = [asyncio.create_task(coalescer.call(i)) for i in (2, 3)]
        await async_wait_until(lambda: pending(coalescer) == 2)
        release.set()
        assert await lone == 10
        two, three = await asyncio.gather(*rest, return_exceptions=True)
        assert batches == [[1], [2, 3]]
        if batch_mode == "down":
            assert isinstance(two, ConnectionError)
            assert isinstance(three, ConnectionError)
        else:
            assert isinstance(two, ValueError)
            assert three == 30
