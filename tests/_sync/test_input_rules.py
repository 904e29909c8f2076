# Generated from tests/_async/test_input_rules.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""Odd input against the real node: what is refused, what is stored and read back.

The pure rules are in tests/test_input_rules.py; here the node shows that each
limit is where Elasticsearch puts it (just inside is stored and read back, just
outside Elasticsearch refuses), and that refused input sends no request.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_es_cache import (
    CacheStats,
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
)
from langchain_es_cache._common.documents import format_time
from langchain_es_cache._common.keys import embedding_key, llm_key
from langchain_es_cache._common.mappings import (
    EMBEDDINGS_CACHE_MAPPING,
    SEMANTIC_VECTOR_FIELD,
)
from langchain_es_cache._common.validation import MAX_TTL
from tests.clock import FakeClock
from tests.models import CountingChatModel, CountingEmbeddings, TableEmbeddings

LLM = "model=x temperature=0"


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


def count(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


def nested(levels: int, leaf: Any = 1) -> dict[str, Any]:
    """`leaf` `levels` keys below the top: ``{"k1": {"k2": ... leaf}}``."""
    value: dict[str, Any] = {f"k{levels}": leaf}
    for level in range(levels - 1, 0, -1):
        value = {f"k{level}": value}
    return value


def refused(admin: Elasticsearch, index: str, document: dict[str, Any]) -> str:
    """Elasticsearch's reason for refusing to index `document` into `index`."""
    with pytest.raises(BadRequestError) as info:
        admin.index(index=index, document=document)
    # The body, whole: client 8.13 cuts the exception's text short.
    return json.dumps(info.value.body)


# --- clear(metadata=...) never widens, never fails on the server (item 2) ------


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({}, ValueError),
        ({"team": {}}, ValueError),
        ({"tags": ["a", "b"]}, TypeError),
        ({"team": None}, TypeError),
        ({"team": "x" * 32767}, ValueError),
    ],
)
def test_clear_filter_that_cannot_match_deletes_nothing(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    metadata: dict[str, Any],
    error: type[Exception],
) -> None:
    cache = ElasticsearchCache(
        index_name,
        client=client,
        namespace="ns",
        metadata={"team": "search", "tags": ["a", "b"]},
        on_error="warn",
    )
    cache.update("p1", LLM, answer("1"))
    cache.update("p2", LLM, answer("2"))
    # Refused before any request, even with on_error="warn".
    with pytest.raises(error, match=r"clear\(metadata"):
        cache.clear(metadata=metadata)
    assert count(admin, index_name) == 2
    assert cache.stats() == CacheStats(writes=2)
    # What can match does: one element of a stored array, a nested value.
    cache.clear(metadata={"tags": "b", "team": "search"})
    assert count(admin, index_name) == 0


# --- tool calls in chat prompts (item 4) --------------------------------------


def agent(
    city: str = "Paris",
    call_id: str = "call_1",
    tool: str = "get_weather",
    message_id: str | None = None,
) -> list[BaseMessage]:
    return [
        HumanMessage("What is the weather like where I am going?"),
        AIMessage(
            "", tool_calls=[{"name": tool, "args": {"city": city}, "id": call_id}]
        ),
        ToolMessage("Sunny, 21 °C", tool_call_id=call_id, name=tool, id=message_id),
    ]


def test_tool_calls_keep_agent_conversations_apart(
    client: Elasticsearch, index_name: str
) -> None:
    embedding = CountingEmbeddings(dimensions=64)
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, similarity_threshold=0.95
    )
    model = CountingChatModel(cache=cache)
    conversations = [
        agent(),
        agent(city="Rome"),  # another tool call argument
        agent(call_id="call_2"),  # another tool call (and result), same arguments
        agent(tool="get_forecast"),  # another tool
    ]
    for number, conversation in enumerate(conversations, start=1):
        model.invoke(conversation)
        assert model.calls == number, f"conversation {number} answered another's"
    model.invoke(agent())  # the same conversation again: a hit
    # LangChain hands prompts to caches without message ids, so the run id of
    # a message never makes a conversation new (as for the exact cache).
    model.invoke(agent(message_id="tool-message-2"))
    assert model.calls == len(conversations)
    assert cache.stats().hits == 2
    assert any('"city": "Rome"' in text for text in embedding.embedded)


