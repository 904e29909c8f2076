"""Indices deleted and aliases rolled over while caches are under load."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    AsyncElasticsearchSemanticCache,
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
)
from reliability.conftest import Recorder
from reliability.helpers import LLM, value_for, wait_for
from tests.models import CountingEmbeddings
from utils import es_server

TASKS, THREADS = 8, 4
CHANGES = 3
"""Deletions (or rollovers) of every index during one run."""
WRITES_BETWEEN = 60
"""Writes of every cache kind between two changes, and after the last."""
PROMPTS = [f"question {i}" for i in range(40)]
THRESHOLD = 0.999
"""The semantic caches' threshold: a prompt finds its own entry (cosine 1) and
never another's (the test vectors are random directions in 16 dimensions)."""
KINDS = ("exact", "semantic", "store")


class Tally:
    """Operations, writes per cache kind, and every unexpected outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ops = 0
        self.writes = dict.fromkeys(KINDS, 0)
        self.errors: list[str] = []

    def done(self, kind: str, wrote: bool) -> None:
        with self._lock:
            self.ops += 1
            self.writes[kind] += wrote

    def wrong(self, what: str) -> None:
        with self._lock:
            self.errors.append(what)

    def least_writes(self) -> int:
        with self._lock:
            return min(self.writes.values())


def names(base: str) -> dict[str, str]:
    return {kind: f"{base}-{kind}" for kind in KINDS}


@pytest.fixture
def base(admin: Elasticsearch) -> Iterator[str]:
    name = f"rel-life-{uuid.uuid4().hex[:10]}"
    yield name
    for index in admin.indices.get(index=f"{name}*", expand_wildcards="all"):
        admin.indices.delete(index=index)


def contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            contains(actual.get(key), value) for key, value in expected.items()
        )
    return bool(actual == expected)


def unmapped_fields(admin: Elasticsearch, name: str, expected: Any) -> list[str]:
    """``index.field`` for each field an index behind `name` maps otherwise."""
    bad = []
    for index, body in admin.indices.get_mapping(index=name).items():
        properties = body["mappings"].get("properties", {})
        for field, spec in expected["mappings"]["properties"].items():
            if spec["type"] == "object":
                ok = field in properties and (
                    properties[field].get("type", "object") == "object"
                )
            else:
                ok = contains(properties.get(field), spec)
            if not ok:
                bad.append(f"{index}.{field}")
    return bad


async def run(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    base: str,
    change: Callable[[str], None],
) -> dict[str, Any]:
    """Caches of every kind under load from tasks and threads while `change`
    is applied to each name `CHANGES` times; return the figures."""
    embedding = CountingEmbeddings(dimensions=16)
    named = names(base)
    settings = es_conn.cache_settings()
    tally = Tally()
    stop = threading.Event()

    async def task(n: int, caches: dict[str, Any]) -> None:
        i = n
        while not stop.is_set():
            prompt = PROMPTS[i % len(PROMPTS)]
            i += 7
            try:
                await caches["exact"].aupdate(prompt, LLM, value_for(prompt))
                tally.done("exact", True)
                await caches["semantic"].aupdate(prompt, LLM, value_for(prompt))
                tally.done("semantic", True)
                await caches["store"].amset([(prompt, prompt.encode())])
                tally.done("store", True)
                other = PROMPTS[(i * 3) % len(PROMPTS)]
                for kind in ("exact", "semantic"):
                    found = await caches[kind].alookup(other, LLM)
                    tally.done(kind, False)
                    if found not in (None, value_for(other)):
                        tally.wrong(f"{kind} lookup of {other!r}: {found!r}")
                (value,) = await caches["store"].amget([other])
                tally.done("store", False)
                if value not in (None, other.encode()):
                    tally.wrong(f"mget of {other!r}: {value!r}")
            except Exception as exc:
                tally.wrong(f"task {n}: {exc!r}")

    def thread(n: int, caches: dict[str, Any]) -> None:
        i = n
        while not stop.is_set():
            prompt = PROMPTS[i % len(PROMPTS)]
            i += 5
            try:
                caches["exact"].update(prompt, LLM, value_for(prompt))
                tally.done("exact", True)
                caches["semantic"].update(prompt, LLM, value_for(prompt))
                tally.done("semantic", True)
                caches["store"].mset([(prompt, prompt.encode())])
                tally.done("store", True)
                for kind in ("exact", "semantic"):
                    found = caches[kind].lookup(prompt, LLM)
                    tally.done(kind, False)
                    if found not in (None, value_for(prompt)):
                        tally.wrong(f"{kind} lookup of {prompt!r}: {found!r}")
            except Exception as exc:
                tally.wrong(f"thread {n}: {exc!r}")

    async_caches = {
        "exact": AsyncElasticsearchCache(named["exact"], **settings),
        "semantic": AsyncElasticsearchSemanticCache(
            named["semantic"], embedding, similarity_threshold=THRESHOLD, **settings
        ),
        "store": AsyncElasticsearchEmbeddingsCache(named["store"], **settings),
    }
    sync_caches = {
        "exact": ElasticsearchCache(named["exact"], **settings),
        "semantic": ElasticsearchSemanticCache(
            named["semantic"], embedding, similarity_threshold=THRESHOLD, **settings
        ),
        "store": ElasticsearchEmbeddingsCache(named["store"], **settings),
    }
    threads = [
        threading.Thread(target=thread, args=(n, sync_caches)) for n in range(THREADS)
    ]
    started = time.monotonic()
    tasks = [asyncio.create_task(task(n, async_caches)) for n in range(TASKS)]
    for worker in threads:
        worker.start()

    def more_writes() -> None:
        target = tally.least_writes() + WRITES_BETWEEN
        wait_for(lambda: tally.least_writes() >= target, 300, "writes", 0.05)

    def changes() -> None:
        for _ in range(CHANGES):
            more_writes()
            for name in named.values():
                change(name)
        more_writes()

    try:
        await asyncio.to_thread(changes)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for worker in threads:
            worker.join()
    seconds = time.monotonic() - started
    prepared = sum(
        cache._preparations
        for caches in (async_caches, sync_caches)
        for cache in caches.values()
    )
    # Afterwards: every entry written again is readable, by these objects and
    # by fresh ones (a process started later).
    for prompt in PROMPTS:
        await async_caches["exact"].aupdate(prompt, LLM, value_for(prompt))
        await async_caches["semantic"].aupdate(prompt, LLM, value_for(prompt))
    await async_caches["store"].amset([(p, p.encode()) for p in PROMPTS])
    later = {
        "exact": ElasticsearchCache(named["exact"], **settings),
        "semantic": ElasticsearchSemanticCache(
            named["semantic"], embedding, similarity_threshold=THRESHOLD, **settings
        ),
    }
    admin.indices.refresh(index=named["semantic"])
    unreadable = []
    for prompt in PROMPTS:
        for kind in ("exact", "semantic"):
            if await async_caches[kind].alookup(prompt, LLM) != value_for(prompt):
                unreadable.append(f"{kind}: {prompt}")
            if later[kind].lookup(prompt, LLM) != value_for(prompt):
                unreadable.append(f"later {kind}: {prompt}")
    later_store = ElasticsearchEmbeddingsCache(named["store"], **settings)
    values = later_store.mget(PROMPTS)
    unreadable += [p for p, v in zip(PROMPTS, values, strict=True) if v != p.encode()]
    bad_mappings = [
        field
        for kind, cache in async_caches.items()
        for field in unmapped_fields(admin, named[kind], cache.mapping)
    ]
    for cache in async_caches.values():
        await cache.aclose()
    for cache in [*sync_caches.values(), *later.values(), later_store]:
        cache.close()
    indices = sorted(admin.indices.get(index=f"{base}*"))
    return {
        "ops": tally.ops,
        "errors": tally.errors,
        "seconds": seconds,
        "prepared": prepared,
        "unreadable": unreadable,
        "bad_mappings": bad_mappings,
        "indices": indices,
    }


async def test_indices_deleted_under_load(
    es_conn: es_server.Connection, admin: Elasticsearch, base: str, report: Recorder
) -> None:
    """Every cache's index deleted 3 times under load: it comes back mapped."""

    def delete(name: str) -> None:
        admin.indices.delete(index=name, ignore_unavailable=True)

    figures = await run(es_conn, admin, base, delete)
    assert figures["errors"] == [], figures["errors"][:10]
    assert figures["unreadable"] == []
    assert figures["bad_mappings"] == []
    assert figures["indices"] == sorted(names(base).values())
    report.row(
        "lifecycle: indices deleted under load",
        f"{TASKS} async tasks and {THREADS} threads updating and looking up "
        "through the exact, semantic and embeddings caches (async and sync "
        f"objects), while each cache's index is deleted {CHANGES} times "
        f"({WRITES_BETWEEN} writes of each kind between deletions)",
        f"{figures['ops']} operations in {figures['seconds']:.1f} s; 0 errors, 0 "
        f"wrong answers; {figures['prepared']} on-demand mapping fixes; every "
        "index has the cache mapping (namespace keyword, vector dense_vector); "
        "every entry readable afterwards, also by new cache objects",
    )


