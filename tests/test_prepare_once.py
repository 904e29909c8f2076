"""A fresh cache used by many tasks or threads at once prepares its index once."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache
from tests.twins import gather
from utils import es_server


def count_calls(cache: Any) -> list[int]:
    calls = [0]
    original = cache._prepare_index

    def counted() -> Any:
        calls[0] += 1
        return original()

    cache._prepare_index = counted
    return calls


async def test_async_tasks_prepare_once(
    es_conn: es_server.Connection, index_name: str
) -> None:
    async with AsyncElasticsearch(es_conn.url, **es_conn.client_auth()) as client:
        cache = AsyncElasticsearchCache(index_name, client=client)
        calls = count_calls(cache)
        await asyncio.gather(
            *(cache.aupdate(f"p{i}", "m", [Generation(text="t")]) for i in range(50))
        )
        assert calls == [1]
        assert cache.stats().writes == 50
        assert await cache.is_alias() is False


def test_sync_threads_prepare_once(
    es_conn: es_server.Connection, admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchCache(index_name, **es_conn.cache_settings())
    calls = count_calls(cache)
    gather(
        [partial(cache.update, f"p{i}", "m", [Generation(text="t")]) for i in range(32)]
    )
    assert calls == [1]
    assert cache.stats().writes == 32
    cache.close()
