"""LangChain's own standard test suites (the ``langchain-tests`` package).

Every cache class runs LangChain's cache suite and every embeddings store its
byte-store suite, against the real node. ``langchain-tests`` needs
langchain-core 1.4 or newer: where it is missing (the minimum-versions row of
the compatibility matrix) this module is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip("langchain_tests")

from elasticsearch import AsyncElasticsearch
from langchain_tests.integration_tests import (
    AsyncCacheTestSuite,
    BaseStoreAsyncTests,
)

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    AsyncElasticsearchSemanticCache,
)
from tests.models import CountingEmbeddings


class TestExactCacheSuite(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(
        self, async_client: AsyncElasticsearch, index_name: str
    ) -> AsyncIterator[AsyncElasticsearchCache]:
        yield AsyncElasticsearchCache(index_name, client=async_client)


class TestSemanticCacheSuite(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(
        self, async_client: AsyncElasticsearch, index_name: str
    ) -> AsyncIterator[AsyncElasticsearchSemanticCache]:
        yield AsyncElasticsearchSemanticCache(
            index_name, CountingEmbeddings(), client=async_client
        )


class TestEmbeddingsStoreSuite(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    async def kv_store(
        self, async_client: AsyncElasticsearch, index_name: str
    ) -> AsyncIterator[AsyncElasticsearchEmbeddingsCache]:
        yield AsyncElasticsearchEmbeddingsCache(index_name, client=async_client)

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"\x00\x01 first", b"second \xff", b""