# --- an identical prompt hits at threshold 1 (item 5) -------------------------


def test_identical_prompt_hits_at_threshold_one(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    rng = random.Random(12)
    vectors = {f"prompt {i}": [rng.gauss(0, 1) for _ in range(64)] for i in range(32)}
    # Nearly the first prompt's direction (cosine about 0.9999), yet not it.
    first = vectors["prompt 0"]
    norm = sum(x * x for x in first) ** 0.5
    vectors["near"] = [
        x + (0.0141 * norm if i == 0 else 0.0) for i, x in enumerate(first)
    ]
    cache = ElasticsearchSemanticCache(
        index_name,
        TableEmbeddings(vectors),
        client=client,
        similarity_threshold=1.0,
    )
    prompts = [prompt for prompt in vectors if prompt != "near"]
    for prompt in prompts:
        cache.update(prompt, LLM, answer(prompt))
    admin.indices.refresh(index=index_name)
    # Elasticsearch's float32 cosine puts some identical vectors below 1: those
    # missed before. Without such a vector this test would prove nothing.
    below_one = []
    for prompt in prompts:
        response = admin.search(
            index=index_name,
            knn={
                "field": SEMANTIC_VECTOR_FIELD,
                "query_vector": vectors[prompt],
                "k": 1,
                "num_candidates": 10,
                "filter": {"ids": {"values": [llm_key(prompt, LLM)]}},
            },
            size=1,
        )
        if 2 * response["hits"]["hits"][0]["_score"] - 1 < 1.0:
            below_one.append(prompt)
    assert below_one, "no vector shows float32 rounding on this node"
    for prompt in prompts:
        assert cache.lookup(prompt, LLM) == answer(prompt), prompt
    assert cache.lookup("near", LLM) is None


# --- yield_keys agrees with mget under a ttl (item 7) -------------------------


def collect(store: ElasticsearchEmbeddingsCache) -> list[str]:
    return sorted([key for key in store.yield_keys()])


def present(store: ElasticsearchEmbeddingsCache, keys: list[str]) -> list[str]:
    """The keys `mget` finds."""
    values = store.mget(keys)
    return sorted(key for key, value in zip(keys, values, strict=True) if value)


def test_yield_keys_leaves_expired_keys_out(
    client: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    store = ElasticsearchEmbeddingsCache(
        index_name, client=client, ttl=timedelta(hours=1), clock=clock
    )
    store.mset([("old", b"1")])
    clock.advance(minutes=30)
    store.mset([("new", b"2")])
    clock.advance(minutes=30)  # "old" is exactly one ttl old: still there
    assert collect(store) == present(store, ["old", "new"])
    assert collect(store) == ["new", "old"]
    clock.advance(milliseconds=1)  # now it is expired
    assert collect(store) == present(store, ["old", "new"])
    assert collect(store) == ["new"]
    clock.advance(minutes=31)
    assert collect(store) == []


def test_yield_keys_behind_an_alias_agrees_with_mget(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first, second = f"{index_name}-a", f"{index_name}-b"
    for index in (first, second):
        admin.indices.create(index=index, mappings=EMBEDDINGS_CACHE_MAPPING)
    admin.indices.put_alias(index=first, name=index_name, is_write_index=False)
    admin.indices.put_alias(index=second, name=index_name, is_write_index=True)
    clock = FakeClock()
    store = ElasticsearchEmbeddingsCache(
        index_name, client=client, ttl=timedelta(hours=1), clock=clock
    )

    def put(index: str, key: str, age: timedelta) -> None:
        document = store.build_document(key, b"v")
        document["timestamp"] = format_time(clock.now - age)
        admin.index(index=index, id=embedding_key(key, None), document=document)

    hours = timedelta(hours=2)
    put(first, "renewed", hours)  # expired copy, fresh one in the second index
    put(second, "renewed", timedelta(0))
    put(first, "kept", timedelta(0))  # fresh, with an expired older copy
    put(second, "kept", hours)
    put(first, "gone", hours)  # expired everywhere
    put(second, "gone", hours)
    put(second, "only-second", timedelta(0))
    keys = ["renewed", "kept", "gone", "only-second"]
    assert present(store, keys) == ["kept", "only-second", "renewed"]
    assert collect(store) == ["kept", "only-second", "renewed"]


# --- metadata and namespaces at the limits (item 10) --------------------------

INSIDE: dict[str, Any] = {
    "long string": "é" * 16383,  # 32766 bytes in UTF-8
    "strings": ["x" * 32766, None, "y"],
    "integers": [2**63 - 1, -(2**63)],
    "floats": [3.4028234e38, -3.4028234e38, 1e-50],
    "decimals": [1.0, 1.5, 2.5e18],
    "a.dotted.key": True,
    "nbsp \u00a0 and trailing space ": 1,
    "objects": [{"a": 1}, {"b": "x"}, {}],
    "dates": ["2026-11-26", "not a date"],  # never guessed to be a date
    "deep": nested(18, "leaf"),  # 19 keys below metadata: the deepest value
}


@pytest.mark.parametrize(
    "cls",
    [ElasticsearchCache, ElasticsearchSemanticCache],
    ids=lambda c: c.__name__,
)
def test_metadata_just_inside_the_limits_is_stored_and_read_back(
    client: Elasticsearch, admin: Elasticsearch, index_name: str, cls: Any
) -> None:
    namespace = "n" * 32766
    extra = {"embedding": CountingEmbeddings()} if "Semantic" in cls.__name__ else {}
    cache = cls(
        index_name, client=client, metadata=INSIDE, namespace=namespace, **extra
    )
    cache.update("p", LLM, answer("a"))
    assert cache.lookup("p", LLM) == answer("a")
    source = admin.get(index=index_name, id=llm_key("p", LLM, namespace))
    assert source["_source"]["metadata"] == INSIDE
    assert source["_source"]["namespace"] == namespace
    cache.clear(metadata={"dates": "2026-11-26", "long string": "é" * 16383})
    assert count(admin, index_name) == 0


def test_embeddings_metadata_just_inside_the_limits(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    namespace = "€" * 10922  # 32766 bytes
    store = ElasticsearchEmbeddingsCache(
        index_name, client=client, metadata=INSIDE, namespace=namespace
    )
    store.mset([("k", b"v")])
    assert store.mget(["k"]) == [b"v"]
    assert [key for key in store.yield_keys()] == ["k"]
    source = admin.get(index=index_name, id=embedding_key("k", namespace))
    assert source["_source"]["metadata"] == INSIDE


OUTSIDE: list[tuple[dict[str, Any], str]] = [
    ({"a..b": 1}, "empty or blank part"),
    ({" ": 1}, "empty or blank"),
    ({"s": "é" * 16384}, "32768 bytes"),
    ({"n": 2**63}, "long range"),
    ({"f": 3.5e38}, "float32"),
    ({"m": [1, "a"]}, "mixes number and string"),
    ({"m": [1, True]}, "mixes boolean and number"),
    ({"m": [{"a": 1}, 1]}, "holds both objects"),
    ({"m": [1, 1e19]}, "mixes integers and decimal numbers"),
    ({"deep": nested(19, "leaf")}, "nests too deep"),
    ({"deep": nested(18, {})}, "nests too deep"),  # an object one level less
]


@pytest.mark.parametrize(("metadata", "rule"), OUTSIDE)
def test_metadata_just_outside_is_what_elasticsearch_refuses(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    metadata: dict[str, Any],
    rule: str,
) -> None:
    with pytest.raises(ValueError, match=rule):
        ElasticsearchCache(index_name, client=client, metadata=metadata)
    # Elasticsearch refuses every write of such metadata into the cache's index.
    cache = ElasticsearchCache(index_name, client=client)
    cache.is_alias()
    reason = refused(admin, index_name, {"metadata": metadata})
    # Elasticsearch 9 says document_parsing_exception; 8 illegal_argument_exception.
    assert (
        "document_parsing_exception" in reason or "illegal_argument_exception" in reason
    )


def test_namespace_just_outside_is_what_elasticsearch_refuses(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    with pytest.raises(ValueError, match="namespace is 32767 bytes"):
        ElasticsearchCache(index_name, client=client, namespace="n" * 32767)
    cache = ElasticsearchCache(index_name, client=client)
    cache.is_alias()
    assert "immense term" in refused(admin, index_name, {"namespace": "n" * 32767})


@pytest.mark.parametrize(
    ("cls", "value", "room", "in_object"),
    [
        (ElasticsearchCache, "s", 993, False),
        (ElasticsearchCache, 1, 993, True),  # the object is a field too
        (ElasticsearchSemanticCache, 1, 992, False),
        (ElasticsearchEmbeddingsCache, 1, 994, False),
        (ElasticsearchEmbeddingsCache, "s", 497, False),  # text + keyword
    ],
    ids=["llm", "llm-object", "semantic", "embeddings-numbers", "embeddings-strings"],
)
def test_metadata_fields_up_to_the_index_limit(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    cls: Any,
    value: object,
    room: int,
    in_object: bool,
) -> None:
    extra = {"embedding": CountingEmbeddings()} if "Semantic" in cls.__name__ else {}
    metadata: dict[str, Any] = {f"f{i}": value for i in range(room - in_object)}
    if in_object:
        metadata = {"o": metadata}
    cache = cls(index_name, client=client, metadata=metadata, **extra)
    if isinstance(cache, ElasticsearchEmbeddingsCache):
        cache.mset([("k", b"v")])
        assert cache.mget(["k"]) == [b"v"]
    else:
        cache.update("p", LLM, answer("a"))
        assert cache.lookup("p", LLM) == answer("a")
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    fields = mapping["properties"]["metadata"]["properties"]
    assert len(fields) + (len(fields["o"]["properties"]) if in_object else 0) == room
    more = {**metadata, "one": value}
    with pytest.raises(ValueError, match="total_fields"):
        cls(index_name, client=client, metadata=more, **extra)
    assert "Limit of total fields [1000]" in refused(
        admin, index_name, {"metadata": more}
    )


# --- the longest ttl works everywhere (item 11) -------------------------------


def test_longest_ttl_and_older_than_work(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchCache(index_name, client=client, ttl=MAX_TTL, on_error="warn")
    cache.update("p", LLM, answer("a"))
    assert cache.lookup("p", LLM) == answer("a")
    assert cache.purge_expired() == 0
    cache.clear(older_than=MAX_TTL)
    assert count(admin, index_name) == 1
    store = ElasticsearchEmbeddingsCache(
        f"{index_name}-store", client=client, ttl=MAX_TTL
    )
    store.mset([("k", b"v")])
    assert store.mget(["k"]) == [b"v"]
    assert [key for key in store.yield_keys()] == ["k"]
    assert cache.stats().errors == 0
    with pytest.raises(ValueError, match="older_than must be at most 100 years"):
        cache.clear(older_than=timedelta.max)


# --- any iterable of pairs or keys (item 12) ----------------------------------


def test_store_takes_any_iterable(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    store = ElasticsearchEmbeddingsCache(index_name, client=client)
    keys, values = ["a", "b", "c"], [b"1", b"2", b"3"]
    # A bad pair anywhere in a generator: refused before any request.
    with pytest.raises(TypeError, match="values must be bytes"):
        store.mset((key, "text") for key in keys)  # type: ignore[misc]
    assert not admin.indices.exists(index=index_name)
    store.mset(zip(keys, values, strict=True))
    assert store.stats().writes == 3
    assert store.mget(iter(keys)) == values
    assert store.mget(key for key in ["c", "x"]) == [b"3", None]
    store.mdelete(key for key in keys if key != "b")
    assert store.mget(keys) == [None, b"2", None]
    with pytest.raises(TypeError, match="keys must be an iterable"):
        store.mget("abc")


# --- a generation is cached only if it can be read back (item 13) -------------


def test_unserializable_generation_is_refused_before_any_request(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchCache(index_name, client=client, on_error="warn")
    when = FakeClock().now
    with pytest.raises(TypeError, match=r"generation_info\['created'\] is a datetime"):
        cache.update(
            "p", LLM, [Generation(text="a", generation_info={"created": when})]
        )
    assert not admin.indices.exists(index=index_name)
    assert cache.stats() == CacheStats()
    # JSON values of every kind, and the marker's name as data, read back.
    generations = [
        ChatGeneration(
            message=AIMessage(
                "b",
                tool_calls=[{"name": "t", "args": {"x": [1, None]}, "id": "c1"}],
                response_metadata={"created": when.isoformat(), "n": 1.5},
            ),
            generation_info={"not_implemented": {"type": "not_implemented"}},
        )
    ]
    cache.update("p", LLM, generations)
    assert cache.lookup("p", LLM) == generations
    assert cache.stats() == CacheStats(hits=1, writes=1)
