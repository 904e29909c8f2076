"""Code run in worker processes by the load and memory tests (importable by spawn)."""

from __future__ import annotations

import asyncio
import random
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import AsyncElasticsearch

from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache
from reliability.helpers import LLM, value_for

HOT_KEYS = 50
UPDATE_SHARE = 0.3


@dataclass
class Tally:
    ops: int = 0
    errors: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


def _step(rng: random.Random, name: str, tally: Tally) -> tuple[str, str | None]:
    """Pick the next operation: ("update", prompt) or ("lookup", prompt)."""
    if rng.random() < UPDATE_SHARE or not tally.written:
        if rng.random() < 0.2:
            return "update", f"hot{rng.randrange(HOT_KEYS)}"
        return "update", f"{name}-{len(tally.written)}"
    if rng.random() < 0.2:
        return "lookup-hot", f"hot{rng.randrange(HOT_KEYS)}"
    return "lookup", rng.choice(tally.written)


def _check(kind: str, prompt: str, found: Any, tally: Tally) -> None:
    if kind == "lookup" and found != value_for(prompt):
        tally.errors.append(f"own entry {prompt} read back as {found!r}")
    if kind == "lookup-hot" and found not in (None, value_for(prompt)):
        tally.errors.append(f"hot entry {prompt} read back as {found!r}")


def sync_thread(
    cache: ElasticsearchCache, name: str, barrier: threading.Barrier, deadline: float
) -> Tally:
    tally = Tally()
    rng = random.Random(name)
    barrier.wait()
    while time.time() < deadline:
        kind, prompt = _step(rng, name, tally)
        assert prompt is not None
        try:
            if kind == "update":
                cache.update(prompt, LLM, value_for(prompt))
                if not prompt.startswith("hot"):
                    tally.written.append(prompt)
            else:
                _check(kind, prompt, cache.lookup(prompt, LLM), tally)
        except Exception as exc:
            tally.errors.append(f"{type(exc).__name__}: {exc}")
        tally.ops += 1
    return tally


def sync_process(
    number: int,
    threads: int,
    index: str,
    settings: dict[str, Any],
    start_at: float,
    seconds: float,
    results: Any,
) -> None:
    """One process of the load test: `threads` threads sharing one sync cache."""
    cache = ElasticsearchCache(index, **settings)
    barrier = threading.Barrier(threads)
    tallies: list[Tally] = []
    # Everyone starts at the same wall-clock moment, in every process.
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds

    def run(i: int) -> None:
        tallies.append(sync_thread(cache, f"s{number}t{i}", barrier, deadline))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    errors = [e for t in tallies for e in t.errors]
    results.put(
        {
            "ops": sum(t.ops for t in tallies),
            "errors": errors[:20],
            "error_count": len(errors) + cache.stats().errors,
            "written": [p for t in tallies for p in t.written],
        }
    )
    cache.close()


async def async_load(
    index: str, settings: dict[str, Any], tasks: int, seconds: float
) -> dict[str, Any]:
    """`tasks` tasks of one event loop sharing one async cache.

    `settings` go to the client: with its defaults (10 connections, 10 s
    timeout) 256 tasks on a loaded 2-core machine wait past the timeout.
    """
    async with AsyncElasticsearch(**settings) as client:
        cache = AsyncElasticsearchCache(index, client=client)
        ready = asyncio.Event()
        deadline = 0.0

        async def task(name: str) -> Tally:
            tally = Tally()
            rng = random.Random(name)
            await ready.wait()
            while time.time() < deadline:
                kind, prompt = _step(rng, name, tally)
                assert prompt is not None
                try:
                    if kind == "update":
                        await cache.aupdate(prompt, LLM, value_for(prompt))
                        if not prompt.startswith("hot"):
                            tally.written.append(prompt)
                    else:
                        _check(kind, prompt, await cache.alookup(prompt, LLM), tally)
                except Exception as exc:
                    tally.errors.append(f"{type(exc).__name__}: {exc}")
                tally.ops += 1
            return tally

        running = [asyncio.create_task(task(f"a{i}")) for i in range(tasks)]
        await asyncio.sleep(0)
        deadline = time.time() + seconds
        ready.set()
        tallies = await asyncio.gather(*running)
        errors = [e for t in tallies for e in t.errors]
        return {
            "ops": sum(t.ops for t in tallies),
            "errors": errors[:20],
            "error_count": len(errors) + cache.stats().errors,
            "written": [p for t in tallies for p in t.written],
        }


def peak_rss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def memory_process(
    index: str,
    settings: dict[str, Any],
    warmup: int,
    lookups: int,
    concurrency: int,
    results: Any,
) -> None:
    """Peak RSS before and after `lookups` lookups, after `warmup` of them."""

    async def main() -> dict[str, Any]:
        # A stall of the loaded machine must not end the measurement.
        async with AsyncElasticsearch(
            **settings, request_timeout=60, max_retries=3, retry_on_timeout=True
        ) as client:
            cache = AsyncElasticsearchCache(index, client=client)
            prompts = [f"m{i}" for i in range(200)]
            for prompt in prompts[:100]:  # half hits, half misses
                await cache.aupdate(prompt, LLM, value_for(prompt))

            async def run(total: int) -> int:
                wrong = 0

                async def worker(offset: int) -> None:
                    nonlocal wrong
                    for n in range(offset, total, concurrency):
                        prompt = prompts[n % len(prompts)]
                        found = await cache.alookup(prompt, LLM)
                        expected = value_for(prompt) if n % 200 < 100 else None
                        wrong += found != expected

                await asyncio.gather(*(worker(i) for i in range(concurrency)))
                return wrong

            await run(warmup)
            before = peak_rss_kb()
            start = time.monotonic()
            wrong = await run(lookups)
            seconds = time.monotonic() - start
            return {
                "before_kb": before,
                "after_kb": peak_rss_kb(),
                "seconds": seconds,
                "wrong": wrong,
                "stats": str(cache.stats()),
            }

    try:
        results.put(asyncio.run(main()))
    except BaseException as exc:  # the parent must hear of it, not wait
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
