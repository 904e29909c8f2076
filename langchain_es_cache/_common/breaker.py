"""Outages, without sending a request: the circuit breaker, the timeouts of the
clients the cache creates, and the verdict of ``check()``; shared by both twins.

The breaker counts consecutive transport failures of one cache object. After
`BreakerSettings.failures` of them it opens: for a cool-down no request is sent.
Then one call at a time probes the cluster: a success closes the breaker, a
failure opens it again with twice the cool-down, up to `BreakerSettings.max_cooldown`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from elasticsearch import ApiError, ConnectionError, ConnectionTimeout, TransportError

from langchain_es_cache._common.lifecycle import ShardsStarting
from langchain_es_cache.errors import CacheError
from langchain_es_cache.types import BreakerSettings, CheckReport

# --- timeouts of the clients the cache creates --------------------------------

TIMEOUT_STEPS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
"""The request timeouts, in seconds, a client the cache creates gives requests
for one document (a lookup, an update, a kNN search for one hit): the first
while the cluster answers fast; a later one while it answers slowly (`Latency`)."""

REQUEST_TIMEOUT = TIMEOUT_STEPS[0]
"""What a failing call costs against a cluster that answered fast until it froze."""

FIRST_REQUEST_TIMEOUT = 2.0
"""The timeout until the cluster has answered once: the first request also opens
the connection (TLS included), and nothing is known of the cluster's speed."""

BATCH_REQUEST_TIMEOUT = TIMEOUT_STEPS[-1]
"""Seconds a request whose work grows with the data or waits on the cluster may
take on a client the cache creates: preparing the index (and the first writes,
which may wait for its shard to start), refreshing it, bulk writes and deletes,
scans, reads of many documents, ``check()``."""

SLOWEST_FACTOR = 3.0
"""How much slower than the slowest recent answer a request may be before it
times out."""

LATENCY_HALF_LIFE = 60.0
"""Seconds after which an answer's slowness counts half as much."""

MAX_RETRIES = 1
"""Retries of a request on a client the cache creates, after a refused or reset
connection or a 429/502/503/504 answer. Never after a timeout (elasticsearch-py's
default): a retry would double the wait on a frozen cluster."""


def own_client_options() -> dict[str, Any]:
    """The keyword arguments giving a client the cache creates its timeouts."""
    return {
        "request_timeout": REQUEST_TIMEOUT,
        "max_retries": MAX_RETRIES,
        "retry_on_timeout": False,
    }


class Latency:
    """How slowly the cluster has been answering: the request timeout to allow.

    Keeps the slowest answer seen, decaying by half every `LATENCY_HALF_LIFE`
    seconds; the timeout is the first of `TIMEOUT_STEPS` at least
    `SLOWEST_FACTOR` times that. A cluster answering in milliseconds gets
    the first step, so a frozen one costs little; a busy one, answering in
    hundreds of milliseconds, is given the time it has been needing, and no
    longer than the last step. Timeouts are no answers: a frozen cluster never
    stretches it. Before the first answer: `FIRST_REQUEST_TIMEOUT`. Safe
    across threads and tasks.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._slowest = 0.0
        self._at = clock()
        self._heard = False

    def _decayed(self, now: float) -> float:
        return float(self._slowest * 0.5 ** ((now - self._at) / LATENCY_HALF_LIFE))

    def answered(self, seconds: float) -> None:
        """Record an answer that took `seconds`."""
        with self._lock:
            now = self._clock()
            self._slowest = max(self._decayed(now), seconds)
            self._at = now
            self._heard = True

    def timeout(self) -> float:
        """The request timeout to use now."""
        with self._lock:
            if not self._heard:
                return FIRST_REQUEST_TIMEOUT
            needed = SLOWEST_FACTOR * self._decayed(self._clock())
        return next((t for t in TIMEOUT_STEPS if t >= needed), TIMEOUT_STEPS[-1])


class Stopwatch:
    """Seconds since it was made, or last restarted."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def restart(self) -> None:
        self._start = time.monotonic()

    def seconds(self) -> float:
        return time.monotonic() - self._start


