# Generated from tests/_async/test_options.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""Beyond the reference: expiry, namespaces, filtered clear, fail-open, statistics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from langchain_core.globals import set_llm_cache
from langchain_core.outputs import Generation

from langchain_es_cache import (
    CacheError,
    CacheStats,
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
)
from langchain_es_cache._common.keys import llm_key
from tests.clock import FakeClock
from tests.models import CountingChatModel
from tests.twins import gather
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
def test_entry_expires_after_ttl(
    client: Elasticsearch, index_name: str, ttl: Any
) -> None:
    clock = FakeClock()
    cache = ElasticsearchCache(index_name, client=client, ttl=ttl, clock=clock)
    cache.update("p", LLM, answer("fresh"))
    clock.advance(seconds=60)
    assert cache.lookup("p", LLM) == answer("fresh")  # exactly ttl old: a hit
    clock.advance(milliseconds=1)
    assert cache.lookup("p", LLM) is None  # older than ttl: a miss
    cache.update("p", LLM, answer("again"))
    assert cache.lookup("p", LLM) == answer("again")


def test_purge_expired(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = ElasticsearchCache(index_name, client=client, ttl=60, clock=clock)
    other = ElasticsearchCache(
        index_name, client=client, namespace="other", clock=clock
    )
    cache.update("oldest", LLM, answer("1"))
    other.update("oldest", LLM, answer("other namespace"))
    clock.advance(milliseconds=1)
    cache.update("boundary", LLM, answer("2"))
    clock.advance(seconds=30)
    cache.update("young", LLM, answer("3"))
    clock.advance(seconds=30)  # "boundary" is exactly 60 s old, "oldest" 1 ms more
    assert cache.purge_expired() == 1
    assert count(admin, index_name) == 3
    assert cache.lookup("boundary", LLM) == answer("2")
    assert cache.lookup("young", LLM) == answer("3")
    assert other.lookup("oldest", LLM) == answer("other namespace")
    assert cache.purge_expired() == 0


def test_purge_expired_needs_a_ttl(
    cache_plain: ElasticsearchCache,
) -> None:
    with pytest.raises(ValueError, match="needs a cache constructed with a ttl"):
        cache_plain.purge_expired()


@pytest.fixture
def cache_plain(client: Elasticsearch, index_name: str) -> ElasticsearchCache:
    return ElasticsearchCache(index_name, client=client)


# --- namespaces --------------------------------------------------------------


def test_namespaces_share_an_index_without_seeing_each_other(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    red = ElasticsearchCache(index_name, client=client, namespace="red")
    blue = ElasticsearchCache(index_name, client=client, namespace="blue")
    none = ElasticsearchCache(index_name, client=client)
    red.update("p", LLM, answer("red"))
    assert blue.lookup("p", LLM) is None
    assert none.lookup("p", LLM) is None
    blue.update("p", LLM, answer("blue"))
    none.update("p", LLM, answer("none"))
    assert red.lookup("p", LLM) == answer("red")
    assert blue.lookup("p", LLM) == answer("blue")
    assert none.lookup("p", LLM) == answer("none")
    assert count(admin, index_name) == 3
    found = admin.search(index=index_name, query={"term": {"namespace": "red"}})
    assert [h["_id"] for h in found["hits"]["hits"]] == [llm_key("p", LLM, "red")]
    red.clear()
    assert red.lookup("p", LLM) is None
    assert blue.lookup("p", LLM) == answer("blue")
    assert none.lookup("p", LLM) == answer("none")
    none.clear()
    assert blue.lookup("p", LLM) == answer("blue")
    assert none.lookup("p", LLM) is None


# --- filtered clear ----------------------------------------------------------


def test_clear_by_llm_string(
    cache_plain: ElasticsearchCache, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_plain
    for prompt in ("a", "b"):
        cache.update(prompt, "model-1", answer("1"))
        cache.update(prompt, "model-2", answer("2"))
    with caplog.at_level(logging.INFO, logger="langchain_es_cache"):
        cache.clear(llm_string="model-1")
    assert "cleared 2 entries" in caplog.text
    assert cache.lookup("a", "model-1") is None
    assert cache.lookup("b", "model-1") is None
    assert cache.lookup("a", "model-2") == answer("2")


def test_clear_older_than(client: Elasticsearch, index_name: str) -> None:
    clock = FakeClock()
    cache = ElasticsearchCache(index_name, client=client, clock=clock)
    cache.update("old", LLM, answer("old"))
    clock.advance(hours=2)
    cache.update("new", LLM, answer("new"))
    cache.clear(older_than=timedelta(hours=1))
    assert cache.lookup("old", LLM) is None
    assert cache.lookup("new", LLM) == answer("new")
    cache.clear(older_than=1)  # seconds
    assert cache.lookup("new", LLM) == answer("new")


def test_clear_by_metadata(client: Elasticsearch, index_name: str) -> None:
    alpha = ElasticsearchCache(
        index_name, client=client, metadata={"team": "alpha", "run": {"id": 7}}
    )
    beta = ElasticsearchCache(
        index_name, client=client, metadata={"team": "beta two", "run": {"id": 7}}
    )
    alpha.update("p", "m-alpha", answer("alpha"))
    beta.update("p", "m-beta", answer("beta"))
    alpha.clear(metadata={"team": "beta two"})
    assert beta.lookup("p", "m-beta") is None
    assert alpha.lookup("p", "m-alpha") == answer("alpha")
    alpha.clear(metadata={"run": {"id": 8}})
    assert alpha.lookup("p", "m-alpha") == answer("alpha")
    alpha.clear(metadata={"run": {"id": 7}}, llm_string="m-alpha")
    assert alpha.lookup("p", "m-alpha") is None


def test_clear_refuses_unknown_filters(
    cache_plain: ElasticsearchCache,
) -> None:
    with pytest.raises(
        TypeError, match="prompt; accepted: llm_string, metadata, older_than"
    ):
        cache_plain.clear(prompt="x")


# --- fail-open and statistics ------------------------------------------------


def test_stats_count_hits_misses_writes(
    cache_plain: ElasticsearchCache,
) -> None:
    cache = cache_plain
    assert cache.stats() == CacheStats()
    cache.lookup("p", LLM)
    cache.update("p", LLM, answer("x"))

    def lookup() -> Any:
        return lambda: cache.lookup("p", LLM)

    gather([lookup() for _ in range(40)])
    assert cache.stats() == CacheStats(hits=40, misses=1, writes=1, errors=0)


def test_wrong_password(
    es_conn: es_server.Connection, index_name: str, global_cache: None
) -> None:
    secret = "definitely-wrong-password"
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": secret,
    }
    with ElasticsearchCache(index_name, on_error="warn", **settings) as cache:
        set_llm_cache(cache)
        model = CountingChatModel()
        assert (model.invoke("hi")).content == model.answer
        assert (model.invoke("hi")).content == model.answer
        assert model.calls == 2
        assert cache.stats() == CacheStats(misses=0, errors=4)
    with ElasticsearchCache(index_name, **settings) as cache:
        with pytest.raises(
            CacheError, match=r"cache lookup on index .* failed"
        ) as info:
            cache.lookup("p", LLM)
        message = str(info.value)
        assert "401" in message or "authentication" in message.lower()
        assert secret not in str(info.value)


def test_node_down_fails_open_and_recovers(
    spare_node: es_server.ServerInfo, index_name: str, global_cache: None
) -> None:
    settings: dict[str, Any] = {
        "es_url": spare_node.url,
        "es_user": spare_node.user,
        "es_password": spare_node.password,
    }
    warn = ElasticsearchCache(index_name, on_error="warn", **settings)
    strict = ElasticsearchCache(index_name, **settings)
    warn.update("p", LLM, answer("stored"))
    es_server.stop_process(spare_node)
    try:
        set_llm_cache(warn)
        model = CountingChatModel()
        assert (model.invoke("question")).content == model.answer
        assert model.calls == 1
        assert warn.lookup("p", LLM) is None
        warn.clear()
        assert warn.stats().errors == 4  # lookup + update in invoke, lookup, clear
        with pytest.raises(CacheError, match=r"cache update on index .* failed"):
            strict.update("p", LLM, answer("lost"))
    finally:
        es_server.start_process(spare_node)
    # The same objects work again once the node is back.
    assert warn.lookup("p", LLM) == answer("stored")
    assert strict.lookup("p", LLM) == answer("stored")
    warn.close()
    strict.close()


# --- the same options on the embeddings cache --------------------------------


def test_embeddings_ttl_stats_and_purge(client: Elasticsearch, index_name: str) -> None:
    clock = FakeClock()
    store = ElasticsearchEmbeddingsCache(index_name, client=client, ttl=60, clock=clock)
    store.mset([("old", b"\x01"), ("older", b"\x02")])
    clock.advance(seconds=30)
    store.mset([("new", b"\x03")])
    clock.advance(seconds=30)  # "old" and "older" are exactly ttl old
    assert store.mget(["old", "new", "gone"]) == [b"\x01", b"\x03", None]
    assert store.purge_expired() == 0
    clock.advance(milliseconds=1)
    assert store.mget(["old", "new"]) == [None, b"\x03"]
    assert store.purge_expired() == 2
    assert store.stats() == CacheStats(hits=3, misses=2, writes=3, errors=0)


def test_embeddings_fail_open(es_conn: es_server.Connection, index_name: str) -> None:
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": "wrong-password",
    }
    with ElasticsearchEmbeddingsCache(index_name, on_error="warn", **settings) as store:
        store.mset([("k", b"v")])
        assert store.mget(["k", "j"]) == [None, None]
        store.mdelete(["k"])
        assert [key for key in store.yield_keys()] == []
        assert store.stats() == CacheStats(errors=4)
    strict = ElasticsearchEmbeddingsCache(index_name, **settings)
    with pytest.raises(CacheError, match="cache mget on index"):
        strict.mget(["k"])
    with pytest.raises(CacheError, match="cache yield_keys on index"):
        [key for key in strict.yield_keys()]
    strict.close()


def test_writer_without_index_privileges(
    es_conn: es_server.Connection, client: Elasticsearch, index_name: str
) -> None:
    """A key that may write documents, not manage the index, still caches."""
    if es_conn.user is None or es_conn.password is None:
        pytest.skip("creating a limited API key needs ES_USER/ES_PASSWORD")
    ElasticsearchCache(index_name, client=client).is_alias()
    role = {"names": [index_name], "privileges": ["read", "write"]}
    with Elasticsearch(
        es_conn.url, basic_auth=(es_conn.user, es_conn.password)
    ) as root:
        key = root.security.create_api_key(
            name=f"writer-{index_name}", role_descriptors={"w": {"indices": [role]}}
        )
        try:
            with ElasticsearchCache(
                index_name, es_url=es_conn.url, es_api_key=key["encoded"]
            ) as cache:
                cache.update("p", LLM, answer("written"))
                assert cache.lookup("p", LLM) == answer("written")
                assert cache.stats() == CacheStats(hits=1, writes=1)
        finally:
            root.security.invalidate_api_key(ids=[key["id"]])
