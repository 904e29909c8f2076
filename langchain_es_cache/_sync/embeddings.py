# Generated from langchain_es_cache/_async/embeddings.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The embeddings cache: a LangChain ``ByteStore`` for ``CacheBackedEmbeddings``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from typing import Any

from typing_extensions import Unpack

from langchain_es_cache._common.batching import (
    MAX_DOCS_PER_REQUEST,
)
from langchain_es_cache._common.documents import (
    build_embedding_document,
    decode_vector,
    encode_vector,
    is_expired,
    parse_vector,
)
from langchain_es_cache._common.failures import ES_ERRORS, no_keys_stored_error
from langchain_es_cache._common.keys import embedding_key
from langchain_es_cache._common.mappings import (
    EMBEDDING_LOOKUP_FIELDS,
    EMBEDDINGS_CACHE_MAPPING,
)
from langchain_es_cache._common.queries import stored_keys_query
from langchain_es_cache._common.responses import stored_key
from langchain_es_cache._common.validation import (
    require_str,
    validate_maximum_duplicates,
    validate_store_keys,
    validate_store_pairs,
)
from langchain_es_cache._sync.index import CacheIndex, EntryOptions
from langchain_es_cache._twins import ByteStore
from langchain_es_cache.errors import StoreWriteError


class ElasticsearchEmbeddingsCache(CacheIndex, ByteStore):
    """LangChain byte store for ``CacheBackedEmbeddings``, stored in Elasticsearch.

    One document per ``(namespace, key)``, with the id given by
    `langchain_es_cache._common.keys.embedding_key`; the value is stored base64-encoded
    in ``vector_dump``. The async class serves async calls only
    (``embed_documents``); the sync class serves both.
    """

    MAPPING = EMBEDDINGS_CACHE_MAPPING

    def __init__(
        self,
        index_name: str,
        *,
        store_input: bool = True,
        maximum_duplicates_allowed: int = 1,
        **options: Unpack[EntryOptions],
    ) -> None:
        """Validate the settings; no request is sent until first use.

        Args:
            index_name: Index or alias holding the cache; created on first write.
            store_input: Store each key in ``text_input`` (needed by
                `yield_keys`).
            maximum_duplicates_allowed: Accepted for compatibility with
                langchain-elasticsearch (an int of at least 1). Lookups read
                every index behind an alias in real time and return the newest
                copy, and deletes remove every copy, so duplicates need no limit.
            **options: The connection and the options every class takes: see
                `EntryOptions`.
        """
        super().__init__(
            index_name,
            store_input=store_input,
            options=options,
        )
        self._maximum_duplicates_allowed = validate_maximum_duplicates(
            maximum_duplicates_allowed
        )

    @staticmethod
    def encode_vector(data: bytes) -> str:
        """Encode a value as stored: base64."""
        return encode_vector(data)

    @staticmethod
    def decode_vector(data: str) -> bytes:
        """Decode a stored value."""
        return decode_vector(data)

    def build_document(self, text_input: str, vector: bytes) -> dict[str, Any]:
        """Return the document that `mset` stores for key `text_input`."""
        return build_embedding_document(text_input, vector, **self._stamp())

    def _id(self, key: str) -> str:
        return embedding_key(key, self._namespace)

    def mget(self, keys: Iterable[str]) -> list[bytes | None]:
        """Return the value of each key (any iterable), in order; `None` for a
        missing key."""
        ids = [self._id(key) for key in validate_store_keys(keys)]
        now = self._clock()
        try:
            with self._gate("mget", timed=len(ids) == 1):
                sources = self._lookup(
                    list(dict.fromkeys(ids)), EMBEDDING_LOOKUP_FIELDS
                )
        except ES_ERRORS as exc:
            self._outcomes.failed("mget", exc)
            return [None] * len(ids)
        found: dict[str, bytes] = {}
        for doc_id, source in sources.items():
            if is_expired(source, self._ttl, now):
                continue
            value = parse_vector(source, index=self._index_name)
            if value is not None:
                found[doc_id] = value
        values = [found.get(doc_id) for doc_id in ids]
        hits = sum(value is not None for value in values)
        self._outcomes.count("hits", hits)
        self._outcomes.count("misses", len(values) - hits)
        return values

    def mset(self, key_value_pairs: Iterable[tuple[str, bytes]]) -> None:
        """Store each value under its key; realtime-visible to the next `mget`.

        Takes any iterable of pairs (a ``zip`` too), all checked before any
        request. Raises `StoreWriteError` naming every key that failed, and why.
        """
        pairs = validate_store_pairs(key_value_pairs)
        if not pairs:
            return
        keys: dict[str, str] = {}
        try:
            with self._gate("mset"):
                alias = self._prepared()
                self._write_pairs(pairs, keys, alias)
        except ES_ERRORS as exc:
            if isinstance(exc, StoreWriteError):
                # The keys not listed as failed were written.
                written = len(pairs) - len(exc.failures)
                self._outcomes.count("writes", written)
            self._outcomes.failed("mset", exc)
            return
        self._outcomes.count("writes", len(pairs))

    def _write_pairs(
        self,
        pairs: Sequence[tuple[str, bytes]],
        keys: dict[str, str],
        alias: bool,
    ) -> None:
        """Bulk-write `pairs` (`_bulk_index`); raise `StoreWriteError` naming
        the keys that failed."""

        def actions(ids: set[str] | None) -> Iterable[dict[str, Any]]:
            if ids is None:
                return self._index_actions(pairs, keys)
            again = [(key, value) for key, value in pairs if self._id(key) in ids]
            return self._index_actions(again, keys)

        failures = self._bulk_index(actions, alias=alias)
        if failures:
            raise StoreWriteError(
                "mset",
                [(keys.get(doc_id, doc_id), reason) for doc_id, reason in failures],
            )

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
                # Built as its request is sent: the timestamp is the send time.
                "_source": self.build_document(key, value),
            }

    def mdelete(self, keys: Iterable[str]) -> None:
        """Delete the keys (any iterable), every copy in every index behind an alias.

        Missing keys are fine; other failures raise `StoreWriteError`.
        """
        checked = validate_store_keys(keys)
        if not checked:
            return
        names = {self._id(key): key for key in checked}
        try:
            with self._gate("mdelete"):
                indices = self._indices()
                actions = (
                    {"_op_type": "delete", "_index": index, "_id": doc_id}
                    for doc_id in names
                    for index in indices
                )
                _, failures = self._bulk_delete(actions)
            if failures:
                raise StoreWriteError(
                    "mdelete", [(names.get(i, i), why) for i, why in failures]
                )
        except ES_ERRORS as exc:
            self._outcomes.failed("mdelete", exc)

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """Stream every stored key of the namespace that starts with `prefix`.

        Keys are streamed page by page, never all loaded; a key stored in
        several indices behind an alias comes once. Keys whose entries are
        expired under `ttl` are left out, as `mget` treats them as missing.
        Needs ``store_input=True`` (raises `ValueError` otherwise). Sees writes
        made before the call.
        """
        if not self._store_input:
            raise no_keys_stored_error(type(self).__name__)
        if prefix is not None:
            require_str("prefix", prefix)
        try:
            with self._gate("yield_keys"):
                for key in self._stream_keys(prefix):
                    yield key
        except ES_ERRORS as exc:
            # With on_error="warn" the stream just ends early.
            self._outcomes.failed("yield_keys", exc)

    def _stream_keys(self, prefix: str | None) -> Iterator[str]:
        # A scan only sees refreshed documents: make recent writes visible.
        if not self._refresh_index():
            return
        indices = self._indices()
        now = self._clock()
        query = {
            "query": stored_keys_query(prefix, self._namespace, ttl=self._ttl, now=now)
        }
        for position, index in enumerate(indices):
            page: list[tuple[str, str]] = []
            # Closed with this generator: a consumer stopping early leaves no
            # scroll open on the server.
            with closing(
                self._scan(
                    index=index,
                    query=query,
                    _source=["text_input"],
                    size=MAX_DOCS_PER_REQUEST,
                )
            ) as hits:
                for hit in hits:
                    key = stored_key(hit, prefix)
                    if key is None:
                        continue
                    if position == 0:
                        yield key
                        continue
                    page.append((hit["_id"], key))
                    if len(page) >= MAX_DOCS_PER_REQUEST:
                        for key in self._not_in(indices[:position], page, now):
                            yield key
                        page = []
            if page:
                for key in self._not_in(indices[:position], page, now):
                    yield key

    def _not_in(
        self, indices: list[str], page: list[tuple[str, str]], now: datetime
    ) -> list[str]:
        """The keys of `page` with no unexpired copy in `indices` (those were
        streamed already; an expired copy was not)."""
        # Only the age of a copy matters, and only under a ttl.
        source: dict[str, Any] = (
            {"source": False}
            if self._ttl is None
            else {"source_includes": ["timestamp"]}
        )
        response = self._batch_client.mget(
            docs=[
                {"_index": index, "_id": doc_id}
                for doc_id, _ in page
                for index in indices
            ],
            **source,
        )
        seen = {
            doc["_id"]
            for doc in response["docs"]
            if doc.get("found")
            and not is_expired(doc.get("_source") or {}, self._ttl, now)
        }
        return [key for doc_id, key in page if doc_id not in seen]
