"""LangGraph node caches side by side: get and set of batches of 1, 16 and 256 keys.

Run by ``nox -s bench_graph`` (a session of its own: the main ``nox -s bench``
takes about 10 minutes); by hand, with langgraph-checkpoint-sqlite and redis
installed::

    python benchmarks/graph.py

Contenders: ours (``ElasticsearchGraphCache``, and ``AsyncElasticsearchGraphCache``
awaited one call at a time) against one Elasticsearch node (ES_URL's, else one
started for the run), LangGraph's ``InMemoryCache``, ``SqliteCache`` (a file in
a temporary directory) and ``RedisCache`` (a loopback ``redis-server``, started
as for ``nox -s bench``). Each value is what LangGraph caches for a node: its
writes, here one ~1 KB chat message with metadata. Rounds alternate the order;
a get reads keys set before timing, a set writes keys never written. Writes
``benchmarks/results/graph.{json,md}`` and the README's table between its
``bench-graph`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "utils"))
sys.path.insert(0, str(HERE))

import es_server  # noqa: E402
import run  # noqa: E402
import workload  # noqa: E402

README_START = "<!-- bench-graph:start -->"
README_END = "<!-- bench-graph:end -->"
BATCHES = (1, 16, 256)
NAMESPACE = ("__pregel_ns_writes", "app.graph.answer", "answer")
"""Shaped like the namespace LangGraph gives a node's entries."""

LABELS = {
    "ours-sync": "ours ElasticsearchGraphCache",
    "ours-async": "ours AsyncElasticsearchGraphCache (awaited)",
    "sqlite": "LangGraph SqliteCache (file)",
    "redis": "LangGraph RedisCache (loopback)",
    "inmemory": "LangGraph InMemoryCache",
}
PACKAGES = [
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "redis",
    "elasticsearch",
]


def log(message: str) -> None:
    print(f"[bench-graph {time.strftime('%H:%M:%S')}] {message}", flush=True)


def node_writes(i: int) -> list[tuple[str, Any]]:
    """What LangGraph caches for a node: its writes, one ~1 KB chat message."""
    return [("messages", [workload.generation(i).message])]


def full_key(tag: str, i: int) -> tuple[tuple[str, ...], str]:
    return NAMESPACE, f"{tag}-{i:08d}-{'0' * 16}"


class Contender:
    """One cache, its get and set as awaitables (sync ones are wrapped)."""

    def __init__(self, name: str, cache: Any, asynchronous: bool) -> None:
        self.name = name
        self.cache = cache
        self.asynchronous = asynchronous
        self.written = 0

    async def get(self, keys: list[Any]) -> dict[Any, Any]:
        if self.asynchronous:
            return await self.cache.aget(keys)
        return self.cache.get(keys)

    async def set(self, pairs: dict[Any, Any]) -> None:
        self.written += len(pairs)
        if self.asynchronous:
            await self.cache.aset(pairs)
        else:
            self.cache.set(pairs)


def build(
    name: str, stack: ExitStack, conn: es_server.Connection, redis_url: str | None
) -> Contender:
    if name == "ours-sync":
        from langchain_es_cache import ElasticsearchGraphCache

        cache = stack.enter_context(
            ElasticsearchGraphCache("bench-graph-sync", **conn.cache_settings())
        )
        return Contender(name, cache, False)
    if name == "ours-async":
        from langchain_es_cache import AsyncElasticsearchGraphCache

        cache = AsyncElasticsearchGraphCache(
            "bench-graph-async", **conn.cache_settings()
        )
        return Contender(name, cache, True)
    if name == "sqlite":
        from langgraph.cache.sqlite import SqliteCache

        folder = stack.enter_context(tempfile.TemporaryDirectory())
        return Contender(name, SqliteCache(path=f"{folder}/cache.db"), False)
    if name == "redis":
        import redis
        from langgraph.cache.redis import RedisCache

        client = redis.Redis.from_url(redis_url)
        stack.callback(client.close)
        return Contender(name, RedisCache(client, prefix="bench-graph:"), False)
    if name == "inmemory":
        from langgraph.cache.memory import InMemoryCache

        return Contender(name, InMemoryCache(), False)
    raise ValueError(name)


