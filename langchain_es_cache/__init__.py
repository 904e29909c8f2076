"""Cache LangChain LLM and chat-model answers in Elasticsearch."""

from langchain_es_cache._async.cache import AsyncElasticsearchCache
from langchain_es_cache._async.embeddings import AsyncElasticsearchEmbeddingsCache
from langchain_es_cache._async.semantic import AsyncElasticsearchSemanticCache
from langchain_es_cache._ops import migrate
from langchain_es_cache._sync.cache import ElasticsearchCache
from langchain_es_cache._sync.embeddings import ElasticsearchEmbeddingsCache
from langchain_es_cache._sync.semantic import ElasticsearchSemanticCache
from langchain_es_cache._version import __version__
from langchain_es_cache.errors import (
    CacheError,
    MappingConflictError,
    MigrationError,
    StoreError,
    StoreWriteError,
)
from langchain_es_cache.streaming import cache_streams
from langchain_es_cache.types import (
    CacheStats,
    Clock,
    MigrationReport,
    NearestEntry,
    OnError,
    Refresh,
)

__all__ = [
    "AsyncElasticsearchCache",
    "AsyncElasticsearchEmbeddingsCache",
    "AsyncElasticsearchSemanticCache",
    "CacheError",
    "CacheStats",
    "Clock",
    "ElasticsearchCache",
    "ElasticsearchEmbeddingsCache",
    "ElasticsearchSemanticCache",
    "MappingConflictError",
    "MigrationError",
    "MigrationReport",
    "NearestEntry",
    "OnError",
    "Refresh",
    "StoreError",
    "StoreWriteError",
    "__version__",
    "cache_streams",
    "migrate",
]
