"""Bursts of identical prompts: what ``single_flight`` saves, against the others.

Run by ``run.py`` (``nox -s bench``, or only this with ``nox -s
bench_single_flight``). `PROCESSES` worker processes, each with its own cache
object, start `CALLERS` tasks at the same wall-clock instant, all asking one
new prompt through a chat model whose call takes `MODEL_SECONDS`. Measured:
model calls made, and each caller's time from that instant to its answer. A
second measurement counts the requests this library sends per miss and per hit
when every prompt is distinct, with ``single_flight`` off and on.

The worker side (`run_burst`, `measure_requests`) runs in either environment
and imports each contender's package only when building it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import PrivateAttr

PROCESSES = 4
CALLERS = 16
MODEL_SECONDS = 1.0
SINGLE_FLIGHT = 10.0
"""The claim's period for ``ours-on``: longer than the model's call."""
START_DELAY = 3.0
"""Seconds between the driver's go and the burst: every process is ready."""

CONTENDERS = {
    "ours-off": ("bench", "ours AsyncElasticsearchCache, single_flight off"),
    "ours-on": (
        "bench",
        f"ours AsyncElasticsearchCache, single_flight={SINGLE_FLIGHT:g}",
    ),
    "ref": ("reference", "langchain-elasticsearch AsyncElasticsearchCache"),
    "redis": ("bench", "langchain-redis RedisCache"),
}


class SlowChat(BaseChatModel):
    """A chat model whose call takes `delay` seconds; counts its calls."""

    delay: float = MODEL_SECONDS
    _calls: int = PrivateAttr(default=0)

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def _llm_type(self) -> str:
        return "slow-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": "slow-1"}

    def _result(self) -> ChatResult:
        self._calls += 1
        from workload import generation

        return ChatResult(generations=[generation()])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any
    ) -> ChatResult:
        time.sleep(self.delay)
        return self._result()

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any
    ) -> ChatResult:
        await asyncio.sleep(self.delay)
        return self._result()


def request_kind(method: str, path: str) -> str:
    """What one of our requests is, from its method and path."""
    if path.endswith("/_mget"):
        return "mget (poll)"
    if path.endswith("/_bulk"):
        return "bulk (entry + claim delete)"
    if "/_doc/" in path:
        if method == "GET":
            return "get"
        return "claim write" if path.endswith(".claim") else "index"
    return "other"


def counting_client(counts: Counter[str]) -> Any:
    """An async client for the bench cluster that counts its requests by kind."""
    import workload
    from elasticsearch import AsyncElasticsearch

    class Counting(AsyncElasticsearch):
        async def perform_request(self, method: str, path: str, **kwargs: Any) -> Any:
            counts[request_kind(method, path)] += 1
            return await super().perform_request(method, path, **kwargs)

    return workload.raw_client(asynchronous=True, cls=Counting)


def warm(name: str) -> str:
    """Import the contender's packages, so that no burst waits for an import."""
    import workload  # noqa: F401

    if name.startswith("ours-"):
        import langchain_es_cache  # noqa: F401
    elif name == "ref":
        import langchain_elasticsearch  # noqa: F401
    elif name == "redis":
        import langchain_redis  # noqa: F401
    return name


def build(name: str, index: str, redis_url: str | None, counts: Counter[str]) -> Any:
    """The contender's cache object."""
    import workload

    if name.startswith("ours-"):
        from langchain_es_cache import AsyncElasticsearchCache

        return AsyncElasticsearchCache(
            index,
            client=counting_client(counts),
            single_flight=SINGLE_FLIGHT if name == "ours-on" else None,
        )
    if name == "ref":
        import langchain_elasticsearch as ref

        return ref.AsyncElasticsearchCache(index, client=workload.raw_client(True))
    if name == "redis":
        from langchain_redis import RedisCache

        return RedisCache(redis_url=redis_url, prefix=index)
    raise ValueError(f"unknown burst contender {name}")


