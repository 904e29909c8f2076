"""Does coalescing pay for the sync class? Threads on one cache, measured.

Run with ES_URL and credentials in the environment (``source`` the same
settings as the tests)::

    python benchmarks/threads.py

For 1, 16 and 64 threads sharing one `ElasticsearchCache`: lookup-hit
throughput, p50/p99 and requests per 1,000 lookups, first as shipped (reads
of concurrent calls coalesced into one ``mget``), then with the coalescer
replaced by one that sends each call's read alone, as one request: the two
modes take turns, thread count by thread count, for ``--rounds`` rounds (each
going first in every other round), and the medians are reported. Then one
thread alone: a ``get`` per hit against an ``mget`` of one id per hit
(taking turns in blocks of 25), and ``mget``s of 16 and 64 ids (the best
that batching across threads could do, with no waiting and no hand-off),
each revived as the cache does. Writes
``benchmarks/results/threads.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import elasticsearch
import workload

from langchain_es_cache import ElasticsearchCache
from langchain_es_cache._common.documents import parse_generations
from langchain_es_cache._common.keys import llm_key
from langchain_es_cache._common.mappings import LOOKUP_FIELDS

HERE = Path(__file__).resolve().parent
N = 4000
INDEX = "bench-threads"
THREADS = (1, 16, 64)
MODES = ("coalesced", "one request per call")
ONE_THREAD = ("get", "mget of 1", "mget of 16", "mget of 64")


class OneRequestPerCall:
    """Stands in for the cache's read coalescer: every call's read is sent
    alone, at once, as one request (what the sync class did before
    coalescing)."""

    def __init__(self, send: Callable[[list[Any]], list[Any]]) -> None:
        self._send = send

    def call(self, item: Any) -> Any:
        (result,) = self._send([item])
        if isinstance(result, Exception):
            raise result
        return result


def lookups(
    cache: ElasticsearchCache, threads: int, prompts: list[str]
) -> dict[str, Any]:
    latencies: list[int] = []
    lock = threading.Lock()
    items = iter(range(N))

    def work() -> None:
        mine: list[int] = []
        for i in items:
            t0 = time.perf_counter_ns()
            if cache.lookup(prompts[i % len(prompts)], workload.LLM_STRING) is None:
                raise AssertionError("a hit missed")
            mine.append(time.perf_counter_ns() - t0)
        with lock:
            latencies.extend(mine)

    sent = workload.SENT[0]
    start = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out = workload.summarize(
        latencies, time.perf_counter() - start, workload.SENT[0] - sent
    )
    if out["ops"] != N:
        raise AssertionError(f"{out['ops']} of {N} lookups answered")
    out["requests_per_1000"] = 1000 * out["requests"] / out["ops"]
    return out


def read_hits(client: Any, ids: list[str], how: str) -> int:
    """Read `ids` by `how` (a ``get`` each, or one ``mget``), revived as the
    cache does; the number of hits."""
    if how == "get":
        docs = [
            client.get(index=INDEX, id=doc_id, source_includes=LOOKUP_FIELDS)
            for doc_id in ids
        ]
    else:
        docs = client.mget(index=INDEX, ids=ids, source_includes=LOOKUP_FIELDS)["docs"]
    for doc in docs:
        if parse_generations(doc["_source"], index=INDEX, key=doc["_id"]) is None:
            raise AssertionError("a hit missed")
    return len(docs)


def get_or_mget_of_one(client: Any, prompts: list[str]) -> dict[str, float]:
    """Hits per second of one thread reading one id a request, by ``get`` and
    by ``mget``, taking turns in blocks of 25 so that both meet the same load."""
    ids = [llm_key(p, workload.LLM_STRING) for p in prompts]
    spent = {"get": 0.0, "mget of 1": 0.0}
    done = 0
    while done < N:
        for how in spent:
            start = time.perf_counter()
            for j in range(25):
                read_hits(client, [ids[(done + j) % len(ids)]], how.split(" ")[0])
            spent[how] += time.perf_counter() - start
        done += 25
    return {how: done / seconds for how, seconds in spent.items()}


def batched(client: Any, size: int, prompts: list[str]) -> float:
    """Hits per second of one thread reading `size` ids per ``mget``."""
    ids = [llm_key(p, workload.LLM_STRING) for p in prompts]
    done = 0
    start = time.perf_counter()
    while done < N:
        done += read_hits(
            client, [ids[(done + j) % len(ids)] for j in range(size)], "mget"
        )
    return done / (time.perf_counter() - start)


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(run[key] for run in runs)
        for key in ("ops_per_s", "p50_ms", "p99_ms", "requests_per_1000")
    } | {"runs": runs}


def markdown(results: dict[str, Any]) -> str:
    threads = results["threads"]
    head = " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in THREADS)
    lines = [
        "# Threads on one sync cache: coalesced reads against one request per call",
        "",
        "Written by `benchmarks/threads.py`; do not edit by hand.",
        "",
        f"- run: {results['when']}, {results['machine']}",
        f"- {N:,} lookup hits a row, one `ElasticsearchCache`; medians of "
        f"{results['rounds']} rounds, the two modes taking turns",
        "",
        f"| sync class, lookup hits | {head} |",
        "|---|" + "--:|" * len(THREADS),
    ]
    for mode in MODES:
        rows = [threads[mode][str(t)] for t in THREADS]
        lines.append(
            f"| {mode}: hits/s | "
            + " | ".join(f"{r['ops_per_s']:,.0f}" for r in rows)
            + " |"
        )
        lines.append(
            f"| {mode}: p50 / p99 ms | "
            + " | ".join(f"{r['p50_ms']:.2f} / {r['p99_ms']:,.2f}" for r in rows)
            + " |"
        )
        lines.append(
            f"| {mode}: requests per 1,000 lookups | "
            + " | ".join(f"{r['requests_per_1000']:,.0f}" for r in rows)
            + " |"
        )
    lines += [
        "",
        "One thread alone, hits revived as the cache does (`get` and `mget` of 1"
        " taking turns in blocks of 25):",
        "",
        "| read | hits/s |",
        "|---|--:|",
    ]
    for how in ONE_THREAD:
        lines.append(f"| {how} | {results['one_thread'][how]['median']:,.0f} |")
    get = results["one_thread"]["get"]["median"]
    mget1 = results["one_thread"]["mget of 1"]["median"]
    lines += ["", f"`mget` of 1 / `get`: {mget1 / get:.2f} x", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    workload.count_requests()
    client = workload.raw_client()
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    cache = ElasticsearchCache(INDEX, **workload.es_settings())
    coalescer = cache._reads
    alone = OneRequestPerCall(cache._send_reads)
    prompts = [workload.prompt("threads", i) for i in range(500)]
    for p in prompts:
        cache.update(p, workload.LLM_STRING, [workload.generation()])
    workload.refresh(INDEX)
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        mode: {t: [] for t in THREADS} for mode in MODES
    }
    alone_runs: dict[str, list[float]] = {how: [] for how in ONE_THREAD}
    try:
        for round_ in range(args.rounds):
            # Each mode goes first in every other round: neither gains from
            # the order (caches warming, the machine's other load).
            order = MODES if round_ % 2 == 0 else MODES[::-1]
            for threads in THREADS:
                for mode in order:
                    cache._reads = coalescer if mode == "coalesced" else alone  # type: ignore[assignment]
                    r = lookups(cache, threads, prompts)
                    runs[mode][threads].append(r)
                    print(
                        f"{mode}, {threads:2d} threads: {r['ops_per_s']:7.0f} hits/s,"
                        f" p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                        f"{r['requests_per_1000']:.0f} requests / 1,000"
                    )
            rates = get_or_mget_of_one(client, prompts)
            for size in (16, 64):
                rates[f"mget of {size}"] = batched(client, size, prompts)
            for how in ONE_THREAD:
                alone_runs[how].append(rates[how])
                print(f"one thread, {how}: {rates[how]:7.0f} hits/s")
    finally:
        cache._reads = coalescer
        cache.close()
        client.indices.delete(index=INDEX, ignore_unavailable=True)
        client.close()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"elasticsearch-py {elasticsearch.__versionstr__}",
        "n": N,
        "rounds": args.rounds,
        "threads": {
            mode: {str(t): median_row(runs[mode][t]) for t in THREADS} for mode in MODES
        },
        "one_thread": {
            how: {"median": statistics.median(rates), "runs": rates}
            for how, rates in alone_runs.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "threads.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "threads.md").write_text(markdown(results))
    print(f"written {args.out / 'threads.md'}")


if __name__ == "__main__":
    main()
