"""The embeddings cache (a LangChain ``ByteStore``), written once as async code.

The sync twin is generated from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from datetime import timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError
from elasticsearch.helpers import async_streaming_bulk

from langchain_es_cache import _common
from langchain_es_cache._async.index import AsyncCacheIndex
from langchain_es_cache._breaker import DEFAULT_BREAKER, BreakerSettings
from langchain_es_cache._common import Clock, OnError
from langchain_es_cache._twins import AsyncByteStore


class AsyncElasticsearchEmbeddingsCache(AsyncCacheIndex, AsyncByteStore):
    """LangChain byte store for ``CacheBackedEmbeddings``, stored in Elasticsearch.

    One document per ``(namespace, key)``, with the id given by
    `langchain_es_cache._common.embedding_key`; the value is stored base64-encoded
    in ``vector_dump``. ``AsyncElasticsearchEmbeddingsCache`` serves async calls
    only (``aembed_documents``); ``ElasticsearchEmbeddingsCache`` serves both.
    """

    MAPPING = _common.EMBEDDINGS_CACHE_MAPPING

    def __init__(
        self,
        index_name: str,
        *,
        store_input: bool = True,
        metadata: dict[str, Any] | None = None,
        namespace: str | None = None,
        maximum_duplicates_allowed: int = 1,
        client: AsyncElasticsearch | None = None,
        es_url: str | None = None,
        es_cloud_id: str | None = None,
        es_user: str | None = None,
        es_api_key: str | None = None,
        es_password: str | None = None,
        ttl: float | timedelta | None = None,
        on_error: OnError = "raise",
        clock: Clock = _common.utc_now,
        breaker: BreakerSettings | None = DEFAULT_BREAKER,
    ) -> None:
        """Validate the settings; no request is sent until first use.

        Args:
            index_name: Index or alias holding the cache; created on first write.
            store_input: Store each key in ``text_input`` (needed by
                `ayield_keys`).
            metadata: JSON-serializable dict stored with every entry.
            namespace: Keeps this cache's keys apart from other namespaces in
                the same index; `None` (not ``""``) for none.
            maximum_duplicates_allowed: Accepted for compatibility with
                langchain-elasticsearch (an int of at least 1). Lookups read
                every index behind an alias in real time and return the newest
                copy, and deletes remove every copy, so duplicates need no limit.
            client: A client of your own; never closed or changed by the cache.
            es_url: URL of the cluster, when the cache creates its own client.
            es_cloud_id: Elastic Cloud id, instead of `es_url`.
            es_user: User for basic authentication, with `es_password`.
            es_api_key: Encoded API key, instead of user and password.
            es_password: Password for `es_user`.
            ttl: Values older than this (seconds or `timedelta`) are missing.
            on_error: ``"raise"`` a `CacheError` when Elasticsearch fails, or
                ``"warn"``: log it; reads then return `None` for every key.
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
        self._maximum_duplicates_allowed = _common.validate_maximum_duplicates(
            maximum_duplicates_allowed
        )

    @staticmethod
    def encode_vector(data: bytes) -> str:
        """Encode a value as stored: base64."""
        return _common.encode_vector(data)

    @staticmethod
    def decode_vector(data: str) -> bytes:
        """Decode a stored value."""
        return _common.decode_vector(data)

    def build_document(self, text_input: str, vector: bytes) -> dict[str, Any]:
        """Return the document that `amset` stores for key `text_input`."""
        return _common.build_embedding_document(
            text_input,
            vector,
            store_input=self._store_input,
            metadata=self._metadata,
            namespace=self._namespace,
            now=self._clock(),
        )

    def _id(self, key: str) -> str:
        return _common.embedding_key(key, self._namespace)

    async def amget(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the value of each key, in order; `None` for a missing key."""
        ids = [self._id(key) for key in _common.validate_store_keys(keys)]
        found: dict[str, bytes] = {}
        now = self._clock()
        try:
            with self._gate("mget", timed=len(ids) == 1):
                for chunk in _common.chunked(
                    dict.fromkeys(ids), _common.STORE_REQUEST_DOCS
                ):
                    for doc_id, source in (
                        await self._realtime_read(
                            chunk, _common.EMBEDDING_LOOKUP_FIELDS
                        )
                    ).items():
                        if _common.is_expired(source, self._ttl, now):
                            continue
                        value = _common.parse_vector(source, index=self._index_name)
                        if value is not None:
                            found[doc_id] = value
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("mget", exc)
            return [None] * len(ids)
        values = [found.get(doc_id) for doc_id in ids]
        hits = sum(value is not None for value in values)
        self._outcomes.count("hits", hits)
        self._outcomes.count("misses", len(values) - hits)
        return values

    async def amset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        """Store each value under its key; realtime-visible to the next `amget`.

        Raises `StoreWriteError` naming every key that failed, and why.
        """
        _common.validate_store_pairs(key_value_pairs)
        if not key_value_pairs:
            return
        keys: dict[str, str] = {}
        try:
            with self._gate("mset"):
                alias = await self.is_alias()
                await self._bulk(
                    "mset",
                    self._index_actions(key_value_pairs, keys),
                    keys,
                    # Through an alias, never let a write auto-create an index
                    # named like the alias.
                    require_alias=alias,
                )
        except _common.ES_ERRORS as exc:
            if isinstance(exc, _common.StoreWriteError):
                # The keys not listed as failed were written.
                written = len(key_value_pairs) - len(exc.failures)
                self._outcomes.count("writes", written)
            self._outcomes.failed("mset", exc)
            return
        self._outcomes.count("writes", len(key_value_pairs))

    def _index_actions(
        self, pairs: Iterable[tuple[str, bytes]], keys: dict[str, str]
    ) -> Iterable[dict[str, Any]]:
        for key, value in pairs:
            doc_id = self._id(key)
            keys[doc_id] = key
            yield {
                "_op_type": "index",
                "_index": self._index_name,
                "_id": doc_id,
                "_source": self.build_document(key, value),
            }

    async def amdelete(self, keys: Sequence[str]) -> None:
        """Delete the keys, every copy in every index behind an alias.

        Missing keys are fine; other failures raise `StoreWriteError`.
        """
        checked = _common.validate_store_keys(keys)
        if not checked:
            return
        names = {self._id(key): key for key in checked}
        try:
            with self._gate("mdelete"):
                indices = await self._indices()
                actions = (
                    {"_op_type": "delete", "_index": index, "_id": doc_id}
                    for doc_id in names
                    for index in indices
                )
                await self._bulk("mdelete", actions, names)
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("mdelete", exc)

    async def _bulk(
        self,
        operation: str,
        actions: Iterable[dict[str, Any]],
        keys: dict[str, str],
        **kwargs: Any,
    ) -> None:
        failures: list[tuple[str, str]] = []
        async for _, item in async_streaming_bulk(
            self._batch_client,
            actions,
            chunk_size=_common.STORE_REQUEST_DOCS,
            max_chunk_bytes=_common.STORE_REQUEST_BYTES,
            raise_on_error=False,
            **kwargs,
        ):
            failure = _common.bulk_failure(item)
            if failure is not None:
                doc_id, reason = failure
                failures.append((keys.get(doc_id, doc_id), reason))
        if failures:
            raise _common.StoreWriteError(operation, failures)

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        """Stream every stored key of the namespace that starts with `prefix`.

        Keys are streamed page by page, never all loaded; a key stored in
        several indices behind an alias comes once. Needs ``store_input=True``
        (raises `ValueError` otherwise). Sees writes made before the call.
        """
        if not self._store_input:
            raise _common.no_keys_stored_error(type(self).__name__)
        if prefix is not None:
            _common.require_str("prefix", prefix)
        try:
            with self._gate("yield_keys"):
                async for key in self._stream_keys(prefix):
                    yield key
        except _common.ES_ERRORS as exc:
            # With on_error="warn" the stream just ends early.
            self._outcomes.failed("yield_keys", exc)

    async def _stream_keys(self, prefix: str | None) -> AsyncIterator[str]:
        try:
            # A scan only sees refreshed documents: make recent writes visible.
            await self._batch_client.indices.refresh(index=self._index_name)
        except NotFoundError:
            return
        indices = await self._indices()
        query = {"query": _common.stored_keys_query(prefix, self._namespace)}
        for position, index in enumerate(indices):
            page: list[tuple[str, str]] = []
            # Closed with this generator: a consumer stopping early leaves no
            # scroll open on the server.
            async with aclosing(
                self._scan(
                    index=index,
                    query=query,
                    _source=["text_input"],
                    size=_common.STORE_REQUEST_DOCS,
                )
            ) as hits:
                async for hit in hits:
                    key = _common.stored_key(hit, prefix)
                    if key is None:
                        continue
                    if position == 0:
                        yield key
                        continue
                    page.append((hit["_id"], key))
                    if len(page) >= _common.STORE_REQUEST_DOCS:
                        for key in await self._not_in(indices[:position], page):
                            yield key
                        page = []
            if page:
                for key in await self._not_in(indices[:position], page):
                    yield key

    async def _not_in(
        self, indices: list[str], page: list[tuple[str, str]]
    ) -> list[str]:
        """The keys of `page` stored in none of `indices` (already streamed)."""
        response = await self._batch_client.mget(
            docs=[
                {"_index": index, "_id": doc_id}
                for doc_id, _ in page
                for index in indices
            ],
            source=False,
        )
        seen = {doc["_id"] for doc in response["docs"] if doc.get("found")}
        return [key for doc_id, key in page if doc_id not in seen]