# --- what counts as a transport failure ---------------------------------------

OUTAGE_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that say the cluster cannot serve now (overloaded, or a proxy in front
of it without a node to forward to): they count as transport failures."""


def is_outage(exc: BaseException) -> bool:
    """Tell whether `exc` says the cluster cannot be reached or cannot serve now.

    A refused, reset or timed-out connection, or a 429/502/503/504 answer, or
    a shard still not started after the waits (`ShardsStarting`: the index
    cannot serve, as with a 503). Any other answer (400, 401, 403, 404, a
    mapping conflict, a 500) proves the cluster is up: it never counts. A
    `CacheError` counts by its cause (the index's preparation wraps what the
    cluster raised).
    """
    if isinstance(exc, ShardsStarting):
        return True
    if isinstance(exc, CacheError) and exc.__cause__ is not None:
        return is_outage(exc.__cause__)
    if isinstance(exc, (ConnectionError, ConnectionTimeout)):
        return True
    return isinstance(exc, ApiError) and exc.meta.status in OUTAGE_STATUSES


def describe(exc: BaseException) -> str:
    """`exc` for a log line or a message: its class and text, on one line."""
    # A transport error's str() is only its class in words; its message is
    # what the connection said (refused, reset, timed out).
    detail = exc.message if isinstance(exc, TransportError) else exc
    text = " ".join(str(detail).split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the breaker's settings and state machine ---------------------------------


DEFAULT_BREAKER = BreakerSettings()


def validate_breaker(breaker: object) -> BreakerSettings | None:
    """Return `breaker` if it is a `BreakerSettings` or `None` (no breaker)."""
    if breaker is None or isinstance(breaker, BreakerSettings):
        return breaker
    raise TypeError(
        "breaker must be a langchain_es_cache.BreakerSettings or None, "
        f"not {type(breaker).__name__}"
    )


class State(Enum):
    CLOSED = "closed"
    """Requests are sent; consecutive transport failures are counted."""
    OPEN = "open"
    """Nothing is sent until the cool-down has passed."""
    PROBING = "probing"
    """One call is finding out whether the cluster is back; others are not sent."""


@dataclass(frozen=True)
class Permit:
    """Leave for one operation to send requests; its outcome is reported with it."""

    generation: int
    probe: bool


@dataclass(frozen=True)
class Change:
    """A change of state, for its owner to log: `level` and `message`.

    One WARNING when the breaker opens, one INFO when it closes; a failed probe
    (the breaker opening again, for longer) only at DEBUG.
    """

    state: State
    failures: int
    cause: str
    cooldown: float
    outage: float
    """Seconds since the breaker first opened, when it closes."""
    probe: bool = False

    @property
    def level(self) -> int:
        if self.state is State.CLOSED:
            return logging.INFO
        return logging.DEBUG if self.probe else logging.WARNING

    def message(self, index: str) -> str:
        if self.state is State.CLOSED:
            return (
                f"circuit breaker of cache index {index!r} closed: Elasticsearch "
                f"answers again, {self.outage:.1f} s after the breaker opened"
            )
        if self.probe:
            return (
                f"circuit breaker of cache index {index!r}: probe failed "
                f"({self.cause}); next probe in {self.cooldown:g} s"
            )
        return (
            f"circuit breaker of cache index {index!r} opened after "
            f"{self.failures} consecutive transport failures (last: {self.cause}): "
            f"no request for {self.cooldown:g} s, then one call at a time probes "
            "the cluster"
        )


class CircuitBreaker:
    """The state machine of one cache object's breaker; safe across threads and tasks.

    `admit` before an operation sends anything; then exactly one of `succeeded`,
    `failed` or `abandoned` with the permit it returned. A lock, never held
    across an ``await`` (nothing here awaits), guards the state. Outcomes of
    permits granted before the last change of state are ignored: a request that
    started while the breaker was closed and ends after it opened says nothing
    about the cluster now.
    """

    def __init__(self, settings: BreakerSettings) -> None:
        self._settings = settings
        self._clock = settings.clock
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._generation = 0
        self._failures = 0
        self._cause = ""
        self._cooldown = settings.cooldown
        self._opened_at = 0.0  # of the current cool-down
        self._outage_since = 0.0  # of the first opening of this outage
        self._probe_since = 0.0

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    @property
    def cooldown(self) -> float:
        """The cool-down in force (or the next one, while closed)."""
        with self._lock:
            return self._cooldown

    @property
    def cause(self) -> str:
        """The last transport failure counted, as `describe` wrote it."""
        with self._lock:
            return self._cause

    def admit(self) -> Permit | None:
        """A permit to send, or `None`: the breaker is open (or another call probes)."""
        with self._lock:
            if self._state is State.CLOSED:
                return Permit(self._generation, probe=False)
            now = self._clock()
            if self._state is State.PROBING:
                # A probe never reported (its caller vanished without finishing
                # an iteration): after the longest cool-down, let another probe.
                if now - self._probe_since < self._settings.max_cooldown:
                    return None
                self._generation += 1
            elif now - self._opened_at < self._cooldown:
                return None
            self._state = State.PROBING
            self._probe_since = now
            return Permit(self._generation, probe=True)

    def refuses(self) -> bool:
        """Whether `admit` would refuse now; takes no permit."""
        with self._lock:
            if self._state is State.CLOSED:
                return False
            now = self._clock()
            if self._state is State.PROBING:
                return now - self._probe_since < self._settings.max_cooldown
            return now - self._opened_at < self._cooldown

    def succeeded(self, permit: Permit) -> Change | None:
        """The operation got its answers (any answer: the cluster is up)."""
        with self._lock:
            if permit.generation != self._generation:
                return None
            if self._state is State.CLOSED:
                self._failures = 0
                return None
            if not (permit.probe and self._state is State.PROBING):
                return None
            self._state = State.CLOSED
            self._generation += 1
            self._failures = 0
            self._cooldown = self._settings.cooldown
            return self._change(self._clock() - self._outage_since)

    def failed(self, permit: Permit, cause: str) -> Change | None:
        """The operation met a transport failure (`is_outage`), described by `cause`."""
        with self._lock:
            if permit.generation != self._generation:
                return None
            now = self._clock()
            if self._state is State.CLOSED:
                self._failures += 1
                self._cause = cause
                if self._failures < self._settings.failures:
                    return None
                self._open(now, self._settings.cooldown)
                self._outage_since = now
                return self._change(0.0)
            if not (permit.probe and self._state is State.PROBING):
                return None
            self._cause = cause
            self._open(now, min(self._cooldown * 2, self._settings.max_cooldown))
            return self._change(now - self._outage_since, probe=True)

    def abandoned(self, permit: Permit) -> None:
        """The operation ended before it learnt anything (a bug, a cancellation)."""
        with self._lock:
            if (
                permit.probe
                and permit.generation == self._generation
                and self._state is State.PROBING
            ):
                # The cool-down is over: the next call probes.
                self._state = State.OPEN

    def _change(self, outage: float, *, probe: bool = False) -> Change:
        return Change(
            self._state,
            self._settings.failures,
            self._cause,
            self._cooldown,
            outage,
            probe,
        )

    def _open(self, now: float, cooldown: float) -> None:
        self._state = State.OPEN
        self._generation += 1
        self._opened_at = now
        self._cooldown = cooldown

    def refusal(self) -> str:
        """Why nothing was sent: the end of `CircuitOpenError`'s message."""
        with self._lock:
            if self._state is State.PROBING:
                wait = "another call is probing the cluster"
            elif self._state is State.OPEN:
                left = self._opened_at + self._cooldown - self._clock()
                wait = f"next probe in {max(left, 0.0):.1f} s"
            else:
                wait = "it has just closed"
            return (
                f"the circuit breaker is open after {self._settings.failures} "
                f"consecutive transport failures (last: {self._cause}); {wait}"
            )


