# Generated from tests/_async/test_single_flight.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""single_flight against the real node: one model call for a burst of identical
prompts, claims that expire or are cleared, and claims that are never entries.

Tests that must not wait for a claim use a frozen clock and a generous guard
(`tests.twins.GUARD_SECONDS`): waiting would hang them, not slow them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from elasticsearch import ConnectionError, Elasticsearch
from langchain_core.globals import set_llm_cache
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import Generation

from langchain_es_cache import (
    CacheError,
    CacheStats,
    ElasticsearchCache,
    ElasticsearchSemanticCache,
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
    Background,
    burst_size,
    gather,
    wait_until,
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


def flying(client: Elasticsearch, index: str, **kwargs: Any) -> ElasticsearchCache:
    return ElasticsearchCache(index, client=client, **kwargs)


def ask_in_background(
    cache: ElasticsearchCache,
) -> Background[list[Generation] | None]:
    return Background(lambda: cache.lookup(PROMPT, LLM))  # type: ignore[arg-type, return-value]


# --- bursts --------------------------------------------------------------------


def test_burst_of_identical_prompts_calls_the_model_once(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = flying(client, index_name, single_flight=30)
    model = SlowChatModel(cache=cache, delay=0.5)
    size = burst_size()

    def ask() -> Any:
        return (model.invoke(PROMPT)).content

    answers = gather([ask for _ in range(size)])
    assert answers == [model.answer] * size
    assert model.calls == 1
    assert cache.stats() == CacheStats(
        hits=size - 1, misses=1, writes=1, coalesced=size - 1
    )
    assert claims(admin, index_name) == []
    assert entries(admin, index_name) == 1


def test_coalesced_answers_count_as_tokens_saved(
    client: Elasticsearch, index_name: str
) -> None:
    cache = flying(client, index_name, single_flight=30)
    model = SlowChatModel(cache=cache, delay=0.5, total_tokens=13)
    size = burst_size()

    def ask() -> Any:
        return (model.invoke(PROMPT)).content

    gather([ask for _ in range(size)])
    assert model.calls == 1
    stats = cache.stats()
    assert stats.coalesced >= 1
    # Every caller but the one the model answered was served a 13-token answer.
    assert stats.tokens_saved == 13 * stats.hits == 13 * (size - 1)


def test_semantic_burst_calls_the_model_once(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    embedding = TableEmbeddings({PROMPT: [1.0, 0.0], OTHER: [0.0, 1.0]})
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, single_flight=30
    )
    model = SlowChatModel(cache=cache, delay=0.5)
    size = 16

    def ask() -> Any:
        return (model.invoke(PROMPT)).content

    answers = gather([ask for _ in range(size)])
    assert answers == [model.answer] * size
    assert model.calls == 1
    assert cache.stats().coalesced == size - 1
    assert claims(admin, index_name) == []
    assert (model.invoke(PROMPT)).content == model.answer
    assert model.calls == 1


def test_claimer_whose_model_raises_is_replaced_by_one_caller(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """The first call fails: the others wait for the claim to expire, then
    exactly one of them claims and calls the model again."""
    cache = flying(client, index_name, single_flight=1.0)
    model = SlowChatModel(cache=cache, delay=0.05, failures=1)

    def ask() -> Any:
        try:
            return (model.invoke(PROMPT)).content
        except RuntimeError:
            return "failed"

    answers = gather([ask for _ in range(8)])
    assert sorted(answers) == sorted(["failed"] + [model.answer] * 7)
    assert model.calls == 2
    stats = cache.stats()
    assert (stats.misses, stats.coalesced, stats.writes) == (2, 6, 1)
    assert claims(admin, index_name) == []


def test_expired_claim_is_taken_over_by_exactly_one_waiter(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Two cache objects stand for two processes waiting for a third's claim."""
    clock = FakeClock()
    claimer = flying(client, index_name, single_flight=PERIOD, clock=clock)
    first = flying(client, index_name, single_flight=PERIOD, clock=clock)
    second = flying(client, index_name, single_flight=PERIOD, clock=clock)
    assert claimer.lookup(PROMPT, LLM) is None
    waiters = {cache: ask_in_background(cache) for cache in (first, second)}
    wait_until(lambda: len(first._flights or ()) == 1)
    wait_until(lambda: len(second._flights or ()) == 1)
    assert not any(w.done() for w in waiters.values())
    clock.advance(seconds=PERIOD, milliseconds=1)
    wait_until(lambda: any(w.done() for w in waiters.values()))
    (winner,) = [cache for cache, w in waiters.items() if w.done()]
    (loser,) = [cache for cache, w in waiters.items() if not w.done()]
    assert waiters[winner].result() is None  # a miss: it claimed
    (claim,) = claims(admin, index_name)
    assert claim["_source"]["claim_owner"] == winner._claim_owner
    winner.update(PROMPT, LLM, answer("from the new claimer"))
    assert waiters[loser].result() == answer("from the new claimer")
    assert loser.stats().coalesced == 1
    assert claims(admin, index_name) == []
    # The first claimer's late answer still lands, and deletes no one's claim.
    claimer.update(PROMPT, LLM, answer("late"))
    assert first.lookup(PROMPT, LLM) == answer("late")


def test_same_prompt_twice_in_one_generate_does_not_wait(
    client: Elasticsearch, index_name: str
) -> None:
    """LangChain looks up both prompts in one task (thread) before calling the
    model: the second lookup finds its caller's own claim and misses at once.
    With a frozen clock, a wait for the claim would never end."""
    cache = flying(client, index_name, single_flight=PERIOD, clock=FakeClock())
    llm = CountingLLM(cache=cache)
    result = Background(lambda: llm.generate([PROMPT, PROMPT])).result()
    assert [g[0].text for g in result.generations] == [f"completion of {PROMPT!r}"] * 2
    assert cache.stats() == CacheStats(misses=2, writes=2)
    assert len(cache._flights or ()) == 0
    again = Background(lambda: llm.generate([PROMPT, PROMPT])).result()
    assert again.generations == result.generations
    assert cache.stats().hits == 2


def test_chat_generate_of_one_prompt_twice_calls_the_model_once(
    client: Elasticsearch, index_name: str
) -> None:
    cache = flying(client, index_name, single_flight=PERIOD, clock=FakeClock())
    model = SlowChatModel(cache=cache, delay=0.05)
    messages: list[BaseMessage] = [HumanMessage(content=PROMPT)]
    result = Background(lambda: model.generate([messages, messages])).result()
    assert [g[0].text for g in result.generations] == [model.answer] * 2
    assert model.calls == 1


# --- claims are not entries ------------------------------------------------------


def test_claims_are_invisible_to_other_lookups(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    claimer = flying(client, index_name, single_flight=PERIOD, clock=clock)
    assert claimer.lookup(PROMPT, LLM) is None
    (claim,) = claims(admin, index_name)
    assert claim["_id"] == claim_id(llm_key(PROMPT, LLM))
    # Without single_flight: a plain miss, at once.
    plain = flying(client, index_name, clock=clock)
    assert Background(lambda: plain.lookup(PROMPT, LLM)).result() is None
    assert plain.stats() == CacheStats(misses=1)
    # Another key, and the same prompt in another namespace: their own claims.
    other = flying(client, index_name, single_flight=PERIOD, clock=clock)
    assert Background(lambda: other.lookup(OTHER, LLM)).result() is None
    spaced = flying(
        client, index_name, single_flight=PERIOD, clock=clock, namespace="n"
    )
    assert Background(lambda: spaced.lookup(PROMPT, LLM)).result() is None
    assert other.stats() == spaced.stats() == CacheStats(misses=1)
    assert len(claims(admin, index_name)) == 3
    assert entries(admin, index_name) == 0
    # Not in a clear's count, and not in reach of a cache without single_flight.
    plain.update(OTHER, "another model", answer("x"))
    with caplog.at_level(logging.INFO, logger="langchain_es_cache"):
        plain.clear()
    assert "cleared 1 entries" in caplog.text
    assert len(claims(admin, index_name)) == 3
    # An update replaces its claim with the entry.
    claimer.update(PROMPT, LLM, answer("Paris"))
    assert len(claims(admin, index_name)) == 2
    assert entries(admin, index_name) == 1
    assert plain.lookup(PROMPT, LLM) == answer("Paris")


def test_semantic_search_never_returns_a_claim(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    embedding = TableEmbeddings({PROMPT: [1.0, 0.0], OTHER: [0.0, 1.0]})
    cache = ElasticsearchSemanticCache(
        index_name,
        embedding,
        client=client,
        similarity_threshold=-1.0,  # anything at all would be a hit
        single_flight=PERIOD,
        clock=FakeClock(),
    )
    assert set(CLAIM_PROPERTIES) <= set(cache.mapping["mappings"]["properties"])
    assert cache.lookup(PROMPT, LLM) is None
    assert len(claims(admin, index_name)) == 1
    # Another prompt searches the index holding only a claim: no hit.
    assert Background(lambda: cache.lookup(OTHER, LLM)).result() is None
    cache.update(OTHER, LLM, answer("bread"))
    assert cache.lookup(PROMPT, "another model") is None
    assert cache.lookup(OTHER, LLM) == answer("bread")
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


def test_clear_during_a_claim(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """clear() deletes the claim: a waiter in another process (another cache
    object) claims again at once; waiters in the claimer's process still get
    the claimer's answer, which is stored."""
    clock = FakeClock()
    claimer = flying(client, index_name, single_flight=PERIOD, clock=clock)
    remote = flying(client, index_name, single_flight=PERIOD, clock=clock)
    assert claimer.lookup(PROMPT, LLM) is None
    local = [Background(lambda: claimer.lookup(PROMPT, LLM)) for _ in range(3)]
    waiting = Background(lambda: remote.lookup(PROMPT, LLM))
    wait_until(lambda: len(remote._flights or ()) == 1)
    assert not waiting.done()
    claimer.clear()
    assert waiting.result() is None  # it claimed again
    (claim,) = claims(admin, index_name)
    assert claim["_source"]["claim_owner"] == remote._claim_owner
    claimer.update(PROMPT, LLM, answer("Paris"))
    for waiter in local:
        assert waiter.result() == answer("Paris")
    remote.update(PROMPT, LLM, answer("Paris again"))
    assert claims(admin, index_name) == []
    assert claimer.lookup(PROMPT, LLM) == answer("Paris again")


def test_purge_expired_removes_stale_claims(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    clock = FakeClock()
    cache = flying(client, index_name, single_flight=10, clock=clock)
    spaced = flying(client, index_name, single_flight=10, clock=clock, namespace="n")
    aged = flying(client, index_name, single_flight=10, clock=clock, ttl=5)
    assert cache.lookup("stale", LLM) is None
    assert spaced.lookup("other namespace", LLM) is None
    aged.update("old entry", LLM, answer("old"))
    clock.advance(seconds=10)
    assert aged.lookup("fresh", LLM) is None  # a live claim
    assert len(claims(admin, index_name)) == 3
    assert cache.purge_expired() == 0  # no ttl: claims only
    assert len(claims(admin, index_name)) == 2
    assert aged.purge_expired() == 1  # one entry; no claim is counted
    assert len(claims(admin, index_name)) == 2
    assert spaced.purge_expired() == 0
    assert [c["_source"]["claim_owner"] for c in claims(admin, index_name)] == [
        aged._claim_owner
    ]


def test_claim_after_the_index_is_deleted_gets_the_cache_mapping(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """A claim is written like an entry: after the index is deleted under the
    cache, the claim that re-creates it never maps ``namespace`` by guesswork."""
    cache = flying(client, index_name, single_flight=PERIOD, namespace="team")
    cache.update("warm-up", LLM, answer("x"))
    admin.indices.delete(index=index_name)
    assert cache.lookup(PROMPT, LLM) is None  # claims the key
    properties = admin.indices.get_mapping(index=index_name)[index_name]["mappings"][
        "properties"
    ]
    assert properties["namespace"] == {"type": "keyword"}
    assert properties["claim_expires"] == {"type": "date"}
    assert len(claims(admin, index_name)) == 1
    cache.update(PROMPT, LLM, answer("Paris"))
    assert claims(admin, index_name) == []
    cache.clear()
    assert entries(admin, index_name) == 0


def test_single_flight_through_an_alias_of_two_indices(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Claims land in the write index; waiters read every index behind the
    alias, and take an expired claim over in place."""
    alias, first, second = index_name, f"{index_name}-000001", f"{index_name}-000002"
    for index, write in ((first, True), (second, False)):
        admin.indices.create(index=index)
        admin.indices.put_alias(index=index, name=alias, is_write_index=write)
    clock = FakeClock()
    claimer = flying(client, alias, single_flight=PERIOD, clock=clock)
    waiter = flying(client, alias, single_flight=PERIOD, clock=clock)
    key = llm_key(PROMPT, LLM)
    assert claimer.lookup(PROMPT, LLM) is None
    assert admin.exists(index=first, id=claim_id(key))
    waiting = ask_in_background(waiter)
    wait_until(lambda: len(waiter._flights or ()) == 1)
    claimer.update(PROMPT, LLM, answer("Paris"))
    assert waiting.result() == answer("Paris")
    assert waiter.stats().coalesced == 1
    assert not admin.exists(index=first, id=claim_id(key))
    # An expired claim, taken over where it is.
    assert claimer.lookup(OTHER, LLM) is None
    clock.advance(seconds=PERIOD)
    assert waiter.lookup(OTHER, LLM) is None  # it took the claim over
    (claim,) = claims(admin, alias)
    assert claim["_index"] == first
    assert claim["_source"]["claim_owner"] == waiter._claim_owner
    waiter.update(OTHER, LLM, answer("bread"))
    assert claims(admin, alias) == []
    assert claimer.lookup(OTHER, LLM) == answer("bread")


# --- failures --------------------------------------------------------------------


class FlakyClient(Elasticsearch):
    """The real client, whose mget (the poll of a claim) can be made to fail."""

    failing: ClassVar[bool] = False

    def mget(self, *args: Any, **kwargs: Any) -> Any:
        if FlakyClient.failing:
            raise ConnectionError("injected: the poll failed")
        return super().mget(*args, **kwargs)


@pytest.fixture
def flaky_client(
    es_conn: es_server.Connection,
) -> Iterator[FlakyClient]:
    client = FlakyClient(es_conn.url, **es_conn.client_auth())
    FlakyClient.failing = True
    yield client
    FlakyClient.failing = False
    client.close()


def test_failed_poll_is_a_miss_with_warn(
    client: Elasticsearch,
    flaky_client: FlakyClient,
    index_name: str,
) -> None:
    claimer = flying(client, index_name, single_flight=PERIOD)
    assert claimer.lookup(PROMPT, LLM) is None
    warn = flying(flaky_client, index_name, single_flight=PERIOD, on_error="warn")
    results = gather([lambda: warn.lookup(PROMPT, LLM) for _ in range(3)])
    assert results == [None] * 3
    assert warn.stats() == CacheStats(errors=3)
    strict = flying(flaky_client, index_name, single_flight=PERIOD)
    with pytest.raises(CacheError, match=r"cache lookup on index .* failed"):
        strict.lookup(PROMPT, LLM)


def test_failed_claim_is_a_miss_with_warn(
    es_conn: es_server.Connection,
    client: Elasticsearch,
    index_name: str,
    global_cache: None,
) -> None:
    """A key that may read the index but not write: the claim fails."""
    if es_conn.user is None or es_conn.password is None:
        pytest.skip("creating a limited API key needs ES_USER/ES_PASSWORD")
    owner = flying(client, index_name, single_flight=PERIOD)
    owner.is_alias()
    role = {"names": [index_name], "privileges": ["read"]}
    with Elasticsearch(
        es_conn.url, basic_auth=(es_conn.user, es_conn.password)
    ) as root:
        key = root.security.create_api_key(
            name=f"reader-{index_name}", role_descriptors={"r": {"indices": [role]}}
        )
        try:
            settings = {"es_url": es_conn.url, "es_api_key": key["encoded"]}
            with ElasticsearchCache(
                index_name, single_flight=PERIOD, on_error="warn", **settings
            ) as warn:
                assert warn.lookup(PROMPT, LLM) is None
                assert warn.stats() == CacheStats(errors=1)
                set_llm_cache(warn)
                model = SlowChatModel(delay=0.0)
                assert (model.invoke(PROMPT)).content == model.answer
                assert model.calls == 1
            strict = ElasticsearchCache(index_name, single_flight=PERIOD, **settings)
            with pytest.raises(CacheError, match="cache lookup on index"):
                strict.lookup(PROMPT, LLM)
            strict.close()
        finally:
            root.security.invalidate_api_key(ids=[key["id"]])


# --- requests ----------------------------------------------------------------------


class RecordingClient(Elasticsearch):
    """The real client, recording every request it sends."""

    sent: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []

    def perform_request(self, method: str, path: str, **kwargs: Any) -> Any:
        params = kwargs.get("params") or {}
        RecordingClient.sent.append((method, path, dict(params)))
        return super().perform_request(method, path, **kwargs)


def test_requests_with_and_without_single_flight(
    es_conn: es_server.Connection, index_name: str
) -> None:
    """Without single_flight: exactly today's requests. With it: one claim
    write per miss, the claim's delete inside the update's request, none per hit."""
    client = RecordingClient(es_conn.url, **es_conn.client_auth())
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
        cache.is_alias()
        cache.clear()
        RecordingClient.sent.clear()
        assert cache.lookup(PROMPT, LLM) is None
        cache.update(PROMPT, LLM, answer("Paris"))
        assert cache.lookup(PROMPT, LLM) == answer("Paris")
        assert RecordingClient.sent == expected
    client.close()
