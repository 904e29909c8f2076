"""One async cache object serving several event loops, in turn and at once.

Plain tests (not generated): the sync classes have no event loops.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    CacheStats,
)

LLM = "model=loops-1"


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


class ClientCount:
    """Counts the clients created and closed while it is installed."""

    def __init__(self) -> None:
        self.created = 0
        self.closed = 0
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        init, close = AsyncElasticsearch.__init__, AsyncElasticsearch.close

        def counting_init(client: AsyncElasticsearch, *args: Any, **kw: Any) -> None:
            init(client, *args, **kw)
            if "_transport" not in kw:  # options() copies share the transport
                with self._lock:
                    self.created += 1

        async def counting_close(client: AsyncElasticsearch) -> None:
            with self._lock:
                self.closed += 1
            await close(client)

        monkeypatch.setattr(AsyncElasticsearch, "__init__", counting_init)
        monkeypatch.setattr(AsyncElasticsearch, "close", counting_close)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> ClientCount:
    counter = ClientCount()
    counter.install(monkeypatch)
    return counter


@pytest.fixture
def no_leaks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if a client session or connector was left unclosed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            yield
            gc.collect()
    leaks = [str(w.message) for w in caught if "Unclosed" in str(w.message)]
    leaks += [r.getMessage() for r in caplog.records if "Unclosed" in r.getMessage()]
    assert leaks == []


@pytest.mark.parametrize("on_error", ["raise", "warn"])
def test_asyncio_run_twice(
    api_key_settings: dict[str, Any],
    index_name: str,
    clients: ClientCount,
    no_leaks: None,
    on_error: Any,
) -> None:
    cache = AsyncElasticsearchCache(index_name, on_error=on_error, **api_key_settings)
    asyncio.run(cache.aupdate("p", LLM, answer("first loop")))
    # The first loop's client was closed with its loop.
    assert (clients.created, clients.closed) == (1, 1)
    assert asyncio.run(cache.alookup("p", LLM)) == answer("first loop")
    asyncio.run(cache.aupdate("p", LLM, answer("third loop")))
    assert asyncio.run(cache.alookup("p", LLM)) == answer("third loop")
    assert cache.stats() == CacheStats(hits=2, writes=2)
    asyncio.run(cache.aclose())
    assert clients.created == clients.closed == 4


def test_threads_with_loops_of_their_own_share_one_cache(
    api_key_settings: dict[str, Any],
    index_name: str,
    clients: ClientCount,
    no_leaks: None,
) -> None:
    cache = AsyncElasticsearchCache(index_name, **api_key_settings)
    store = AsyncElasticsearchEmbeddingsCache(f"{index_name}-store", **api_key_settings)
    start = threading.Barrier(4)

    async def work(worker: int) -> None:
        for i in range(10):
            prompt = f"worker {worker} prompt {i}"
            await cache.aupdate(prompt, LLM, answer(prompt))
            assert await cache.alookup(prompt, LLM) == answer(prompt)
            await store.amset([(prompt, prompt.encode())])
            assert await store.amget([prompt]) == [prompt.encode()]

    def thread(worker: int) -> None:
        start.wait()
        asyncio.run(work(worker))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(thread, range(4)))
    assert cache.stats() == CacheStats(hits=40, writes=40)
    assert store.stats() == CacheStats(hits=40, writes=40)
    assert clients.created == clients.closed == 8


def test_aclose_closes_the_clients_of_running_loops(
    api_key_settings: dict[str, Any],
    index_name: str,
    clients: ClientCount,
    no_leaks: None,
) -> None:
    cache = AsyncElasticsearchCache(index_name, **api_key_settings)
    loops = [asyncio.new_event_loop() for _ in range(3)]
    threads = [threading.Thread(target=loop.run_forever) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        for i, loop in enumerate(loops):
            call = cache.aupdate(f"p{i}", LLM, answer(str(i)))
            asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)
        assert (clients.created, clients.closed) == (3, 0)

        async def from_main_loop() -> None:
            assert await cache.alookup("p0", LLM) == answer("0")
            await cache.aclose()

        asyncio.run(from_main_loop())
        assert clients.created == clients.closed == 4
        # Still usable afterwards: a new client for the loop that asks.
        lookup = cache.alookup("p2", LLM)
        found = asyncio.run_coroutine_threadsafe(lookup, loops[2]).result(timeout=60)
        assert found == answer("2")
    finally:
        for loop in loops:
            loop.call_soon_threadsafe(loop.stop)
        for thread in threads:
            thread.join()
        for loop in loops:
            # As asyncio.run does: async generators first, then close.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    assert clients.created == clients.closed == 5
