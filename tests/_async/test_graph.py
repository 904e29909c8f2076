"""The LangGraph node cache against the real node, through real graphs and its API."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict

import pytest

# LangGraph is optional: without it (as with langchain-core 0.3.0, which LangGraph
# cannot run with), these tests are skipped and test_graph_optional.py runs.
pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy

from langchain_es_cache import AsyncElasticsearchGraphCache, CacheError, CacheStats
from langchain_es_cache._common.graph import entry_id, namespace_id
from tests.clock import FakeClock
from utils import es_server


@pytest.fixture
async def async_graph_cache(
    async_client: AsyncElasticsearch, index_name: str
) -> AsyncIterator[AsyncElasticsearchGraphCache]:
    yield AsyncElasticsearchGraphCache(index_name, client=async_client)


class State(TypedDict):
    x: int
    y: int


class Counter:
    """Counts a node's runs."""

    def __init__(self) -> None:
        self.runs = 0


def doubling_graph(
    cache: AsyncElasticsearchGraphCache, counter: Counter, ttl: int | None = None
) -> Any:
    """A graph of one node, cached with `ttl`, that doubles ``x`` into ``y``."""

    async def double(state: State) -> dict[str, int]:
        counter.runs += 1
        return {"y": state["x"] * 2}

    builder = StateGraph(State)
    builder.add_node("double", double, cache_policy=CachePolicy(ttl=ttl))
    builder.add_edge(START, "double")
    return builder.compile(cache=cache)


def documents(admin: Elasticsearch, index: str) -> list[dict[str, Any]]:
    admin.indices.refresh(index=index)
    hits = admin.search(index=index, size=100, query={"match_all": {}})["hits"]
    return list(hits["hits"])


