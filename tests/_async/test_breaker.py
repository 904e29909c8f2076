"""The circuit breaker, timeouts and check(), against the real node and stand-ins.

A frozen cluster is a local port that accepts connections and never answers
(`tests.outage`), or a proxy to the real node that freezes on demand; requests
are counted by the client's own HTTP node (`tests.twins`). The breaker's clock
is a fake one: cool-downs pass when a test says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from elastic_transport.client_utils import DEFAULT
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    AsyncElasticsearchSemanticCache,
    BreakerSettings,
    CacheError,
    CacheStats,
    CircuitOpenError,
    MappingConflictError,
)
from tests.clock import FakeMonotonic
from tests.models import CountingEmbeddings
from tests.outage import frozen_listener, proxy_to, status_server, url_of
from tests.twins import (
    AsyncBackground,
    AsyncCountingNode,
    async_gather,
    async_wait_until,
    requests_sent,
)
from utils import es_server

# Real sockets and real timeouts (the node, frozen listeners, status servers):
# integration tests, never the fast tier.
pytestmark = pytest.mark.integration

LLM = "model=counting-1"
TIMEOUT = 0.2
"""The request timeout of test clients of a frozen listener: what a call costs."""
PROXY_TIMEOUT = 2.0
"""The request timeout through the proxy to the real node, which a loaded machine
must never reach: a frozen proxy costs this per call."""
NODE_TIMEOUT = 30.0
"""The request timeout of test clients of the real node."""


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


def settings(
    clock: FakeMonotonic,
    failures: int = 3,
    cooldown: float = 5.0,
    maximum: float = 60.0,
) -> BreakerSettings:
    return BreakerSettings(
        failures=failures, cooldown=cooldown, max_cooldown=maximum, clock=clock
    )


def counting_client(
    url: str, timeout: float = TIMEOUT, **auth: Any
) -> AsyncElasticsearch:
    """A client counting its requests; no retry, so one call is one request."""
    return AsyncElasticsearch(
        url,
        node_class=AsyncCountingNode,
        request_timeout=timeout,
        max_retries=0,
        **auth,
    )


def wait_for_listener(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.01)


def breaker_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "langchain_es_cache" and text in r.getMessage()
    ]


@pytest.fixture
async def frozen() -> AsyncIterator[tuple[Any, AsyncElasticsearch]]:
    with frozen_listener() as listener:
        client = counting_client(listener.url)
        yield listener, client
        await client.close()


# --- opening, skipping, probing ------------------------------------------------


async def test_frozen_cluster_opens_it_and_nothing_more_is_sent(
    frozen: tuple[Any, AsyncElasticsearch],
    clock: FakeMonotonic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener, client = frozen
    cache = AsyncElasticsearchCache(
        "cache", client=client, on_error="warn", ttl=60, breaker=settings(clock)
    )
    with caplog.at_level(logging.DEBUG, logger="langchain_es_cache"):
        for i in range(3):
            assert await cache.alookup(f"p{i}", LLM) is None
        assert requests_sent(client) == 3
        wait_for_listener(lambda: listener.accepted == 3, "3 connections")
        for i in range(20):
            assert await cache.alookup(f"q{i}", LLM) is None
            await cache.aupdate(f"q{i}", LLM, answer("x"))
        await cache.aclear()
        assert await cache.apurge_expired() == 0
    assert requests_sent(client) == 3
    assert listener.accepted == 3
    assert cache.stats() == CacheStats(errors=3, skipped=42)
    (opened,) = breaker_lines(caplog, "opened")
    assert "'cache' opened after 3 consecutive transport failures" in opened
    assert "(last: ConnectionTimeout: Connection timed out" in opened
    warnings = [
        r
        for r in caplog.records
        if r.name == "langchain_es_cache" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 4  # one per failed call, one when it opened


async def test_raise_mode_raises_at_once_saying_why(
    frozen: tuple[Any, AsyncElasticsearch], clock: FakeMonotonic
) -> None:
    _, client = frozen
    cache = AsyncElasticsearchCache("cache", client=client, breaker=settings(clock))
    for i in range(3):
        with pytest.raises(CacheError, match="cache lookup on index 'cache' failed"):
            await cache.alookup(f"p{i}", LLM)
    clock.advance(1.5)
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("update", lambda: cache.aupdate("p", LLM, answer("x"))),
        ("lookup", lambda: cache.alookup("p", LLM)),
        ("clear", lambda: cache.aclear()),
    ]
    for operation, call in calls:
        with pytest.raises(CircuitOpenError) as info:
            await call()
        assert str(info.value) == (
            f"cache {operation} on index 'cache' not sent: the circuit breaker is "
            "open after 3 consecutive transport failures (last: ConnectionTimeout: "
            "Connection timed out during request); next probe in 3.5 s"
        )
    assert requests_sent(client) == 3
    assert cache.stats() == CacheStats(errors=3, skipped=3)


async def test_probe_after_cooldown_reopens_longer_then_closes_on_recovery(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    clock: FakeMonotonic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Prepared beforehand: creating an index can take longer than TIMEOUT, and
    # its shard answers 503 until it has started.
    admin.indices.create(index=index_name, mappings=AsyncElasticsearchCache.MAPPING)
    admin.cluster.health(index=index_name, wait_for_status="yellow")
    with proxy_to(es_conn.url) as proxy:
        client = counting_client(proxy.url, PROXY_TIMEOUT, **es_conn.client_auth())
        cache = AsyncElasticsearchCache(
            index_name,
            client=client,
            on_error="warn",
            breaker=settings(clock, failures=2, cooldown=5.0),
        )
        await cache.aupdate("p", LLM, answer("stored"))
        assert await cache.alookup("p", LLM) == answer("stored")
        with caplog.at_level(logging.DEBUG, logger="langchain_es_cache"):
            proxy.freeze()
            for _ in range(2):
                assert await cache.alookup("p", LLM) is None
            sent = requests_sent(client)
            proxy.thaw()
            clock.advance(4.9)
            # The node is back, but the cool-down is not over: nothing is sent.
            assert await cache.alookup("p", LLM) is None
            assert requests_sent(client) == sent
            proxy.freeze()
            clock.advance(0.1)
            assert await cache.alookup("p", LLM) is None  # the probe: it times out
            assert requests_sent(client) == sent + 1
            proxy.thaw()
            clock.advance(9.9)  # a failed probe doubled the cool-down
            assert await cache.alookup("p", LLM) is None
            assert requests_sent(client) == sent + 1
            clock.advance(0.1)
            assert await cache.alookup("p", LLM) == answer("stored")  # closes it
            for _ in range(5):
                assert await cache.alookup("p", LLM) == answer("stored")
            assert requests_sent(client) == sent + 7
        await client.close()
    assert cache.stats() == CacheStats(hits=7, writes=1, errors=3, skipped=2)
    (opened,) = breaker_lines(caplog, "opened after")
    (failed_probe,) = breaker_lines(caplog, "probe failed")
    (closed,) = breaker_lines(caplog, "closed")
    assert "next probe in 10 s" in failed_probe
    assert "Elasticsearch answers again, 15.0 s after the breaker opened" in closed
    levels = {
        r.getMessage(): r.levelname
        for r in caplog.records
        if r.name == "langchain_es_cache"
    }
    assert (levels[opened], levels[failed_probe], levels[closed]) == (
        "WARNING",
        "DEBUG",
        "INFO",
    )


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_overload_and_gateway_answers_open_it(
    status: int, clock: FakeMonotonic
) -> None:
    with status_server(status) as server:
        client = counting_client(url_of(server))
        cache = AsyncElasticsearchCache(
            "cache", client=client, on_error="warn", breaker=settings(clock)
        )
        for i in range(10):
            assert await cache.alookup(f"p{i}", LLM) is None
        await client.close()
    assert server.requests == 3
    assert cache.stats() == CacheStats(errors=3, skipped=7)


async def test_refusals_never_open_it(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    clock: FakeMonotonic,
) -> None:
    """401, 403, 404 and a mapping conflict prove the cluster is up."""
    wrong = counting_client(
        es_conn.url, NODE_TIMEOUT, basic_auth=("elastic", "wrong-password")
    )
    cache = AsyncElasticsearchCache(
        index_name,
        client=wrong,
        on_error="warn",
        breaker=settings(clock, failures=2),
    )
    for i in range(6):
        assert await cache.alookup(f"p{i}", LLM) is None  # 401
    assert requests_sent(wrong) == 6
    assert cache.stats() == CacheStats(errors=6)
    await wrong.close()

    client = counting_client(es_conn.url, NODE_TIMEOUT, **es_conn.client_auth())
    cache = AsyncElasticsearchCache(
        index_name, client=client, breaker=settings(clock, failures=2)
    )
    for i in range(6):
        assert await cache.alookup(f"p{i}", LLM) is None  # 404: no index yet
    admin.indices.create(
        index=index_name, mappings={"properties": {"llm_output": {"type": "long"}}}
    )
    for _ in range(4):
        with pytest.raises(MappingConflictError):  # 400, never "not sent"
            await cache.aupdate("p", LLM, answer("x"))
    # A mapping conflict is a CacheError: counted as an error, never as an outage.
    assert cache.stats() == CacheStats(misses=6, errors=4)
    await client.close()

    if es_conn.user is None or es_conn.password is None:
        pytest.skip("creating a limited API key needs ES_USER/ES_PASSWORD")
    with Elasticsearch(
        es_conn.url, basic_auth=(es_conn.user, es_conn.password)
    ) as root:
        key = root.security.create_api_key(
            name=f"reader-{index_name}",
            role_descriptors={
                "r": {"indices": [{"names": [index_name], "privileges": ["read"]}]}
            },
        )
        try:
            reader = counting_client(es_conn.url, NODE_TIMEOUT, api_key=key["encoded"])
            cache = AsyncElasticsearchCache(
                index_name,
                client=reader,
                on_error="warn",
                breaker=settings(clock, failures=2),
            )
            for i in range(6):
                await cache.aupdate(f"p{i}", LLM, answer("x"))  # 403
            assert cache.stats() == CacheStats(errors=6)
            assert requests_sent(reader) >= 6
            await reader.close()
        finally:
            root.security.invalidate_api_key(ids=[key["id"]])


async def test_many_calls_at_once_open_it_once_and_probe_once(
    frozen: tuple[Any, AsyncElasticsearch],
    clock: FakeMonotonic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, client = frozen
    cache = AsyncElasticsearchCache(
        "cache", client=client, on_error="warn", breaker=settings(clock)
    )

    def lookups() -> list[Any]:
        return [lambda i=i: cache.alookup(f"p{i}", LLM) for i in range(24)]

    with caplog.at_level(logging.DEBUG, logger="langchain_es_cache"):
        assert await async_gather(lookups()) == [None] * 24
        first = cache.stats()
        # Calls that were already sending when it opened paid the timeout; no
        # call was both sent and skipped.
        assert first.errors + first.skipped == 24
        assert first.errors >= 3
        # Calls sending at once share requests (coalescing): each failed
        # call was in one of them.
        sent = requests_sent(client)
        assert 1 <= sent <= first.errors
        assert await async_gather(lookups()) == [None] * 24
        assert requests_sent(client) == sent
        clock.advance(5.0)
        assert await async_gather(lookups()) == [None] * 24
        assert requests_sent(client) == sent + 1  # one probe, the rest skipped
    assert len(breaker_lines(caplog, "opened after")) == 1
    assert len(breaker_lines(caplog, "probe failed")) == 1
    assert cache.stats() == CacheStats(
        errors=first.errors + 1, skipped=first.skipped + 47
    )


async def test_breaker_none_sends_every_call(
    frozen: tuple[Any, AsyncElasticsearch],
) -> None:
    _, client = frozen
    cache = AsyncElasticsearchCache(
        "cache", client=client, on_error="warn", breaker=None
    )
    for i in range(6):
        assert await cache.alookup(f"p{i}", LLM) is None
    assert requests_sent(client) == 6
    assert cache.stats() == CacheStats(errors=6)


async def test_semantic_cache_skips_the_embedding_too(
    frozen: tuple[Any, AsyncElasticsearch], clock: FakeMonotonic
) -> None:
    _, client = frozen
    embedding = CountingEmbeddings()
    cache = AsyncElasticsearchSemanticCache(
        "cache",
        embedding,
        client=client,
        on_error="warn",
        breaker=settings(clock, failures=1),
    )
    assert await cache.alookup("p", LLM) is None
    assert embedding.embedded == ["p"]
    assert await cache.alookup("q", LLM) is None
    await cache.aupdate("q", LLM, answer("x"))
    await cache.aclear()
    assert embedding.embedded == ["p"]
    assert requests_sent(client) == 1
    assert cache.stats() == CacheStats(errors=1, skipped=3)
    with pytest.raises(TypeError):  # bad input is an error even while open
        await cache.aupdate("q", LLM, "not generations")  # type: ignore[arg-type]


async def test_embeddings_cache_skips_every_operation(
    frozen: tuple[Any, AsyncElasticsearch], clock: FakeMonotonic
) -> None:
    _, client = frozen
    store = AsyncElasticsearchEmbeddingsCache(
        "cache", client=client, on_error="warn", breaker=settings(clock, failures=1)
    )
    assert await store.amget(["a", "b"]) == [None, None]
    await store.amset([("a", b"1")])
    await store.amdelete(["a"])
    assert [key async for key in store.ayield_keys()] == []
    assert await store.amget(["a"]) == [None]
    assert requests_sent(client) == 1
    assert store.stats() == CacheStats(errors=1, skipped=4)
    strict = AsyncElasticsearchEmbeddingsCache(
        "cache", client=client, breaker=settings(clock, failures=1)
    )
    with pytest.raises(CacheError, match="cache mset on index 'cache' failed"):
        await strict.amset([("a", b"1")])
    with pytest.raises(CircuitOpenError, match="cache mget on index 'cache' not sent"):
        await strict.amget(["a"])
    with pytest.raises(CircuitOpenError, match="cache yield_keys on index"):
        [key async for key in strict.ayield_keys()]
    assert requests_sent(client) == 2


async def test_single_flight_cache_skips_its_claims_too(
    frozen: tuple[Any, AsyncElasticsearch], clock: FakeMonotonic
) -> None:
    _, client = frozen
    cache = AsyncElasticsearchCache(
        "cache",
        client=client,
        on_error="warn",
        single_flight=30,
        breaker=settings(clock, failures=1),
    )
    # The index's preparation, before the first read, times out: an outage,
    # though it is raised as a CacheError.
    assert await cache.alookup("p", LLM) is None
    sent = requests_sent(client)
    assert await cache.alookup("p", LLM) is None
    await cache.aupdate("p", LLM, answer("x"))
    await cache.aclear()
    assert await cache.apurge_expired() == 0
    assert requests_sent(client) == sent
    assert cache.stats() == CacheStats(errors=1, skipped=4)


async def test_a_frozen_cluster_met_while_polling_a_claim_opens_it(
    es_conn: es_server.Connection,
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    clock: FakeMonotonic,
) -> None:
    admin.indices.create(
        index=index_name,
        mappings=AsyncElasticsearchCache(
            index_name, client=async_client, single_flight=30
        ).mapping["mappings"],
    )
    admin.cluster.health(index=index_name, wait_for_status="yellow")
    holder = AsyncElasticsearchCache(index_name, client=async_client, single_flight=30)
    assert await holder.alookup("p", LLM) is None  # holds the claim on "p"
    with proxy_to(es_conn.url) as proxy:
        proxied = counting_client(proxy.url, PROXY_TIMEOUT, **es_conn.client_auth())
        waiter = AsyncElasticsearchCache(
            index_name,
            client=proxied,
            on_error="warn",
            single_flight=30,
            breaker=settings(clock, failures=1),
        )
        await waiter.is_alias()
        prepared = requests_sent(proxied)
        polling = AsyncBackground(lambda: waiter.alookup("p", LLM))
        # A get, a claim (refused: held), then polls until the answer comes.
        await async_wait_until(
            lambda: requests_sent(proxied) >= prepared + 3 or polling.done()
        )
        assert not polling.done()
        proxy.freeze()
        assert await polling.result() is None  # a poll timed out: it opened
        sent = requests_sent(proxied)
        proxy.thaw()
        assert await waiter.alookup("p", LLM) is None
        assert requests_sent(proxied) == sent
        assert waiter.stats() == CacheStats(errors=1, skipped=1)
        await proxied.close()


# --- timeouts of the clients the cache creates ----------------------------------


def request_timeout(client: Any) -> Any:
    """The timeout the client gives its requests (elasticsearch-py's internals)."""
    if client._request_timeout is not DEFAULT:
        return client._request_timeout
    (node,) = client.transport.node_pool.all()
    return node.config.request_timeout


async def test_own_client_gets_cache_sized_timeouts_and_one_retry(
    clock: FakeMonotonic,
) -> None:
    with status_server(503) as server:
        cache = AsyncElasticsearchCache(
            "cache", es_url=url_of(server), on_error="warn", breaker=None
        )
        assert request_timeout(cache._client) == 2.0  # no answer yet
        assert request_timeout(cache._batch_client) == 5.0
        assert await cache.alookup("p", LLM) is None
        assert server.requests == 2  # a 503 is retried once
        await cache.aclose()
    with frozen_listener() as listener:
        cache = AsyncElasticsearchCache(
            "cache", es_url=listener.url, on_error="warn", breaker=None
        )
        assert await cache.alookup("p", LLM) is None
        assert await cache.alookup("q", LLM) is None
        assert cache.stats() == CacheStats(errors=2)
        wait_for_listener(lambda: listener.accepted >= 2, "2 connections")
        assert listener.accepted == 2  # a timeout is not retried
        await cache.aclose()


async def test_own_client_timeout_follows_how_fast_the_cluster_answers() -> None:
    with status_server(404, delay=0.3) as slow:
        cache = AsyncElasticsearchCache(
            "cache", es_url=url_of(slow), on_error="warn", breaker=None
        )
        assert request_timeout(cache._client) == 2.0
        assert await cache.alookup("p", LLM) is None  # a miss, after 0.3 s
        assert cache.stats() == CacheStats(misses=1)
        # 3 x 0.3 s: a slow cluster is given the time it has been needing.
        assert request_timeout(cache._client) == 1.0
        await cache.aclose()


async def test_client_passed_in_keeps_its_settings(
    es_conn: es_server.Connection, index_name: str
) -> None:
    client = AsyncElasticsearch(es_conn.url, **es_conn.client_auth())

    def options() -> Any:
        # elasticsearch-py's internals: what the client sends with each request.
        return (
            client._request_timeout,
            client._max_retries,
            client._retry_on_timeout,
            dict(client._headers),
        )

    before = options()
    assert before[:3] == (DEFAULT, DEFAULT, DEFAULT)  # elasticsearch-py's defaults
    cache = AsyncElasticsearchCache(index_name, client=client)
    await cache.aupdate("p", LLM, answer("x"))
    assert await cache.alookup("p", LLM) == answer("x")
    await cache.acheck()
    await cache.aclear()
    assert options() == before
    assert request_timeout(client) == 10.0
    await client.close()


# --- check() -------------------------------------------------------------------


def make(kind: str, index_name: str, **kwargs: Any) -> Any:
    if kind == "semantic":
        return AsyncElasticsearchSemanticCache(
            index_name, CountingEmbeddings(), **kwargs
        )
    if kind == "embeddings":
        return AsyncElasticsearchEmbeddingsCache(index_name, **kwargs)
    return AsyncElasticsearchCache(index_name, **kwargs)


KINDS = ["exact", "semantic", "embeddings"]


@pytest.mark.parametrize("kind", KINDS)
async def test_check_superuser(
    kind: str,
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    root: Elasticsearch,
) -> None:
    assert es_conn.password is not None
    cache = make(
        kind,
        index_name,
        es_url=es_conn.url,
        es_user="elastic",
        es_password=es_conn.password,
    )
    report = await cache.acheck()
    assert (report.index, report.user, report.index_exists) == (
        index_name,
        "elastic",
        False,
    )
    assert report.can_create
    assert report.privileges == {
        "read": True,
        "write": True,
        "create_index": True,
        "manage": True,
        "maintenance": True,
        "view_index_metadata": True,
    }
    assert not admin.indices.exists(index=index_name)  # check() creates nothing
    admin.indices.create(index=index_name)
    assert (await cache.acheck()).index_exists
    assert cache.stats() == CacheStats()
    await cache.aclose()


def key_for(root: Elasticsearch, name: str, index: str, privileges: list[str]) -> Any:
    return root.security.create_api_key(
        name=name,
        role_descriptors={
            "r": {"indices": [{"names": [index], "privileges": privileges}]}
        },
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_check_limited_keys(
    kind: str,
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    root: Elasticsearch,
) -> None:
    keys = {
        "reader": key_for(root, "check-reader", index_name, ["read"]),
        "nothing": key_for(root, "check-none", "some-other-index", ["all"]),
        "writer": key_for(root, "check-writer", index_name, ["read", "write"]),
    }
    try:

        def cache_of(who: str) -> Any:
            return make(
                kind, index_name, es_url=es_conn.url, es_api_key=keys[who]["encoded"]
            )

        reader, nothing, writer = (cache_of(w) for w in ("reader", "nothing", "writer"))
        with pytest.raises(CacheError) as info:
            await reader.acheck()
        assert str(info.value) == (
            f"the cache cannot work: user 'elastic' lacks the 'write' privilege on "
            f"index {index_name!r} (needed by updates and deletes)"
        )
        with pytest.raises(CacheError, match="lacks the 'read' and 'write' privilege"):
            await nothing.acheck()
        with pytest.raises(
            CacheError, match=f"index {index_name!r} does not exist and user 'elastic'"
        ):
            await writer.acheck()
        admin.indices.create(index=index_name)
        report = await writer.acheck()
        assert report.index_exists and not report.can_create
        for cache in (reader, nothing, writer):
            await cache.aclose()
    finally:
        root.security.invalidate_api_key(ids=[k["id"] for k in keys.values()])


@pytest.mark.parametrize("kind", KINDS)
async def test_check_wrong_password_dead_port_frozen_cluster(
    kind: str, es_conn: es_server.Connection, index_name: str, clock: FakeMonotonic
) -> None:
    secret = "wrong-Pa55word"
    cache = make(
        kind, index_name, es_url=es_conn.url, es_user="elastic", es_password=secret
    )
    with pytest.raises(
        CacheError, match="Elasticsearch refused the credentials"
    ) as info:
        await cache.acheck()
    assert "401" in str(info.value) and secret not in str(info.value)
    await cache.aclose()
    dead = make(kind, index_name, es_url="http://127.0.0.1:9")
    with pytest.raises(
        CacheError, match="cannot reach Elasticsearch: ConnectionError: "
    ):
        await dead.acheck()
    await dead.aclose()
    with frozen_listener() as listener:
        client = counting_client(listener.url)
        frozen = make(
            kind, index_name, client=client, breaker=settings(clock, failures=1)
        )
        with pytest.raises(
            CacheError, match="cannot reach Elasticsearch: ConnectionTimeout: "
        ):
            await frozen.acheck()
        # An open breaker does not keep check() from asking.
        with pytest.raises(CacheError):
            await (
                frozen.alookup("p", LLM)
                if kind != "embeddings"
                else frozen.amget(["p"])
            )
        with pytest.raises(CircuitOpenError):
            await (
                frozen.alookup("p", LLM)
                if kind != "embeddings"
                else frozen.amget(["p"])
            )
        sent = requests_sent(client)
        with pytest.raises(CacheError, match="cannot reach Elasticsearch"):
            await frozen.acheck()
        assert requests_sent(client) == sent + 1
        await client.close()
