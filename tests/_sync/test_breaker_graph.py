# Generated from tests/_async/test_breaker_graph.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The LangGraph node cache's circuit breaker and check(): the other classes'
are in test_breaker.py, which runs without LangGraph."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")
from elasticsearch import Elasticsearch

from langchain_es_cache import (
    BreakerSettings,
    CacheError,
    CacheStats,
    CircuitOpenError,
    ElasticsearchGraphCache,
)
from langchain_es_cache._common import breaker as _breaker
from tests.clock import FakeMonotonic
from tests.outage import frozen_listener
from tests.twins import CountingNode, requests_sent
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
def frozen() -> Iterator[Elasticsearch]:
    with frozen_listener() as listener:
        client = Elasticsearch(
            listener.url,
            node_class=CountingNode,
            request_timeout=0.2,
            max_retries=0,
        )
        yield client
        client.close()


def test_graph_cache_skips_every_operation(
    frozen: Elasticsearch, clock: FakeMonotonic
) -> None:
    cache = ElasticsearchGraphCache(
        "cache", client=frozen, on_error="warn", breaker=settings(clock)
    )
    assert cache.get([KEY]) == {}
    cache.set({KEY: ({"v": 1}, None)})
    assert cache.get([KEY]) == {}
    cache.clear()
    assert cache.purge_expired() == 0
    assert requests_sent(frozen) == 1
    assert cache.stats() == CacheStats(errors=1, skipped=4)
    strict = ElasticsearchGraphCache("cache", client=frozen, breaker=settings(clock))
    with pytest.raises(CacheError, match="cache get on index 'cache' failed"):
        strict.get([KEY])
    with pytest.raises(CircuitOpenError, match="cache set on index 'cache' not sent"):
        strict.set({KEY: ({"v": 1}, None)})
    assert requests_sent(frozen) == 2
    clock.advance(5.0)
    with pytest.raises(CacheError, match="cache clear on index 'cache' failed"):
        strict.clear()  # the probe
    assert requests_sent(frozen) == 3
    # An open breaker does not keep check() from asking.
    with pytest.raises(CacheError, match="cannot reach Elasticsearch"):
        strict.check()
    assert requests_sent(frozen) == 4


def test_graph_cache_works_through_the_breaker_and_checks(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    clock: FakeMonotonic,
) -> None:
    cache = ElasticsearchGraphCache(index_name, client=client, breaker=settings(clock))
    report = cache.check()
    assert (report.index, report.index_exists) == (index_name, False)
    assert report.privileges["read"] and report.privileges["write"]
    assert not admin.indices.exists(index=index_name)  # check() creates nothing
    cache.set({KEY: ({"v": 1}, None)})
    assert cache.get([KEY]) == {KEY: {"v": 1}}
    assert (cache.check()).index_exists
    cache.clear()
    assert cache.get([KEY]) == {}
    assert cache.stats() == CacheStats(hits=1, misses=1, writes=1)


def test_graph_cache_created_client_gets_cache_sized_timeouts(
    es_conn: es_server.Connection, index_name: str
) -> None:
    cache = ElasticsearchGraphCache(index_name, **es_conn.cache_settings())
    cache.set({KEY: (1, None)})
    assert cache.get([KEY]) == {KEY: 1}
    timeout: Any = cache._client._request_timeout
    assert timeout in _breaker.TIMEOUT_STEPS
    assert cache._batch_client._request_timeout == _breaker.BATCH_REQUEST_TIMEOUT
    cache.close()
