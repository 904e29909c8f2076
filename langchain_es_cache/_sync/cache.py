# Generated from langchain_es_cache/_async/cache.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The LLM cache, written once as async code; the sync twin is generated from it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch, NotFoundError
from langchain_core.caches import RETURN_VAL_TYPE

from langchain_es_cache import _common
from langchain_es_cache._breaker import DEFAULT_BREAKER, BreakerSettings
from langchain_es_cache._common import Clock, OnError, Refresh
from langchain_es_cache._sync.index import CacheIndex
from langchain_es_cache._twins import BaseCache


class ElasticsearchCache(CacheIndex, BaseCache):
    """LangChain LLM cache stored in Elasticsearch.

    One document per ``(prompt, llm_string)``, with the id given by
    `langchain_es_cache._common.llm_key`. Hand it to ``set_llm_cache`` or to a
    model's ``cache=``. ``AsyncElasticsearchCache`` serves async calls only;
    ``ElasticsearchCache`` serves sync and async calls alike.
    """

    MAPPING = _common.LLM_CACHE_MAPPING

    def __init__(
        self,
        index_name: str,
        *,
        store_input: bool = True,
        store_input_params: bool = True,
        metadata: dict[str, Any] | None = None,
        client: Elasticsearch | None = None,
        es_url: str | None = None,
        es_cloud_id: str | None = None,
        es_user: str | None = None,
        es_api_key: str | None = None,
        es_password: str | None = None,
        namespace: str | None = None,
        ttl: float | timedelta | None = None,
        on_error: OnError = "raise",
        refresh: Refresh = False,
        clock: Clock = _common.utc_now,
        breaker: BreakerSettings | None = DEFAULT_BREAKER,
    ) -> None:
        """Validate the settings; no request is sent until first use.

        Args:
            index_name: Index or alias holding the cache; created on first write.
            store_input: Store the prompt in ``llm_input``.
            store_input_params: Store the model's parameters in ``llm_params``.
            metadata: JSON-serializable dict stored with every entry.
            client: A client of your own; never closed or changed by the cache.
            es_url: URL of the cluster, when the cache creates its own client.
            es_cloud_id: Elastic Cloud id, instead of `es_url`.
            es_user: User for basic authentication, with `es_password`.
            es_api_key: Encoded API key, instead of user and password.
            es_password: Password for `es_user`.
            namespace: Keeps this cache's entries apart from other caches' in
                the same index: part of the key, and the scope of `clear`.
            ttl: Entries older than this (seconds or `timedelta`) are misses.
            on_error: ``"raise"`` a `CacheError` when Elasticsearch fails, or
                ``"warn"``: log it and go on as on a miss.
            refresh: Refresh after each write (`True`, ``"wait_for"``) so that
                searches of your own see it; lookups never need it.
            clock: Returns the current aware datetime; for tests.
            breaker: The circuit breaker's settings (`BreakerSettings`), or
                `None` for none: after consecutive transport failures the cache
                sends nothing for a cool-down (see the README).
        """
        super().__init__(
            index_name,
            client=client,
            es_url=es_url,
            es_cloud_id=es_cloud_id,
            es_user=es_user,
            es_api_key=es_api_key,
            es_password=es_password,
            store_input=store_input,
            metadata=metadata,
            namespace=namespace,
            ttl=ttl,
            on_error=on_error,
            clock=clock,
            breaker=breaker,
        )
        self._store_input_params = _common.validate_flag(
            "store_input_params", store_input_params
        )
        self._refresh = _common.validate_refresh(refresh)

    def build_document(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> dict[str, Any]:
        """Return the document that `aupdate` stores for these arguments."""
        return _common.build_llm_document(
            prompt,
            llm_string,
            return_val,
            store_input=self._store_input,
            store_input_params=self._store_input_params,
            metadata=self._metadata,
            now=self._clock(),
            namespace=self._namespace,
        )

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Return the cached generations for `prompt` and `llm_string`, or `None`."""
        key = _common.llm_key(prompt, llm_string, self._namespace)
        try:
            with self._gate("lookup", timed=True):
                source = self._fetch(key)
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("lookup", exc)
            return None
        if source is not None and _common.is_expired(source, self._ttl, self._clock()):
            source = None
        found = _common.parse_generations(source, index=self._index_name, key=key)
        self._outcomes.count("misses" if found is None else "hits")
        return found

    def _fetch(self, key: str) -> Mapping[str, Any] | None:
        """Realtime-read the newest copy of `key`: one ``get``, the hot path
        (measured faster than a one-document ``mget``), until an alias over
        several indices makes the shared multi-index read necessary."""
        if not self._multi_index:
            try:
                doc = self._client.get(
                    index=self._index_name,
                    id=key,
                    source_includes=_common.LOOKUP_FIELDS,
                )
            except NotFoundError:
                return None
            except BadRequestError as exc:
                if not _common.is_multi_index_error(exc):
                    raise
                self._multi_index = True
            else:
                source: Mapping[str, Any] | None = doc.get("_source")
                return source
        return (self._realtime_read([key], _common.LOOKUP_FIELDS)).get(key)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store `return_val` as the answer for `prompt` and `llm_string`."""
        document = self.build_document(prompt, llm_string, return_val)
        doc_id = _common.llm_key(prompt, llm_string, self._namespace)
        self._store(doc_id, document, refresh=self._refresh)

    def clear(self, **kwargs: Any) -> None:
        """Delete the cache's entries (in its namespace), or those matching filters.

        Filters, combined with AND: ``llm_string=``, ``older_than=`` (seconds or
        `timedelta`), ``metadata=`` (a dict of stored metadata values). Logs how
        many entries were deleted.
        """
        self._clear(kwargs)
