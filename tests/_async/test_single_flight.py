"""single_flight against the real node: one model call for a burst of identical
prompts, claims that expire or are cleared, and claims that are never entries.

Tests that must not wait for a claim use a frozen clock and a generous guard
(`tests.twins.GUARD_SECONDS`): waiting would hang them, not slow them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest
from elasticsearch import AsyncElasticsearch, ConnectionError, Elasticsearch
from langchain_core.globals import set_llm_cache
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchSemanticCache,
    CacheError,
    CacheStats,
)
from langchain_es_cache._common.keys import llm_key
from langchain_es_cache._common.single_flight import (
    CLAIM_NAMESPACE,
    CLAIM_PROPERTIES,
    ENTRIES_ONLY,
    claim_id,
)
from tests.clock import FakeClock
from tests.models import CountingLLM, SlowChatModel, TableEmbeddings
from tests.twins import (
    AsyncBackground,
    async_burst_size,
    async_gather,
    async_wait_until,
)
from utils import es_server

LLM = "model=slow-1"
PROMPT = "What is the capital of France?"
OTHER = "How do I bake bread?"
PERIOD = 60.0
"""A claim that never expires during a test with a frozen clock."""


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


def claims(admin: Elasticsearch, index: str) -> list[dict[str, Any]]:
    """Every claim document in `index`."""
    admin.indices.refresh(index=index)
    found = admin.search(
        index=index, query={"term": {"namespace": CLAIM_NAMESPACE}}, size=100
    )
    return [dict(hit) for hit in found["hits"]["hits"]]


def entries(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index, query=ENTRIES_ONLY)["count"])


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield None
    set_llm_cache(None)


def flying(
    client: AsyncElasticsearch, index: str, **kwargs: Any
) -> AsyncElasticsearchCache:
    return AsyncElasticsearchCache(index, client=client, **kwargs)


def ask_in_background(
    cache: AsyncElasticsearchCache,
) -> AsyncBackground[list[Generation] | None]:
    return AsyncBackground(lambda: cache.alookup(PROMPT, LLM))  # type: ignore[arg-type, return-value]


# --- bursts --------------------------------------------------------------------


async def test_burst_of_identical_prompts_calls_the_model_once(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = flying(async_client, index_name, single_flight=30)
    model = SlowChatModel(cache=cache, delay=0.5)
    size = async_burst_size()

    async def ask() -> Any:
        return (await model.ainvoke(PROMPT)).content

    answers = await async_gather([ask for _ in range(size)])
    assert answers == [model.answer] * size
    assert model.calls == 1
    assert cache.stats() == CacheStats(
        hits=size - 1, misses=1, writes=1, coalesced=size - 1
    )
    assert claims(admin, index_name) == []
    assert entries(admin, index_name) == 1


async def test_coalesced_answers_count_as_tokens_saved(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    cache = flying(async_client, index_name, single_flight=30)
    model = SlowChatModel(cache=cache, delay=0.5, total_tokens=13)
    size = async_burst_size()

    async def ask() -> Any:
        return (await model.ainvoke(PROMPT)).content

    await async_gather([ask for _ in range(size)])
    assert model.calls == 1
    stats = cache.stats()
    assert stats.coalesced >= 1
    # Every caller but the one the model answered was served a 13-token answer.
    assert stats.tokens_saved == 13 * stats.hits == 13 * (size - 1)


async def test_semantic_burst_calls_the_model_once(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    embedding = TableEmbeddings({PROMPT: [1.0, 0.0], OTHER: [0.0, 1.0]})
    cache = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, single_flight=30
    )
    model = SlowChatModel(cache=cache, delay=0.5)
    size = 16

    async def ask() -> Any:
        return (await model.ainvoke(PROMPT)).content

    answers = await async_gather([ask for _ in range(size)])
    assert answers == [model.answer] * size
    assert model.calls == 1
    assert cache.stats().coalesced == size - 1
    assert claims(admin, index_name) == []
    assert (await model.ainvoke(PROMPT)).content == model.answer
    assert model.calls == 1


async def test_claimer_whose_model_raises_is_replaced_by_one_caller(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """The first call fails: the others wait for the claim to expire, then
    exactly one of them claims and calls the model again."""
    cache = flying(async_client, index_name, single_flight=1.0)
    model = SlowChatModel(cache=cache, delay=0.05, failures=1)

    async def ask() -> Any:
        try:
            return (await model.ainvoke(PROMPT)).content
        except RuntimeError:
            return "failed"

    answers = await async_gather([ask for _ in range(8)])
    assert sorted(answers) == sorted(["failed"] + [model.answer] * 7)
    assert model.calls == 2
    stats = cache.stats()
    assert (stats.misses, stats.coalesced, stats.writes) == (2, 6, 1)
    assert claims(admin, index_name) == []


async def test_expired_claim_is_taken_over_by_exactly_one_waiter(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Two cache objects stand for two processes waiting for a third's claim."""
    clock = FakeClock()
    claimer = flying(async_client, index_name, single_flight=PERIOD, clock=clock)
    first = flying(async_client, index_name, single_flight=PERIOD, clock=clock)
    second = flying(async_client, index_name, single_flight=PERIOD, clock=clock)
    assert await claimer.alookup(PROMPT, LLM) is None
    waiters = {cache: ask_in_background(cache) for cache in (first, second)}
    await async_wait_until(lambda: len(first._flights or ()) == 1)
    await async_wait_until(lambda: len(second._flights or ()) == 1)
    assert not any(w.done() for w in waiters.values())
    clock.advance(seconds=PERIOD, milliseconds=1)
    await async_wait_until(lambda: any(w.done() for w in waiters.values()))
    (winner,) = [cache for cache, w in waiters.items() if w.done()]
    (loser,) = [cache for cache, w in waiters.items() if not w.done()]
    assert await waiters[winner].result() is None  # a miss: it claimed
    (claim,) = claims(admin, index_name)
    assert claim["_source"]["claim_owner"] == winner._claim_owner
    await winner.aupdate(PROMPT, LLM, answer("from the new claimer"))
    assert await waiters[loser].result() == answer("from the new claimer")
    assert loser.stats().coalesced == 1
    assert claims(admin, index_name) == []
    # The first claimer's late answer still lands, and deletes no one's claim.
    await claimer.aupdate(PROMPT, LLM, answer("late"))
    assert await first.alookup(PROMPT, LLM) == answer("late")


