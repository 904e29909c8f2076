"""Faults: a node stopped, frozen, SIGKILLed; a two-node cluster losing one node."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from langchain_es_cache import AsyncElasticsearchCache, CacheError
from reliability.conftest import Recorder
from reliability.helpers import (
    LLM,
    answer,
    free_port,
    frozen,
    sigkill,
    spread,
    value_for,
    wait_for,
)
from utils import es_server

# The bound on a call while the node is unreachable comes from the client:
# request_timeout per attempt, max_retries more attempts.
REQUEST_TIMEOUT = 2.0
MAX_RETRIES = 1
SLACK = 5.0  # scheduling on a loaded 2-core machine


@pytest.fixture(scope="module")
def node() -> Iterator[list[es_server.ServerInfo]]:
    """A node of this module's own (a list: a restart changes its pid)."""
    with es_server.running(name="rel-fault") as info:
        holder = [info]
        yield holder
        es_server.stop(holder[0])


def bounded_client(info: es_server.ServerInfo) -> AsyncElasticsearch:
    return AsyncElasticsearch(
        info.url,
        api_key=info.api_key,
        request_timeout=REQUEST_TIMEOUT,
        max_retries=MAX_RETRIES,
        retry_on_timeout=True,
    )


async def timed(call: Any) -> tuple[float, Any]:
    start = time.monotonic()
    try:
        result = await call
    except Exception as exc:
        result = exc
    return time.monotonic() - start, result


async def down_phase(
    strict: AsyncElasticsearchCache,
    warn: AsyncElasticsearchCache,
    calls: int,
    caplog: pytest.LogCaptureFixture,
) -> tuple[list[float], list[float]]:
    """Lookups and updates in both modes while the node cannot answer."""
    raised: list[float] = []
    failed_open: list[float] = []
    for i in range(calls):
        for operation in ("lookup", "update"):
            strict_call = (
                strict.alookup(f"p{i}", LLM)
                if operation == "lookup"
                else strict.aupdate(f"down{i}", LLM, answer("x"))
            )
            elapsed, result = await timed(strict_call)
            assert isinstance(result, CacheError), result
            assert f"cache {operation} on index" in str(result)
            assert "failed" in str(result)
            raised.append(elapsed)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
                warn_call = (
                    warn.alookup(f"p{i}", LLM)
                    if operation == "lookup"
                    else warn.aupdate(f"down{i}", LLM, answer("x"))
                )
                elapsed, result = await timed(warn_call)
            assert result is None, result
            assert "continuing without the cache" in caplog.text
            failed_open.append(elapsed)
    return raised, failed_open


