"""Outages: a frozen node under a cache with default settings, breaker on and off.

A node frozen with SIGSTOP accepts connections and answers nothing, the worst
case for a client: only its timeout ends each wait. Through a cache with the
default settings (a client the cache creates, the default breaker), 200
lookups and 200 updates must cost about N failing calls in all, instead of one
failing call each; once the node resumes, the first hit must come within one
cool-down.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from langchain_es_cache import (
    AsyncElasticsearchCache,
    BreakerSettings,
    CacheError,
    CircuitOpenError,
)
from langchain_es_cache._common import breaker as _breaker
from reliability.conftest import Recorder
from reliability.helpers import LLM, answer, frozen, value_for
from utils import es_server

CALLS = 200
"""Lookups, and as many updates, while the node is frozen."""
SAMPLE = 20
"""Lookups, and as many updates, measured without the breaker (each waits out
the timeout: the 400 calls would take minutes)."""
DEFAULTS = BreakerSettings()
SLACK = 1.0  # scheduling on a loaded 2-core machine


@pytest.fixture(scope="module")
def node() -> Iterator[es_server.ServerInfo]:
    with es_server.running(name="rel-outage") as info:
        yield info


def cache_of(
    info: es_server.ServerInfo, index: str, on_error: Any, **kwargs: Any
) -> AsyncElasticsearchCache:
    """A cache with the default settings: it creates its client, with the breaker."""
    return AsyncElasticsearchCache(
        index, es_url=info.url, es_api_key=info.api_key, on_error=on_error, **kwargs
    )


async def timed(call: Any) -> tuple[float, Any]:
    start = time.monotonic()
    try:
        result = await call
    except Exception as exc:
        result = exc
    return time.monotonic() - start, result


async def calls(
    cache: AsyncElasticsearchCache, count: int, tag: str
) -> tuple[list[float], list[Any]]:
    """`count` lookups and `count` updates, alternating: each one's time and result."""
    seconds: list[float] = []
    results: list[Any] = []
    for i in range(count):
        for call in (
            cache.alookup(f"p{i}", LLM),
            cache.aupdate(f"{tag}{i}", LLM, answer("during the outage")),
        ):
            elapsed, result = await timed(call)
            seconds.append(elapsed)
            results.append(result)
    return seconds, results


async def first_hit(cache: AsyncElasticsearchCache, resumed: float) -> float:
    """Seconds from `resumed` until a lookup hits (a skipped or failed one retries)."""
    while True:
        try:
            if await cache.alookup("p0", LLM) == value_for("p0"):
                return time.monotonic() - resumed
        except CacheError:
            pass
        assert time.monotonic() - resumed < 120, "never recovered"
        await asyncio.sleep(0.02)


async def warm(info: es_server.ServerInfo, index: str) -> None:
    async with cache_of(info, index, "raise") as cache:
        for i in range(CALLS):
            await cache.aupdate(f"p{i}", LLM, value_for(f"p{i}"))
        assert await cache.alookup(f"p{CALLS - 1}", LLM) == value_for(f"p{CALLS - 1}")