async def test_same_prompt_twice_in_one_generate_does_not_wait(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    """LangChain looks up both prompts in one task (thread) before calling the
    model: the second lookup finds its caller's own claim and misses at once.
    With a frozen clock, a wait for the claim would never end."""
    cache = flying(async_client, index_name, single_flight=PERIOD, clock=FakeClock())
    llm = CountingLLM(cache=cache)
    result = await AsyncBackground(lambda: llm.agenerate([PROMPT, PROMPT])).result()
    assert [g[0].text for g in result.generations] == [f"completion of {PROMPT!r}"] * 2
    assert cache.stats() == CacheStats(misses=2, writes=2)
    assert len(cache._flights or ()) == 0
    again = await AsyncBackground(lambda: llm.agenerate([PROMPT, PROMPT])).result()
    assert again.generations == result.generations
    assert cache.stats().hits == 2


async def test_chat_generate_of_one_prompt_twice_calls_the_model_once(
    async_client: AsyncElasticsearch, index_name: str
) -> None:
    cache = flying(async_client, index_name, single_flight=PERIOD, clock=FakeClock())
    model = SlowChatModel(cache=cache, delay=0.05)
    messages: list[BaseMessage] = [HumanMessage(content=PROMPT)]
    result = await AsyncBackground(
        lambda: model.agenerate([messages, messages])
    ).result()
    assert [g[0].text for g in result.generations] == [model.answer] * 2
    assert model.calls == 1


# --- claims are not entries ------------------------------------------------------


async def test_claims_are_invisible_to_other_lookups(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    claimer = flying(async_client, index_name, single_flight=PERIOD, clock=clock)
    assert await claimer.alookup(PROMPT, LLM) is None
    (claim,) = claims(admin, index_name)
    assert claim["_id"] == claim_id(llm_key(PROMPT, LLM))
    # Without single_flight: a plain miss, at once.
    plain = flying(async_client, index_name, clock=clock)
    assert await AsyncBackground(lambda: plain.alookup(PROMPT, LLM)).result() is None
    assert plain.stats() == CacheStats(misses=1)
    # Another key, and the same prompt in another namespace: their own claims.
    other = flying(async_client, index_name, single_flight=PERIOD, clock=clock)
    assert await AsyncBackground(lambda: other.alookup(OTHER, LLM)).result() is None
    spaced = flying(
        async_client, index_name, single_flight=PERIOD, clock=clock, namespace="n"
    )
    assert await AsyncBackground(lambda: spaced.alookup(PROMPT, LLM)).result() is None
    assert other.stats() == spaced.stats() == CacheStats(misses=1)
    assert len(claims(admin, index_name)) == 3
    assert entries(admin, index_name) == 0
    # Not in a clear's count, and not in reach of a cache without single_flight.
    await plain.aupdate(OTHER, "another model", answer("x"))
    with caplog.at_level(logging.INFO, logger="langchain_es_cache"):
        await plain.aclear()
    assert "cleared 1 entries" in caplog.text
    assert len(claims(admin, index_name)) == 3
    # An update replaces its claim with the entry.
    await claimer.aupdate(PROMPT, LLM, answer("Paris"))
    assert len(claims(admin, index_name)) == 2
    assert entries(admin, index_name) == 1
    assert await plain.alookup(PROMPT, LLM) == answer("Paris")


async def test_semantic_search_never_returns_a_claim(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    embedding = TableEmbeddings({PROMPT: [1.0, 0.0], OTHER: [0.0, 1.0]})
    cache = AsyncElasticsearchSemanticCache(
        index_name,
        embedding,
        client=async_client,
        similarity_threshold=-1.0,  # anything at all would be a hit
        single_flight=PERIOD,
        clock=FakeClock(),
    )
    assert set(CLAIM_PROPERTIES) <= set(cache.mapping["mappings"]["properties"])
    assert await cache.alookup(PROMPT, LLM) is None
    assert len(claims(admin, index_name)) == 1
    # Another prompt searches the index holding only a claim: no hit.
    assert await AsyncBackground(lambda: cache.alookup(OTHER, LLM)).result() is None
    await cache.aupdate(OTHER, LLM, answer("bread"))
    assert await cache.alookup(PROMPT, "another model") is None
    assert await cache.alookup(OTHER, LLM) == answer("bread")
    found = admin.search(
        index=index_name,
        knn={
            "field": "llm_input_vector",
            "query_vector": [1.0, 0.0],
            "k": 10,
            "num_candidates": 100,
        },
    )
    assert [h["_id"] for h in found["hits"]["hits"]] == [llm_key(OTHER, LLM)]


async def test_clear_during_a_claim(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """clear() deletes the claim: a waiter in another process (another cache
    object) claims again at once; waiters in the claimer's process still get
    the claimer's answer, which is stored."""
    clock = FakeClock()
    claimer = flying(async_client, index_name, single_flight=PERIOD, clock=clock)
    remote = flying(async_client, index_name, single_flight=PERIOD, clock=clock)
    assert await claimer.alookup(PROMPT, LLM) is None
    local = [AsyncBackground(lambda: claimer.alookup(PROMPT, LLM)) for _ in range(3)]
    waiting = AsyncBackground(lambda: remote.alookup(PROMPT, LLM))
    await async_wait_until(lambda: len(remote._flights or ()) == 1)
    assert not waiting.done()
    await claimer.aclear()
    assert await waiting.result() is None  # it claimed again
    (claim,) = claims(admin, index_name)
    assert claim["_source"]["claim_owner"] == remote._claim_owner
    await claimer.aupdate(PROMPT, LLM, answer("Paris"))
    for waiter in local:
        assert await waiter.result() == answer("Paris")
    await remote.aupdate(PROMPT, LLM, answer("Paris again"))
    assert claims(admin, index_name) == []
    assert await claimer.alookup(PROMPT, LLM) == answer("Paris again")


async def test_purge_expired_removes_stale_claims(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = flying(async_client, index_name, single_flight=10, clock=clock)
    spaced = flying(
        async_client, index_name, single_flight=10, clock=clock, namespace="n"
    )
    aged = flying(async_client, index_name, single_flight=10, clock=clock, ttl=5)
    assert await cache.alookup("stale", LLM) is None
    assert await spaced.alookup("other namespace", LLM) is None
    await aged.aupdate("old entry", LLM, answer("old"))
    clock.advance(seconds=10)
    assert await aged.alookup("fresh", LLM) is None  # a live claim
    assert len(claims(admin, index_name)) == 3
    assert await cache.apurge_expired() == 0  # no ttl: claims only
    assert len(claims(admin, index_name)) == 2
    assert await aged.apurge_expired() == 1  # one entry; no claim is counted
    assert len(claims(admin, index_name)) == 2
    assert await spaced.apurge_expired() == 0
    assert [c["_source"]["claim_owner"] for c in claims(admin, index_name)] == [
        aged._claim_owner
    ]


async def test_claim_after_the_index_is_deleted_gets_the_cache_mapping(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """A claim is written like an entry: after the index is deleted under the
    cache, the claim that re-creates it never maps ``namespace`` by guesswork."""
    cache = flying(async_client, index_name, single_flight=PERIOD, namespace="team")
    await cache.aupdate("warm-up", LLM, answer("x"))
    admin.indices.delete(index=index_name)
    assert await cache.alookup(PROMPT, LLM) is None  # claims the key
    properties = admin.indices.get_mapping(index=index_name)[index_name]["mappings"][
        "properties"
    ]
    assert properties["namespace"] == {"type": "keyword"}
    assert properties["claim_expires"] == {"type": "date"}
    assert len(claims(admin, index_name)) == 1
    await cache.aupdate(PROMPT, LLM, answer("Paris"))
    assert claims(admin, index_name) == []
    await cache.aclear()
    assert entries(admin, index_name) == 0


async def test_single_flight_through_an_alias_of_two_indices(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Claims land in the write index; waiters read every index behind the
    alias, and take an expired claim over in place."""
    alias, first, second = index_name, f"{index_name}-000001", f"{index_name}-000002"
    for index, write in ((first, True), (second, False)):
        admin.indices.create(index=index)
        admin.indices.put_alias(index=index, name=alias, is_write_index=write)
    clock = FakeClock()
    claimer = flying(async_client, alias, single_flight=PERIOD, clock=clock)
    waiter = flying(async_client, alias, single_flight=PERIOD, clock=clock)
    key = llm_key(PROMPT, LLM)
    assert await claimer.alookup(PROMPT, LLM) is None
    assert admin.exists(index=first, id=claim_id(key))
    waiting = ask_in_background(waiter)
    await async_wait_until(lambda: len(waiter._flights or ()) == 1)
    await claimer.aupdate(PROMPT, LLM, answer("Paris"))
    assert await waiting.result() == answer("Paris")
    assert waiter.stats().coalesced == 1
    assert not admin.exists(index=first, id=claim_id(key))
    # An expired claim, taken over where it is.
    assert await claimer.alookup(OTHER, LLM) is None
    clock.advance(seconds=PERIOD)
    assert await waiter.alookup(OTHER, LLM) is None  # it took the claim over
    (claim,) = claims(admin, alias)
    assert claim["_index"] == first
    assert claim["_source"]["claim_owner"] == waiter._claim_owner
    await waiter.aupdate(OTHER, LLM, answer("bread"))
    assert claims(admin, alias) == []
    assert await claimer.alookup(OTHER, LLM) == answer("bread")


# --- failures --------------------------------------------------------------------


class AsyncFlakyClient(AsyncElasticsearch):
    """The real client, whose mget (the poll of a claim) can be made to fail."""

    failing: ClassVar[bool] = False

    async def mget(self, *args: Any, **kwargs: Any) -> Any:
        if AsyncFlakyClient.failing:
            raise ConnectionError("injected: the poll failed")
        return await super().mget(*args, **kwargs)


@pytest.fixture
async def async_flaky_client(
    es_conn: es_server.Connection,
) -> AsyncIterator[AsyncFlakyClient]:
    client = AsyncFlakyClient(es_conn.url, **es_conn.client_auth())
    AsyncFlakyClient.failing = True
    yield client
    AsyncFlakyClient.failing = False
    await client.close()


async def test_failed_poll_is_a_miss_with_warn(
    async_client: AsyncElasticsearch,
    async_flaky_client: AsyncFlakyClient,
    index_name: str,
) -> None:
    claimer = flying(async_client, index_name, single_flight=PERIOD)
    assert await claimer.alookup(PROMPT, LLM) is None
    warn = flying(async_flaky_client, index_name, single_flight=PERIOD, on_error="warn")
    results = await async_gather([lambda: warn.alookup(PROMPT, LLM) for _ in range(3)])
    assert results == [None] * 3
    assert warn.stats() == CacheStats(errors=3)
    strict = flying(async_flaky_client, index_name, single_flight=PERIOD)
    with pytest.raises(CacheError, match=r"cache lookup on index .* failed"):
        await strict.alookup(PROMPT, LLM)


async def test_failed_claim_is_a_miss_with_warn(
    es_conn: es_server.Connection,
    async_client: AsyncElasticsearch,
    index_name: str,
    global_cache: None,
) -> None:
    """A key that may read the index but not write: the claim fails."""
    if es_conn.user is None or es_conn.password is None:
        pytest.skip("creating a limited API key needs ES_USER/ES_PASSWORD")
    owner = flying(async_client, index_name, single_flight=PERIOD)
    await owner.is_alias()
    role = {"names": [index_name], "privileges": ["read"]}
    with Elasticsearch(
        es_conn.url, basic_auth=(es_conn.user, es_conn.password)
    ) as root:
        key = root.security.create_api_key(
            name=f"reader-{index_name}", role_descriptors={"r": {"indices": [role]}}
        )
        try:
            settings = {"es_url": es_conn.url, "es_api_key": key["encoded"]}
            async with AsyncElasticsearchCache(
                index_name, single_flight=PERIOD, on_error="warn", **settings
            ) as warn:
                assert await warn.alookup(PROMPT, LLM) is None
                assert warn.stats() == CacheStats(errors=1)
                set_llm_cache(warn)
                model = SlowChatModel(delay=0.0)
                assert (await model.ainvoke(PROMPT)).content == model.answer
                assert model.calls == 1
            strict = AsyncElasticsearchCache(
                index_name, single_flight=PERIOD, **settings
            )
            with pytest.raises(CacheError, match="cache lookup on index"):
                await strict.alookup(PROMPT, LLM)
            await strict.aclose()
        finally:
            root.security.invalidate_api_key(ids=[key["id"]])


# --- requests ----------------------------------------------------------------------


class AsyncRecordingClient(AsyncElasticsearch):
    """The real client, recording every request it sends."""

    sent: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []

    async def perform_request(self, method: str, path: str, **kwargs: Any) -> Any:
        params = kwargs.get("params") or {}
        AsyncRecordingClient.sent.append((method, path, dict(params)))
        return await super().perform_request(method, path, **kwargs)


async def test_requests_with_and_without_single_flight(
    es_conn: es_server.Connection, index_name: str
) -> None:
    """Without single_flight: exactly today's requests. With it: one claim
    write per miss, the claim's delete inside the update's request, none per hit."""
    client = AsyncRecordingClient(es_conn.url, **es_conn.client_auth())
    key = llm_key(PROMPT, LLM)
    get = (
        "GET",
        f"/{index_name}/_doc/{key}",
        {"_source_includes": ["llm_output", "timestamp"]},
    )
    # Every write is one bulk request (guarded against unprepared indices):
    # the entry's; with single_flight, first the claim's create, then the
    # entry's with the claim's delete.
    bulk = ("PUT", "/_bulk", {"refresh": False})
    for single_flight, expected in (
        (None, [get, bulk, get]),
        (PERIOD, [get, bulk, bulk, get]),
    ):
        cache = flying(client, index_name, single_flight=single_flight)
        await cache.is_alias()
        await cache.aclear()
        AsyncRecordingClient.sent.clear()
        assert await cache.alookup(PROMPT, LLM) is None
        await cache.aupdate(PROMPT, LLM, answer("Paris"))
        assert await cache.alookup(PROMPT, LLM) == answer("Paris")
        assert AsyncRecordingClient.sent == expected
    await client.close()