async def prepare(name: str, index: str) -> str:
    """Create the contender's index, before any burst."""
    if name != "redis":
        cache = build(name, index, None, Counter())
        try:
            await cache.is_alias()
        finally:
            await _close(name, cache)
    return index


async def _close(name: str, cache: Any) -> None:
    if name.startswith("ours-"):
        await cache._client.close()
    elif name == "ref":
        await cache._es_client.close()


async def run_burst(
    name: str,
    index: str,
    tag: str,
    start_at: float,
    redis_url: str | None = None,
    callers: int = CALLERS,
    delay: float = MODEL_SECONDS,
) -> dict[str, Any]:
    """`callers` tasks ask one prompt at wall-clock `start_at`; seconds to answer."""
    from workload import question

    counts: Counter[str] = Counter()
    cache = build(name, index, redis_url, counts)
    model = SlowChat(cache=cache, delay=delay)
    if name != "redis":
        await cache.is_alias()  # the index, and a connection
    counts.clear()
    prompt = question(tag, 0)
    late = start_at - time.time()
    if late > 0:
        await asyncio.sleep(late)

    async def ask() -> float:
        await model.ainvoke(prompt)
        return time.time() - start_at

    try:
        seconds = await asyncio.gather(*(ask() for _ in range(callers)))
    finally:
        await _close(name, cache)
    return {
        "calls": model.calls,
        "seconds": list(seconds),
        "late_s": max(0.0, -late),
        "requests": dict(counts),
    }


def measure_requests(index: str, n: int = 200) -> dict[str, Any]:
    """Requests per miss (lookup and update) and per hit, every prompt distinct."""
    return asyncio.run(_measure_requests(index, n))


async def _measure_requests(index: str, n: int) -> dict[str, Any]:
    from workload import LLM_STRING, generation, prompt

    out: dict[str, Any] = {}
    for name in ("ours-off", "ours-on"):
        counts: Counter[str] = Counter()
        cache = build(name, f"{index}-{name}", None, counts)
        try:
            await cache.is_alias()
            prompts = [prompt(f"req-{name}", i) for i in range(n)]
            counts.clear()
            miss_s = []
            for p in prompts:
                t0 = time.perf_counter()
                if await cache.alookup(p, LLM_STRING) is not None:
                    raise AssertionError("a distinct prompt hit")
                await cache.aupdate(p, LLM_STRING, [generation()])
                miss_s.append(time.perf_counter() - t0)
            misses = dict(counts)
            counts.clear()
            hit_s = []
            for p in prompts:
                t0 = time.perf_counter()
                if await cache.alookup(p, LLM_STRING) is None:
                    raise AssertionError("a stored prompt missed")
                hit_s.append(time.perf_counter() - t0)
            hits = dict(counts)
        finally:
            await cache._client.close()
        out[name] = {
            "n": n,
            "per_miss": {k: v / n for k, v in misses.items()},
            "per_hit": {k: v / n for k, v in hits.items()},
            "miss_and_update_p50_ms": statistics.median(miss_s) * 1000,
            "hit_p50_ms": statistics.median(hit_s) * 1000,
        }
    return out


