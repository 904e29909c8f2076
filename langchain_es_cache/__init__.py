"""Cache LangChain LLM and chat-model answers in Elasticsearch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    CircuitOpenError,
    MappingConflictError,
    MigrationError,
    StoreError,
    StoreWriteError,
)
from langchain_es_cache.streaming import cache_streams
from langchain_es_cache.types import (
    BreakerSettings,
    CacheStats,
    CheckReport,
    Clock,
    MigrationReport,
    NearestEntry,
    OnError,
    Refresh,
)

if TYPE_CHECKING:
    from langchain_es_cache._async.graph import (
        AsyncElasticsearchGraphCache as AsyncElasticsearchGraphCache,
    )
    from langchain_es_cache._sync.graph import (
        ElasticsearchGraphCache as ElasticsearchGraphCache,
    )

# The LangGraph node caches need the optional LangGraph: they are imported on
# first use, so that the package imports without it. They are left out of
# __all__, so that `import *` works without LangGraph too.
_GRAPH_CLASSES = {
    "AsyncElasticsearchGraphCache": "langchain_es_cache._async.graph",
    "ElasticsearchGraphCache": "langchain_es_cache._sync.graph",
}


def __getattr__(name: str) -> Any:
    module = _GRAPH_CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_GRAPH_CLASSES])


__all__ = [
    "AsyncElasticsearchCache",
    "AsyncElasticsearchEmbeddingsCache",
    "AsyncElasticsearchSemanticCache",
    "BreakerSettings",
    "CacheError",
    "CacheStats",
    "CheckReport",
    "CircuitOpenError",
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
