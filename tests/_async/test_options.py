"""Beyond the reference: expiry, namespaces, filtered clear, fail-open, statistics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.globals import set_llm_cache
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    CacheError,
    CacheStats,
)
from langchain_es_cache._common.keys import llm_key
from tests.clock import FakeClock
from tests.models import CountingChatModel
from tests.twins import async_gather
from utils import es_server

LLM = "model=counting-1"


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


def count(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield None
    set_llm_cache(None)


# --- expiry ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ttl", [60, timedelta(seconds=60)], ids=["seconds", "timedelta"]
)
async def test_entry_expires_after_ttl(
    async_client: AsyncElasticsearch, index_name: str, ttl: Any
) -> None:
    clock = FakeClock()
    cache = AsyncElasticsearchCache(
        index_name, client=async_client, ttl=ttl, clock=clock
    )
    await cache.aupdate("p", LLM, answer("fresh"))
    clock.advance(seconds=60)
    assert await cache.alookup("p", LLM) == answer("fresh")  # exactly ttl old: a hit
    clock.advance(milliseconds=1)
    assert await cache.alookup("p", LLM) is None  # older than ttl: a miss
    await cache.aupdate("p", LLM, answer("again"))
    assert await cache.alookup("p", LLM) == answer("again")


async def test_purge_expired(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = AsyncElasticsearchCache(
        index_name, client=async_client, ttl=60, clock=clock
    )
    other = AsyncElasticsearchCache(
        index_name, client=async_client, namespace="other", clock=clock
    )
    await cache.aupdate("oldest", LLM, answer("1"))
    await other.aupdate("oldest", LLM, answer("other namespace"))
    clock.advance(milliseconds=1)
    await cache.aupdate("boundary", LLM, answer("2"))
    clock.advance(seconds=30)
    await cache.aupdate("young", LLM, answer("3"))
    clock.advance(seconds=30)  # "boundary" is exactly 60 s old, "oldest" 1 ms more
    assert await cache.apurge_expired() == 1
    assert count(admin, index_name) == 3
    assert await cache.alookup("boundary", LLM) == answer("2")
    assert await cache.alookup("young", LLM) == answer("3")
    assert await other.alookup("oldest", LLM) == answer("other namespace")
    assert await cache.apurge_expired() == 0


async def test_purge_expired_needs_a_ttl(
    async_cache_plain: AsyncElasticsearchCache,
) -> None:
    with pytest.raises(ValueError, match="needs a cache constructed with a ttl"):
        await async_cache_plain.apurge_expired()


@pytest.fixture
def async_cache_plain(
    async_client: AsyncElasticsearch, index_name: str
) -> AsyncElasticsearchCache:
    return AsyncElasticsearchCache(index_name, client=async_client)


# --- namespaces --------------------------------------------------------------


async def test_namespaces_share_an_index_without_seeing_each_other(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    red = AsyncElasticsearchCache(index_name, client=async_client, namespace="red")
    blue = AsyncElasticsearchCache(index_name, client=async_client, namespace="blue")
    none = AsyncElasticsearchCache(index_name, client=async_client)
    await red.aupdate("p", LLM, answer("red"))
    assert await blue.alookup("p", LLM) is None
    assert await none.alookup("p", LLM) is None
    await blue.aupdate("p", LLM, answer("blue"))
    await none.aupdate("p", LLM, answer("none"))
    assert await red.alookup("p", LLM) == answer("red")
    assert await blue.alookup("p", LLM) == answer("blue")
    assert await none.alookup("p", LLM) == answer("none")
    assert count(admin, index_name) == 3
    found = admin.search(index=index_name, query={"term": {"namespace": "red"}})
    assert [h["_id"] for h in found["hits"]["hits"]] == [llm_key("p", LLM, "red")]
    await red.aclear()
    assert await red.alookup("p", LLM) is None
    assert await blue.alookup("p", LLM) == answer("blue")
    assert await none.alookup("p", LLM) == answer("none")
    await none.aclear()
    assert await blue.alookup("p", LLM) == answer("blue")
    assert await none.alookup("p", LLM) is None


# --- filtered clear ----------------------------------------------------------


async def test_clear_by_llm_string(
    async_cache_plain: AsyncElasticsearchCache, caplog: pytest.LogCaptureFixture
) -> None:
    cache = async_cache_plain
    for prompt in ("a", "b"):
        await cache.aupdate(prompt, "model-1", answer("1"))
        await cache.aupdate(prompt, "model-2", answer("2"))
    with caplog.at_level(logging.INFO, logger="langchain_es_cache"):
        await cache.aclear(llm_string="model-1")
    assert "cleared 2 entries" in caplog.text
    assert await cache.alookup("a", "model-1") is None
    assert await cache.alookup("b", "model-1") is None
    assert await cache.alookup("a", "model-2") == answer("2")


async def test_clear_older_than(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = AsyncElasticsearchCache(index_name, client=async_client, clock=clock)
    await cache.aupdate("old", LLM, answer("old"))
    clock.advance(hours=2)
    await cache.aupdate("new", LLM, answer("new"))
    await cache.aclear(older_than=timedelta(hours=1))
    assert await cache.alookup("old", LLM) is None
    assert await cache.alookup("new", LLM) == answer("new")
    await cache.aclear(older_than=1)  # seconds
    assert await cache.alookup("new", LLM) == answer("new")


async def test_clear_by_metadata(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    alpha = AsyncElasticsearchCache(
        index_name, client=async_client, metadata={"team": "alpha", "run": {"id": 7}}
    )
    beta = AsyncElasticsearchCache(
        index_name, client=async_client, metadata={"team": "beta two", "run": {"id": 7}}
    )
    await alpha.aupdate("p", "m-alpha", answer("alpha"))
    await beta.aupdate("p", "m-beta", answer("beta"))
    await alpha.aclear(metadata={"team": "beta two"})
    assert await beta.alookup("p", "m-beta") is None
    assert await alpha.alookup("p", "m-alpha") == answer("alpha")
    await alpha.aclear(metadata={"run": {"id": 8}})
    assert await alpha.alookup("p", "m-alpha") == answer("alpha")
    await alpha.aclear(metadata={"run": {"id": 7}}, llm_string="m-alpha")
    assert await alpha.alookup("p", "m-alpha") is None


async def test_clear_refuses_unknown_filters(
    async_cache_plain: AsyncElasticsearchCache,
) -> None:
    with pytest.raises(
        TypeError, match="prompt; accepted: llm_string, metadata, older_than"
    ):
        await async_cache_plain.aclear(prompt="x")


# --- fail-open and statistics ------------------------------------------------


async def test_stats_count_hits_misses_writes(
    async_cache_plain: AsyncElasticsearchCache,
) -> None:
    cache = async_cache_plain
    assert cache.stats() == CacheStats()
    await cache.alookup("p", LLM)
    await cache.aupdate("p", LLM, answer("x"))

    def lookup() -> Any:
        return lambda: cache.alookup("p", LLM)

    await async_gather([lookup() for _ in range(40)])
    assert cache.stats() == CacheStats(hits=40, misses=1, writes=1, errors=0)


async def test_wrong_password(
    es_conn: es_server.Connection, index_name: str, global_cache: None
) -> None:
    secret = "definitely-wrong-password"
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": secret,
    }
    async with AsyncElasticsearchCache(
        index_name, on_error="warn", **settings
    ) as cache:
        set_llm_cache(cache)
        model = CountingChatModel()
        assert (await model.ainvoke("hi")).content == model.answer
        assert (await model.ainvoke("hi")).content == model.answer
        assert model.calls == 2
        assert cache.stats() == CacheStats(misses=0, errors=4)
    async with AsyncElasticsearchCache(index_name, **settings) as cache:
        with pytest.raises(
            CacheError, match=r"cache lookup on index .* failed"
        ) as info:
            await cache.alookup("p", LLM)
        message = str(info.value)
        assert "401" in message or "authentication" in message.lower()
        assert secret not in str(info.value)


async def test_node_down_fails_open_and_recovers(
    spare_node: es_server.ServerInfo, index_name: str, global_cache: None
) -> None:
    settings: dict[str, Any] = {
        "es_url": spare_node.url,
        "es_user": spare_node.user,
        "es_password": spare_node.password,
    }
    warn = AsyncElasticsearchCache(index_name, on_error="warn", **settings)
    strict = AsyncElasticsearchCache(index_name, **settings)
    await warn.aupdate("p", LLM, answer("stored"))
    es_server.stop_process(spare_node)
    try:
        set_llm_cache(warn)
        model = CountingChatModel()
        assert (await model.ainvoke("question")).content == model.answer
        assert model.calls == 1
        assert await warn.alookup("p", LLM) is None
        await warn.aclear()
        assert warn.stats().errors == 4  # lookup + update in invoke, lookup, clear
        with pytest.raises(CacheError, match=r"cache update on index .* failed"):
            await strict.aupdate("p", LLM, answer("lost"))
    finally:
        es_server.start_process(spare_node)
    # The same objects work again once the node is back.
    assert await warn.alookup("p", LLM) == answer("stored")
    assert await strict.alookup("p", LLM) == answer("stored")
    await warn.aclose()
    await strict.aclose()


# --- the same options on the embeddings cache --------------------------------


async def test_embeddings_ttl_stats_and_purge(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    store = AsyncElasticsearchEmbeddingsCache(
        index_name, client=async_client, ttl=60, clock=clock
    )
    await store.amset([("old", b"\x01"), ("older", b"\x02")])
    clock.advance(seconds=30)
    await store.amset([("new", b"\x03")])
    clock.advance(seconds=30)  # "old" and "older" are exactly ttl old
    assert await store.amget(["old", "new", "gone"]) == [b"\x01", b"\x03", None]
    assert await store.apurge_expired() == 0
    clock.advance(milliseconds=1)
    assert await store.amget(["old", "new"]) == [None, b"\x03"]
    assert await store.apurge_expired() == 2
    assert store.stats() == CacheStats(hits=3, misses=2, writes=3, errors=0)


async def test_embeddings_fail_open(
    es_conn: es_server.Connection, index_name: str
) -> None:
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": "wrong-password",
    }
    async with AsyncElasticsearchEmbeddingsCache(
        index_name, on_error="warn", **settings
    ) as store:
        await store.amset([("k", b"v")])
        assert await store.amget(["k", "j"]) == [None, None]
        await store.amdelete(["k"])
        assert [key async for key in store.ayield_keys()] == []
        assert store.stats() == CacheStats(errors=4)
    strict = AsyncElasticsearchEmbeddingsCache(index_name, **settings)
    with pytest.raises(CacheError, match="cache mget on index"):
        await strict.amget(["k"])
    with pytest.raises(CacheError, match="cache yield_keys on index"):
        [key async for key in strict.ayield_keys()]
    await strict.aclose()


async def test_writer_without_index_privileges(
    es_conn: es_server.Connection, async_client: AsyncElasticsearch, index_name: str
) -> None:
    """A key that may write documents, not manage the index, still caches."""
    if es_conn.user is None or es_conn.password is None:
        pytest.skip("creating a limited API key needs ES_USER/ES_PASSWORD")
    await AsyncElasticsearchCache(index_name, client=async_client).is_alias()
    role = {"names": [index_name], "privileges": ["read", "write"]}
    with Elasticsearch(
        es_conn.url, basic_auth=(es_conn.user, es_conn.password)
    ) as root:
        key = root.security.create_api_key(
            name=f"writer-{index_name}", role_descriptors={"w": {"indices": [role]}}
        )
        try:
            async with AsyncElasticsearchCache(
                index_name, es_url=es_conn.url, es_api_key=key["encoded"]
            ) as cache:
                await cache.aupdate("p", LLM, answer("written"))
                assert await cache.alookup("p", LLM) == answer("written")
                assert cache.stats() == CacheStats(hits=1, writes=1)
        finally:
            root.security.invalidate_api_key(ids=[key["id"]])
