"""The graph cache classes from the other kind of code, and from another process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

# LangGraph is optional: without it (as with langchain-core 0.3.0, which LangGraph
# cannot run with), these tests are skipped and test_graph_optional.py runs.
pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")

from langchain_es_cache import AsyncElasticsearchGraphCache, ElasticsearchGraphCache
from tests import graphs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_runs() -> None:
    graphs.RUNS.clear()


async def test_sync_class_serves_async_graphs_off_the_event_loop(
    api_key_settings: dict[str, Any],
    index_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: dict[str, set[int]] = {"get": set(), "set": set(), "clear": set()}
    for name in threads:
        method = getattr(ElasticsearchGraphCache, name)

        def spy(self: Any, *args: Any, _m: Any = method, _n: str = name) -> Any:
            threads[_n].add(threading.get_ident())
            return _m(self, *args)

        monkeypatch.setattr(ElasticsearchGraphCache, name, spy)
    with ElasticsearchGraphCache(index_name, **api_key_settings) as cache:
        graph = graphs.build(cache)
        assert await graph.ainvoke({"x": 3}) == {"x": 3, "y": 9}
        assert await graph.ainvoke({"x": 3}) == {"x": 3, "y": 9}
        assert graphs.RUNS == [3]
        await graph.aclear_cache()
        assert await graph.ainvoke({"x": 3}) == {"x": 3, "y": 9}
        assert graphs.RUNS == [3, 3]
    loop_thread = threading.get_ident()
    assert all(threads.values())
    assert not any(loop_thread in seen for seen in threads.values())


def test_async_class_from_sync_code_names_the_sync_class(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    cache = AsyncElasticsearchGraphCache(index_name, **api_key_settings)
    with pytest.raises(
        TypeError, match="Use ElasticsearchGraphCache for sync or mixed"
    ):
        graphs.build(cache).invoke({"x": 1})
    assert graphs.RUNS == []
    for name, call in (
        ("get", lambda: cache.get([(("n",), "k")])),
        ("set", lambda: cache.set({(("n",), "k"): (1, None)})),
        ("clear", lambda: cache.clear()),
    ):
        with pytest.raises(
            TypeError,
            match=rf"AsyncElasticsearchGraphCache is async-only, but {name}\(\) was "
            rf"called from sync code .*Use ElasticsearchGraphCache .*a{name}\(\)",
        ):
            call()
    asyncio.run(cache.aclose())


CHILD = """
import asyncio, json, sys
from langchain_es_cache import AsyncElasticsearchGraphCache
from tests import graphs

async def main():
    settings = json.loads(sys.argv[2])
    async with AsyncElasticsearchGraphCache(sys.argv[1], **settings) as cache:
        result = await graphs.build(cache).ainvoke({"x": 7})
        hits = cache.stats().hits
    print(json.dumps({"result": result, "runs": graphs.RUNS, "hits": hits}))

asyncio.run(main())
"""


def test_a_second_process_sees_the_entry(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    with ElasticsearchGraphCache(index_name, **api_key_settings) as cache:
        assert graphs.build(cache).invoke({"x": 7}) == {"x": 7, "y": 49}
    assert graphs.RUNS == [7]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, index_name, json.dumps(api_key_settings)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == {
        "result": {"x": 7, "y": 49},
        "runs": [],
        "hits": 1,
    }