async def timed(
    call: Callable[[int], Awaitable[Any]], n: int, cap_s: float
) -> dict[str, float]:
    """Run ``call(i)`` up to `n` times (at most `cap_s` seconds); latency figures."""
    latencies: list[float] = []
    deadline = time.perf_counter() + cap_s
    for i in range(n):
        start = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    latencies.sort()
    total = sum(latencies)
    return {
        "ops": len(latencies),
        "ops_per_s": len(latencies) / total,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


async def measure(
    contender: Contender, tag: str, n: int, cap_s: float
) -> dict[str, Any]:
    """Set and get figures for each batch size, for one round of one contender."""
    figures: dict[str, Any] = {}
    for size in BATCHES:
        # Keys read by the gets, written before timing.
        pool = n * size if size == 1 else min(n * size, 20 * 256)
        keys = [full_key(f"{tag}-get{size}", i) for i in range(pool)]
        for start in range(0, pool, 256):
            await contender.set(
                {
                    key: (node_writes(i), None)
                    for i, key in enumerate(keys[start : start + 256])
                }
            )
        batches = [keys[i : i + size] for i in range(0, pool, size)]

        async def get(i: int, batches: list[Any] = batches, size: int = size) -> None:
            found = await contender.get(batches[i % len(batches)])
            if len(found) != size:
                raise RuntimeError(f"{contender.name}: {len(found)} of {size} found")

        values = [(node_writes(i), None) for i in range(size)]

        async def put(i: int, size: int = size, values: Any = values) -> None:
            await contender.set(
                {
                    full_key(f"{tag}-set{size}-{i}", j): value
                    for j, value in enumerate(values)
                }
            )

        figures[f"get{size}"] = await timed(get, n, cap_s)
        figures[f"set{size}"] = await timed(put, n, cap_s)
    return figures


def orders(names: list[str], rounds: int) -> Iterator[list[str]]:
    for r in range(rounds):
        shift = (r // 2) % len(names)
        rotated = names[shift:] + names[:shift]
        yield rotated if r % 2 == 0 else rotated[::-1]


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    names = [n for n in LABELS if not args.contenders or n in args.contenders]
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with ExitStack() as stack:
        redis_url, redis_version = stack.enter_context(run.redis_server())
        if redis_url is None:
            names.remove("redis")
            raw.pop("redis")
        conn = stack.enter_context(es_server.cluster(name="bench"))
        admin = run.es_client(conn)
        stack.callback(admin.close)
        for index in ("bench-graph-sync", "bench-graph-async"):
            admin.indices.delete(index=index, ignore_unavailable=True)
            stack.callback(admin.indices.delete, index=index, ignore_unavailable=True)
        contenders = {name: build(name, stack, conn, redis_url) for name in names}
        load_start = os.getloadavg()[0]
        log("warm-up (untimed)")
        for contender in contenders.values():
            await measure(contender, "warm", 20, 1.0)
        for r, order in enumerate(orders(names, args.rounds)):
            for name in order:
                log(f"round {r + 1}/{args.rounds}: {name}")
                figures = await measure(contenders[name], f"r{r}", args.n, args.cap)
                raw[name].append(figures)
                log(
                    "  "
                    + ", ".join(f"{k} {v['p50_ms']:.3g} ms" for k, v in figures.items())
                )
        async_cache = contenders.get("ours-async")
        if async_cache is not None:
            await async_cache.cache.aclose()
        machine = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"
            ),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "es_version": run.es_version(admin),
            "redis_server": redis_version,
            "load_1min": [load_start, os.getloadavg()[0]],
            "entries_written": {n: c.written for n, c in contenders.items()},
            "packages": {p: version(p) for p in PACKAGES},
        }
    summary = {
        name: {
            op: {
                "ops_per_s": statistics.median(r[op]["ops_per_s"] for r in rounds),
                "p50_ms": statistics.median(r[op]["p50_ms"] for r in rounds),
                "p99_ms": statistics.median(r[op]["p99_ms"] for r in rounds),
            }
            for op in rounds[0]
        }
        for name, rounds in raw.items()
        if rounds
    }
    return {
        "machine": machine,
        "settings": {"rounds": args.rounds, "n": args.n, "cap_s": args.cap},
        "labels": {name: LABELS[name] for name in summary},
        "raw": raw,
        "summary": summary,
        "elapsed_s": time.monotonic() - started,
    }


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    packages = m["packages"]
    lines = [
        f"Measured {m['date']} on {m['cpu_count']} cores, Python {m['python']}; "
        f"Elasticsearch {m['es_version']} (one local node); langgraph "
        f"{packages['langgraph']}, langgraph-checkpoint "
        f"{packages['langgraph-checkpoint']}, langgraph-checkpoint-sqlite "
        f"{packages['langgraph-checkpoint-sqlite']}, redis-py {packages['redis']} "
        f"with {m['redis_server']} on loopback. {s['rounds']} rounds in "
        f"alternating order, up to {s['n']:,} calls per contender, operation and "
        f"round (at most {s['cap_s']:g} s each); medians over rounds. Each value "
        "is a node's writes holding one ~1 KB chat message. Load average "
        f"(1 min) {m['load_1min'][0]:.1f} at the start, {m['load_1min'][1]:.1f} "
        f"at the end; the fullest store held {max(m['entries_written'].values()):,} "
        f"entries by the end. Whole run: {result['elapsed_s'] / 60:.1f} min.",
        "",
        "p50 milliseconds per call (one call gets or sets the whole batch); "
        "p99 after the slash:",
        "",
        "| contender | "
        + " | ".join(f"get {b}" for b in BATCHES)
        + " | "
        + " | ".join(f"set {b}" for b in BATCHES)
        + " |",
        "|---|" + "--:|" * (2 * len(BATCHES)),
    ]
    for name, figures in result["summary"].items():
        cells = [
            f"{figures[f'{op}{b}']['p50_ms']:.3g} / {figures[f'{op}{b}']['p99_ms']:.3g}"
            for op in ("get", "set")
            for b in BATCHES
        ]
        lines.append(f"| {result['labels'][name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Keys per second (batch size x calls per second):",
        "",
        "| contender | "
        + " | ".join(f"get {b}" for b in BATCHES)
        + " | "
        + " | ".join(f"set {b}" for b in BATCHES)
        + " |",
        "|---|" + "--:|" * (2 * len(BATCHES)),
    ]
    for name, figures in result["summary"].items():
        cells = [
            f"{figures[f'{op}{b}']['ops_per_s'] * b:,.0f}"
            for op in ("get", "set")
            for b in BATCHES
        ]
        lines.append(f"| {result['labels'][name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(result: dict[str, Any], out_dir: Path, readme: Path | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "graph.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out_dir / "graph.md").write_text("# LangGraph cache benchmark\n\n" + table)
    if readme is not None and readme.is_file():
        text = readme.read_text()
        if README_START in text and README_END in text:
            head, rest = text.split(README_START, 1)
            _, tail = rest.split(README_END, 1)
            readme.write_text(f"{head}{README_START}\n{table}{README_END}{tail}")
            log("README table updated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=300, help="calls per op and round")
    parser.add_argument("--cap", type=float, default=3.0, help="seconds per phase")
    parser.add_argument(
        "--contenders", type=lambda s: s.split(","), help="comma-separated subset"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run_all(args))
    write_outputs(result, args.out, None if args.no_readme else ROOT / "README.md")
    print(markdown(result))
    log(f"done in {result['elapsed_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
