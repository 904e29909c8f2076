"""single_flight across processes, each with its own cache object."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from langchain_es_cache import ElasticsearchCache
from langchain_es_cache._common.documents import parse_timestamp
from langchain_es_cache._common.single_flight import CLAIM_NAMESPACE
from tests.models import SlowChatModel
from tests.twins import GUARD_SECONDS, wait_until
from utils import es_server

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "What is the capital of France?"
PROCESSES = 4


def start(es_conn: es_server.Connection, **args: Any) -> subprocess.Popen[str]:
    env = dict(os.environ, ES_URL=es_conn.url)
    for name in ("ES_API_KEY", "ES_USER", "ES_PASSWORD"):
        env.pop(name, None)
    if es_conn.api_key:
        env["ES_API_KEY"] = es_conn.api_key
    else:
        env["ES_USER"] = es_conn.user or "elastic"
        env["ES_PASSWORD"] = es_conn.password or ""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.flight_worker", json.dumps(args)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"worker exited with {proc.wait(timeout=60)}"
    return line.strip()


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


def claims(admin: Elasticsearch, index: str) -> list[Any]:
    """The claims in `index`, which may not exist yet.

    An index just created answers 503 until its shard has started: that is
    waited for (cluster health, at most `GUARD_SECONDS`), then asked again; a
    503 that persists fails the test.
    """

    def search() -> list[Any]:
        admin.indices.refresh(index=index, ignore_unavailable=True)
        found = admin.search(
            index=index,
            query={"term": {"namespace": CLAIM_NAMESPACE}},
            ignore_unavailable=True,
        )
        return list(found["hits"]["hits"])

    try:
        return search()
    except ApiError as exc:
        if exc.meta.status != 503:
            raise
    health = admin.options(request_timeout=GUARD_SECONDS + 10).cluster.health(
        index=index, wait_for_status="yellow", timeout=f"{GUARD_SECONDS:.0f}s"
    )
    assert not health["timed_out"], f"{index}'s shard did not start: {health}"
    return search()


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_burst_across_processes_calls_the_model_once(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    workers: list[subprocess.Popen[str]],
    kind: str,
) -> None:
    callers = 8
    args = {
        "mode": "burst",
        "kind": kind,
        "index": index_name,
        "prompt": PROMPT,
        "callers": callers,
        "delay": 0.5,
        "single_flight": 30,
    }
    workers.extend(start(es_conn, **args) for _ in range(PROCESSES))
    for proc in workers:
        assert read_line(proc) == "ready"
    for proc in workers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(read_line(proc)) for proc in workers]
    assert sum(r["calls"] for r in reports) == 1
    answers = [a for r in reports for a in r["answers"]]
    assert answers == [SlowChatModel().answer] * (PROCESSES * callers)
    assert sum(r["coalesced"] for r in reports) == PROCESSES * callers - 1
    assert claims(admin, index_name) == []


def test_claimer_killed_is_replaced_by_one_caller(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    workers: list[subprocess.Popen[str]],
) -> None:
    """A process claims the key and is killed (SIGKILL) before answering: the
    callers waiting for it go on when its claim expires, with one model call."""
    proc = start(
        es_conn, mode="claim", index=index_name, prompt=PROMPT, single_flight=3
    )
    workers.append(proc)
    assert read_line(proc) == "asking"
    wait_until(lambda: len(claims(admin, index_name)) == 1)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    (claim,) = claims(admin, index_name)
    expires = parse_timestamp({"timestamp": claim["_source"]["claim_expires"]})
    assert expires is not None and expires > datetime.now(timezone.utc)

    cache = ElasticsearchCache(index_name, client=admin, single_flight=30)
    model = SlowChatModel(cache=cache, delay=0.1)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: model.invoke(PROMPT).content, range(8)))
    assert answers == [model.answer] * 8
    assert model.calls == 1
    stats = cache.stats()
    assert (stats.misses, stats.coalesced) == (1, 7)
    assert claims(admin, index_name) == []
