"""single_flight where async and sync meet, and callers that go away."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache
from langchain_es_cache._common.single_flight import Step
from tests.clock import FakeClock
from tests.models import CountingLLM
from tests.twins import GUARD_SECONDS, async_wait_until
from utils import es_server

PROMPT = "What is the capital of France?"
LLM = "model=slow-1"


def record_joins(
    cache: AsyncElasticsearchCache, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[object, str]]:
    """Record, for each join of `cache`'s flights, the task that joined and
    the step it was given. A task given ``wait`` awaits the flight's signal
    before it yields to the loop, so once seen here it is waiting."""
    flights = cache._flights
    assert flights is not None
    join = flights.join
    seen: list[tuple[object, str]] = []

    def recorded(key: str, me: object, now: datetime) -> Step[Any]:
        step = join(key, me, now)
        seen.append((asyncio.current_task(), step.kind))
        return step

    monkeypatch.setattr(flights, "join", recorded)
    return seen


async def test_sync_class_in_async_code_never_waits_for_its_own_claim(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    """LangChain runs the sync class's lookups in executor threads: both
    lookups of one agenerate still belong to its task. With a frozen clock,
    a wait for the task's own claim would never end."""
    with ElasticsearchCache(
        index_name, single_flight=60, clock=FakeClock(), **api_key_settings
    ) as cache:
        llm = CountingLLM(cache=cache)
        result = await asyncio.wait_for(llm.agenerate([PROMPT, PROMPT]), GUARD_SECONDS)
        assert len(result.generations) == 2
        assert llm.calls == 2
        assert cache.stats().coalesced == 0


async def test_cancelled_poller_hands_over_to_the_next_caller(
    es_conn: es_server.Connection, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller polling for its process is cancelled: another caller of that
    process polls instead, and gets the answer."""
    client = AsyncElasticsearch(es_conn.url, **es_conn.client_auth())
    clock = FakeClock()
    claimer = AsyncElasticsearchCache(
        index_name, client=client, single_flight=60, clock=clock
    )
    waiter = AsyncElasticsearchCache(
        index_name, client=client, single_flight=60, clock=clock
    )
    joins = record_joins(waiter, monkeypatch)
    try:
        assert await claimer.alookup(PROMPT, LLM) is None
        poller = asyncio.ensure_future(waiter.alookup(PROMPT, LLM))
        await async_wait_until(lambda: (poller, "lead") in joins)
        patient = asyncio.ensure_future(waiter.alookup(PROMPT, LLM))
        # The patient caller waits on the poller's flight, not polling itself.
        await async_wait_until(lambda: (patient, "wait") in joins)
        assert len(waiter._flights or ()) == 1
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        # The patient caller takes the lead (polls), and has no answer yet.
        await async_wait_until(lambda: (patient, "lead") in joins)
        assert not patient.done()
        await claimer.aupdate(PROMPT, LLM, [Generation(text="Paris")])
        assert await asyncio.wait_for(patient, GUARD_SECONDS) == [
            Generation(text="Paris")
        ]
        assert waiter.stats().coalesced == 1
    finally:
        await client.close()


async def test_cancelled_waiter_leaves_the_others_waiting(
    es_conn: es_server.Connection, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = AsyncElasticsearch(es_conn.url, **es_conn.client_auth())
    cache = AsyncElasticsearchCache(
        index_name, client=client, single_flight=60, clock=FakeClock()
    )
    joins = record_joins(cache, monkeypatch)
    try:
        assert await cache.alookup(PROMPT, LLM) is None
        waiters = [asyncio.ensure_future(cache.alookup(PROMPT, LLM)) for _ in range(3)]
        # All three wait on the flight of the claim this task holds.
        await async_wait_until(lambda: all((w, "wait") in joins for w in waiters))
        waiters[0].cancel()
        await asyncio.gather(waiters[0], return_exceptions=True)
        assert not any(w.done() for w in waiters[1:])
        await cache.aupdate(PROMPT, LLM, [Generation(text="Paris")])
        found = await asyncio.wait_for(asyncio.gather(*waiters[1:]), GUARD_SECONDS)
        assert found == [[Generation(text="Paris")]] * 2
    finally:
        await client.close()
