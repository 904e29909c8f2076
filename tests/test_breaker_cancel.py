"""A probe cancelled with its task hands the probe on: the breaker never sticks open.

Async only: a sync call cannot be cancelled halfway.
"""

from __future__ import annotations

import asyncio

import pytest
from elasticsearch import AsyncElasticsearch

from langchain_es_cache import AsyncElasticsearchCache, BreakerSettings, CacheStats
from tests.clock import FakeMonotonic
from tests.outage import frozen_listener
from tests.twins import AsyncCountingNode, async_wait_until, requests_sent

LLM = "model=counting-1"


async def test_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = FakeMonotonic()
    with frozen_listener() as listener:
        client = AsyncElasticsearch(
            listener.url,
            node_class=AsyncCountingNode,
            request_timeout=0.2,
            max_retries=0,
        )
        cache = AsyncElasticsearchCache(
            "cache",
            client=client,
            on_error="warn",
            breaker=BreakerSettings(failures=1, cooldown=5.0, clock=clock),
        )
        assert await cache.alookup("p", LLM) is None  # opens it
        clock.advance(5.0)
        probe = asyncio.create_task(cache.alookup("p", LLM))
        # The probe is waiting for its answer.
        await async_wait_until(lambda: requests_sent(client) >= 2)
        assert await cache.alookup("q", LLM) is None  # skipped: one probe at a time
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert await cache.alookup("r", LLM) is None  # the next call probes
        assert requests_sent(client) == 3
        assert cache.stats() == CacheStats(errors=2, skipped=1)
        await client.close()
