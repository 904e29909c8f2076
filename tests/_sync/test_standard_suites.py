# Generated from tests/_async/test_standard_suites.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""LangChain's own standard test suites (the ``langchain-tests`` package).

Every cache class runs LangChain's cache suite and every embeddings store its
byte-store suite, against the real node. ``langchain-tests`` needs
langchain-core 1.4 or newer: where it is missing (the minimum-versions row of
the compatibility matrix) this module is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_tests")

from elasticsearch import Elasticsearch
from langchain_tests.integration_tests import (
    BaseStoreSyncTests,
    SyncCacheTestSuite,
)

from langchain_es_cache import (
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
)
from tests.models import CountingEmbeddings


class TestExactCacheSuite(SyncCacheTestSuite):
    @pytest.fixture
    def cache(
        self, client: Elasticsearch, index_name: str
    ) -> Iterator[ElasticsearchCache]:
        yield ElasticsearchCache(index_name, client=client)


class TestSemanticCacheSuite(SyncCacheTestSuite):
    @pytest.fixture
    def cache(
        self, client: Elasticsearch, index_name: str
    ) -> Iterator[ElasticsearchSemanticCache]:
        yield ElasticsearchSemanticCache(
            index_name, CountingEmbeddings(), client=client
        )


class TestEmbeddingsStoreSuite(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(
        self, client: Elasticsearch, index_name: str
    ) -> Iterator[ElasticsearchEmbeddingsCache]:
        yield ElasticsearchEmbeddingsCache(index_name, client=client)

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"\x00\x01 first", b"second \xff", b""
