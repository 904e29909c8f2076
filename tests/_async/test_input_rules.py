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
from elasticsearch import AsyncElasticsearch, BadRequestError, Elasticsearch
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    AsyncElasticsearchSemanticCache,
    CacheStats,
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
async def test_clear_filter_that_cannot_match_deletes_nothing(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    metadata: dict[str, Any],
    error: type[Exception],
) -> None:
    cache = AsyncElasticsearchCache(
        index_name,
        client=async_client,
        namespace="ns",
        metadata={"team": "search", "tags": ["a", "b"]},
        on_error="warn",
    )
    await cache.aupdate("p1", LLM, answer("1"))
    await cache.aupdate("p2", LLM, answer("2"))
    # Refused before any request, even with on_error="warn".
    with pytest.raises(error, match=r"clear\(metadata"):
        await cache.aclear(metadata=metadata)
    assert count(admin, index_name) == 2
    assert cache.stats() == CacheStats(writes=2)
    # What can match does: one element of a stored array, a nested value.
    await cache.aclear(metadata={"tags": "b", "team": "search"})
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


async def test_tool_calls_keep_agent_conversations_apart(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    embedding = CountingEmbeddings(dimensions=64)
    cache = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, similarity_threshold=0.95
    )
    model = CountingChatModel(cache=cache)
    conversations = [
        agent(),
        agent(city="Rome"),  # another tool call argument
        agent(call_id="call_2"),  # another tool call (and result), same arguments
        agent(tool="get_forecast"),  # another tool
    ]
    for number, conversation in enumerate(conversations, start=1):
        await model.ainvoke(conversation)
        assert model.calls == number, f"conversation {number} answered another's"
    await model.ainvoke(agent())  # the same conversation again: a hit
    # LangChain hands prompts to caches without message ids, so the run id of
    # a message never makes a conversation new (as for the exact cache).
    await model.ainvoke(agent(message_id="tool-message-2"))
    assert model.calls == len(conversations)
    assert cache.stats().hits == 2
    assert any('"city": "Rome"' in text for text in embedding.embedded)


# --- an identical prompt hits at threshold 1 (item 5) -------------------------


