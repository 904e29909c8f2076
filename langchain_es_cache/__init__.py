"""Cache LangChain LLM and chat-model answers in Elasticsearch."""

from langchain_es_cache._async.cache import AsyncElasticsearchCache
from langchain_es_cache._sync.cache import ElasticsearchCache
from langchain_es_cache._version import __version__

__all__ = ["AsyncElasticsearchCache", "ElasticsearchCache", "__version__"]
