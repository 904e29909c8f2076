"""Load and concurrency: many writers on a fresh index at once; memory stays flat."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from langchain_es_cache import AsyncElasticsearchCache
from langchain_es_cache._common.mappings import LLM_CACHE_MAPPING
from reliability import workers
from reliability.conftest import Recorder
from reliability.helpers import LLM, value_for
from utils import es_server

SECONDS = 30.0
PROCESSES, THREADS = 4, 8
TASKS = 256
WARMUP = 20_000
LOOKUPS = int(os.environ.get("RELIABILITY_LOOKUPS", "200000"))
RSS_LIMIT_MB = 10.0


@pytest.fixture
def fresh_index(admin: Elasticsearch) -> Iterator[str]:
    name = f"rel-load-{uuid.uuid4().hex[:10]}"
    yield name
    for index in admin.indices.get(index=f"{name}*", expand_wildcards="all"):
        admin.indices.delete(index=index)


def check_index(admin: Elasticsearch, index: str) -> None:
    """Exactly one index of that name, with the cache's mapping (not a guessed one)."""
    existing = admin.indices.get(index=f"{index}*", expand_wildcards="all")
    assert sorted(existing) == [index]
    mapping = existing[index]["mappings"]
    assert mapping["properties"] == LLM_CACHE_MAPPING["properties"]
    assert mapping["dynamic_templates"] == LLM_CACHE_MAPPING["dynamic_templates"]


async def verify_all(
    es_conn: es_server.Connection, index: str, prompts: list[str]
) -> list[str]:
    """The prompts whose entry is not readable with its value."""
    async with AsyncElasticsearch(es_conn.url, **es_conn.client_auth()) as client:
        cache = AsyncElasticsearchCache(index, client=client)
        limit = asyncio.Semaphore(64)

        async def bad(prompt: str) -> bool:
            async with limit:
                return await cache.alookup(prompt, LLM) != value_for(prompt)

        flags = await asyncio.gather(*(bad(p) for p in prompts))
    return [p for p, flag in zip(prompts, flags, strict=True) if flag]


async def test_processes_and_threads_sync(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    fresh_index: str,
    report: Recorder,
) -> None:
    """4 processes x 8 threads, sync class, fresh index, 30 s of mixed calls."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 15  # time for every process to import and connect
    processes = [
        context.Process(
            target=workers.sync_process,
            args=(
                n,
                THREADS,
                fresh_index,
                es_conn.cache_settings(),
                start_at,
                SECONDS,
                results,
            ),
        )
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=SECONDS + 300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert time.time() - start_at > SECONDS - 1, "processes missed the start"
    ops = sum(o["ops"] for o in outcomes)
    errors = [e for o in outcomes for e in o["errors"]]
    error_count = sum(o["error_count"] for o in outcomes)
    written = [p for o in outcomes for p in o["written"]]
    assert error_count == 0, errors
    hot = [f"hot{i}" for i in range(workers.HOT_KEYS)]
    missing = await verify_all(es_conn, fresh_index, written + hot)
    assert missing == []
    check_index(admin, fresh_index)
    report.row(
        "load: 4 processes x 8 threads, sync class",
        f"{PROCESSES} processes x {THREADS} threads, one ElasticsearchCache per "
        f"process, a fresh index name used first by all at the same instant, "
        f"{SECONDS:g} s of lookups and updates (30 % updates, 50 shared hot keys)",
        f"{ops} operations, {ops / SECONDS:.0f} ops/s; 0 errors; "
        f"{len(written)} own + {len(hot)} hot entries all readable afterwards; "
        "one index, with the cache mapping",
    )


async def test_tasks_async(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    fresh_index: str,
    report: Recorder,
) -> None:
    """1 process x 256 tasks, async class, fresh index, 30 s of mixed calls."""
    client_settings = {
        "hosts": [es_conn.url],
        **es_conn.client_auth(),
        "connections_per_node": 64,
        "request_timeout": 60,
    }
    outcome = await workers.async_load(fresh_index, client_settings, TASKS, SECONDS)
    assert outcome["error_count"] == 0, outcome["errors"]
    hot = [f"hot{i}" for i in range(workers.HOT_KEYS)]
    missing = await verify_all(es_conn, fresh_index, outcome["written"] + hot)
    assert missing == []
    check_index(admin, fresh_index)
    ops = outcome["ops"]
    report.row(
        "load: 1 process x 256 tasks, async class",
        f"{TASKS} tasks of one event loop sharing one AsyncElasticsearchCache "
        "(its client: 64 connections, request_timeout 60 s), a "
        f"fresh index name used first by all at once, {SECONDS:g} s of lookups "
        "and updates (30 % updates, 50 shared hot keys)",
        f"{ops} operations, {ops / SECONDS:.0f} ops/s; 0 errors; "
        f"{len(outcome['written'])} own + {len(hot)} hot entries all readable "
        "afterwards; one index, with the cache mapping",
    )


def test_memory_flat(
    es_conn: es_server.Connection, fresh_index: str, report: Recorder
) -> None:
    """200,000 lookups grow peak RSS by less than 10 MB after warm-up."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    concurrency = 16
    process = context.Process(
        target=workers.memory_process,
        args=(
            fresh_index,
            {"hosts": [es_conn.url], **es_conn.client_auth()},
            WARMUP,
            LOOKUPS,
            concurrency,
            results,
        ),
    )
    process.start()
    outcome: dict[str, Any] = results.get(timeout=1800)
    assert "error" not in outcome, outcome
    process.join(timeout=60)
    assert process.exitcode == 0
    growth_mb = (outcome["after_kb"] - outcome["before_kb"]) / 1024
    assert outcome["wrong"] == 0
    assert growth_mb < RSS_LIMIT_MB
    report.row(
        "memory: 200,000 lookups in one process",
        f"async class (client request_timeout 60 s, 3 retries), {concurrency} "
        "concurrent lookups (half hits, half misses) in "
        f"a fresh process; {WARMUP} warm-up lookups, then {LOOKUPS} measured; "
        "peak RSS from getrusage(ru_maxrss)",
        f"peak RSS {outcome['before_kb'] / 1024:.1f} MB after warm-up, "
        f"{outcome['after_kb'] / 1024:.1f} MB after: growth {growth_mb:.2f} MB "
        f"(limit {RSS_LIMIT_MB:g}); {LOOKUPS / outcome['seconds']:.0f} lookups/s; "
        f"all answers right; {outcome['stats']}",
    )
