"""Does coalescing pay for the sync class? Threads on one cache, measured.

Run with ES_URL and credentials in the environment (``source`` the same
settings as the tests)::

    python benchmarks/threads.py

For 1, 16 and 64 threads sharing one `ElasticsearchCache`: lookup-hit
throughput, p50/p99 and requests per 1,000 lookups, each call its own
request (what the sync class does). Then the best cross-thread batching could
do: one thread reading the same documents through `mget`s of as many ids as
there are threads (no waiting, no hand-off between threads): if even that is
not much faster, batching across threads does not pay.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import workload

from langchain_es_cache import ElasticsearchCache
from langchain_es_cache._common.keys import llm_key
from langchain_es_cache._common.mappings import LOOKUP_FIELDS

N = 4000
INDEX = "bench-threads"


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
    out["requests_per_1000"] = 1000 * out["requests"] / out["ops"]
    return out


def batched(client: Any, size: int, prompts: list[str]) -> float:
    """Hits per second of one thread reading `size` ids per mget, revived as
    the cache does."""
    from langchain_es_cache._common.documents import parse_generations

    ids = [llm_key(p, workload.LLM_STRING) for p in prompts]
    done = 0
    start = time.perf_counter()
    while done < N:
        chunk = [ids[(done + j) % len(ids)] for j in range(size)]
        docs = client.mget(index=INDEX, ids=chunk, source_includes=LOOKUP_FIELDS)[
            "docs"
        ]
        for doc in docs:
            if parse_generations(doc["_source"], index=INDEX, key=doc["_id"]) is None:
                raise AssertionError("a hit missed")
        done += size
    return done / (time.perf_counter() - start)


def main() -> None:
    workload.count_requests()
    client = workload.raw_client()
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    cache = ElasticsearchCache(INDEX, **workload.es_settings())
    prompts = [workload.prompt("threads", i) for i in range(500)]
    for p in prompts:
        cache.update(p, workload.LLM_STRING, [workload.generation()])
    workload.refresh(INDEX)
    try:
        for threads in (1, 16, 64):
            r = lookups(cache, threads, prompts)
            print(
                f"sync, {threads:2d} threads: {r['ops_per_s']:7.0f} hits/s, p50 "
                f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                f"{r['requests_per_1000']:.0f} requests / 1,000"
            )
        for size in (16, 64):
            rate = batched(client, size, prompts)
            print(f"one thread, mget of {size}: {rate:7.0f} hits/s")
    finally:
        cache.close()
        client.indices.delete(index=INDEX, ignore_unavailable=True)
        client.close()


if __name__ == "__main__":
    main()
