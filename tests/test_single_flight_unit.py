"""single_flight's rules without a server: validation, the in-process flights,
the backoff, the claim documents and queries, and the twins' waiting."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchSemanticCache,
    ElasticsearchCache,
    ElasticsearchSemanticCache,
)
from langchain_es_cache._common import single_flight as sf
from langchain_es_cache._twins import (
    AsyncCaller,
    AsyncSignal,
    BaseCache,
    Caller,
    Signal,
)
from tests.clock import FakeClock
from tests.models import CountingEmbeddings

URL = "http://127.0.0.1:1"


def build(cls: Any, **kwargs: Any) -> Any:
    if cls in (ElasticsearchSemanticCache, AsyncElasticsearchSemanticCache):
        embedding: Embeddings = CountingEmbeddings()
        return cls("cache", embedding, es_url=URL, **kwargs)
    return cls("cache", es_url=URL, **kwargs)


CLASSES = [
    ElasticsearchCache,
    AsyncElasticsearchCache,
    ElasticsearchSemanticCache,
    AsyncElasticsearchSemanticCache,
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("30", TypeError, "single_flight must be seconds or a timedelta, not str"),
        (True, TypeError, "single_flight must be seconds or a timedelta, not bool"),
        (0, ValueError, "single_flight must be positive"),
        (-1.5, ValueError, "single_flight must be positive"),
        (timedelta(0), ValueError, "single_flight must be positive"),
        (float("nan"), ValueError, "single_flight must be finite"),
        (float("inf"), ValueError, "single_flight must be finite"),
        (10**400, ValueError, "single_flight must be finite"),
        (0.001, ValueError, "single_flight must be between 0.01 and 3600 seconds"),
        (3600.5, ValueError, "single_flight must be between 0.01 and 3600 seconds"),
        (timedelta(hours=2), ValueError, "between 0.01 and 3600 seconds"),
    ],
)
def test_bad_single_flight_is_refused_at_construction(
    cls: Any, value: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        build(cls, single_flight=value)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_single_flight_is_keyword_only_and_exposed(cls: Any) -> None:
    assert build(cls).single_flight is None
    assert build(cls, single_flight=30).single_flight == timedelta(seconds=30)
    cache = build(cls, single_flight=timedelta(minutes=5))
    assert cache.single_flight == timedelta(minutes=5)
    properties = cache.mapping["mappings"]["properties"]
    assert set(sf.CLAIM_PROPERTIES) <= set(properties)
    assert not set(sf.CLAIM_PROPERTIES) & set(
        build(cls).mapping["mappings"]["properties"]
    )


# --- claim documents and queries ------------------------------------------------


def test_claim_document_is_outside_every_namespace() -> None:
    clock = FakeClock()
    document = sf.claim_document(namespace="n", owner="me", expires=clock())
    assert document == {
        "namespace": "",
        "claim_expires": "2026-11-26T12:00:00.000+00:00",
        "claim_owner": "me",
        "claim_namespace": "n",
    }
    assert "claim_namespace" not in sf.claim_document(
        namespace=None, owner="me", expires=clock()
    )
    assert sf.claim_id("abc") == "abc.claim"


def test_claims_query() -> None:
    clock = FakeClock()
    assert sf.claims_query("n", expired_at=clock()) == {
        "bool": {
            "filter": [
                {"term": {"namespace": ""}},
                {"exists": {"field": "claim_expires"}},
                {"term": {"claim_namespace": "n"}},
                {"range": {"claim_expires": {"lte": "2026-11-26T12:00:00.000+00:00"}}},
            ]
        }
    }
    assert sf.claims_query(None)["bool"]["filter"][2] == {
        "bool": {"must_not": {"exists": {"field": "claim_namespace"}}}
    }


def test_read_claim() -> None:
    doc = {
        "_index": "i",
        "_seq_no": 4,
        "_primary_term": 2,
        "found": True,
        "_source": {"claim_expires": "2026-11-26T12:00:00.000+00:00"},
    }
    claim = sf.read_claim(doc)
    assert claim == sf.Claim("i", 4, 2, FakeClock()())
    assert sf.read_claim({"found": False}) is None
    # An unreadable expiry counts as expired, so that it is taken over.
    broken = sf.read_claim({**doc, "_source": {"claim_expires": "soon"}})
    assert broken is not None and broken.expires < FakeClock()()


def test_flight_state_reads_a_fresh_answer_and_the_claim() -> None:
    now = FakeClock()()
    claim = {
        "_id": sf.claim_id("k"),
        "_index": "i",
        "_seq_no": 4,
        "_primary_term": 2,
        "found": True,
        "_source": {"claim_expires": "2026-11-26T12:00:00.000+00:00"},
    }

    def entry(written: str, output: object) -> dict[str, Any]:
        source = {"llm_output": output, "timestamp": written}
        return {"_id": "k", "_index": "i", "found": True, "_source": source}

    fresh = entry("2026-11-26T11:59:00.000+00:00", ["answer"])
    older = entry("2026-11-26T11:00:00.000+00:00", ["old"])
    ttl = timedelta(minutes=30)
    assert sf.flight_state([claim, older, fresh], "k", ttl, now) == (
        ["answer"],
        sf.Claim("i", 4, 2, now),
    )
    # The newest copy is past the ttl: no answer, the claim still counts.
    assert sf.flight_state([claim, older], "k", ttl, now) == (
        None,
        sf.Claim("i", 4, 2, now),
    )
    assert sf.flight_state([fresh], "k", None, now) == (["answer"], None)
    empty = entry("2026-11-26T11:59:00.000+00:00", [])
    assert sf.flight_state([empty], "k", None, now) == (None, None)
    assert sf.flight_state([{"_id": "k", "found": False}], "k", None, now) == (
        None,
        None,
    )


def test_backoff_grows_to_its_cap() -> None:
    backoff = sf.Backoff()
    waits = [backoff.next() for _ in range(12)]
    assert sf.POLL_FIRST * 0.9 <= waits[0] <= sf.POLL_FIRST * 1.1
    assert waits[1] >= sf.POLL_FIRST * sf.POLL_FACTOR * 0.9
    assert all(w <= sf.POLL_MAX * (1 + sf.POLL_JITTER) for w in waits)
    assert waits[-1] >= sf.POLL_MAX * (1 - sf.POLL_JITTER)


# --- in-process flights ----------------------------------------------------------


class Recorder:
    """A signal that counts how often it was set."""

    def __init__(self) -> None:
        self.sets = 0

    def set(self) -> None:
        self.sets += 1


def claim_at(clock: FakeClock, seconds: float = 10) -> sf.Claim:
    return sf.Claim("i", 1, 1, clock() + timedelta(seconds=seconds))


def test_first_caller_leads_the_others_wait() -> None:
    clock = FakeClock()
    flights = sf.Flights(timedelta(seconds=10), Recorder)
    first, second = object(), object()
    lead = flights.join("k", first, clock())
    assert (lead.kind, lead.may_wait, lead.expired) == ("lead", True, None)
    wait = flights.join("k", second, clock())
    assert wait.kind == "wait" and wait.timeout == 10.0  # the period: a backstop
    assert flights.own("k", lead.flight, first, claim_at(clock, 7))
    assert wait.signal is not None and wait.signal.sets == 1  # woken to re-wait
    again = flights.join("k", second, clock())
    assert again.kind == "wait" and again.timeout == 7.0
    # The claimer itself never waits for its own claim.
    assert flights.join("k", first, clock()).kind == "miss"
    assert flights.held("k") == claim_at(clock, 7)
    assert flights.finish("k", ["answer"]) == claim_at(clock, 7)
    assert lead.flight.answer == ["answer"]
    assert again.signal is not None and again.signal.sets == 1
    assert len(flights) == 0 and flights.held("k") is None


def test_a_caller_holding_a_claim_never_waits() -> None:
    clock = FakeClock()
    flights = sf.Flights(timedelta(seconds=10), Recorder)
    me, other = object(), object()
    mine = flights.join("p", me, clock())
    assert flights.own("p", mine.flight, me, claim_at(clock))
    theirs = flights.join("q", other, clock())
    assert flights.own("q", theirs.flight, other, claim_at(clock))
    assert flights.join("q", me, clock()).kind == "miss"
    lead = flights.join("r", me, clock())
    assert lead.kind == "lead" and not lead.may_wait
    clock.advance(seconds=10)  # my claim expired: I may wait again
    assert flights.join("s", me, clock()).may_wait


def test_expired_claim_is_taken_over_by_one_caller() -> None:
    clock = FakeClock()
    flights = sf.Flights(timedelta(seconds=10), Recorder)
    owner, first, second = object(), object(), object()
    step = flights.join("k", owner, clock())
    assert flights.own("k", step.flight, owner, claim_at(clock, 5))
    clock.advance(seconds=5)
    take = flights.join("k", first, clock())
    assert take.kind == "lead" and take.expired == claim_at(clock, 0)
    assert flights.held("k") is None
    assert flights.join("k", second, clock()).kind == "wait"
    # The old owner, asking again, waits like anyone else.
    assert flights.join("k", owner, clock()).kind == "wait"


def test_abandoned_flight_is_led_again() -> None:
    clock = FakeClock()
    flights = sf.Flights(timedelta(seconds=10), Recorder)
    first, second = object(), object()
    lead = flights.join("k", first, clock())
    wait = flights.join("k", second, clock())
    flights.abandon("k", lead.flight, first)
    assert wait.signal is not None and wait.signal.sets == 1
    assert lead.flight.answer is None
    assert flights.join("k", second, clock()).kind == "lead"


def test_own_after_an_answer_gives_the_claim_back() -> None:
    clock = FakeClock()
    flights = sf.Flights(timedelta(seconds=10), Recorder)
    me = object()
    lead = flights.join("k", me, clock())
    flights.finish("k", ["answer"])
    assert not flights.own("k", lead.flight, me, claim_at(clock))
    assert flights.held("k") is None


def test_forgotten_flights_are_pruned() -> None:
    clock = FakeClock()
    flights = sf.Flights(timedelta(seconds=10), Recorder)
    for i in range(100):
        me = object()
        step = flights.join(f"k{i}", me, clock())
        flights.own(f"k{i}", step.flight, me, claim_at(clock))
    clock.advance(seconds=11)
    for i in range(sf.PRUNE_EVERY):
        flights.join(f"new{i}", object(), clock())
    assert len(flights) == sf.PRUNE_EVERY


# --- the twins' waiting -----------------------------------------------------------


def test_async_signal_wakes_tasks_of_other_loops_and_threads() -> None:
    signal = AsyncSignal()
    results: list[bool] = []
    started = threading.Barrier(3)

    def waiter() -> None:
        async def wait() -> bool:
            started.wait()
            return await signal.wait(None)

        results.append(asyncio.run(wait()))

    threads = [threading.Thread(target=waiter) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait()
    while len(signal._waiters) < 2:
        threading.Event().wait(0.01)
    signal.set()
    for thread in threads:
        thread.join(60)
    assert results == [True, True]


async def test_async_signal_wait_times_out_and_leaves_no_waiter() -> None:
    signal = AsyncSignal()
    assert await signal.wait(0.01) is False
    assert signal._waiters == []
    signal.set()
    assert await signal.wait(None) is True


def test_signal_wakes_threads() -> None:
    signal = Signal()
    assert signal.wait(0.01) is False
    signal.set()
    assert signal.wait(None) is True


async def test_async_caller_is_the_task() -> None:
    async def current() -> object:
        return AsyncCaller.current()

    assert await current() is asyncio.current_task()
    other = await asyncio.create_task(current())
    assert other is not asyncio.current_task() and isinstance(other, asyncio.Task)


async def test_sync_class_lookup_from_async_code_knows_its_task() -> None:
    """LangChain runs a sync cache's lookups in threads: the sync methods must
    still see the task they work for, so that it never waits for itself."""
    seen: list[object] = []

    class Probe(BaseCache):
        def lookup(self, prompt: str, llm_string: str) -> Any:
            seen.append(Caller.current())
            return None

        def update(self, prompt: str, llm_string: str, return_val: Any) -> None:
            seen.append(Caller.current())

        def clear(self, **kwargs: Any) -> None:
            pass

    probe = Probe()
    await probe.alookup("p", "l")
    await probe.aupdate("p", "l", [Generation(text="x")])
    assert seen == [asyncio.current_task()] * 2
    assert Caller.current() is threading.current_thread()