# --- check() ------------------------------------------------------------------


@dataclass(frozen=True)
class Privilege:
    """An index privilege the caches use: what needs it, and when ``check()``
    fails without it."""

    name: str
    needed_by: str
    required: Literal["always", "to create", "never"]
    """``"to create"``: while the index does not exist. ``"never"``: the cache
    works without it, less well."""


PRIVILEGES = (
    Privilege("read", "lookups", "always"),
    Privilege("write", "updates and deletes", "always"),
    Privilege("create_index", "the first write, which creates the index", "to create"),
    Privilege("manage", "putting the cache's mapping on an existing index", "never"),
    Privilege(
        "maintenance",
        "refreshes before clear, purge_expired and semantic lookups",
        "never",
    ),
    Privilege(
        "view_index_metadata",
        "telling an alias from an index, and what an index is",
        "never",
    ),
)
"""The index privileges ``check()`` asks about (the command line's ``check``
shows them too). ``manage`` includes ``create_index`` and ``maintenance``.
Without ``manage`` the cache takes an existing index as prepared; without a
refresh, a search misses the writes of the last refresh interval."""


CHECK_ID = "langchain-es-cache-check"
"""The id ``check()`` reads to tell whether the index exists: never stored."""

NO_SECURITY: tuple[str | None, dict[str, bool]] = (
    None,
    {p.name: True for p in PRIVILEGES},
)
"""User and privileges on a cluster without security: anyone may do anything."""


