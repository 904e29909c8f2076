"""Single flight: one model call for a burst of identical prompts. No I/O here.

A lookup that misses **claims** its key: it creates a claim document next to
the entry (`claim_id`), with ``op_type=create`` so that exactly one caller
wins, across every process using the index. The claim holds until the
claimer's update replaces it with the entry, or until it expires; an expired
claim is taken over with a compare-and-set on its ``_seq_no`` and
``_primary_term``, so that exactly one caller replaces a claimer that crashed.

Claims are never entries. A claim's ``namespace`` is ``""``, a namespace no
cache can have (`langchain_es_cache._common.validation.validate_namespace`
refuses it), so every query of entries, which always filters on the
namespace, leaves claims out; its own namespace is in ``claim_namespace``.
It has no ``timestamp``, no ``llm_output`` and no vector. A count of entries
that does not filter on a namespace uses `ENTRIES_ONLY`.

In a process, the callers asking for one key share a `Flight`: one of them, the
leader, makes the requests (claims, or polls the cluster while another process
holds the claim); the others wait on the flight's signal, which the cache's
update or the leader sets with the answer, so that they are woken without
polling.
"""

from __future__ import annotations

import math
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, Literal, Protocol, TypeVar

from langchain_es_cache._common.documents import (
    format_time,
    is_expired,
    parse_timestamp,
)
from langchain_es_cache._common.responses import newest_source

MIN_PERIOD = timedelta(milliseconds=10)
"""The shortest `single_flight`: claims expire at millisecond precision."""

MAX_PERIOD = timedelta(hours=1)
"""The longest `single_flight`: no model call should hold a key longer."""

POLL_FIRST = 0.01
"""Seconds before the first poll of a claim held by another process."""

POLL_FACTOR = 1.5
"""Each poll waits this much longer than the one before ..."""

POLL_MAX = 0.1
"""... up to this many seconds: an answer is seen at most this late."""

POLL_JITTER = 0.1
"""Waits vary by this fraction, so processes polling one key spread out."""

CLAIM_SUFFIX = ".claim"
"""A claim's id is its entry's id plus this; no entry id has a dot."""

CLAIM_NAMESPACE = ""
"""The ``namespace`` of every claim: no cache's, so no entry query matches it."""

CLAIM_FIELDS = ["claim_expires", "claim_owner"]
"""The fields a poll reads from a claim."""

CLAIM_PROPERTIES: dict[str, Any] = {
    "claim_expires": {"type": "date"},
    "claim_namespace": {"type": "keyword"},
    "claim_owner": {"type": "keyword", "index": False},
}
"""The claim's own fields, added to the cache's mapping with `single_flight`."""

ENTRIES_ONLY: dict[str, Any] = {
    "bool": {"must_not": {"exists": {"field": "claim_expires"}}}
}
"""A query clause keeping claims out of a search or count of entries."""


def validate_single_flight(value: object) -> timedelta | None:
    """Return `single_flight` (seconds or `timedelta`) as a `timedelta`, or `None`.

    It must be finite and between `MIN_PERIOD` and `MAX_PERIOD`.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise TypeError(
            f"single_flight must be seconds or a timedelta, not {type(value).__name__}"
        )
    try:
        seconds = (
            value.total_seconds() if isinstance(value, timedelta) else float(value)
        )
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"single_flight must be finite, not {value!r}")
    if seconds <= 0:
        raise ValueError(f"single_flight must be positive, not {value!r}")
    low, high = MIN_PERIOD.total_seconds(), MAX_PERIOD.total_seconds()
    if not low <= seconds <= high:
        raise ValueError(
            f"single_flight must be between {low:g} and {high:g} seconds "
            f"(one hour), not {value!r}"
        )
    return timedelta(seconds=seconds)


def claim_id(entry_key: str) -> str:
    """The id of the claim on the entry whose id is `entry_key`."""
    return entry_key + CLAIM_SUFFIX


def with_claims(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The ``mappings`` body `mapping` plus the claims' fields."""
    return {
        **mapping,
        "properties": {**mapping["properties"], **CLAIM_PROPERTIES},
    }


def owner_token() -> str:
    """Who claims, for an operator reading a claim: host, process, cache object."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def claim_document(
    *, namespace: str | None, owner: str, expires: datetime
) -> dict[str, Any]:
    """The claim document: expires at `expires`, in the cache's `namespace`."""
    document: dict[str, Any] = {
        "namespace": CLAIM_NAMESPACE,
        "claim_expires": format_time(expires),
        "claim_owner": owner,
    }
    if namespace is not None:
        document["claim_namespace"] = namespace
    return document