# --- driver side -----------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_rounds(
    workers: dict[str, list[Any]],
    client: Any,
    redis_url: str | None,
    rounds: int,
    log: Any,
) -> dict[str, Any]:
    """Every contender's burst, `rounds` times in alternating order."""
    names = [n for n in CONTENDERS if CONTENDERS[n][0] in workers]
    if redis_url is None:
        names = [n for n in names if n != "redis"]
    raw: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for name in names:
        for worker in workers[CONTENDERS[name][0]]:
            worker.call(cmd="burst_warm", contender=name)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            env = CONTENDERS[name][0]
            index = f"bench-burst-{name}-{r}"
            client.indices.delete(index=index, ignore_unavailable=True)
            # One process creates the index: langchain-elasticsearch's index
            # creation fails when several processes race it.
            workers[env][0].call(cmd="burst_prepare", contender=name, index=index)
            start_at = time.time() + START_DELAY
            with ThreadPoolExecutor(PROCESSES) as pool:
                futures = [
                    pool.submit(
                        worker.call,
                        cmd="burst",
                        contender=name,
                        index=index,
                        tag=f"burst-{r}",
                        start_at=start_at,
                        redis_url=redis_url,
                    )
                    for worker in workers[env][:PROCESSES]
                ]
                results = [f.result() for f in futures]
            client.indices.delete(index=index, ignore_unavailable=True)
            seconds = [s for res in results for s in res["seconds"]]
            requests: Counter[str] = Counter()
            for res in results:
                requests.update(res["requests"])
            entry = {
                "calls": sum(res["calls"] for res in results),
                "callers": len(seconds),
                "p50_s": _pct(seconds, 0.5),
                "p99_s": _pct(seconds, 0.99),
                "max_s": max(seconds),
                "late_s": max(res["late_s"] for res in results),
                "requests": dict(requests),
            }
            raw[name].append(entry)
            log(f"  burst {name} round {r + 1}: {entry}")
    summary = {}
    for name, entries in raw.items():
        summary[name] = {
            "label": CONTENDERS[name][1],
            "rounds": len(entries),
            "calls": [e["calls"] for e in entries],
            "callers": entries[0]["callers"],
            "p50_s": statistics.median(e["p50_s"] for e in entries),
            "p99_s": statistics.median(e["p99_s"] for e in entries),
            "max_s": max(e["max_s"] for e in entries),
            "late_s": max(e["late_s"] for e in entries),
            "requests": entries[-1]["requests"],
        }
    return {"raw": raw, "summary": summary}


def markdown(result: dict[str, Any]) -> str:
    """The burst and request tables of a run."""
    m = result["machine"]
    clients = m["clients"]
    packages = ", ".join(
        f"{name} {version}"
        for env in clients.values()
        for name, version in env.items()
        if name in ("langchain-es-cache", "langchain-elasticsearch", "langchain-redis")
    )
    lines = [
        f"Measured {m['date']} on {m['cpu_count']} cores ({m['processor']}), "
        f"Python {m['python']}; Elasticsearch {m['es_version']} (one node); "
        f"{m['redis_server']} on loopback; {packages}.",
        "",
        f"{PROCESSES} processes x {CALLERS} concurrent callers ask one new prompt at "
        f"the same instant, through a chat model whose call takes {MODEL_SECONDS:g} s; "
        f"{result['rounds']} rounds per contender, medians over rounds. Time to "
        "answer is from that instant to each caller's answer.",
        "",
        "| contender | model calls (each round) | p50 s | p99 s | max s "
        "| p99 / model |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for s in result["burst"]["summary"].values():
        calls = ", ".join(str(c) for c in s["calls"])
        lines.append(
            f"| {s['label']} | {calls} | {s['p50_s']:.3f} | {s['p99_s']:.3f} | "
            f"{s['max_s']:.3f} | {s['p99_s'] / MODEL_SECONDS:.2f}x |"
        )
    on = result["burst"]["summary"].get("ours-on")
    if on:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(on["requests"].items()))
        lines += [
            "",
            f"Requests of the last single_flight round, all {PROCESSES} "
            f"processes: {shown}.",
        ]
    req = result.get("requests")
    if req:
        lines += [
            "",
            f"Requests per operation when every prompt is distinct "
            f"({req['ours-off']['n']} prompts, one at a time):",
            "",
            "| single_flight | per miss (lookup + update) | per hit | "
            "miss + update p50 ms | hit p50 ms |",
            "|---|---|---|--:|--:|",
        ]
        for name, label in (("ours-off", "off"), ("ours-on", "on")):
            r = req[name]

            def show(counts: dict[str, float]) -> str:
                total = sum(counts.values())
                parts = ", ".join(f"{v:g} {k}" for k, v in sorted(counts.items()))
                return f"{total:g} ({parts})"

            lines.append(
                f"| {label} | {show(r['per_miss'])} | {show(r['per_hit'])} | "
                f"{r['miss_and_update_p50_ms']:.2f} | {r['hit_p50_ms']:.2f} |"
            )
    return "\n".join(lines) + "\n"
