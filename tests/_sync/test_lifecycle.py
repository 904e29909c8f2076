# Generated from tests/_async/test_lifecycle.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""Indices deleted, rolled over, blocked or read through limited keys under
running caches, against the real node."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import (
    BreakerSettings,
    CacheError,
    CacheStats,
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
    MappingConflictError,
)
from langchain_es_cache._common.documents import format_time
from langchain_es_cache._common.keys import embedding_key, llm_key
from langchain_es_cache._common.lifecycle import SHARD_START_WAITS
from langchain_es_cache._sync import index as index_module
from langchain_es_cache._twins import sleep
from tests.clock import FakeClock
from tests.models import TableEmbeddings
from utils import es_server

LLM = "model=lifecycle-1"
FRANCE = "What is the capital of France?"
PARAPHRASE = "Tell me France's capital city."  # cosine 0.923 to FRANCE
VECTORS = {FRANCE: [1.0, 0.0, 0.0], PARAPHRASE: [12.0, 5.0, 0.0]}


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


def count(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


def contains(actual: Any, expected: Any) -> bool:
    """Tell whether `actual` holds `expected` (dicts: every key, recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            contains(actual.get(key), value) for key, value in expected.items()
        )
    return bool(actual == expected)


def assert_cache_mapping(admin: Elasticsearch, index: str, expected: Any) -> None:
    """`index` maps every field of the cache's mapping as the cache does."""
    actual = admin.indices.get_mapping(index=index)[index]["mappings"]
    properties = actual.get("properties", {})
    for name, spec in expected["mappings"]["properties"].items():
        assert name in properties, f"{index} lacks {name}: {actual}"
        if spec["type"] == "object":
            assert properties[name].get("type", "object") == "object", name
        else:
            assert contains(properties[name], spec), (index, name, properties[name])


def rollover_alias(admin: Elasticsearch, alias: str) -> str:
    """An alias over one write index, as rollover sets it up; return the index."""
    first = f"{alias}-000001"
    admin.indices.create(index=first, aliases={alias: {"is_write_index": True}})
    return first


def roll_over(admin: Elasticsearch, alias: str) -> str:
    """Roll `alias` over to a new write index (with no mapping); return it."""
    return str(admin.indices.rollover(alias=alias)["new_index"])


@pytest.fixture
def embedding() -> TableEmbeddings:
    return TableEmbeddings(VECTORS)


@pytest.fixture
def limited_key(es_conn: es_server.Connection, index_name: str) -> Iterator[str]:
    """An API key that may read and write the test's indices, not manage them."""
    if es_conn.user is None or es_conn.password is None:
        pytest.skip("creating a limited API key needs ES_USER/ES_PASSWORD")
    role = {"names": [f"{index_name}*"], "privileges": ["read", "write"]}
    with Elasticsearch(
        es_conn.url, basic_auth=(es_conn.user, es_conn.password)
    ) as root:
        key = root.security.create_api_key(
            name=f"rw-{index_name}", role_descriptors={"rw": {"indices": [role]}}
        )
        try:
            yield str(key["encoded"])
        finally:
            root.security.invalidate_api_key(ids=[key["id"]])


# --- an index deleted under a running cache ----------------------------------


@pytest.mark.parametrize("on_error", ["raise", "warn"])
def test_deleted_index_comes_back_with_the_mapping(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    on_error: Any,
) -> None:
    cache = ElasticsearchCache(
        index_name, client=client, namespace="team", on_error=on_error
    )
    cache.update("before", LLM, answer("1"))
    admin.indices.delete(index=index_name)
    cache.update("after", LLM, answer("2"))
    assert_cache_mapping(admin, index_name, cache.mapping)
    assert cache.lookup("before", LLM) is None
    assert cache.lookup("after", LLM) == answer("2")
    # namespace stayed a keyword, so the namespace's clear matches the entry.
    cache.clear()
    assert cache.lookup("after", LLM) is None
    assert count(admin, index_name) == 0
    assert cache.stats() == CacheStats(hits=1, misses=2, writes=2)
    later = ElasticsearchCache(index_name, client=client, namespace="team")
    assert later.is_alias() is False
    later.update("later", LLM, answer("3"))
    assert later.lookup("later", LLM) == answer("3")


def test_deleted_index_of_the_semantic_cache(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    cache = ElasticsearchSemanticCache(index_name, embedding, client=client)
    cache.update(FRANCE, LLM, answer("Paris"))
    admin.indices.delete(index=index_name)
    cache.update(FRANCE, LLM, answer("Paris again"))
    assert_cache_mapping(admin, index_name, cache.mapping)
    properties = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert properties["properties"]["llm_input_vector"]["type"] == "dense_vector"
    assert cache.lookup(PARAPHRASE, LLM) == answer("Paris again")
    later = ElasticsearchSemanticCache(index_name, embedding, client=client)
    assert later.lookup(PARAPHRASE, LLM) == answer("Paris again")
    later.update(PARAPHRASE, LLM, answer("later"))
    assert later.lookup(PARAPHRASE, LLM) == answer("later")


def test_deleted_index_of_the_embeddings_cache(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    store = ElasticsearchEmbeddingsCache(index_name, client=client, namespace="ns")
    store.mset([("k1", b"one")])
    admin.indices.delete(index=index_name)
    store.mset([("k2", b"two"), ("k3", b"three")])
    assert_cache_mapping(admin, index_name, store.mapping)
    assert store.mget(["k1", "k2", "k3"]) == [None, b"two", b"three"]
    assert sorted([key for key in store.yield_keys(prefix="k")]) == ["k2", "k3"]
    assert store.stats() == CacheStats(hits=2, misses=1, writes=3)


# --- an alias rolled over under a running cache ------------------------------


def test_rolled_over_alias_new_write_index_gets_the_mapping(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first = rollover_alias(admin, index_name)
    cache = ElasticsearchCache(index_name, client=client, namespace="team")
    cache.update("before", LLM, answer("1"))
    second = roll_over(admin, index_name)
    cache.update("after", LLM, answer("2"))
    assert admin.exists(index=second, id=llm_key("after", LLM, "team"))
    for index in (first, second):
        assert_cache_mapping(admin, index, cache.mapping)
    assert cache.lookup("before", LLM) == answer("1")
    assert cache.lookup("after", LLM) == answer("2")
    later = ElasticsearchCache(index_name, client=client, namespace="team")
    assert later.is_alias() is True
    third = roll_over(admin, index_name)
    later.update("later", LLM, answer("3"))
    assert_cache_mapping(admin, third, cache.mapping)
    later.clear()
    for prompt in ("before", "after", "later"):
        assert cache.lookup(prompt, LLM) is None
    assert count(admin, index_name) == 0
    assert sorted(admin.indices.get(index=f"{index_name}*")) == [first, second, third]


def test_rolled_over_alias_of_the_semantic_cache(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    first = rollover_alias(admin, index_name)
    cache = ElasticsearchSemanticCache(index_name, embedding, client=client)
    cache.update(FRANCE, LLM, answer("Paris"))
    second = roll_over(admin, index_name)
    # A lookup before any write into the new index still finds the old entry.
    assert cache.lookup(PARAPHRASE, LLM) == answer("Paris")
    cache.update(PARAPHRASE, LLM, answer("paraphrased"))
    for index in (first, second):
        assert_cache_mapping(admin, index, cache.mapping)
        vector = admin.indices.get_mapping(index=index)[index]["mappings"]
        assert vector["properties"]["llm_input_vector"]["type"] == "dense_vector"
    assert cache.lookup(PARAPHRASE, LLM) == answer("paraphrased")
    later = ElasticsearchSemanticCache(index_name, embedding, client=client)
    assert later.lookup(PARAPHRASE, LLM) == answer("paraphrased")
    assert later.lookup(FRANCE, LLM) == answer("Paris")


def test_rolled_over_alias_of_the_embeddings_cache(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first = rollover_alias(admin, index_name)
    store = ElasticsearchEmbeddingsCache(index_name, client=client)
    store.mset([("k1", b"old")])
    second = roll_over(admin, index_name)
    store.mset([("k1", b"new"), ("k2", b"two")])
    for index in (first, second):
        assert_cache_mapping(admin, index, store.mapping)
    assert admin.exists(index=second, id=embedding_key("k2", None))
    assert store.mget(["k1", "k2"]) == [b"new", b"two"]
    assert sorted([key for key in store.yield_keys()]) == ["k1", "k2"]


def test_graph_cache_index_deleted_and_rolled_over(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")
    from langchain_es_cache import ElasticsearchGraphCache

    cache = ElasticsearchGraphCache(index_name, client=client)
    key = (("node",), "k")
    cache.set({key: ({"v": 1}, None)})
    admin.indices.delete(index=index_name)
    cache.set({key: ({"v": 2}, None)})
    assert_cache_mapping(admin, index_name, cache.mapping)
    assert cache.get([key]) == {key: {"v": 2}}
    alias = f"{index_name}-alias"
    first = rollover_alias(admin, alias)
    behind = ElasticsearchGraphCache(alias, client=client)
    behind.set({key: ({"v": 3}, None)})
    second = roll_over(admin, alias)
    behind.set({key: ({"v": 4}, None)})
    for index in (first, second):
        assert_cache_mapping(admin, index, behind.mapping)
    assert behind.get([key]) == {key: {"v": 4}}
    assert behind.stats().errors == 0


def test_wrong_mapping_goes_through_on_error(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """An index mapped by someone else, as a dynamic mapping did before the fix."""
    admin.indices.create(
        index=index_name, mappings={"properties": {"namespace": {"type": "text"}}}
    )
    warn = ElasticsearchCache(
        index_name, client=client, namespace="team", on_error="warn"
    )
    warn.update("p", LLM, answer("x"))
    assert warn.stats() == CacheStats(errors=1)
    strict = ElasticsearchCache(index_name, client=client, namespace="team")
    with pytest.raises(MappingConflictError, match="namespace") as info:
        strict.update("p", LLM, answer("x"))
    assert isinstance(info.value, CacheError) and isinstance(info.value, ValueError)
    assert count(admin, index_name) == 0


# --- the semantic cache: the newest copy wins ---------------------------------


def put_copy(
    admin: Elasticsearch,
    cache: ElasticsearchSemanticCache,
    index: str,
    prompt: str,
    text: str,
    age: timedelta,
    clock: FakeClock,
) -> None:
    document = cache.build_document(prompt, LLM, answer(text), VECTORS[prompt])
    document["timestamp"] = format_time(clock() - age)
    admin.index(index=index, id=llm_key(prompt, LLM), document=document)


def test_semantic_newest_copy_wins_after_a_rollover(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    clock = FakeClock()
    rollover_alias(admin, index_name)
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, clock=clock
    )
    cache.update(FRANCE, LLM, answer("old"))
    roll_over(admin, index_name)
    clock.advance(seconds=1)
    cache.update(FRANCE, LLM, answer("new"))
    assert count(admin, index_name) == 2
    assert cache.lookup(FRANCE, LLM) == answer("new")
    assert cache.lookup(PARAPHRASE, LLM) == answer("new")
    later = ElasticsearchSemanticCache(
        index_name, embedding, client=client, clock=clock
    )
    assert later.lookup(PARAPHRASE, LLM) == answer("new")


@pytest.mark.parametrize("copies", [2, 7])
def test_semantic_newest_copy_wins_wherever_it_is(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
    copies: int,
) -> None:
    """Copies of one entry with equal vectors in `copies` indices behind an alias:
    the newest wins whether it sits in the first, a middle or the last index."""
    clock = FakeClock()
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, dimensions=3, clock=clock
    )
    indices = [f"{index_name}-{i:06d}" for i in range(1, copies + 1)]
    for i, index in enumerate(indices):
        admin.indices.create(
            index=index,
            mappings=cache.mapping["mappings"],
            aliases={index_name: {"is_write_index": i == len(indices) - 1}},
        )
    for newest in sorted({0, copies // 2, copies - 1}):
        for i, index in enumerate(indices):
            age = timedelta(minutes=0 if i == newest else 10 + i)
            put_copy(admin, cache, index, FRANCE, f"copy {i}", age, clock)
        admin.indices.refresh(index=index_name)
        assert cache.lookup(PARAPHRASE, LLM) == answer(f"copy {newest}")
        assert cache.lookup(FRANCE, LLM) == answer(f"copy {newest}")


# --- aliases over a blocked index, and keys that may not manage ----------------


@pytest.mark.parametrize(
    "block", ["index.blocks.read_only", "index.blocks.read_only_allow_delete"]
)
def test_alias_over_a_read_only_index_stays_an_alias(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    block: str,
) -> None:
    cache = ElasticsearchCache(index_name, client=client)
    old, new = f"{index_name}-000001", f"{index_name}-000002"
    admin.indices.create(
        index=old,
        mappings=cache.mapping["mappings"],
        aliases={index_name: {"is_write_index": False}},
    )
    document = cache.build_document("old", LLM, answer("from the old index"))
    admin.index(index=old, id=llm_key("old", LLM), document=document)
    admin.indices.create(index=new, aliases={index_name: {"is_write_index": True}})
    admin.indices.put_settings(index=old, settings={block: True})
    try:
        assert cache.is_alias() is True
        cache.update("new", LLM, answer("from the new index"))
        assert_cache_mapping(admin, new, cache.mapping)
        assert cache.lookup("old", LLM) == answer("from the old index")
        assert cache.lookup("new", LLM) == answer("from the new index")
        assert cache.lookup("none", LLM) is None
    finally:
        admin.indices.put_settings(index=old, settings={block: None})


def test_key_that_may_not_manage_sees_the_alias(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    limited_key: str,
) -> None:
    """A key that may read and write, but neither read index metadata nor
    refresh: the alias is found with field_caps, and clear() skips the refresh."""
    first = rollover_alias(admin, index_name)
    settings: dict[str, Any] = {"es_url": es_conn.url, "es_api_key": limited_key}
    with ElasticsearchCache(index_name, **settings) as cache:
        admin.indices.put_mapping(index=first, **cache.mapping["mappings"])
        document = cache.build_document("old", LLM, answer("old"))
        admin.index(index=first, id=llm_key("old", LLM), document=document)
        assert cache.is_alias() is True
        cache.update("mine", LLM, answer("mine"))
        second = roll_over(admin, index_name)
        assert cache.lookup("old", LLM) == answer("old")
        assert cache.lookup("mine", LLM) == answer("mine")
        cache.update("newest", LLM, answer("newest"))
        assert admin.exists(index=second, id=llm_key("newest", LLM))
        assert_cache_mapping(admin, second, cache.mapping)
        admin.indices.refresh(index=index_name)
        cache.clear()
        assert count(admin, index_name) == 0
        assert cache.stats() == CacheStats(hits=2, writes=2)


def test_index_refusing_the_mapping_refuses_the_writes(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """A new write index whose mapping may not change: the write fails with a
    reason, and no field is mapped by guesswork."""
    rollover_alias(admin, index_name)
    cache = ElasticsearchCache(index_name, client=client)
    warn = ElasticsearchCache(index_name, client=client, on_error="warn")
    cache.update("p", LLM, answer("x"))
    warn.update("p", LLM, answer("x"))
    second = roll_over(admin, index_name)
    admin.indices.put_settings(index=second, settings={"index.blocks.metadata": True})
    try:
        with pytest.raises(CacheError, match=f"index '{second}'.*lacks the cache's"):
            cache.update("q", LLM, answer("y"))
        warn.update("q", LLM, answer("y"))
        assert warn.stats() == CacheStats(writes=1, errors=1)
    finally:
        admin.indices.put_settings(
            index=second, settings={"index.blocks.metadata": None}
        )
    assert admin.indices.get_mapping(index=second)[second]["mappings"] == {}
    assert count(admin, second) == 0


# --- errors of is_alias() --------------------------------------------------------


def test_is_alias_raises_cache_errors_with_the_cause(
    es_conn: es_server.Connection, index_name: str
) -> None:
    refused = ElasticsearchCache(
        index_name, es_url="http://127.0.0.1:9", es_api_key="a2V5OnNlY3JldA=="
    )
    with pytest.raises(CacheError, match=index_name) as info:
        refused.is_alias()
    assert type(info.value.__cause__).__name__ == "ConnectionError"
    refused.close()
    wrong = ElasticsearchCache(
        index_name, es_url=es_conn.url, es_user="elastic", es_password="wrong"
    )
    with pytest.raises(CacheError, match="401") as info:
        wrong.is_alias()
    assert type(info.value.__cause__).__name__ == "AuthenticationException"
    wrong.close()
    warn = ElasticsearchCache(
        index_name,
        es_url=es_conn.url,
        es_user="elastic",
        es_password="wrong",
        on_error="warn",
    )
    warn.update("p", LLM, answer("x"))
    assert warn.stats() == CacheStats(errors=1)
    warn.close()


# --- refresh, timestamps, reasons ------------------------------------------------


@pytest.mark.parametrize("refresh", [True, "wait_for"])
def test_clear_and_purge_honour_refresh(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    refresh: Any,
) -> None:
    """Deletes are visible to searches of your own as soon as the call returns."""
    clock = FakeClock()
    cache = ElasticsearchCache(
        index_name, client=client, refresh=refresh, ttl=60, clock=clock
    )
    cache.update("a", LLM, answer("a"))
    if refresh is True:
        # Nothing but the cache's own refresh makes a change visible.
        admin.indices.put_settings(
            index=index_name, settings={"refresh_interval": "-1"}
        )
    cache.update("b", LLM, answer("b"))
    assert admin.count(index=index_name)["count"] == 2
    clock.advance(seconds=61)
    cache.update("c", LLM, answer("c"))
    assert cache.purge_expired() == 2
    assert admin.count(index=index_name)["count"] == 1
    cache.clear()
    assert admin.count(index=index_name)["count"] == 0


def test_timestamp_is_taken_when_the_write_is_sent(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    clock = FakeClock()

    class SlowToPrepare(ElasticsearchCache):
        def _prepare_index(self) -> bool:
            prepared = super()._prepare_index()
            clock.advance(minutes=2)  # a master under load
            return prepared

    class SlowSemantic(ElasticsearchSemanticCache):
        def _prepare_index(self) -> bool:
            prepared = super()._prepare_index()
            clock.advance(minutes=2)
            return prepared

    cache = SlowToPrepare(index_name, client=client, ttl=60, clock=clock)
    cache.update("p", LLM, answer("fresh"))
    assert cache.lookup("p", LLM) == answer("fresh")
    stored = admin.get(index=index_name, id=llm_key("p", LLM))["_source"]
    assert stored["timestamp"] == format_time(clock())
    semantic = SlowSemantic(
        f"{index_name}-semantic", embedding, client=client, ttl=60, clock=clock
    )
    semantic.update(FRANCE, LLM, answer("fresh"))
    assert semantic.lookup(PARAPHRASE, LLM) == answer("fresh")


def test_delete_refused_by_a_write_block_names_the_reason(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = ElasticsearchCache(index_name, client=client, ttl=60, clock=clock)
    cache.update("p", LLM, answer("x"))
    admin.indices.put_settings(index=index_name, settings={"index.blocks.write": True})
    try:
        with pytest.raises(CacheError, match=r"cluster_block_exception.*index write"):
            cache.clear()
        clock.advance(minutes=2)
        with pytest.raises(CacheError, match=r"cluster_block_exception.*index write"):
            cache.purge_expired()
    finally:
        admin.indices.put_settings(
            index=index_name, settings={"index.blocks.write": None}
        )
    assert count(admin, index_name) == 1


# --- shards that are starting -------------------------------------------------


@pytest.fixture
def unstarted(admin: Elasticsearch, index_name: str) -> Iterator[str]:
    """An index whose shard cannot start until the test lets it."""
    index = f"{index_name}-unstarted"
    admin.indices.create(
        index=index,
        settings={"index.routing.allocation.require._name": "no-such-node"},
        wait_for_active_shards="0",
    )
    yield index


def start_on_first_wait(
    monkeypatch: pytest.MonkeyPatch, admin: Elasticsearch, index: str
) -> list[float]:
    """Replace the caches' wait by one that lets `index`'s shard start."""
    waits: list[float] = []

    def start_shard(seconds: float) -> None:
        waits.append(seconds)
        admin.indices.put_settings(
            index=index,
            settings={"index.routing.allocation.require._name": None},
        )
        admin.cluster.health(index=index, wait_for_status="yellow", timeout="60s")

    monkeypatch.setattr(index_module, sleep.__name__, start_shard)
    return waits


def test_lookup_waits_for_a_starting_shard(
    client: Elasticsearch,
    admin: Elasticsearch,
    unstarted: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lookup in an index whose shard is starting (as an auto-created index's
    is) reads again once it started, instead of failing."""
    cache = ElasticsearchCache(unstarted, client=client)
    waits = start_on_first_wait(monkeypatch, admin, unstarted)
    assert cache.lookup("p", LLM) is None
    assert waits == [0.05]
    cache.update("p", LLM, answer("x"))
    assert cache.lookup("p", LLM) == answer("x")


def test_alias_lookup_waits_for_the_new_index_shard(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    unstarted: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Right after a rollover the alias names a new index whose shard has not
    started: lookups and mget read again once it has."""
    cache = ElasticsearchCache(index_name, client=client)
    store = ElasticsearchEmbeddingsCache(index_name, client=client)
    first = rollover_alias(admin, index_name)
    cache.update("p", LLM, answer("old"))
    store.mset([("k", b"old")])
    admin.indices.update_aliases(
        actions=[
            {"add": {"index": first, "alias": index_name, "is_write_index": False}},
            {"add": {"index": unstarted, "alias": index_name, "is_write_index": True}},
        ]
    )
    waits = start_on_first_wait(monkeypatch, admin, unstarted)
    assert cache.lookup("p", LLM) == answer("old")
    assert waits == [0.05]
    assert store.mget(["k", "j"]) == [b"old", None]


def test_semantic_lookup_waits_for_a_starting_shard(
    client: Elasticsearch,
    admin: Elasticsearch,
    unstarted: str,
    embedding: TableEmbeddings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kNN search of an index whose shard is starting (one another writer
    just created) is sent again once it started: not a 503 that fails the
    lookup and counts against the circuit breaker."""
    cache = ElasticsearchSemanticCache(
        unstarted, embedding, client=client, dimensions=3
    )
    admin.indices.put_mapping(index=unstarted, **cache.mapping["mappings"])
    waits = start_on_first_wait(monkeypatch, admin, unstarted)
    assert cache.lookup(PARAPHRASE, LLM) is None
    assert waits == [0.05]
    assert cache.stats() == CacheStats(misses=1)
    cache.update(FRANCE, LLM, answer("Paris"))
    assert cache.lookup(PARAPHRASE, LLM) == answer("Paris")


def test_semantic_alias_search_waits_for_the_new_index_shard(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    unstarted: str,
    embedding: TableEmbeddings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through an alias, a search that some shards answered and a starting one
    did not is sent again once it started, instead of missing what that shard
    may hold."""
    first = rollover_alias(admin, index_name)
    writer = ElasticsearchSemanticCache(index_name, embedding, client=client)
    writer.update(FRANCE, LLM, answer("Paris"))
    admin.indices.refresh(index=first)
    # A reader with no writes of its own to refresh (a refresh would wait
    # for the shard to start).
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, dimensions=3
    )
    admin.indices.put_mapping(index=unstarted, **cache.mapping["mappings"])
    admin.indices.update_aliases(
        actions=[
            {"add": {"index": first, "alias": index_name, "is_write_index": False}},
            {"add": {"index": unstarted, "alias": index_name, "is_write_index": True}},
        ]
    )
    waits = start_on_first_wait(monkeypatch, admin, unstarted)
    nearest = cache.nearest(PARAPHRASE, LLM)
    assert nearest is not None and nearest.prompt == FRANCE
    assert waits == [0.05]
    assert cache.lookup(PARAPHRASE, LLM) == answer("Paris")
    assert waits == [0.05]


def test_semantic_search_never_started_fails_after_the_waits(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    unstarted: str,
    embedding: TableEmbeddings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shard that never starts fails the lookup after the last wait: in an
    index, with Elasticsearch's 503; behind an alias whose other indices
    answered, with the shards it missed, not a silent miss."""
    waits: list[float] = []

    def no_start(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(index_module, sleep.__name__, no_start)
    alone = ElasticsearchSemanticCache(
        unstarted, embedding, client=client, dimensions=3, breaker=None
    )
    admin.indices.put_mapping(index=unstarted, **alone.mapping["mappings"])
    with pytest.raises(CacheError, match="search_phase_execution_exception"):
        alone.lookup(PARAPHRASE, LLM)
    assert waits == list(SHARD_START_WAITS)
    first = rollover_alias(admin, index_name)
    writer = ElasticsearchSemanticCache(index_name, embedding, client=client)
    writer.update(FRANCE, LLM, answer("Paris"))
    admin.indices.refresh(index=first)
    behind = ElasticsearchSemanticCache(
        index_name, embedding, client=client, on_error="warn"
    )
    admin.indices.update_aliases(
        actions=[{"add": {"index": unstarted, "alias": index_name}}]
    )
    waits.clear()
    assert behind.lookup(PARAPHRASE, LLM) is None
    assert waits == list(SHARD_START_WAITS)
    assert behind.stats() == CacheStats(errors=1)
    # A shard that stays unavailable is an outage: the breaker opens, and the
    # lookups after it cost no waits and no request.
    failures = BreakerSettings().failures
    for _ in range(failures - 1):
        assert behind.lookup(PARAPHRASE, LLM) is None
    waits.clear()
    assert behind.lookup(PARAPHRASE, LLM) is None
    assert waits == []
    assert behind.stats() == CacheStats(errors=failures, skipped=1)


def test_alias_found_while_other_indices_come_and_go(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Other indices of the cluster deleted meanwhile (by ILM, by other
    applications) never make an alias look like an index."""
    rollover_alias(admin, index_name)
    stop = threading.Event()

    def churn() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            other = f"{index_name}-other-{i}"
            admin.indices.create(index=other, wait_for_active_shards="0")
            admin.indices.delete(index=other)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        answers = [
            ElasticsearchCache(index_name, client=client).is_alias() for _ in range(100)
        ]
    finally:
        stop.set()
        worker.join()
    assert answers == [True] * 100