def claims_query(
    namespace: str | None, *, expired_at: datetime | None = None
) -> dict[str, Any]:
    """The query selecting the namespace's claims (only those expired at
    `expired_at`, if given)."""
    own: dict[str, Any] = (
        {"bool": {"must_not": {"exists": {"field": "claim_namespace"}}}}
        if namespace is None
        else {"term": {"claim_namespace": namespace}}
    )
    clauses: list[dict[str, Any]] = [
        {"term": {"namespace": CLAIM_NAMESPACE}},
        {"exists": {"field": "claim_expires"}},
        own,
    ]
    if expired_at is not None:
        clauses.append({"range": {"claim_expires": {"lte": format_time(expired_at)}}})
    return {"bool": {"filter": clauses}}


@dataclass(frozen=True)
class Claim:
    """A claim document as last read or written: enough for a compare-and-set."""

    index: str
    seq_no: int
    primary_term: int
    expires: datetime


def written_claim(response: Mapping[str, Any], expires: datetime) -> Claim:
    """The claim an ``index`` request's `response` wrote."""
    return Claim(
        str(response["_index"]),
        int(response["_seq_no"]),
        int(response["_primary_term"]),
        expires,
    )


def read_claim(doc: Mapping[str, Any]) -> Claim | None:
    """The claim in one ``mget`` answer, `None` if not found.

    A claim whose expiry cannot be read counts as expired, so that it is taken
    over instead of blocking its key.
    """
    source = doc.get("_source")
    if not doc.get("found") or not isinstance(source, Mapping):
        return None
    expires = parse_timestamp({"timestamp": source.get("claim_expires")})
    return Claim(
        str(doc.get("_index")),
        int(doc.get("_seq_no", -1)),
        int(doc.get("_primary_term", 0)),
        expires or datetime.min.replace(tzinfo=timezone.utc),
    )


def latest_claim(docs: Iterable[Mapping[str, Any]]) -> Claim | None:
    """The claim expiring last among `docs` (copies in an alias's indices)."""
    claims = [c for c in map(read_claim, docs) if c is not None]
    return max(claims, key=lambda c: c.expires) if claims else None


def flight_state(
    docs: Iterable[Mapping[str, Any]], key: str, ttl: timedelta | None, now: datetime
) -> tuple[list[str] | None, Claim | None]:
    """From the realtime read of entry `key` and its claim: the entry's answer
    (its ``llm_output``, if the newest copy is fresh) and the latest claim."""
    docs = list(docs)
    source = newest_source(d for d in docs if d.get("_id") == key)
    claim = latest_claim(d for d in docs if d.get("_id") == claim_id(key))
    if source is None or is_expired(source, ttl, now):
        return None, claim
    output = source.get("llm_output")
    return (output if isinstance(output, list) and output else None), claim


def seconds_until(when: datetime, now: datetime) -> float:
    """Seconds from `now` to `when`, at least 0."""
    return max(0.0, (when - now).total_seconds())


class Backoff:
    """The waits between polls: `POLL_FIRST`, times `POLL_FACTOR`, up to
    `POLL_MAX`, each varied by up to `POLL_JITTER`."""

    def __init__(self) -> None:
        self._delay = POLL_FIRST

    def next(self) -> float:
        """The next wait, in seconds."""
        delay = self._delay * random.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)
        self._delay = min(self._delay * POLL_FACTOR, POLL_MAX)
        return delay


class Signal(Protocol):
    """What the registry needs of a twin's signal: wake everyone waiting on it."""

    def set(self) -> None: ...


S = TypeVar("S", bound=Signal)


class Flight(Generic[S]):
    """The callers of one process asking for one key.

    `leader` makes the flight's requests, or holds its claim when `claim` is
    set (it is then calling the model); `answer` is the stored ``llm_output``
    once known. Every change replaces `signal` after setting the old one.
    """

    def __init__(self, leader: object, signal: S) -> None:
        self.leader: object | None = leader
        self.claim: Claim | None = None
        self.answer: list[str] | None = None
        self.signal = signal


Kind = Literal["miss", "wait", "lead"]


