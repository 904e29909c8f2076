# Generated from tests/_async/test_graph.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The LangGraph node cache against the real node, through real graphs and its API."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict

import pytest

# LangGraph is optional: without it (as with langchain-core 0.3.0, which LangGraph
# cannot run with), these tests are skipped and test_graph_optional.py runs.
pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")
from elasticsearch import Elasticsearch
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy

from langchain_es_cache import CacheError, CacheStats, ElasticsearchGraphCache
from langchain_es_cache._common.graph import entry_id, namespace_id
from tests.clock import FakeClock
from utils import es_server


@pytest.fixture
def graph_cache(
    client: Elasticsearch, index_name: str
) -> Iterator[ElasticsearchGraphCache]:
    yield ElasticsearchGraphCache(index_name, client=client)


class State(TypedDict):
    x: int
    y: int


class Counter:
    """Counts a node's runs."""

    def __init__(self) -> None:
        self.runs = 0


def doubling_graph(
    cache: ElasticsearchGraphCache, counter: Counter, ttl: int | None = None
) -> Any:
    """A graph of one node, cached with `ttl`, that doubles ``x`` into ``y``."""

    def double(state: State) -> dict[str, int]:
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


def test_node_runs_once_for_repeated_input(
    client: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchGraphCache(index_name, client=client)
    counter = Counter()
    graph = doubling_graph(cache, counter)
    assert graph.invoke({"x": 3}) == {"x": 3, "y": 6}
    assert graph.invoke({"x": 3}) == {"x": 3, "y": 6}
    assert counter.runs == 1
    assert graph.invoke({"x": 4}) == {"x": 4, "y": 8}
    assert counter.runs == 2
    assert cache.stats() == CacheStats(hits=1, misses=2, writes=2)
    # Another cache object on the index serves the entry too.
    other = doubling_graph(ElasticsearchGraphCache(index_name, client=client), counter)
    assert other.invoke({"x": 4}) == {"x": 4, "y": 8}
    assert counter.runs == 2


def test_stored_document(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = ElasticsearchGraphCache(
        index_name, client=client, metadata={"team": "graphs"}, clock=clock
    )
    namespace = ("node", "é:😀")
    cache.set({(namespace, "k"): ({"v": 1}, 90), (("other",), "k"): (2, None)})
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


def test_batches_are_one_request(
    graph_cache: ElasticsearchGraphCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: dict[str, list[int]] = {"bulk": [], "mget": []}
    bulk, mget = Elasticsearch.bulk, Elasticsearch.mget

    def spy_bulk(self: Elasticsearch, *args: Any, **kwargs: Any) -> Any:
        calls["bulk"].append(len(kwargs["operations"]) // 2)
        return bulk(self, *args, **kwargs)

    def spy_mget(self: Elasticsearch, *args: Any, **kwargs: Any) -> Any:
        calls["mget"].append(len(kwargs.get("ids") or kwargs.get("docs") or []))
        return mget(self, *args, **kwargs)

    monkeypatch.setattr(Elasticsearch, "bulk", spy_bulk)
    monkeypatch.setattr(Elasticsearch, "mget", spy_mget)
    pairs: dict[tuple[tuple[str, ...], str], tuple[Any, int | None]] = {
        (("ns", str(i % 3)), f"key {i}"): (i, None) for i in range(256)
    }
    graph_cache.set(pairs)
    found = graph_cache.get([*pairs, (("ns",), "absent")])
    assert found == {full_key: value for full_key, (value, _) in pairs.items()}
    assert calls == {"bulk": [256], "mget": [257]}
    big: dict[tuple[tuple[str, ...], str], tuple[Any, int | None]] = {
        (("big",), str(i)): (i, None) for i in range(1200)
    }
    graph_cache.set(big)
    assert len(graph_cache.get(list(big))) == 1200
    assert calls["bulk"][1:] == [500, 500, 200]
    assert calls["mget"][1:] == [500, 500, 200]
    assert graph_cache.get([]) == {}
    graph_cache.set({})


def test_ttl_expiry_and_purge(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = ElasticsearchGraphCache(index_name, client=client, clock=clock)
    counter = Counter()
    graph = doubling_graph(cache, counter, ttl=60)
    graph.invoke({"x": 1})
    cache.set({(("kept",), "k"): ("forever", None)})
    clock.advance(seconds=59, milliseconds=999)
    graph.invoke({"x": 1})
    assert counter.runs == 1
    assert cache.purge_expired() == 0
    clock.advance(milliseconds=1)  # exactly 60 s: expired
    graph.invoke({"x": 1})
    assert counter.runs == 2  # and the node's new answer is stored again
    clock.advance(seconds=60)
    assert cache.get([(("kept",), "k")]) == {(("kept",), "k"): "forever"}
    assert cache.purge_expired() == 1
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


def test_clear_is_exact_per_namespace(
    graph_cache: ElasticsearchGraphCache,
) -> None:
    cache = graph_cache
    keys = [(namespace, "k") for namespace in PREFIX_SHARING]
    cache.set({key: (i, None) for i, key in enumerate(keys)})
    assert len(cache.get(keys)) == len(keys)
    cache.clear([])  # no namespace: nothing
    assert len(cache.get(keys)) == len(keys)
    for cleared in PREFIX_SHARING:
        cache.set({key: (i, None) for i, key in enumerate(keys)})
        cache.clear([cleared])
        left = cache.get(keys)
        assert set(left) == {key for key in keys if key[0] != cleared}, cleared
    cache.clear([("a",), ("a:b",), ("never-used",)])
    assert set(cache.get(keys)) == {
        key for key in keys if key[0] not in {("a",), ("a:b",)}
    } - {(PREFIX_SHARING[-1], "k")}
    # More namespaces than one query may name.
    cache.clear([(f"n{i}",) for i in range(25_000)] + [("ab",)])
    assert (("ab",), "k") in keys and (("ab",), "k") not in cache.get(keys)
    cache.clear()
    assert cache.get(keys) == {}


def test_clear_leaves_other_caches_in_the_index(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Clearing all graph entries leaves documents that are not graph entries."""
    cache = ElasticsearchGraphCache(index_name, client=client)
    cache.set({(("n",), "k"): (1, None)})
    admin.index(index=index_name, id="someone-else", document={"note": "keep"})
    cache.clear()
    assert [hit["_id"] for hit in documents(admin, index_name)] == ["someone-else"]


def test_caches_with_other_metadata_share_an_index(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """A date-like metadata string maps no date field that would refuse the next
    cache's string, and metadata strings are exact values, as in the LLM cache."""
    dated = ElasticsearchGraphCache(
        index_name, client=client, metadata={"day": "2026-11-26"}
    )
    dated.set({(("n",), "a"): (1, None)})
    named = ElasticsearchGraphCache(
        index_name, client=client, metadata={"day": "thursday"}
    )
    named.set({(("n",), "b"): (2, None)})
    assert named.get([(("n",), "a"), (("n",), "b")]) == {
        (("n",), "a"): 1,
        (("n",), "b"): 2,
    }
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"]["metadata"]["properties"]["day"] == {"type": "keyword"}


def test_metadata_beyond_the_field_limit_is_refused_at_construction(
    client: Elasticsearch,
) -> None:
    with pytest.raises(ValueError, match="fields"):
        ElasticsearchGraphCache(
            "never-created",
            client=client,
            metadata={f"f{i}": i for i in range(1000)},
        )


def test_graph_clear_cache_of_one_node(
    graph_cache: ElasticsearchGraphCache,
) -> None:
    runs = {"first": 0, "second": 0}

    def first(state: State) -> dict[str, int]:
        runs["first"] += 1
        return {"y": state["x"] + 1}

    def second(state: State) -> dict[str, int]:
        runs["second"] += 1
        return {"y": state["y"] * 10}

    builder = StateGraph(State)
    builder.add_node("first", first, cache_policy=CachePolicy())
    builder.add_node("second", second, cache_policy=CachePolicy())
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    graph = builder.compile(cache=graph_cache)
    assert graph.invoke({"x": 1, "y": 0}) == {"x": 1, "y": 20}
    graph.clear_cache(["first"])
    assert graph.invoke({"x": 1, "y": 0}) == {"x": 1, "y": 20}
    assert runs == {"first": 2, "second": 1}
    graph.clear_cache()
    graph.invoke({"x": 1, "y": 0})
    assert runs == {"first": 3, "second": 2}


def test_colon_and_unicode_namespaces_and_keys(
    graph_cache: ElasticsearchGraphCache,
    admin: Elasticsearch,
    index_name: str,
) -> None:
    cache = graph_cache
    entries = {
        (("__pregel_ns_writes", "pkg.mod:node", "nœud 😀"), "a:b:c"): "one",
        (("__pregel_ns_writes", "pkg.mod", "node:nœud 😀"), "a:b:c"): "two",
        (("ns",), "clé 🔑"): "three",
        (("ns",), "\udcff lone"): "four",
        (("\udcff",), ""): "five",
    }
    cache.set({key: (value, None) for key, value in entries.items()})
    assert cache.get(list(entries)) == entries
    stored = {
        tuple(hit["_source"]["graph_namespace"]) for hit in documents(admin, index_name)
    }
    assert ("__pregel_ns_writes", "pkg.mod:node", "nœud 😀") in stored
    assert ("\\udcff",) in stored  # the readable copy escapes a lone surrogate
    cache.clear([("__pregel_ns_writes", "pkg.mod:node", "nœud 😀")])
    assert set(cache.get(list(entries))) == set(list(entries)[1:])


class Conversation(TypedDict):
    messages: list[AnyMessage]
    point: Any
    when: datetime
    tags: set[str]


@dataclass
class Point:
    x: float
    label: str


def test_extended_types_round_trip(
    graph_cache: ElasticsearchGraphCache,
) -> None:
    runs = []

    def reply(state: Conversation) -> dict[str, Any]:
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
    graph = builder.compile(cache=graph_cache)
    start: Any = {
        "messages": [HumanMessage(content="hi", id="h-1")],
        "point": None,
        "when": datetime(2000, 1, 1),
        "tags": set(),
    }
    first = graph.invoke(start)
    second = graph.invoke(start)
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
    graph_cache.set({(("v",), "k"): (value, None)})
    assert graph_cache.get([(("v",), "k")]) == {(("v",), "k"): value}
    for raw in (None, b"", b"\x00\xff"):
        graph_cache.set({(("raw",), "k"): (raw, None)})
        assert graph_cache.get([(("raw",), "k")]) == {(("raw",), "k"): raw}


class JsonSerde:
    """A serializer of its own, with a type tag the default one does not know."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return "x-test-json", json.dumps(obj).encode()

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        assert data[0] == "x-test-json"
        return json.loads(data[1])


def test_unreadable_entries_are_misses_with_a_warning(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = ElasticsearchGraphCache(index_name, client=client, serde=JsonSerde())
    own.set({(("own",), "k"): ({"a": [1]}, None)})
    assert own.get([(("own",), "k")]) == {(("own",), "k"): {"a": [1]}}
    cache = ElasticsearchGraphCache(index_name, client=client)
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
        assert cache.get(keys) == {}
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
    graph.invoke({"x": 5})
    for hit in documents(admin, index_name):
        if hit["_source"].get("graph_key") not in (None, "k"):
            admin.index(index=index_name, id=hit["_id"], document=foreign["not ours"])
    assert graph.invoke({"x": 5}) == {"x": 5, "y": 10}
    assert graph.invoke({"x": 5}) == {"x": 5, "y": 10}
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


def test_the_default_serde_calls_what_an_entry_names(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Why the README says to trust whoever may write to the index."""
    key = (("n",), "k")
    put_call(admin, index_name, key)
    default = ElasticsearchGraphCache(index_name, client=client)
    assert default.get([key]) == {key: "called"}
    assert CALLS == ["by an entry"]


def test_a_serde_with_an_allow_list_does_not(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """What the README advises instead."""
    try:
        allow_list = JsonPlusSerializer(allowed_msgpack_modules=None)
    except TypeError:
        pytest.skip("this langgraph-checkpoint has no msgpack allow-list")
    key = (("n",), "k")
    put_call(admin, index_name, key)
    strict = ElasticsearchGraphCache(index_name, client=client, serde=allow_list)
    assert strict.get([key]) == {key: "by an entry"}
    assert CALLS == []


def test_bad_input_is_refused_before_writing(
    graph_cache: ElasticsearchGraphCache,
    admin: Elasticsearch,
    index_name: str,
) -> None:
    cache = graph_cache
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
            cache.set({(("first",), "ok"): (1, None), **pairs})
    with pytest.raises(TypeError, match="takes a mapping"):
        cache.set([(good, (1, None))])  # type: ignore[arg-type]
    # A value the serializer refuses fails as the serializer says.
    with pytest.raises(Exception):  # noqa: B017
        cache.set({(("first",), "ok"): (1, None), good: (lambda: 1, None)})
    assert not admin.indices.exists(index=index_name)
    with pytest.raises(TypeError, match="namespace must be a tuple"):
        cache.get([("ns", "k")])  # type: ignore[list-item]
    for namespaces in ("ns", ("ns",), [["ns"]], 3):
        with pytest.raises(TypeError, match="namespace"):
            cache.clear(namespaces)  # type: ignore[arg-type]
    assert cache.stats() == CacheStats()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_fail_open_with_warn(index_name: str, caplog: pytest.LogCaptureFixture) -> None:
    with ElasticsearchGraphCache(
        index_name, es_url=dead_url(), on_error="warn"
    ) as cache:
        counter = Counter()
        graph = doubling_graph(cache, counter)
        with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
            assert graph.invoke({"x": 2}) == {"x": 2, "y": 4}
            assert graph.invoke({"x": 2}) == {"x": 2, "y": 4}
            cache.clear()
            assert cache.purge_expired() == 0
        assert counter.runs == 2
        # The default circuit breaker opens after 5 failures: the purge is
        # not sent.
        assert cache.stats() == CacheStats(errors=5, skipped=1)
        assert "cache get on index" in caplog.text
        assert "cache set on index" in caplog.text


def test_errors_raise_cache_error(
    es_conn: es_server.Connection, index_name: str
) -> None:
    with ElasticsearchGraphCache(index_name, es_url=dead_url()) as cache:
        with pytest.raises(CacheError, match="cache get on index"):
            doubling_graph(cache, Counter()).invoke({"x": 2})
        with pytest.raises(CacheError, match="cache set on index"):
            cache.set({(("n",), "k"): (1, None)})
        with pytest.raises(CacheError, match="cache clear on index"):
            cache.clear()
    secret = "definitely-wrong-password"
    with ElasticsearchGraphCache(
        index_name, es_url=es_conn.url, es_user="elastic", es_password=secret
    ) as cache:
        with pytest.raises(CacheError, match="cache get on index") as info:
            cache.get([(("n",), "k")])
        assert "401" in str(info.value) or "authentication" in str(info.value).lower()
        assert secret not in str(info.value)


def test_refused_writes_raise_after_the_run_or_warn(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reads work, writes are refused by the cluster (a write block)."""
    strict = ElasticsearchGraphCache(index_name, client=client)
    warn = ElasticsearchGraphCache(index_name, client=client, on_error="warn")
    assert strict.is_alias() is False
    admin.indices.put_settings(index=index_name, settings={"index.blocks.write": True})
    try:
        counter = Counter()
        with pytest.raises(CacheError, match=r"set failed for 1 entry: .*block"):
            doubling_graph(strict, counter).invoke({"x": 1})
        assert counter.runs == 1
        with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
            assert doubling_graph(warn, counter).invoke({"x": 1}) == {
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


def test_alias_over_two_indices(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first, second = f"{index_name}-a", f"{index_name}-b"
    clock = FakeClock()
    cache = ElasticsearchGraphCache(index_name, client=client, clock=clock)
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
    assert cache.get([key]) == {key: "new"}
    clock.advance(seconds=1)
    cache.set({key: ("newest", None)})
    assert cache.get([key]) == {key: "newest"}
    cache.clear([("n",)])
    assert cache.get([key]) == {}
    admin.indices.refresh(index=index_name)
    assert admin.count(index=index_name)["count"] == 0
