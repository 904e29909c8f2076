"""The two classes from the other kind of code, against the real node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    ElasticsearchCache,
)
from tests.models import CountingChatModel


async def test_sync_class_serves_async_calls(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    with ElasticsearchCache(index_name, **api_key_settings) as cache:
        model = CountingChatModel(cache=cache)
        first = await model.ainvoke("hi")
        assert model.invoke("hi").content == first.content
        assert (await model.ainvoke("hi")).content == first.content
    assert model.calls == 1


def test_async_class_from_sync_code_names_the_sync_class(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    cache = AsyncElasticsearchCache(index_name, **api_key_settings)
    set_llm_cache(cache)
    try:
        with pytest.raises(TypeError, match="Use ElasticsearchCache for sync or mixed"):
            CountingChatModel().invoke("hi")
    finally:
        set_llm_cache(None)
    calls: list[Callable[[], object]] = [
        lambda: cache.lookup("p", "l"),
        lambda: cache.update("p", "l", []),
        lambda: cache.clear(),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="AsyncElasticsearchCache is async-only"):
            call()


def test_async_embeddings_cache_from_sync_code_names_the_sync_class() -> None:
    store = AsyncElasticsearchEmbeddingsCache("cache", es_url="http://127.0.0.1:1")
    for call in (
        lambda: store.mget(["k"]),
        lambda: store.mset([("k", b"v")]),
        lambda: store.mdelete(["k"]),
        lambda: list(store.yield_keys()),
    ):
        with pytest.raises(
            TypeError, match="Use ElasticsearchEmbeddingsCache for sync"
        ):
            call()
