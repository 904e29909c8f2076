"""The LangGraph node cache, written once as async code; the sync twin is generated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from langchain_es_cache._async.index import AsyncCacheIndex, AsyncOptions
from langchain_es_cache._common import graph as entries
from langchain_es_cache._common.batching import (
    chunked,
)
from langchain_es_cache._common.failures import ES_ERRORS
from langchain_es_cache._twins import AsyncGraphBaseCache

try:
    from langgraph.cache.base import BaseCache as LangGraphCache
except ImportError as exc:  # LangGraph is an optional dependency
    raise entries.missing_langgraph("AsyncElasticsearchGraphCache", exc) from exc

if TYPE_CHECKING:
    from langgraph.cache.base import FullKey, Namespace
    from langgraph.checkpoint.serde.base import SerializerProtocol


class AsyncElasticsearchGraphCache(
    AsyncCacheIndex, AsyncGraphBaseCache, LangGraphCache[Any]
):
    """LangGraph node cache stored in Elasticsearch.

    Hand it to ``graph.compile(cache=...)``; nodes added with a
    ``CachePolicy`` are then served from it. One document per
    ``(namespace, key)``, with the id given by
    `langchain_es_cache._common.graph.entry_id`. The async class serves async
    graph runs only (``ainvoke``, ``astream``); the sync class serves sync and
    async runs alike.
    """

    OPTIONS = frozenset(AsyncOptions.__annotations__)
    MAPPING = entries.GRAPH_CACHE_MAPPING

    def __init__(
        self,
        index_name: str,
        *,
        serde: SerializerProtocol | None = None,
        **options: Unpack[AsyncOptions],
    ) -> None:
        """Validate the settings; no request is sent until first use.

        Args:
            index_name: Index or alias holding the cache; created on first write.
            serde: LangGraph serializer of the values (``dumps_typed`` and
                ``loads_typed``); LangGraph's default when omitted.
            **options: The connection and the options every class takes: see
                `AsyncOptions`.
        """
        entries.validate_serde(serde)
        super().__init__(
            index_name,
            store_input=True,
            options=options,
        )
        # Sets `serde`, or keeps LangGraph's class-level default.
        LangGraphCache.__init__(self, serde=serde)

    def build_document(
        self, namespace: Namespace, key: str, value: Any, ttl: int | None = None
    ) -> dict[str, Any]:
        """Return the document that `aset` stores for this entry."""
        entries.validate_full_key((namespace, key))
        return self._document(namespace, key, value, ttl, self._clock())

    def _document(
        self, namespace: Namespace, key: str, value: Any, ttl: object, now: datetime
    ) -> dict[str, Any]:
        return entries.build_document(
            namespace,
            key,
            self.serde.dumps_typed(value),
            ttl=entries.validate_entry_ttl(ttl),
            metadata=self._metadata,
            now=now,
        )

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """Return the cached value of each key found and not expired.

        One realtime ``mget`` (per 500 keys), never a search. An entry that
        cannot be read back is a miss, logged as a warning.
        """
        ids = {
            entries.entry_id(*entries.validate_full_key(full_key)): full_key
            for full_key in keys
        }
        try:
            with self._gate("get", timed=len(ids) == 1):
                sources = await self._lookup(list(ids), entries.GRAPH_LOOKUP_FIELDS)
        except ES_ERRORS as exc:
            self._outcomes.failed("get", exc)
            return {}
        now = self._clock()
        found: dict[FullKey, Any] = {}
        for doc_id, full_key in ids.items():
            source = sources.get(doc_id)
            if source is not None:
                self._read(found, full_key, doc_id, source, now)
        self._outcomes.count("hits", len(found))
        self._outcomes.count("misses", len(ids) - len(found))
        return found

    def _read(
        self,
        found: dict[FullKey, Any],
        full_key: FullKey,
        doc_id: str,
        source: Mapping[str, Any],
        now: datetime,
    ) -> None:
        typed = entries.stored_value(
            source, now=now, index=self._index_name, doc_id=doc_id
        )
        if typed is None:
            return
        try:
            found[full_key] = self.serde.loads_typed(typed)
        except Exception as exc:
            # Another serializer's entry, or a corrupt one: a miss, never an
            # exception inside the graph run.
            entries.logger.warning(
                "ignoring unreadable graph cache entry %s in index %s: %s: %s",
                doc_id,
                self._index_name,
                type(exc).__name__,
                exc,
            )

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """Store each value with its ttl in seconds (`None`: no expiry).

        One bulk request (per 500 entries or 10 MB). Every entry is checked and
        serialized before anything is written.
        """
        now = self._clock()
        actions: list[dict[str, Any]] = []
        names: dict[str, str] = {}
        for namespace, key, value, ttl in entries.validate_set_pairs(pairs):
            doc_id = entries.entry_id(namespace, key)
            names[doc_id] = entries.describe_key((namespace, key))
            document = self._document(namespace, key, value, ttl, now)
            actions.append(
                {"_index": self._index_name, "_id": doc_id, "_source": document}
            )
        if not actions:
            return
        try:
            with self._gate("set"):
                alias = await self._prepared()
                failures = await self._bulk_index(
                    lambda ids: [a for a in actions if ids is None or a["_id"] in ids],
                    alias=alias,
                )
        except ES_ERRORS as exc:
            self._outcomes.failed("set", exc)
            return
        failed = [(names.get(doc_id, doc_id), reason) for doc_id, reason in failures]
        self._outcomes.count("writes", len(actions) - len(failed))
        if failed:
            self._outcomes.failed("set", entries.write_error(failed))

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete every graph entry, or exactly those of the given namespaces.

        A namespace that merely shares a prefix with a given one is kept.
        ``[]`` deletes nothing. Logs how many entries were deleted.
        """
        if namespaces is None:
            queries = [entries.clear_query(None)]
        else:
            ids = sorted(
                set(map(entries.namespace_id, entries.validate_namespaces(namespaces)))
            )
            queries = [
                entries.clear_query(chunk)
                for chunk in chunked(ids, entries.CLEAR_TERMS)
            ]
        deleted = await self._delete("clear", *queries)
        if deleted is None:
            return
        entries.logger.info("cleared %d entries from %s", deleted, self._index_name)

    async def apurge_expired(self) -> int:
        """Delete the entries past their ttl; return how many."""
        deleted = await self._delete(
            "purge_expired", entries.expired_query(self._clock())
        )
        if deleted is None:
            return 0
        entries.logger.info(
            "purged %d expired entries from %s", deleted, self._index_name
        )
        return deleted
