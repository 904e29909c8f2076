"""Cache LangChain LLM and chat-model answers in Elasticsearch."""

from langchain_es_cache._async.cache import AsyncElasticsearchCache
from langchain_es_cache._async.embeddings import AsyncElasticsearchEmbeddingsCache
from langchain_es_cache._async.semantic import AsyncElasticsearchSemanticCache
from langchain_es_cache._breaker import BreakerSettings, CheckReport
from langchain_es_cache._common import (
    CacheError,
    CacheStats,
    CircuitOpenError,
    MappingConflictError,
    StoreError,
    StoreWriteError,
)
from langchain_es_cache._sync.cache import ElasticsearchCache
from langchain_es_cache._sync.embeddings import ElasticsearchEmbeddingsCache
from langchain_es_cache._sync.semantic import ElasticsearchSemanticCache
from langchain_es_cache._version import __version__

__all__ = [
    "AsyncElasticsearchCache",
    "AsyncElasticsearchEmbeddingsCache",
    "AsyncElasticsearchSemanticCache",
    "BreakerSettings",
    "CacheError",
    "CacheStats",
    "CheckReport",
    "CircuitOpenError",
    "ElasticsearchCache",
    "ElasticsearchEmbeddingsCache",
    "ElasticsearchSemanticCache",
    "MappingConflictError",
    "StoreError",
    "StoreWriteError",
    "__version__",
]