async def test_node_runs_once_for_repeated_input(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    cache = AsyncElasticsearchGraphCache(index_name, client=async_client)
    counter = Counter()
    graph = doubling_graph(cache, counter)
    assert await graph.ainvoke({"x": 3}) == {"x": 3, "y": 6}
    assert await graph.ainvoke({"x": 3}) == {"x": 3, "y": 6}
    assert counter.runs == 1
    assert await graph.ainvoke({"x": 4}) == {"x": 4, "y": 8}
    assert counter.runs == 2
    assert cache.stats() == CacheStats(hits=1, misses=2, writes=2)
    # Another cache object on the index serves the entry too.
    other = doubling_graph(
        AsyncElasticsearchGraphCache(index_name, client=async_client), counter
    )
    assert await other.ainvoke({"x": 4}) == {"x": 4, "y": 8}
    assert counter.runs == 2


async def test_stored_document(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = AsyncElasticsearchGraphCache(
        index_name, client=async_client, metadata={"team": "graphs"}, clock=clock
    )
    namespace = ("node", "é:😀")
    await cache.aset({(namespace, "k"): ({"v": 1}, 90), (("other",), "k"): (2, None)})
    source = admin.get(index=index_name, id=entry_id(namespace, "k"))["_source"]
    value_type, dump = cache.serde.dumps_typed({"v": 1})
    assert source == {
        "value_type": value_type,
        "value_dump": base64.b64encode(dump).decode(),
        "graph_namespace": ["node", "é:😀"],
        "graph_key": "k",
        "graph_namespace_id": namespace_id(namespace),
        "timestamp": "2026-11-26T12:00:00.000+00:00",
        "expires_at": "2026-11-26T12:01:30.000+00:00",
        "metadata": {"team": "graphs"},
    }
    assert source == cache.build_document(namespace, "k", {"v": 1}, 90)
    other = admin.get(index=index_name, id=entry_id(("other",), "k"))["_source"]
    assert "expires_at" not in other
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"]["graph_namespace_id"] == {"type": "keyword"}


async def test_batches_are_one_request(
    async_graph_cache: AsyncElasticsearchGraphCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: dict[str, list[int]] = {"bulk": [], "mget": []}
    bulk, mget = AsyncElasticsearch.bulk, AsyncElasticsearch.mget

    async def spy_bulk(self: AsyncElasticsearch, *args: Any, **kwargs: Any) -> Any:
        calls["bulk"].append(len(kwargs["operations"]) // 2)
        return await bulk(self, *args, **kwargs)

    async def spy_mget(self: AsyncElasticsearch, *args: Any, **kwargs: Any) -> Any:
        calls["mget"].append(len(kwargs.get("ids") or kwargs.get("docs") or []))
        return await mget(self, *args, **kwargs)

    monkeypatch.setattr(AsyncElasticsearch, "bulk", spy_bulk)
    monkeypatch.setattr(AsyncElasticsearch, "mget", spy_mget)
    pairs: dict[tuple[tuple[str, ...], str], tuple[Any, int | None]] = {
        (("ns", str(i % 3)), f"key {i}"): (i, None) for i in range(256)
    }
    await async_graph_cache.aset(pairs)
    found = await async_graph_cache.aget([*pairs, (("ns",), "absent")])
    assert found == {full_key: value for full_key, (value, _) in pairs.items()}
    assert calls == {"bulk": [256], "mget": [257]}
    big: dict[tuple[tuple[str, ...], str], tuple[Any, int | None]] = {
        (("big",), str(i)): (i, None) for i in range(1200)
    }
    await async_graph_cache.aset(big)
    assert len(await async_graph_cache.aget(list(big))) == 1200
    assert calls["bulk"][1:] == [500, 500, 200]
    assert calls["mget"][1:] == [500, 500, 200]
    assert await async_graph_cache.aget([]) == {}
    await async_graph_cache.aset({})


async def test_ttl_expiry_and_purge(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = AsyncElasticsearchGraphCache(index_name, client=async_client, clock=clock)
    counter = Counter()
    graph = doubling_graph(cache, counter, ttl=60)
    await graph.ainvoke({"x": 1})
    await cache.aset({(("kept",), "k"): ("forever", None)})
    clock.advance(seconds=59, milliseconds=999)
    await graph.ainvoke({"x": 1})
    assert counter.runs == 1
    assert await cache.apurge_expired() == 0
    clock.advance(milliseconds=1)  # exactly 60 s: expired
    await graph.ainvoke({"x": 1})
    assert counter.runs == 2  # and the node's new answer is stored again
    clock.advance(seconds=60)
    assert await cache.aget([(("kept",), "k")]) == {(("kept",), "k"): "forever"}
    assert await cache.apurge_expired() == 1
    assert [hit["_source"]["graph_key"] for hit in documents(admin, index_name)] == [
        "k"
    ]


PREFIX_SHARING: list[tuple[str, ...]] = [
    (),
    ("a",),
    ("a", "b"),
    ("a", "b", "c"),
    ("a:b",),
    ("ab",),
    ("a", "b:c"),
    ("a", "b", ""),
    ("a\x00b",),
    ("é", "😀 node"),
    ("\ud800",),
]


async def test_clear_is_exact_per_namespace(
    async_graph_cache: AsyncElasticsearchGraphCache,
) -> None:
    cache = async_graph_cache
    keys = [(namespace, "k") for namespace in PREFIX_SHARING]
    await cache.aset({key: (i, None) for i, key in enumerate(keys)})
    assert len(await cache.aget(keys)) == len(keys)
    await cache.aclear([])  # no namespace: nothing
    assert len(await cache.aget(keys)) == len(keys)
    for cleared in PREFIX_SHARING:
        await cache.aset({key: (i, None) for i, key in enumerate(keys)})
        await cache.aclear([cleared])
        left = await cache.aget(keys)
        assert set(left) == {key for key in keys if key[0] != cleared}, cleared
    await cache.aclear([("a",), ("a:b",), ("never-used",)])
    assert set(await cache.aget(keys)) == {
        key for key in keys if key[0] not in {("a",), ("a:b",)}
    } - {(PREFIX_SHARING[-1], "k")}
    # More namespaces than one query may name.
    await cache.aclear([(f"n{i}",) for i in range(25_000)] + [("ab",)])
    assert (("ab",), "k") in keys and (("ab",), "k") not in await cache.aget(keys)
    await cache.aclear()
    assert await cache.aget(keys) == {}


async def test_clear_leaves_other_caches_in_the_index(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Clearing all graph entries leaves documents that are not graph entries."""
    cache = AsyncElasticsearchGraphCache(index_name, client=async_client)
    await cache.aset({(("n",), "k"): (1, None)})
    admin.index(index=index_name, id="someone-else", document={"note": "keep"})
    await cache.aclear()
    assert [hit["_id"] for hit in documents(admin, index_name)] == ["someone-else"]


async def test_caches_with_other_metadata_share_an_index(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """A date-like metadata string maps no date field that would refuse the next
    cache's string, and metadata strings are exact values, as in the LLM cache."""
    dated = AsyncElasticsearchGraphCache(
        index_name, client=async_client, metadata={"day": "2026-11-26"}
    )
    await dated.aset({(("n",), "a"): (1, None)})
    named = AsyncElasticsearchGraphCache(
        index_name, client=async_client, metadata={"day": "thursday"}
    )
    await named.aset({(("n",), "b"): (2, None)})
    assert await named.aget([(("n",), "a"), (("n",), "b")]) == {
        (("n",), "a"): 1,
        (("n",), "b"): 2,
    }
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"]["metadata"]["properties"]["day"] == {"type": "keyword"}


async def test_metadata_beyond_the_field_limit_is_refused_at_construction(
    async_client: AsyncElasticsearch,
) -> None:
    with pytest.raises(ValueError, match="fields"):
        AsyncElasticsearchGraphCache(
            "never-created",
            client=async_client,
            metadata={f"f{i}": i for i in range(1000)},
        )


async def test_graph_clear_cache_of_one_node(
    async_graph_cache: AsyncElasticsearchGraphCache,
) -> None:
    runs = {"first": 0, "second": 0}

    async def first(state: State) -> dict[str, int]:
        runs["first"] += 1
        return {"y": state["x"] + 1}

    async def second(state: State) -> dict[str, int]:
        runs["second"] += 1
        return {"y": state["y"] * 10}

    builder = StateGraph(State)
    builder.add_node("first", first, cache_policy=CachePolicy())
    builder.add_node("second", second, cache_policy=CachePolicy())
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    graph = builder.compile(cache=async_graph_cache)
    assert await graph.ainvoke({"x": 1, "y": 0}) == {"x": 1, "y": 20}
    await graph.aclear_cache(["first"])
    assert await graph.ainvoke({"x": 1, "y": 0}) == {"x": 1, "y": 20}
    assert runs == {"first": 2, "second": 1}
    await graph.aclear_cache()
    await graph.ainvoke({"x": 1, "y": 0})
    assert runs == {"first": 3, "second": 2}


async def test_colon_and_unicode_namespaces_and_keys(
    async_graph_cache: AsyncElasticsearchGraphCache,
    admin: Elasticsearch,
    index_name: str,
) -> None:
    cache = async_graph_cache
    entries = {
        (("__pregel_ns_writes", "pkg.mod:node", "nœud 😀"), "a:b:c"): "one",
        (("__pregel_ns_writes", "pkg.mod", "node:nœud 😀"), "a:b:c"): "two",
        (("ns",), "clé 🔑"): "three",
        (("ns",), "\udcff lone"): "four",
        (("\udcff",), ""): "five",
    }
    await cache.aset({key: (value, None) for key, value in entries.items()})
    assert await cache.aget(list(entries)) == entries
    stored = {
        tuple(hit["_source"]["graph_namespace"]) for hit in documents(admin, index_name)
    }
    assert ("__pregel_ns_writes", "pkg.mod:node", "nœud 😀") in stored
    assert ("\\udcff",) in stored  # the readable copy escapes a lone surrogate
    await cache.aclear([("__pregel_ns_writes", "pkg.mod:node", "nœud 😀")])
    assert set(await cache.aget(list(entries))) == set(list(entries)[1:])


class Conversation(TypedDict):
    messages: list[AnyMessage]
    point: Any
    when: datetime
    tags: set[str]


@dataclass
class Point:
    x: float
    label: str


async def test_extended_types_round_trip(
    async_graph_cache: AsyncElasticsearchGraphCache,
) -> None:
    runs = []

    async def reply(state: Conversation) -> dict[str, Any]:
        runs.append(1)
        question = state["messages"][-1]
        return {
            "messages": [
                *state["messages"],
                AIMessage(
                    content=f"echo: {question.content}",
                    id="ai-1",
                    response_metadata={"model_name": "fake", "finish": "stop"},
                    usage_metadata={
                        "input_tokens": 3,
                        "output_tokens": 2,
                        "total_tokens": 5,
                    },
                ),
            ],
            "point": Point(1.5, "é"),
            "when": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc),
            "tags": {"a", "b"},
        }

    builder = StateGraph(Conversation)
    builder.add_node("reply", reply, cache_policy=CachePolicy(ttl=600))
    builder.add_edge(START, "reply")
    graph = builder.compile(cache=async_graph_cache)
    start: Any = {
        "messages": [HumanMessage(content="hi", id="h-1")],
        "point": None,
        "when": datetime(2000, 1, 1),
        "tags": set(),
    }
    first = await graph.ainvoke(start)
    second = await graph.ainvoke(start)
    assert len(runs) == 1
    assert second == first
    assert isinstance(second["messages"][-1], AIMessage)
    assert second["messages"][-1].usage_metadata == first["messages"][-1].usage_metadata
    assert second["point"] == Point(1.5, "é")
    assert second["when"] == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert second["tags"] == {"a", "b"}
    # Direct values of these types round-trip too.
    value = {
        "when": datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=-5))),
        "naive": datetime(2026, 1, 2, 3, 4),
        "delta": timedelta(days=1, microseconds=7),
        "point": Point(-0.0, ""),
        "message": HumanMessage(content=[{"type": "text", "text": "x"}]),
        "bytes": b"\x00\xff",
        "none": None,
    }
    await async_graph_cache.aset({(("v",), "k"): (value, None)})
    assert await async_graph_cache.aget([(("v",), "k")]) == {(("v",), "k"): value}
    for raw in (None, b"", b"\x00\xff"):
        await async_graph_cache.aset({(("raw",), "k"): (raw, None)})
        assert await async_graph_cache.aget([(("raw",), "k")]) == {(("raw",), "k"): raw}


class JsonSerde:
    """A serializer of its own, with a type tag the default one does not know."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return "x-test-json", json.dumps(obj).encode()

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        assert data[0] == "x-test-json"
        return json.loads(data[1])


async def test_unreadable_entries_are_misses_with_a_warning(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = AsyncElasticsearchGraphCache(
        index_name, client=async_client, serde=JsonSerde()
    )
    await own.aset({(("own",), "k"): ({"a": [1]}, None)})
    assert await own.aget([(("own",), "k")]) == {(("own",), "k"): {"a": [1]}}
    cache = AsyncElasticsearchGraphCache(index_name, client=async_client)
    foreign: dict[str, dict[str, Any]] = {
        "not ours": {"title": "a document of something else"},
        "bad base64": {"value_type": "msgpack", "value_dump": "***"},
        "bad msgpack": {
            "value_type": "msgpack",
            "value_dump": base64.b64encode(b"\xc1\xc1\xc1").decode(),
        },
        "pickle": {
            "value_type": "unknown-serializer",
            "value_dump": base64.b64encode(b"\x80\x04K\x01.").decode(),
        },
        "bad expiry": {
            "value_type": "null",
            "value_dump": "",
            "expires_at": 1,  # epoch millis: a date to Elasticsearch, not ours
        },
    }
    for key, document in foreign.items():
        admin.index(index=index_name, id=entry_id(("foreign",), key), document=document)
    keys = [(("foreign",), key) for key in foreign] + [(("own",), "k")]
    with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
        assert await cache.aget(keys) == {}
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "langchain_es_cache" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == len(keys)
    assert all("ignoring unreadable graph cache entry" in w for w in warnings)
    assert cache.stats() == CacheStats(misses=len(keys))

    # Inside a graph run: a miss, the node runs, and its answer replaces it.
    counter = Counter()
    graph = doubling_graph(cache, counter)
    await graph.ainvoke({"x": 5})
    for hit in documents(admin, index_name):
        if hit["_source"].get("graph_key") not in (None, "k"):
            admin.index(index=index_name, id=hit["_id"], document=foreign["not ours"])
    assert await graph.ainvoke({"x": 5}) == {"x": 5, "y": 10}
    assert await graph.ainvoke({"x": 5}) == {"x": 5, "y": 10}
    assert counter.runs == 2


CALLS: list[str] = []


def record(text: str) -> str:
    CALLS.append(text)
    return "called"


def put_call(admin: Elasticsearch, index: str, key: Any) -> None:
    """Store under `key` an entry whose value names `record`, to be called."""
    ormsgpack = pytest.importorskip("ormsgpack")
    call = ormsgpack.packb([__name__, "record", "by an entry"])
    dump = base64.b64encode(ormsgpack.packb(ormsgpack.Ext(0, call))).decode()
    document = {"value_type": "msgpack", "value_dump": dump}
    admin.index(index=index, id=entry_id(*key), document=document)
    CALLS.clear()


async def test_the_default_serde_calls_what_an_entry_names(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Why the README says to trust whoever may write to the index."""
    key = (("n",), "k")
    put_call(admin, index_name, key)
    default = AsyncElasticsearchGraphCache(index_name, client=async_client)
    assert await default.aget([key]) == {key: "called"}
    assert CALLS == ["by an entry"]


async def test_a_serde_with_an_allow_list_does_not(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """What the README advises instead."""
    try:
        allow_list = JsonPlusSerializer(allowed_msgpack_modules=None)
    except TypeError:
        pytest.skip("this langgraph-checkpoint has no msgpack allow-list")
    key = (("n",), "k")
    put_call(admin, index_name, key)
    strict = AsyncElasticsearchGraphCache(
        index_name, client=async_client, serde=allow_list
    )
    assert await strict.aget([key]) == {key: "by an entry"}
    assert CALLS == []


async def test_bad_input_is_refused_before_writing(
    async_graph_cache: AsyncElasticsearchGraphCache,
    admin: Elasticsearch,
    index_name: str,
) -> None:
    cache = async_graph_cache
    good = (("ns",), "k")
    bad_entries: list[tuple[dict[Any, Any], type[Exception], str]] = [
        ({("ns", "k"): (1, None)}, TypeError, "namespace must be a tuple"),
        ({(("ns", 1), "k"): (1, None)}, TypeError, "holds a int"),
        ({(("ns",), 2): (1, None)}, TypeError, "key must be a str"),
        ({"k": (1, None)}, TypeError, r"\(namespace, key\) tuples"),
        ({good: 1}, TypeError, r"\(value, ttl\)"),
        ({good: (1, 0)}, ValueError, "positive"),
        ({good: (1, -5)}, ValueError, "positive"),
        ({good: (1, float("nan"))}, ValueError, "positive"),
        ({good: (1, "60")}, TypeError, "seconds or None"),
        ({good: (1, True)}, TypeError, "seconds or None"),
        ({good: (1, 10**20)}, ValueError, "too large"),
    ]
    for pairs, error, message in bad_entries:
        with pytest.raises(error, match=message):
            await cache.aset({(("first",), "ok"): (1, None), **pairs})
    with pytest.raises(TypeError, match="takes a mapping"):
        await cache.aset([(good, (1, None))])  # type: ignore[arg-type]
    # A value the serializer refuses fails as the serializer says.
    with pytest.raises(Exception):  # noqa: B017
        await cache.aset({(("first",), "ok"): (1, None), good: (lambda: 1, None)})
    assert not admin.indices.exists(index=index_name)
    with pytest.raises(TypeError, match="namespace must be a tuple"):
        await cache.aget([("ns", "k")])  # type: ignore[list-item]
    for namespaces in ("ns", ("ns",), [["ns"]], 3):
        with pytest.raises(TypeError, match="namespace"):
            await cache.aclear(namespaces)  # type: ignore[arg-type]
    assert cache.stats() == CacheStats()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_fail_open_with_warn(
    index_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncElasticsearchGraphCache(
        index_name, es_url=dead_url(), on_error="warn"
    ) as cache:
        counter = Counter()
        graph = doubling_graph(cache, counter)
        with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
            assert await graph.ainvoke({"x": 2}) == {"x": 2, "y": 4}
            assert await graph.ainvoke({"x": 2}) == {"x": 2, "y": 4}
            await cache.aclear()
            assert await cache.apurge_expired() == 0
        assert counter.runs == 2
        # The default circuit breaker opens after 5 failures: the purge is
        # not sent.
        assert cache.stats() == CacheStats(errors=5, skipped=1)
        assert "cache get on index" in caplog.text
        assert "cache set on index" in caplog.text


async def test_errors_raise_cache_error(
    es_conn: es_server.Connection, index_name: str
) -> None:
    async with AsyncElasticsearchGraphCache(index_name, es_url=dead_url()) as cache:
        with pytest.raises(CacheError, match="cache get on index"):
            await doubling_graph(cache, Counter()).ainvoke({"x": 2})
        with pytest.raises(CacheError, match="cache set on index"):
            await cache.aset({(("n",), "k"): (1, None)})
        with pytest.raises(CacheError, match="cache clear on index"):
            await cache.aclear()
    secret = "definitely-wrong-password"
    async with AsyncElasticsearchGraphCache(
        index_name, es_url=es_conn.url, es_user="elastic", es_password=secret
    ) as cache:
        with pytest.raises(CacheError, match="cache get on index") as info:
            await cache.aget([(("n",), "k")])
        assert "401" in str(info.value) or "authentication" in str(info.value).lower()
        assert secret not in str(info.value)


async def test_refused_writes_raise_after_the_run_or_warn(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reads work, writes are refused by the cluster (a write block)."""
    strict = AsyncElasticsearchGraphCache(index_name, client=async_client)
    warn = AsyncElasticsearchGraphCache(
        index_name, client=async_client, on_error="warn"
    )
    assert await strict.is_alias() is False
    admin.indices.put_settings(index=index_name, settings={"index.blocks.write": True})
    try:
        counter = Counter()
        with pytest.raises(CacheError, match=r"set failed for 1 entry: .*block"):
            await doubling_graph(strict, counter).ainvoke({"x": 1})
        assert counter.runs == 1
        with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
            assert await doubling_graph(warn, counter).ainvoke({"x": 1}) == {
                "x": 1,
                "y": 2,
            }
        assert counter.runs == 2
        assert "cache set on index" in caplog.text
        assert strict.stats() == CacheStats(misses=1, errors=1)
        assert warn.stats() == CacheStats(misses=1, errors=1)
    finally:
        admin.indices.put_settings(
            index=index_name, settings={"index.blocks.write": None}
        )


async def test_alias_over_two_indices(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first, second = f"{index_name}-a", f"{index_name}-b"
    clock = FakeClock()
    cache = AsyncElasticsearchGraphCache(index_name, client=async_client, clock=clock)
    for index in (first, second):
        admin.indices.create(index=index, mappings=cache.mapping["mappings"])
    admin.indices.put_alias(index=first, name=index_name, is_write_index=False)
    admin.indices.put_alias(index=second, name=index_name, is_write_index=True)
    key = (("n",), "k")
    old = cache.build_document(*key, "old")
    clock.advance(seconds=1)
    new = cache.build_document(*key, "new")
    admin.index(index=first, id=entry_id(*key), document=new)
    admin.index(index=second, id=entry_id(*key), document=old)
    assert await cache.aget([key]) == {key: "new"}
    clock.advance(seconds=1)
    await cache.aset({key: ("newest", None)})
    assert await cache.aget([key]) == {key: "newest"}
    await cache.aclear([("n",)])
    assert await cache.aget([key]) == {}
    admin.indices.refresh(index=index_name)
    assert admin.count(index=index_name)["count"] == 0