async def test_node_stopped_then_frozen_then_back(
    node: list[es_server.ServerInfo],
    caplog: pytest.LogCaptureFixture,
    report: Recorder,
) -> None:
    """Stopped node, then frozen node: bounded errors or fail-open; then recovery."""
    info = node[0]
    index = "rel-stop-restart"
    client = bounded_client(info)
    # What the client's own bound gives each call: the circuit breaker, which
    # would skip most of these calls, has its scenarios in test_outage.py.
    strict = AsyncElasticsearchCache(index, client=client, breaker=None)
    warn = AsyncElasticsearchCache(index, client=client, on_error="warn", breaker=None)
    for i in range(20):
        await strict.aupdate(f"p{i}", LLM, value_for(f"p{i}"))
    bound = REQUEST_TIMEOUT * (MAX_RETRIES + 1) + SLACK

    es_server.stop_process(info)
    try:
        raised, opened = await down_phase(strict, warn, 5, caplog)
    finally:
        info = node[0] = es_server.start_process(info)
    assert max(raised + opened) < bound
    report.row(
        "fault: node stopped (connection refused)",
        "node process stopped mid-run; 5 lookups + 5 updates per mode on the same "
        f"cache objects; client request_timeout={REQUEST_TIMEOUT:g} s, "
        f"max_retries={MAX_RETRIES}",
        f'"raise": 10/10 CacheError, {spread(raised)}; "warn": 10/10 fail open '
        f"(miss / skipped write, warning logged), {spread(opened)}; "
        f"bound asserted {bound:g} s",
    )

    # Frozen (SIGSTOP): connections are accepted, nothing answers; only the
    # client's request_timeout ends the wait.
    assert await strict.alookup("p0", LLM) == value_for("p0")
    with frozen(info.pid):
        raised, opened = await down_phase(strict, warn, 2, caplog)
    timeout_bound = REQUEST_TIMEOUT * (MAX_RETRIES + 1)
    assert min(raised + opened) >= REQUEST_TIMEOUT * 0.9
    assert max(raised + opened) < timeout_bound + SLACK
    report.row(
        "fault: node frozen (SIGSTOP, no answer)",
        "JVM frozen with SIGSTOP; 2 lookups + 2 updates per mode; "
        f"request_timeout={REQUEST_TIMEOUT:g} s x {MAX_RETRIES + 1} attempts",
        f'"raise": 4/4 CacheError, {spread(raised)}; "warn": 4/4 fail open, '
        f"{spread(opened)}; expected about {timeout_bound:g} s "
        f"(request_timeout x attempts), asserted < {timeout_bound + SLACK:g} s",
    )

    # Back: the very same objects serve again, no new object, no restart.
    start = time.monotonic()
    while True:
        try:
            found = await strict.alookup("p1", LLM)
            break
        except CacheError:
            assert time.monotonic() - start < 60, "never recovered"
            await asyncio.sleep(0.2)
    recovered = time.monotonic() - start
    assert found == value_for("p1")
    for i in range(20):
        assert await strict.alookup(f"p{i}", LLM) == value_for(f"p{i}")
        assert await warn.alookup(f"p{i}", LLM) == value_for(f"p{i}")
    await strict.aupdate("after", LLM, answer("after"))
    assert await warn.alookup("after", LLM) == answer("after")
    report.row(
        "fault: node back after stop and freeze",
        "node started again on its data; the same two cache objects used again",
        f"first successful call {recovered:.2f} s after the node was up; "
        f"20/20 earlier entries read by both objects; new update readable; "
        f"stats raise={strict.stats()}, warn={warn.stats()}",
    )
    await client.close()


async def test_sigkill_after_acknowledged_updates(
    node: list[es_server.ServerInfo], report: Recorder
) -> None:
    """Every acknowledged update survives SIGKILL of the JVM and a restart."""
    info = node[0]
    index = "rel-sigkill"
    entries = 2000
    async with AsyncElasticsearch(info.url, api_key=info.api_key) as client:
        cache = AsyncElasticsearchCache(index, client=client)
        await cache.aupdate("first", LLM, value_for("first"))
        limit = asyncio.Semaphore(32)

        async def put(i: int) -> None:
            async with limit:
                await cache.aupdate(f"k{i}", LLM, value_for(f"k{i}"))

        start = time.monotonic()
        await asyncio.gather(*(put(i) for i in range(entries)))
        wrote = time.monotonic() - start
        assert cache.stats().writes == entries + 1  # all acknowledged, none refreshed
    sigkill(info.pid)  # right after the last acknowledgement
    start = time.monotonic()
    info = node[0] = es_server.start_process(info)
    restarted = time.monotonic() - start
    async with AsyncElasticsearch(info.url, api_key=info.api_key) as client:
        cache = AsyncElasticsearchCache(index, client=client)
        missing = [
            i
            for i in range(entries)
            if await cache.alookup(f"k{i}", LLM) != value_for(f"k{i}")
        ]
    assert missing == []
    report.row(
        "fault: SIGKILL after acknowledged updates",
        f"{entries} updates acknowledged (32 at a time, no refresh), JVM killed "
        "with SIGKILL at once, node restarted on the same data, every key read",
        f"{entries} written in {wrote:.1f} s; restart took {restarted:.1f} s; "
        f"{entries - len(missing)}/{entries} entries found, 0 lost",
    )