async def test_identical_prompt_hits_at_threshold_one(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    rng = random.Random(12)
    vectors = {f"prompt {i}": [rng.gauss(0, 1) for _ in range(64)] for i in range(32)}
    # Nearly the first prompt's direction (cosine about 0.9999), yet not it.
    first = vectors["prompt 0"]
    norm = sum(x * x for x in first) ** 0.5
    vectors["near"] = [
        x + (0.0141 * norm if i == 0 else 0.0) for i, x in enumerate(first)
    ]
    cache = AsyncElasticsearchSemanticCache(
        index_name,
        TableEmbeddings(vectors),
        client=async_client,
        similarity_threshold=1.0,
    )
    prompts = [prompt for prompt in vectors if prompt != "near"]
    for prompt in prompts:
        await cache.aupdate(prompt, LLM, answer(prompt))
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
        assert await cache.alookup(prompt, LLM) == answer(prompt), prompt
    assert await cache.alookup("near", LLM) is None


# --- yield_keys agrees with mget under a ttl (item 7) -------------------------


async def collect(store: AsyncElasticsearchEmbeddingsCache) -> list[str]:
    return sorted([key async for key in store.ayield_keys()])


async def present(
    store: AsyncElasticsearchEmbeddingsCache, keys: list[str]
) -> list[str]:
    """The keys `amget` finds."""
    values = await store.amget(keys)
    return sorted(key for key, value in zip(keys, values, strict=True) if value)


async def test_yield_keys_leaves_expired_keys_out(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    store = AsyncElasticsearchEmbeddingsCache(
        index_name, client=async_client, ttl=timedelta(hours=1), clock=clock
    )
    await store.amset([("old", b"1")])
    clock.advance(minutes=30)
    await store.amset([("new", b"2")])
    clock.advance(minutes=30)  # "old" is exactly one ttl old: still there
    assert await collect(store) == await present(store, ["old", "new"])
    assert await collect(store) == ["new", "old"]
    clock.advance(milliseconds=1)  # now it is expired
    assert await collect(store) == await present(store, ["old", "new"])
    assert await collect(store) == ["new"]
    clock.advance(minutes=31)
    assert await collect(store) == []


async def test_yield_keys_behind_an_alias_agrees_with_mget(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first, second = f"{index_name}-a", f"{index_name}-b"
    for index in (first, second):
        admin.indices.create(index=index, mappings=EMBEDDINGS_CACHE_MAPPING)
    admin.indices.put_alias(index=first, name=index_name, is_write_index=False)
    admin.indices.put_alias(index=second, name=index_name, is_write_index=True)
    clock = FakeClock()
    store = AsyncElasticsearchEmbeddingsCache(
        index_name, client=async_client, ttl=timedelta(hours=1), clock=clock
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
    assert await present(store, keys) == ["kept", "only-second", "renewed"]
    assert await collect(store) == ["kept", "only-second", "renewed"]


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
    [AsyncElasticsearchCache, AsyncElasticsearchSemanticCache],
    ids=lambda c: c.__name__,
)
async def test_metadata_just_inside_the_limits_is_stored_and_read_back(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str, cls: Any
) -> None:
    namespace = "n" * 32766
    extra = {"embedding": CountingEmbeddings()} if "Semantic" in cls.__name__ else {}
    cache = cls(
        index_name, client=async_client, metadata=INSIDE, namespace=namespace, **extra
    )
    await cache.aupdate("p", LLM, answer("a"))
    assert await cache.alookup("p", LLM) == answer("a")
    source = admin.get(index=index_name, id=llm_key("p", LLM, namespace))
    assert source["_source"]["metadata"] == INSIDE
    assert source["_source"]["namespace"] == namespace
    await cache.aclear(metadata={"dates": "2026-11-26", "long string": "é" * 16383})
    assert count(admin, index_name) == 0


async def test_embeddings_metadata_just_inside_the_limits(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    namespace = "€" * 10922  # 32766 bytes
    store = AsyncElasticsearchEmbeddingsCache(
        index_name, client=async_client, metadata=INSIDE, namespace=namespace
    )
    await store.amset([("k", b"v")])
    assert await store.amget(["k"]) == [b"v"]
    assert [key async for key in store.ayield_keys()] == ["k"]
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
async def test_metadata_just_outside_is_what_elasticsearch_refuses(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    metadata: dict[str, Any],
    rule: str,
) -> None:
    with pytest.raises(ValueError, match=rule):
        AsyncElasticsearchCache(index_name, client=async_client, metadata=metadata)
    # Elasticsearch refuses every write of such metadata into the cache's index.
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    await cache.is_alias()
    reason = refused(admin, index_name, {"metadata": metadata})
    # Elasticsearch 9 says document_parsing_exception; 8 illegal_argument_exception.
    assert (
        "document_parsing_exception" in reason or "illegal_argument_exception" in reason
    )


async def test_namespace_just_outside_is_what_elasticsearch_refuses(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    with pytest.raises(ValueError, match="namespace is 32767 bytes"):
        AsyncElasticsearchCache(index_name, client=async_client, namespace="n" * 32767)
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    await cache.is_alias()
    assert "immense term" in refused(admin, index_name, {"namespace": "n" * 32767})


@pytest.mark.parametrize(
    ("cls", "value", "room", "in_object"),
    [
        (AsyncElasticsearchCache, "s", 993, False),
        (AsyncElasticsearchCache, 1, 993, True),  # the object is a field too
        (AsyncElasticsearchSemanticCache, 1, 992, False),
        (AsyncElasticsearchEmbeddingsCache, 1, 994, False),
        (AsyncElasticsearchEmbeddingsCache, "s", 497, False),  # text + keyword
    ],
    ids=["llm", "llm-object", "semantic", "embeddings-numbers", "embeddings-strings"],
)
async def test_metadata_fields_up_to_the_index_limit(
    async_client: AsyncElasticsearch,
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
    cache = cls(index_name, client=async_client, metadata=metadata, **extra)
    if isinstance(cache, AsyncElasticsearchEmbeddingsCache):
        await cache.amset([("k", b"v")])
        assert await cache.amget(["k"]) == [b"v"]
    else:
        await cache.aupdate("p", LLM, answer("a"))
        assert await cache.alookup("p", LLM) == answer("a")
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    fields = mapping["properties"]["metadata"]["properties"]
    assert len(fields) + (len(fields["o"]["properties"]) if in_object else 0) == room
    more = {**metadata, "one": value}
    with pytest.raises(ValueError, match="total_fields"):
        cls(index_name, client=async_client, metadata=more, **extra)
    assert "Limit of total fields [1000]" in refused(
        admin, index_name, {"metadata": more}
    )


# --- the longest ttl works everywhere (item 11) -------------------------------


async def test_longest_ttl_and_older_than_work(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = AsyncElasticsearchCache(
        index_name, client=async_client, ttl=MAX_TTL, on_error="warn"
    )
    await cache.aupdate("p", LLM, answer("a"))
    assert await cache.alookup("p", LLM) == answer("a")
    assert await cache.apurge_expired() == 0
    await cache.aclear(older_than=MAX_TTL)
    assert count(admin, index_name) == 1
    store = AsyncElasticsearchEmbeddingsCache(
        f"{index_name}-store", client=async_client, ttl=MAX_TTL
    )
    await store.amset([("k", b"v")])
    assert await store.amget(["k"]) == [b"v"]
    assert [key async for key in store.ayield_keys()] == ["k"]
    assert cache.stats().errors == 0
    with pytest.raises(ValueError, match="older_than must be at most 100 years"):
        await cache.aclear(older_than=timedelta.max)


# --- any iterable of pairs or keys (item 12) ----------------------------------


async def test_store_takes_any_iterable(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    store = AsyncElasticsearchEmbeddingsCache(index_name, client=async_client)
    keys, values = ["a", "b", "c"], [b"1", b"2", b"3"]
    # A bad pair anywhere in a generator: refused before any request.
    with pytest.raises(TypeError, match="values must be bytes"):
        await store.amset((key, "text") for key in keys)  # type: ignore[misc]
    assert not admin.indices.exists(index=index_name)
    await store.amset(zip(keys, values, strict=True))
    assert store.stats().writes == 3
    assert await store.amget(iter(keys)) == values
    assert await store.amget(key for key in ["c", "x"]) == [b"3", None]
    await store.amdelete(key for key in keys if key != "b")
    assert await store.amget(keys) == [None, b"2", None]
    with pytest.raises(TypeError, match="keys must be an iterable"):
        await store.amget("abc")


# --- a generation is cached only if it can be read back (item 13) -------------


async def test_unserializable_generation_is_refused_before_any_request(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = AsyncElasticsearchCache(index_name, client=async_client, on_error="warn")
    when = FakeClock().now
    with pytest.raises(TypeError, match=r"generation_info\['created'\] is a datetime"):
        await cache.aupdate(
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
    await cache.aupdate("p", LLM, generations)
    assert await cache.alookup("p", LLM) == generations
    assert cache.stats() == CacheStats(hits=1, writes=1)