class PrivilegeError(CacheError):
    """``check()``'s verdict that the credentials lack a privilege the cache
    needs, with what it found (``index_exists`` is `None` when not read)."""

    def __init__(
        self,
        message: str,
        user: str | None,
        privileges: Mapping[str, bool],
        index_exists: bool | None,
    ) -> None:
        super().__init__(message)
        self.user = user
        self.privileges = dict(privileges)
        self.index_exists = index_exists


def is_security_off(exc: ApiError) -> bool:
    """Tell whether a security API's error says the cluster has no security."""
    if exc.meta.status in (401, 403):
        return False
    text = str(exc).lower()
    return "security" in text and (
        "not enabled" in text or "explicitly enabled" in text or "disabled" in text
    )


def has_privileges_body(index: str) -> list[dict[str, Any]]:
    """The ``index`` argument of ``_has_privileges`` for `PRIVILEGES` on `index`."""
    return [{"names": [index], "privileges": [p.name for p in PRIVILEGES]}]


def privileges_of(
    answer: Mapping[str, Any], index: str
) -> tuple[str | None, dict[str, bool]]:
    """The user and the privileges on `index` in a ``_has_privileges`` answer."""
    held = answer.get("index", {}).get(index, {})
    privileges = {p.name: bool(held.get(p.name, False)) for p in PRIVILEGES}
    return str(answer.get("username", "")), privileges


def is_required(privilege: Privilege, *, index_exists: bool | None) -> bool:
    """Whether the cache cannot work without `privilege` (`index_exists`:
    `None` when not known)."""
    return privilege.required == "always" or (
        privilege.required == "to create" and index_exists is False
    )


def check_report(
    index: str,
    user: str | None,
    privileges: Mapping[str, bool],
    *,
    index_exists: bool | None,
) -> CheckReport:
    """The report of ``check()``; `PrivilegeError` if a required privilege is
    missing (``read`` and ``write`` first: without ``read``, existence is
    not known)."""
    missing = [
        p
        for p in PRIVILEGES
        if is_required(p, index_exists=index_exists) and not privileges.get(p.name)
    ]
    always = [p for p in missing if p.required == "always"]
    if always:
        names = " and ".join(repr(p.name) for p in always)
        uses = ", ".join(p.needed_by for p in always)
        message = (
            f"the cache cannot work: user {user!r} lacks the {names} privilege "
            f"on index {index!r} (needed by {uses})"
        )
    elif missing:
        message = (
            f"the cache cannot work: index {index!r} does not exist and user "
            f"{user!r} may not create it (needs the 'create_index' or 'manage' "
            "privilege); create it with the cache's mapping (the cache's "
            "`mapping`), or use credentials that may"
        )
    else:
        assert index_exists is not None  # read is required, and tells
        return CheckReport(index, user, index_exists, dict(privileges))
    raise PrivilegeError(message, user, privileges, index_exists)