def spread(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s"


def spread_us(seconds: list[float]) -> str:
    median, most = statistics.median(seconds), max(seconds)
    return f"median {median * 1e6:.0f} us, max {most * 1e6:.0f} us"


@pytest.mark.parametrize("on_error", ["warn", "raise"])
async def test_frozen_node_with_and_without_breaker(
    on_error: str,
    node: es_server.ServerInfo,
    caplog: pytest.LogCaptureFixture,
    report: Recorder,
) -> None:
    """A frozen node: 200 lookups + 200 updates cost N failing calls, not 400."""
    index = f"rel-outage-{on_error}"
    await warm(node, index)
    breaker = cache_of(node, index, on_error)
    plain = cache_of(node, index, on_error, breaker=None)
    # An application already running: each cache object has prepared the
    # index and seen the cluster answer (which sets its timeout).
    for cache in (breaker, plain):
        await cache.is_alias()
        for i in range(20):
            assert await cache.alookup(f"p{i}", LLM) == value_for(f"p{i}")
    # elasticsearch-py's defaults (what the cache had before): two calls.
    old_client = AsyncElasticsearch(node.url, api_key=node.api_key)
    old = AsyncElasticsearchCache(
        index, client=old_client, on_error=on_error, breaker=None
    )
    await old.is_alias()
    with caplog.at_level(logging.INFO, logger="langchain_es_cache"):
        with frozen(node.pid):
            old_seconds, _ = await calls(old, 1, "old")
            plain_seconds, plain_results = await calls(plain, SAMPLE, "plain")
            start = time.monotonic()
            seconds, results = await calls(breaker, CALLS, "down")
            total = time.monotonic() - start
            stats = breaker.stats()
        resumed = time.monotonic()
        recovered = await first_hit(breaker, resumed)
    await old_client.close()

    failing = statistics.median(plain_seconds)
    goal = DEFAULTS.failures * failing + 1.0
    assert stats.errors == DEFAULTS.failures
    assert stats.skipped == 2 * CALLS - DEFAULTS.failures
    if on_error == "warn":
        assert all(r is None for r in results), results
        assert all(r is None for r in plain_results)
    else:
        assert all(isinstance(r, CacheError) for r in results + plain_results)
        sent = [r for r in results if not isinstance(r, CircuitOpenError)]
        assert len(sent) == DEFAULTS.failures
        assert all("failed" in str(r) for r in sent)
        assert "the circuit breaker is open" in str(results[-1])
    assert total < goal
    opened = [r for r in caplog.records if "opened after" in r.getMessage()]
    lines = [r for r in caplog.records if "breaker of cache index" in r.getMessage()]
    assert [r.levelname for r in opened] == ["WARNING"]
    assert recovered < DEFAULTS.cooldown + _breaker.REQUEST_TIMEOUT + SLACK
    assert await breaker.alookup(f"p{CALLS - 1}", LLM) == value_for(f"p{CALLS - 1}")
    skipped_seconds = seconds[DEFAULTS.failures :]
    report.row(
        f"outage: frozen node, breaker on vs off (on_error={on_error!r})",
        f"JVM frozen with SIGSTOP; {CALLS} lookups + {CALLS} updates, one after "
        "another, through a cache with the default settings (the client it "
        f"creates: request_timeout {_breaker.REQUEST_TIMEOUT:g} s, "
        f"{_breaker.MAX_RETRIES} retry, none after a timeout; breaker "
        f"failures={DEFAULTS.failures}, cooldown={DEFAULTS.cooldown:g} s); the "
        f"same without the breaker ({SAMPLE} + {SAMPLE} calls measured); and 1 + 1 "
        "calls with elasticsearch-py's defaults (a client passed in)",
        f"with the breaker: {total:.2f} s in all for {2 * CALLS} calls "
        f"({DEFAULTS.failures} failed at {spread(seconds[: DEFAULTS.failures])}, "
        f"{len(skipped_seconds)} not sent, at {spread_us(skipped_seconds)}); goal "
        f"< N x one failing call + 1 s = {goal:.2f} s: met. Without: "
        f"{spread(plain_seconds)} per call, so about {failing * 2 * CALLS:.0f} s "
        f"for {2 * CALLS} calls; elasticsearch-py's defaults: "
        f"{spread(old_seconds)} per call. stats after the calls: {stats}",
    )
    report.row(
        f"outage: node resumed (on_error={on_error!r})",
        "SIGCONT right after the calls above; a lookup of an entry written "
        "before the freeze every 20 ms until it hits",
        f"first hit {recovered:.2f} s after the node resumed (cool-down "
        f"{DEFAULTS.cooldown:g} s; asserted < cool-down + one request timeout + "
        f"{SLACK:g} s); breaker log: "
        + "; ".join(f"{r.levelname} {r.getMessage()[:90]}" for r in lines),
    )
    await breaker.aclose()
    await plain.aclose()
