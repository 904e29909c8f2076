"""single_flight where async and sync meet, and callers that go away."""

from __future__ import annotations

import asyncio
from typing import Any

from elasticsearch import AsyncElasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache
from tests.clock import FakeClock
from tests.models import CountingLLM
from tests.twins import GUARD_SECONDS, async_wait_until
from utils import es_server

PROMPT = "What is the capital of France?"
LLM = "model=slow-1"


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
    es_conn: es_server.Connection, index_name: str
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
    try:
        assert await claimer.alookup(PROMPT, LLM) is None
        poller = asyncio.ensure_future(waiter.alookup(PROMPT, LLM))
        await async_wait_until(lambda: len(waiter._flights or ()) == 1)
        patient = asyncio.ensure_future(waiter.alookup(PROMPT, LLM))
        await asyncio.sleep(0.05)
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        assert not patient.done()
        await claimer.aupdate(PROMPT, LLM, [Generation(text="Paris")])
        assert await asyncio.wait_for(patient, GUARD_SECONDS) == [
            Generation(text="Paris")
        ]
        assert waiter.stats().coalesced == 1
    finally:
        await client.close()


async def test_cancelled_waiter_leaves_the_others_waiting(
    es_conn: es_server.Connection, index_name: str
) -> None:
    client = AsyncElasticsearch(es_conn.url, **es_conn.client_auth())
    cache = AsyncElasticsearchCache(
        index_name, client=client, single_flight=60, clock=FakeClock()
    )
    try:
        assert await cache.alookup(PROMPT, LLM) is None
        waiters = [asyncio.ensure_future(cache.alookup(PROMPT, LLM)) for _ in range(3)]
        await asyncio.sleep(0.05)
        waiters[0].cancel()
        await asyncio.gather(waiters[0], return_exceptions=True)
        await cache.aupdate(PROMPT, LLM, [Generation(text="Paris")])
        found = await asyncio.wait_for(asyncio.gather(*waiters[1:]), GUARD_SECONDS)
        assert found == [[Generation(text="Paris")]] * 2
    finally:
        await client.close()