@dataclass(frozen=True)
class Step(Generic[S]):
    """What a caller does next for its key.

    ``miss``: return a miss now. ``wait``: wait on `signal` for at most
    `timeout` seconds, then take `flight`'s answer or join again. ``lead``:
    make the flight's requests: take over `expired` with a compare-and-set if
    given, else create the claim; poll only if `may_wait`.
    """

    kind: Kind
    flight: Flight[S]
    signal: S | None = None
    timeout: float | None = None
    expired: Claim | None = None
    may_wait: bool = True


PRUNE_EVERY = 256
"""Joins between sweeps of flights whose claim expired with nobody asking."""


class Flights(Generic[S]):
    """The flights of one cache object; safe across threads and tasks.

    The lock is never held across I/O or a wait.
    """

    def __init__(self, period: timedelta, new_signal: Callable[[], S]) -> None:
        self.period = period
        self._new_signal = new_signal
        self._lock = threading.Lock()
        self._flights: dict[str, Flight[S]] = {}
        self._held: dict[object, set[str]] = {}
        self._joins = 0

    def join(self, key: str, me: object, now: datetime) -> Step[S]:
        """The next step of caller `me`, which missed `key` at `now`."""
        with self._lock:
            self._joins += 1
            if self._joins % PRUNE_EVERY == 0:
                self._prune(now)
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = Flight(me, self._new_signal())
                return Step("lead", flight, may_wait=not self._holds(me, now))
            if flight.leader is me:
                # Its own claim: it is about to call the model itself.
                return Step("miss", flight)
            claim = flight.claim
            if flight.leader is None or (claim is not None and claim.expires <= now):
                # Nobody leads, or the claimer let its claim expire: take over.
                self._drop_claim(key, flight)
                flight.leader = me
                self._notify(flight)
                return Step(
                    "lead", flight, expired=claim, may_wait=not self._holds(me, now)
                )
            if self._holds(me, now):
                # A caller holding a claim never waits: two callers each
                # holding what the other waits for would stall until expiry.
                return Step("miss", flight)
            # While the leader claims or polls, its own requests bound the
            # wait; the period is only a backstop.
            timeout = (
                self.period.total_seconds()
                if claim is None
                else seconds_until(claim.expires, now)
            )
            return Step("wait", flight, signal=flight.signal, timeout=timeout)

    def own(self, key: str, flight: Flight[S], me: object, claim: Claim) -> bool:
        """Caller `me`, leading `flight`, holds `claim` on `key` now.

        `False` if an update answered the flight meanwhile (in `flight.answer`):
        the claim is not needed, and `me` should delete it.
        """
        with self._lock:
            if flight.answer is not None or self._flights.get(key) is not flight:
                return False
            flight.leader = me
            flight.claim = claim
            self._held.setdefault(me, set()).add(key)
            self._notify(flight)
            return True

    def abandon(self, key: str, flight: Flight[S], me: object) -> None:
        """`me` stops leading `flight` without a claim; the others join again."""
        with self._lock:
            if flight.leader is me and flight.claim is None:
                flight.leader = None
                if self._flights.get(key) is flight:
                    del self._flights[key]
                self._notify(flight)

    def finish(self, key: str, answer: list[str] | None) -> Claim | None:
        """End `key`'s flight with `answer` (``llm_output``), waking its waiters.

        Returns the claim held on `key`, which the caller should delete.
        """
        with self._lock:
            flight = self._flights.pop(key, None)
            if flight is None:
                return None
            claim = flight.claim
            self._drop_claim(key, flight)
            flight.answer = answer
            self._notify(flight)
            return claim

    def held(self, key: str) -> Claim | None:
        """The claim this object holds on `key`, if any (expired or not)."""
        with self._lock:
            flight = self._flights.get(key)
            return None if flight is None else flight.claim

    def __len__(self) -> int:
        with self._lock:
            return len(self._flights)

    def _holds(self, me: object, now: datetime) -> bool:
        for key in self._held.get(me, ()):
            flight = self._flights.get(key)
            claim = None if flight is None else flight.claim
            if claim is not None and claim.expires > now:
                return True
        return False

    def _drop_claim(self, key: str, flight: Flight[S]) -> None:
        if flight.claim is None:
            return
        flight.claim = None
        keys = self._held.get(flight.leader)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._held[flight.leader]

    def _notify(self, flight: Flight[S]) -> None:
        signal, flight.signal = flight.signal, self._new_signal()
        signal.set()

    def _prune(self, now: datetime) -> None:
        for key, flight in list(self._flights.items()):
            if flight.claim is not None and flight.claim.expires <= now:
                self._drop_claim(key, flight)
                flight.leader = None
                del self._flights[key]
                self._notify(flight)
