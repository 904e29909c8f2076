"""The LangGraph node cache's circuit breaker and check(): the other classes'
are in test_breaker.py, which runs without LangGraph."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")
from elasticsearch import AsyncElasticsearch, Elasticsearch

from langchain_es_cache import (
    AsyncElasticsearchGraphCache,
    BreakerSettings,
    CacheError,
    CacheStats,
    CircuitOpenError,
)
from langchain_es_cache._common import breaker as _breaker
from tests.clock import FakeMonotonic
from tests.outage import frozen_listener
from tests.twins import AsyncCountingNode, requests_sent
from utils import es_server

# Real sockets and real timeouts (the node, frozen listeners, status servers):
# integration tests, never the fast tier.
pytestmark = pytest.mark.integration

KEY = (("node",), "k")


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


def settings(clock: FakeMonotonic) -> BreakerSettings:
    return BreakerSettings(failures=1, cooldown=5.0, clock=clock)


@pytest.fixture
async def frozen() -> AsyncIterator[AsyncElasticsearch]:
    with frozen_listener() as listener:
        client = AsyncElasticsearch(
            listener.url,
            node_class=AsyncCountingNode,
            request_timeout=0.2,
            max_retries=0,
        )
        yield client
        await client.close()


async def test_graph_cache_skips_every_operation(
    frozen: AsyncElasticsearch, clock: FakeMonotonic
) -> None:
    cache = AsyncElasticsearchGraphCache(
        "cache", client=frozen, on_error="warn", breaker=settings(clock)
    )
    assert await cache.aget([KEY]) == {}
    await cache.aset({KEY: ({"v": 1}, None)})
    assert await cache.aget([KEY]) == {}
    await cache.aclear()
    assert await cache.apurge_expired() == 0
    assert requests_sent(frozen) == 1
    assert cache.stats() == CacheStats(errors=1, skipped=4)
    strict = AsyncElasticsearchGraphCache(
        "cache", client=frozen, breaker=settings(clock)
    )
    with pytest.raises(CacheError, match="cache get on index 'cache' failed"):
        await strict.aget([KEY])
    with pytest.raises(CircuitOpenError, match="cache set on index 'cache' not sent"):
        await strict.aset({KEY: ({"v": 1}, None)})
    assert requests_sent(frozen) == 2
    clock.advance(5.0)
    with pytest.raises(CacheError, match="cache clear on index 'cache' failed"):
        await strict.aclear()  # the probe
    assert requests_sent(frozen) == 3
    # An open breaker does not keep check() from asking.
    with pytest.raises(CacheError, match="cannot reach Elasticsearch"):
        await strict.acheck()
    assert requests_sent(frozen) == 4


async def test_graph_cache_works_through_the_breaker_and_checks(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    clock: FakeMonotonic,
) -> None:
    cache = AsyncElasticsearchGraphCache(
        index_name, client=async_client, breaker=settings(clock)
    )
    report = await cache.acheck()
    assert (report.index, report.index_exists) == (index_name, False)
    assert report.privileges["read"] and report.privileges["write"]
    assert not admin.indices.exists(index=index_name)  # check() creates nothing
    await cache.aset({KEY: ({"v": 1}, None)})
    assert await cache.aget([KEY]) == {KEY: {"v": 1}}
    assert (await cache.acheck()).index_exists
    await cache.aclear()
    assert await cache.aget([KEY]) == {}
    assert cache.stats() == CacheStats(hits=1, misses=1, writes=1)


async def test_graph_cache_created_client_gets_cache_sized_timeouts(
    es_conn: es_server.Connection, index_name: str
) -> None:
    cache = AsyncElasticsearchGraphCache(index_name, **es_conn.cache_settings())
    await cache.aset({KEY: (1, None)})
    assert await cache.aget([KEY]) == {KEY: 1}
    timeout: Any = cache._client._request_timeout
    assert timeout in _breaker.TIMEOUT_STEPS
    assert cache._batch_client._request_timeout == _breaker.BATCH_REQUEST_TIMEOUT
    await cache.aclose()