async def test_aliases_rolled_over_under_load(
    es_conn: es_server.Connection, admin: Elasticsearch, base: str, report: Recorder
) -> None:
    """Every cache's alias rolled over 3 times under load: new indices mapped."""
    for name in names(base).values():
        admin.indices.create(
            index=f"{name}-000001", aliases={name: {"is_write_index": True}}
        )

    def roll_over(name: str) -> None:
        admin.indices.rollover(alias=name)

    figures = await run(es_conn, admin, base, roll_over)
    assert figures["errors"] == [], figures["errors"][:10]
    assert figures["unreadable"] == []
    assert figures["bad_mappings"] == []
    assert len(figures["indices"]) == len(KINDS) * (CHANGES + 1)
    report.row(
        "lifecycle: aliases rolled over under load",
        f"{TASKS} async tasks and {THREADS} threads updating and looking up "
        "through the exact, semantic and embeddings caches (async and sync "
        f"objects) behind aliases, each rolled over {CHANGES} times to a new "
        f"write index with no mapping ({WRITES_BETWEEN} writes of each kind "
        "between rollovers)",
        f"{figures['ops']} operations in {figures['seconds']:.1f} s; 0 errors, 0 "
        f"wrong answers; {figures['prepared']} on-demand mapping fixes; all "
        f"{len(figures['indices'])} indices have the cache mapping; every entry "
        "readable afterwards (the newest copy), also by new cache objects",
    )