# --- two nodes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[list[es_server.ServerInfo]]:
    """Two nodes on loopback forming one cluster; node 'a' bootstraps it."""
    ports = [free_port(), free_port()]
    seeds = ",".join(f"127.0.0.1:{port}" for port in ports)
    cluster_name = f"rel-pair-{ports[0]}"
    nodes: list[es_server.ServerInfo] = []
    try:
        for name, port in zip(("rel-a", "rel-b"), ports, strict=True):
            settings = {
                "cluster.name": cluster_name,
                "discovery.type": "multi-node",
                "discovery.seed_hosts": seeds,
                "cluster.initial_master_nodes": "rel-a",
                "transport.port": str(port),
            }
            nodes.append(es_server.start(settings=settings, name=name))
        yield nodes
    finally:
        for info in reversed(nodes):
            es_server.stop(info)


async def test_two_nodes_one_stopped(
    two_nodes: list[es_server.ServerInfo], report: Recorder
) -> None:
    """A replicated cache index keeps serving through the surviving node."""
    a, b = two_nodes
    admin = Elasticsearch(a.url, api_key=a.api_key)
    nodes = admin.cat.nodes(format="json", h="name,master")
    assert sorted(n["name"] for n in nodes) == ["rel-a", "rel-b"]
    index = "rel-two-nodes"
    client = AsyncElasticsearch(
        [a.url, b.url], api_key=a.api_key, request_timeout=10, max_retries=3
    )
    cache = AsyncElasticsearchCache(index, client=client)
    before = 200
    for i in range(before):
        await cache.aupdate(f"p{i}", LLM, value_for(f"p{i}"))
    health = admin.cluster.health(index=index, wait_for_status="green", timeout="120s")
    assert health["status"] == "green"
    replicas = admin.indices.get_settings(index=index)[index]["settings"]["index"]
    assert replicas["number_of_replicas"] == "1"
    # 'a' is the elected master (the only voting node of two): stop 'b', after
    # moving the primary there, so that losing 'b' also promotes the replica.
    primary = _primary_node(admin, index)
    if primary == "rel-a":
        admin.cluster.reroute(
            commands=[
                {
                    "cancel": {
                        "index": index,
                        "shard": 0,
                        "node": "rel-a",
                        "allow_primary": True,
                    }
                }
            ]
        )
        wait_for(lambda: _primary_node(admin, index) == "rel-b", 120, "primary on b")
        admin.cluster.health(index=index, wait_for_status="green", timeout="120s")
    primary_before = _primary_node(admin, index)
    es_server.stop_process(b)
    try:
        lookups = updates = 0
        latencies: list[float] = []
        for i in range(before):
            start = time.monotonic()
            assert await cache.alookup(f"p{i}", LLM) == value_for(f"p{i}")
            latencies.append(time.monotonic() - start)
            lookups += 1
        for i in range(100):
            start = time.monotonic()
            await cache.aupdate(f"q{i}", LLM, value_for(f"q{i}"))
            latencies.append(time.monotonic() - start)
            updates += 1
        for i in range(100):
            assert await cache.alookup(f"q{i}", LLM) == value_for(f"q{i}")
            lookups += 1
        assert cache.stats().errors == 0
        primary_after = _primary_node(admin, index)
    finally:
        b2 = es_server.start_process(b)
        two_nodes[1] = b2
    admin.cluster.health(index=index, wait_for_status="green", timeout="120s")
    for i in range(100):
        assert await cache.alookup(f"q{i}", LLM) == value_for(f"q{i}")
    report.row(
        "fault: two-node cluster, one node stopped",
        "two nodes on loopback (one cluster, security on), cache index created by "
        "the cache with 1 replica, client given both addresses; the node holding "
        f"the primary ({primary_before}) stopped; {before} earlier entries read, "
        "100 updates and 100 reads of them; node restarted, cluster green again",
        f"{lookups} lookups + {updates} updates while one node was down, 0 errors "
        f"({spread(latencies)}); primary moved to {primary_after}; "
        "all 100 new entries readable after the node rejoined",
    )
    await client.close()
    admin.close()


def _primary_node(admin: Elasticsearch, index: str) -> str:
    shards = admin.cat.shards(index=index, format="json", h="prirep,state,node")
    started = [s for s in shards if s["prirep"] == "p" and s["state"] == "STARTED"]
    return str(started[0]["node"]) if started else ""
