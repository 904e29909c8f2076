"""The circuit breaker's state machine and rules, as pure logic: no server needed.

What it does against a real node and a frozen listener is proven in
tests/_async/test_breaker.py.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    ConflictError,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
)

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    AsyncElasticsearchSemanticCache,
    BreakerSettings,
    CacheError,
    CircuitOpenError,
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
    MappingConflictError,
)
from langchain_es_cache._common import breaker as _breaker
from langchain_es_cache._common.breaker import CircuitBreaker, State
from langchain_es_cache._common.lifecycle import ShardsStarting
from tests.clock import FakeMonotonic
from tests.models import CountingEmbeddings

URL = "http://127.0.0.1:1"


def state_of(machine: CircuitBreaker) -> State:
    """The state now (a call, so that mypy does not narrow it across steps)."""
    return machine.state


def api_error(cls: type[ApiError], status: int, reason: str = "x") -> ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "localhost", 9200),
    )
    body = {"error": {"type": "test_error", "reason": reason}, "status": status}
    return cls(message=reason, meta=meta, body=body)


def breaker(failures: int = 3, cooldown: float = 2.0, maximum: float = 10.0) -> Any:
    clock = FakeMonotonic()
    settings = BreakerSettings(
        failures=failures, cooldown=cooldown, max_cooldown=maximum, clock=clock
    )
    return CircuitBreaker(settings), clock


def fail(machine: CircuitBreaker, times: int) -> list[Any]:
    changes = []
    for _ in range(times):
        permit = machine.admit()
        assert permit is not None
        changes.append(machine.failed(permit, "ConnectionTimeout: timed out"))
    return changes


# --- settings -------------------------------------------------------------------


def test_defaults() -> None:
    settings = BreakerSettings()
    assert (settings.failures, settings.cooldown, settings.max_cooldown) == (5, 2, 30)
    assert "clock" not in repr(settings)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"failures": 0}, ValueError, "failures must be at least 1, not 0"),
        ({"failures": -3}, ValueError, "at least 1"),
        ({"failures": 2.0}, TypeError, "failures must be an int, not float"),
        ({"failures": True}, TypeError, "failures must be an int, not bool"),
        ({"cooldown": 0}, ValueError, "cooldown must be a positive, finite"),
        ({"cooldown": -1.0}, ValueError, "cooldown must be a positive"),
        ({"cooldown": float("nan")}, ValueError, "cooldown must be a positive"),
        ({"cooldown": float("inf")}, ValueError, "finite"),
        ({"cooldown": "2"}, TypeError, "cooldown must be a number of seconds"),
        ({"cooldown": True}, TypeError, "cooldown must be a number of seconds"),
        ({"max_cooldown": 0.5}, ValueError, r"max_cooldown \(0.5 s\) must not be"),
        ({"max_cooldown": None}, TypeError, "max_cooldown must be a number"),
        ({"clock": 3}, TypeError, "clock must be callable"),
    ],
)
def test_bad_settings_fail_at_construction(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        BreakerSettings(**kwargs)


CLASSES = [
    (ElasticsearchCache, {}),
    (AsyncElasticsearchCache, {}),
    (ElasticsearchSemanticCache, {"embedding": CountingEmbeddings()}),
    (AsyncElasticsearchSemanticCache, {"embedding": CountingEmbeddings()}),
    (ElasticsearchEmbeddingsCache, {}),
    (AsyncElasticsearchEmbeddingsCache, {}),
]


@pytest.mark.parametrize(("cls", "extra"), CLASSES, ids=lambda c: str(c))
@pytest.mark.parametrize("bad", [True, 5, {"failures": 3}, "on"])
def test_breaker_option_is_checked_at_construction(
    cls: Any, extra: dict[str, Any], bad: object
) -> None:
    with pytest.raises(TypeError, match="breaker must be a langchain_es_cache"):
        cls("cache", es_url=URL, breaker=bad, **extra)


@pytest.mark.parametrize(("cls", "extra"), CLASSES, ids=lambda c: str(c))
def test_breaker_option_is_keyword_only_and_can_be_off(
    cls: Any, extra: dict[str, Any]
) -> None:
    assert cls("cache", es_url=URL, breaker=None, **extra)._breaker is None
    on = cls("cache", es_url=URL, breaker=BreakerSettings(failures=2), **extra)
    assert on._breaker is not None
    assert cls("cache", es_url=URL, **extra)._breaker is not None  # on by default


# --- what counts ----------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("refused"),
        ConnectionTimeout("timed out"),
        api_error(ApiError, 429),
        api_error(ApiError, 502),
        api_error(ApiError, 503),
        api_error(ApiError, 504),
        ShardsStarting("a shard still not started after the waits"),
    ],
    ids=repr,
)
def test_outages(exc: Exception) -> None:
    assert _breaker.is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        api_error(BadRequestError, 400),
        api_error(AuthenticationException, 401),
        api_error(AuthorizationException, 403),
        api_error(NotFoundError, 404),
        api_error(ConflictError, 409),
        api_error(ApiError, 500),
        MappingConflictError("conflict"),
        CacheError("mget failed"),
        ValueError("bad"),
    ],
    ids=repr,
)
def test_answers_are_not_outages(exc: Exception) -> None:
    assert not _breaker.is_outage(exc)


def caused(exc: Exception, cause: Exception) -> Exception:
    exc.__cause__ = cause
    return exc


def test_a_cache_error_counts_by_its_cause() -> None:
    # The index's preparation raises CacheError from what the cluster raised.
    timeout = ConnectionTimeout("timed out")
    assert _breaker.is_outage(caused(CacheError("preparing failed"), timeout))
    refused = api_error(AuthorizationException, 403)
    assert not _breaker.is_outage(caused(CacheError("preparing failed"), refused))


# --- the state machine -------------------------------------------------------


def test_opens_after_n_consecutive_failures_only() -> None:
    machine, _ = breaker(failures=3)
    assert fail(machine, 2) == [None, None]
    permit = machine.admit()
    assert permit is not None
    machine.succeeded(permit)  # an answer resets the count
    assert fail(machine, 2) == [None, None]
    assert state_of(machine) is State.CLOSED
    (change,) = fail(machine, 1)
    assert change is not None and change.state is State.OPEN
    assert change.level == logging.WARNING
    message = change.message("idx")
    assert "'idx' opened after 3 consecutive transport failures" in message
    assert "ConnectionTimeout: timed out" in message
    assert state_of(machine) is State.OPEN
    assert machine.admit() is None


def test_one_probe_after_the_cooldown_success_closes() -> None:
    machine, clock = breaker(cooldown=2.0)
    fail(machine, 3)
    clock.advance(1.99)
    assert machine.admit() is None
    assert "next probe in 0.0 s" in machine.refusal()
    clock.advance(0.01)
    probe = machine.admit()
    assert probe is not None and probe.probe
    assert machine.admit() is None  # one call at a time probes
    assert "another call is probing" in machine.refusal()
    clock.advance(0.5)
    change = machine.succeeded(probe)
    assert change is not None and change.state is State.CLOSED
    assert change.level == logging.INFO
    assert "closed: Elasticsearch answers again, 2.5 s after" in change.message("i")
    permit = machine.admit()
    assert permit is not None and not permit.probe


def test_failed_probes_back_off_to_the_maximum_then_reset() -> None:
    machine, clock = breaker(cooldown=2.0, maximum=10.0)
    fail(machine, 3)
    waits = []
    for _ in range(4):
        clock.advance(machine.cooldown)
        probe = machine.admit()
        assert probe is not None and probe.probe
        change = machine.failed(probe, "ConnectionError: refused")
        assert change is not None and change.level == logging.DEBUG
        waits.append(change.cooldown)
    assert waits == [4.0, 8.0, 10.0, 10.0]
    clock.advance(9.9)
    assert machine.admit() is None
    clock.advance(0.1)
    probe = machine.admit()
    assert probe is not None
    machine.succeeded(probe)
    assert machine.cooldown == 2.0
    assert fail(machine, 2) == [None, None]  # the count starts again
    (change,) = fail(machine, 1)
    assert change is not None and change.cooldown == 2.0


def test_late_outcomes_of_earlier_permits_are_ignored() -> None:
    machine, clock = breaker(failures=2)
    slow = machine.admit()  # sent while closed, answered much later
    assert slow is not None
    fail(machine, 2)
    assert machine.succeeded(slow) is None  # does not close the open breaker
    assert state_of(machine) is State.OPEN
    clock.advance(2.0)
    probe = machine.admit()
    assert probe is not None
    assert machine.failed(slow, "late") is None  # nor fails the probe
    assert state_of(machine) is State.PROBING
    assert machine.succeeded(probe) is not None
    assert machine.failed(slow, "late") is None  # nor counts after closing
    assert fail(machine, 1) == [None]


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    machine, clock = breaker()
    fail(machine, 3)
    clock.advance(2.0)
    probe = machine.admit()
    assert probe is not None
    machine.abandoned(probe)  # e.g. the task was cancelled
    assert state_of(machine) is State.OPEN
    again = machine.admit()
    assert again is not None and again.probe


def test_a_probe_that_never_reports_is_replaced_after_the_longest_cooldown() -> None:
    machine, clock = breaker(maximum=10.0)
    fail(machine, 3)
    clock.advance(2.0)
    lost = machine.admit()
    assert lost is not None
    clock.advance(9.9)
    assert machine.admit() is None
    clock.advance(0.1)
    probe = machine.admit()
    assert probe is not None and probe.probe
    assert machine.succeeded(lost) is None  # the lost one no longer counts
    assert state_of(machine) is State.PROBING
    assert machine.succeeded(probe) is not None


def test_threads_open_it_once_and_probe_once() -> None:
    machine, clock = breaker(failures=5)
    changes: list[Any] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            permit = machine.admit()
            if permit is not None:
                change = machine.failed(permit, "ConnectionTimeout")
                if change is not None:
                    changes.append(change)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [c.state for c in changes] == [State.OPEN]
    clock.advance(2.0)
    probes: list[Any] = []
    barrier = threading.Barrier(16)

    def prober() -> None:
        barrier.wait()
        permit = machine.admit()
        if permit is not None:
            probes.append(permit)

    threads = [threading.Thread(target=prober) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(probes) == 1 and probes[0].probe


# --- messages, errors, check() -------------------------------------------------


def test_describe_is_one_short_line() -> None:
    text = _breaker.describe(ConnectionTimeout("a\nb  " + "x" * 500))
    assert text.startswith("ConnectionTimeout: a b ")
    assert "\n" not in text and len(text) < 350


def test_circuit_open_error_is_a_cache_error() -> None:
    assert issubclass(CircuitOpenError, CacheError)


def test_security_off_is_told_apart_from_refusals() -> None:
    off = api_error(
        ApiError,
        500,
        "Security must be explicitly enabled when using a [basic] license.",
    )
    assert _breaker.is_security_off(off)
    disabled = api_error(ApiError, 400, "Security is disabled by configuration")
    assert _breaker.is_security_off(disabled)
    assert not _breaker.is_security_off(
        api_error(AuthenticationException, 401, "security: unable to authenticate")
    )
    assert not _breaker.is_security_off(api_error(ApiError, 500, "shard failure"))


def test_check_verdicts() -> None:
    all_of = dict.fromkeys((p.name for p in _breaker.PRIVILEGES), True)
    assert (None, all_of) == _breaker.NO_SECURITY
    report = _breaker.check_report("idx", "u", all_of, index_exists=False)
    assert report.can_create and not report.index_exists
    writer = {**all_of, "create_index": False, "manage": False}
    assert not _breaker.check_report("idx", "u", writer, index_exists=True).can_create
    with pytest.raises(
        _breaker.PrivilegeError, match="'idx' does not exist and user 'u' may not"
    ) as info:
        _breaker.check_report("idx", "u", writer, index_exists=False)
    assert (info.value.user, info.value.index_exists) == ("u", False)
    assert info.value.privileges == writer
    with pytest.raises(
        CacheError,
        match=r"lacks the 'write' privilege on index 'idx' \(needed by updates and",
    ):
        _breaker.check_report("idx", "u", {**all_of, "write": False}, index_exists=True)
    # Without read, existence is not known: the verdict needs neither.
    with pytest.raises(
        _breaker.PrivilegeError,
        match=r"lacks the 'read' and 'write' privilege .*lookups, updates",
    ) as info:
        _breaker.check_report("idx", "u", {}, index_exists=None)
    assert info.value.index_exists is None


def test_privileges_read_from_a_has_privileges_answer() -> None:
    answer = {
        "username": "u",
        "index": {"idx": {"read": True, "write": False, "unasked": True}},
    }
    user, held = _breaker.privileges_of(answer, "idx")
    assert user == "u"
    assert held == {p.name: p.name == "read" for p in _breaker.PRIVILEGES}
    (body,) = _breaker.has_privileges_body("idx")
    assert body == {"names": ["idx"], "privileges": list(held)}


def test_latency_sets_the_timeout_from_the_slowest_recent_answer() -> None:
    clock = FakeMonotonic()
    latency = _breaker.Latency(clock)
    assert latency.timeout() == 2.0  # no answer yet: the connection opens too
    latency.answered(0.002)
    assert latency.timeout() == 0.5
    latency.answered(0.3)
    assert latency.timeout() == 1.0  # 3 x 0.3 s, rounded up to a step
    latency.answered(0.01)  # a fast answer does not hide a recent slow one
    assert latency.timeout() == 1.0
    clock.advance(_breaker.LATENCY_HALF_LIFE)
    assert latency.timeout() == 0.5  # 3 x 0.15 s
    latency.answered(4.0)
    assert latency.timeout() == 5.0  # never more than the last step
    clock.advance(10 * _breaker.LATENCY_HALF_LIFE)
    assert latency.timeout() == 0.5


def test_latency_is_safe_across_threads() -> None:
    latency = _breaker.Latency()

    def worker(n: int) -> None:
        for i in range(2000):
            latency.answered(0.001 * ((n + i) % 7))
            latency.timeout()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert latency.timeout() == 0.5


def test_own_client_options() -> None:
    assert _breaker.own_client_options() == {
        "request_timeout": _breaker.REQUEST_TIMEOUT,
        "max_retries": _breaker.MAX_RETRIES,
        "retry_on_timeout": False,
    }
    assert _breaker.REQUEST_TIMEOUT < 1.0 < _breaker.BATCH_REQUEST_TIMEOUT
    assert _breaker.FIRST_REQUEST_TIMEOUT in _breaker.TIMEOUT_STEPS
