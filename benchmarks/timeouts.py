"""What a failing call costs, and how slow a busy cluster's answers get.

The figures behind the timeouts of the clients the cache creates (README,
"Outages: circuit breaker and timeouts"). Not part of the tests::

    python benchmarks/timeouts.py [--seconds 30] [--skip-load]

1. One failing lookup, through a cache with ``on_error="warn"`` and no breaker,
   against a port that accepts and never answers (a frozen cluster) and a port
   where nothing listens: with elasticsearch-py's defaults (a client passed in)
   and with the cache's (a client the cache creates).
2. A busy cluster: the reliability suite's load (4 processes x 8 threads of the
   sync class, 30 % updates, a fresh index used by all at once, on a node just
   started) three times: with a client that never times out, recording every
   call's latency; with the cache's client but a fixed 0.5 s timeout; with the
   cache's client as it is (the timeout following the answers). Each counts
   the calls that failed (``on_error="warn"``, no breaker).
3. The cost on a real miss: sequential lookups of missing keys through a client
   passed in (breaker off, as before; breaker on) and through the client the
   cache creates (breaker on), in alternating rounds.

Starts its own Elasticsearch node unless ES_URL names one. Writes
``benchmarks/results/timeouts.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "utils"))

import elasticsearch  # noqa: E402
import es_server  # noqa: E402
from elasticsearch import AsyncElasticsearch, Elasticsearch  # noqa: E402

from langchain_es_cache import (  # noqa: E402
    AsyncElasticsearchCache,
    ElasticsearchCache,
)
from langchain_es_cache._common import breaker as _breaker  # noqa: E402
from reliability.helpers import LLM, value_for  # noqa: E402
from tests.outage import frozen_listener, proxy_to  # noqa: E402

DEAD_URL = "http://127.0.0.1:9"


def log(message: str) -> None:
    print(f"[timeouts {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- 1. one failing call -------------------------------------------------------


async def _failing_lookup(url: str, own: bool) -> float:
    if own:
        cache = AsyncElasticsearchCache(
            "cache", es_url=url, on_error="warn", breaker=None
        )
        client = None
    else:
        client = AsyncElasticsearch(url)
        cache = AsyncElasticsearchCache(
            "cache", client=client, on_error="warn", breaker=None
        )
    start = time.monotonic()
    assert await cache.alookup("p", LLM) is None
    elapsed = time.monotonic() - start
    await cache.aclose()
    if client is not None:
        await client.close()
    return elapsed


async def _failing_after_answers(conn: es_server.Connection) -> float:
    """A cache that has seen the node answer, then the node freezes."""
    with proxy_to(conn.url) as proxy:
        cache = AsyncElasticsearchCache(
            "cache-after-answers",
            es_url=proxy.url,
            **_auth(conn),
            on_error="warn",
            breaker=None,
        )
        for i in range(20):
            assert await cache.alookup(f"p{i}", LLM) is None  # misses: answers
        proxy.freeze()
        start = time.monotonic()
        assert await cache.alookup("p", LLM) is None
        elapsed = time.monotonic() - start
        await cache.aclose()
    return elapsed


def _auth(conn: es_server.Connection) -> dict[str, Any]:
    settings = conn.cache_settings()
    settings.pop("es_url")
    return settings


def failing_calls(conn: es_server.Connection, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def measure(name: str, run: Any) -> None:
        times = [asyncio.run(run()) for _ in range(repeat)]
        results[name] = {"median_s": statistics.median(times), "runs": times}
        log(f"{name}: {statistics.median(times):.3f} s")

    with frozen_listener() as listener:
        measure(
            "frozen, elasticsearch-py defaults (a client passed in)",
            lambda: _failing_lookup(listener.url, own=False),
        )
        measure(
            "frozen, the cache's client, before any answer",
            lambda: _failing_lookup(listener.url, own=True),
        )
    measure(
        "frozen, the cache's client, after 20 fast answers",
        lambda: _failing_after_answers(conn),
    )
    measure(
        "refused, elasticsearch-py defaults (a client passed in)",
        lambda: _failing_lookup(DEAD_URL, own=False),
    )
    measure("refused, the cache's client", lambda: _failing_lookup(DEAD_URL, own=True))
    return results


# --- 2. a busy cluster ---------------------------------------------------------


def _load_process(
    number: int,
    threads: int,
    index: str,
    conn: es_server.Connection,
    mode: str,
    start_at: float,
    seconds: float,
    results: Any,
) -> None:
    import logging

    logging.disable(logging.WARNING)  # a failed call is counted, not logged
    client = None
    if mode == "unbounded":
        client = Elasticsearch(
            conn.url, **conn.client_auth(), request_timeout=120, max_retries=0
        )
        cache = ElasticsearchCache(index, client=client, on_error="warn", breaker=None)
    else:
        cache = ElasticsearchCache(
            index, **conn.cache_settings(), on_error="warn", breaker=None
        )
        if mode == "fixed":
            cache._latency = None  # the first step for every single-document request
    lookups: list[float] = []
    updates: list[float] = []
    firsts: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds

    def run(name: str) -> None:
        import random

        rng = random.Random(name)
        written: list[str] = []
        mine_l: list[float] = []
        mine_u: list[float] = []
        barrier.wait()
        while time.time() < deadline:
            if rng.random() < 0.3 or not written:
                prompt = f"{name}-{len(written)}"
                begin = time.monotonic()
                cache.update(prompt, LLM, value_for(prompt))
                took = time.monotonic() - begin
                if not written:
                    with lock:
                        firsts.append(took)
                else:
                    mine_u.append(took)
                written.append(prompt)
            else:
                begin = time.monotonic()
                cache.lookup(rng.choice(written), LLM)
                mine_l.append(time.monotonic() - begin)
        with lock:
            lookups.extend(mine_l)
            updates.extend(mine_u)

    workers = [
        threading.Thread(target=run, args=(f"s{number}t{i}",)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(
        {
            "lookups": lookups,
            "updates": updates,
            "firsts": firsts,
            "errors": cache.stats().errors,
        }
    )
    cache.close()
    if client is not None:
        client.close()


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "count": len(ordered),
        "p50_ms": 1000 * at(0.5),
        "p99_ms": 1000 * at(0.99),
        "p99.9_ms": 1000 * at(0.999),
        "max_ms": 1000 * ordered[-1],
        "over_0.25s": sum(v > 0.25 for v in ordered),
        "over_0.5s": sum(v > 0.5 for v in ordered),
        "over_1s": sum(v > 1.0 for v in ordered),
    }


def busy_cluster(
    conn: es_server.Connection, mode: str, seconds: float, processes: int, threads: int
) -> dict[str, Any]:
    index = f"bench-timeouts-{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 15
    workers = [
        context.Process(
            target=_load_process,
            args=(n, threads, index, conn, mode, start_at, seconds, results),
        )
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=seconds + 600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    admin = Elasticsearch(conn.url, **conn.client_auth())
    admin.indices.delete(index=index, ignore_unavailable=True)
    admin.close()
    merged = {
        kind: _percentiles([v for o in outcomes for v in o[kind]])
        for kind in ("lookups", "updates", "firsts")
    }
    ops = merged["lookups"]["count"] + merged["updates"]["count"]
    merged["ops_per_s"] = (ops + merged["firsts"]["count"]) / seconds
    merged["errors"] = sum(o["errors"] for o in outcomes)
    for kind in ("lookups", "updates", "firsts"):
        log(f"busy cluster, {mode}, {kind}: {merged[kind]}")
    log(f"busy cluster, {mode}: {merged['errors']} failed calls")
    return merged


# --- 3. the breaker's cost on a miss ----------------------------------------------


def miss_overhead(
    conn: es_server.Connection, rounds: int, calls: int
) -> dict[str, Any]:
    index = f"bench-timeouts-miss-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(conn.url, **conn.client_auth())
    caches = {
        "client passed in, breaker off": ElasticsearchCache(
            index, client=client, breaker=None
        ),
        "client passed in, breaker on": ElasticsearchCache(index, client=client),
        "client the cache creates, breaker on": ElasticsearchCache(
            index, **conn.cache_settings()
        ),
    }
    for cache in caches.values():
        cache.update("warm", LLM, value_for("warm"))  # the index exists
    per_call: dict[str, list[float]] = {name: [] for name in caches}
    for round_ in range(rounds):
        order = list(caches)[round_ % 3 :] + list(caches)[: round_ % 3]
        for name in order:
            cache = caches[name]
            start = time.perf_counter()
            for i in range(calls):
                assert cache.lookup(f"missing-{round_}-{i}", LLM) is None
            per_call[name].append((time.perf_counter() - start) / calls)
    client.indices.delete(index=index)
    client.close()
    for cache in caches.values():
        cache.close()
    result = {
        name: {
            "median_us": 1e6 * statistics.median(v),
            "rounds_us": [1e6 * x for x in v],
        }
        for name, v in per_call.items()
    }
    for name, figures in result.items():
        log(f"miss, {name}: {figures['median_us']:.0f} us per lookup")
    return result


def gate_cost(calls: int = 200_000) -> dict[str, float]:
    """CPU per call of what a lookup now does besides its request: passing the
    breaker (and timing the answer), and picking the client's timeout."""
    with_breaker = ElasticsearchCache("cache", es_url=DEAD_URL)
    without = ElasticsearchCache("cache", es_url=DEAD_URL, breaker=None)

    def per_call(run: Any) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            run()
            best = min(best, (time.perf_counter() - start) / calls)
        return 1e6 * best

    def gate(cache: ElasticsearchCache) -> Any:
        def run() -> None:
            for _ in range(calls):
                with cache._gate("lookup", timed=True):
                    pass

        return run

    def client() -> None:
        for _ in range(calls):
            with_breaker._client  # noqa: B018

    result = {
        "gate, breaker on": per_call(gate(with_breaker)),
        "gate, breaker off": per_call(gate(without)),
        "choosing the client's timeout": per_call(client),
    }
    for name, value in result.items():
        log(f"{name}: {value:.2f} us per call")
    with_breaker.close()
    without.close()
    return result


# --- report --------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Timeouts: what a failing call costs, how slow a busy cluster gets",
        "",
        "Written by `benchmarks/timeouts.py`; do not edit by hand.",
        "",
        f"- run: {results['when']}, {results['machine']}",
        f"- cache defaults: request_timeout {_breaker.REQUEST_TIMEOUT:g} s "
        f"(batch requests {_breaker.BATCH_REQUEST_TIMEOUT:g} s), "
        f"max_retries {_breaker.MAX_RETRIES}, no retry after a timeout",
        "",
        "## One failing lookup (on_error='warn', no breaker)",
        "",
        "| cluster, client | seconds (median) |",
        "|---|---|",
    ]
    for name, figures in results["failing"].items():
        lines.append(f"| {name} | {figures['median_s']:.3f} |")
    if "busy" in results:
        first = next(iter(results["busy"].values()))
        lines += [
            "",
            f"## A busy cluster ({first['processes']} processes x {first['threads']} "
            f"threads, {first['seconds']:g} s each, on a node just started)",
            "",
            "| client | calls | count | p50 ms | p99 ms | p99.9 ms | max ms "
            "| > 0.25 s | > 0.5 s | > 1 s | failed calls |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        labels = {
            "unbounded": "no timeout (120 s)",
            "fixed": "the cache's, timeout fixed at 0.5 s",
            "adaptive": "the cache's (timeout follows answers)",
        }
        for mode, busy in results["busy"].items():
            for kind, label in (
                ("lookups", "lookups"),
                ("updates", "updates"),
                ("firsts", "first update of each thread"),
            ):
                f = busy[kind]
                failed = busy["errors"] if kind == "lookups" else ""
                lines.append(
                    f"| {labels[mode]} | {label} | {f['count']} | {f['p50_ms']:.1f} "
                    f"| {f['p99_ms']:.1f} | {f['p99.9_ms']:.1f} | {f['max_ms']:.1f} "
                    f"| {f['over_0.25s']} | {f['over_0.5s']} | {f['over_1s']} "
                    f"| {failed} |"
                )
    if "miss" in results:
        lines += [
            "",
            "## The cost on a real miss (sequential lookups of missing keys)",
            "",
            "| cache | median us per lookup | per round (us) |",
            "|---|---|---|",
        ]
        for name, figures in results["miss"].items():
            rounds = ", ".join(f"{x:.0f}" for x in figures["rounds_us"])
            lines.append(f"| {name} | {figures['median_us']:.0f} | {rounds} |")
    if "gate" in results:
        lines += [
            "",
            "## What a call does besides its requests (CPU, best of 5 x 200,000)",
            "",
            "| step | us per call |",
            "|---|---|",
        ]
        for name, value in results["gate"].items():
            lines.append(f"| {name} | {value:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"elasticsearch-py {elasticsearch.__versionstr__}",
    }
    if not args.skip_load:
        results["busy"] = {}
        for mode in ("unbounded", "fixed", "adaptive"):
            # A node of its own each time: the load meets a cold node, as the
            # reliability suite's does.
            with es_server.cluster(name=f"bench-timeouts-{mode}") as conn:
                busy = busy_cluster(
                    conn, mode, args.seconds, args.processes, args.threads
                )
            busy.update(
                seconds=args.seconds, processes=args.processes, threads=args.threads
            )
            results["busy"][mode] = busy
    with es_server.cluster(name="bench-timeouts") as conn:
        results["failing"] = failing_calls(conn, args.repeat)
        results["miss"] = miss_overhead(conn, rounds=12, calls=300)
    results["gate"] = gate_cost()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "timeouts.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "timeouts.md").write_text(markdown(results))
    log(f"written {args.out / 'timeouts.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
