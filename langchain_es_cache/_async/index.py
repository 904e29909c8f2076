"""The client and the index behind every cache class."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from datetime import timedelta
from types import TracebackType
from typing import Any, ClassVar, cast

from elasticsearch import (
    AsyncElasticsearch,
    AuthorizationException,
    BadRequestError,
    NotFoundError,
)
from elasticsearch.helpers import async_bulk, async_scan
from typing_extensions import Self

from langchain_es_cache._common.batching import MAX_DOCS_PER_REQUEST, chunked
from langchain_es_cache._common.connection import USER_AGENT, client_settings
from langchain_es_cache._common.failures import (
    ES_ERRORS,
    is_error_type,
    mapping_conflict,
    wrong_client_error,
)
from langchain_es_cache._common.queries import clear_query, purge_query
from langchain_es_cache._common.responses import (
    is_multi_index_doc_error,
    mget_doc_error,
    newest_by_id,
)
from langchain_es_cache._common.state import Outcomes
from langchain_es_cache._common.validation import (
    validate_clock,
    validate_flag,
    validate_index_name,
    validate_metadata,
    validate_namespace,
    validate_on_error,
    validate_ttl,
)
from langchain_es_cache._twins import AsyncIndexLock
from langchain_es_cache.errors import CacheError
from langchain_es_cache.types import CacheStats, Clock, OnError, Refresh

logger = logging.getLogger("langchain_es_cache")


class AsyncCacheIndex:
    """Owns the connection and prepares the index; subclasses add the cache API.

    A client the class creates from credentials is closed by `aclose` and
    ``async with``; a client passed in is used through ``options()`` (so never
    changed) and never closed.
    """

    MAPPING: ClassVar[dict[str, Any]]
    """The ``mappings`` body of the index: set by each cache class."""

    def __init__(
        self,
        index_name: str,
        *,
        client: AsyncElasticsearch | None,
        es_url: str | None,
        es_cloud_id: str | None,
        es_user: str | None,
        es_api_key: str | None,
        es_password: str | None,
        store_input: bool,
        metadata: dict[str, Any] | None,
        namespace: str | None,
        ttl: float | timedelta | None,
        on_error: OnError,
        clock: Clock,
    ) -> None:
        self._index_name = validate_index_name(index_name)
        self._store_input = validate_flag("store_input", store_input)
        self._metadata = validate_metadata(metadata)
        self._namespace = validate_namespace(namespace)
        self._ttl = validate_ttl(ttl)
        self._clock = validate_clock(clock)
        self._outcomes = Outcomes(self._index_name, validate_on_error(on_error))
        settings = client_settings(
            has_client=client is not None,
            es_url=es_url,
            es_cloud_id=es_cloud_id,
            es_user=es_user,
            es_api_key=es_api_key,
            es_password=es_password,
        )
        if client is None:
            self._owned_client: AsyncElasticsearch | None = AsyncElasticsearch(
                **settings or {}
            )
            self._client = self._owned_client
        else:
            if not isinstance(client, AsyncElasticsearch):
                raise wrong_client_error(AsyncElasticsearch, client)
            self._owned_client = None
            # options() returns a new client sharing the transport: the
            # caller's object is left as it was.
            self._client = client.options(headers={"user-agent": USER_AGENT})
        self._is_alias: bool | None = None
        self._multi_index = False
        self._index_lock = AsyncIndexLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index_name={self._index_name!r})"

    def stats(self) -> CacheStats:
        """Hits, misses, writes and errors since construction."""
        return self._outcomes.snapshot()

    @property
    def mapping(self) -> dict[str, Any]:
        """The index mapping the cache creates (or adds to an alias's indices)."""
        return {"mappings": self.MAPPING}

    async def is_alias(self) -> bool:
        """Make sure the index exists with the cache's mapping; tell if it is an alias.

        The first call creates the index, or puts the mapping on an existing index
        or on every index behind an alias; the answer is then remembered.
        """
        if self._is_alias is None:
            # Many tasks or threads using a fresh cache at once prepare it once,
            # instead of stampeding the master with creates and mappings.
            async with self._index_lock:
                if self._is_alias is None:
                    self._is_alias = await self._prepare_index()
        return self._is_alias

    async def _prepare_index(self) -> bool:
        try:
            return await self._create_or_map()
        except AuthorizationException:
            # Credentials that may write documents but not manage the index: the
            # index must have been prepared by someone who may. Writes then go
            # ahead; a write through an alias still lands in its write index.
            logger.info(
                "not allowed to prepare index %s; assuming it is ready",
                self._index_name,
            )
            return False

    async def _create_or_map(self) -> bool:
        indices = self._client.indices
        try:
            # A GET, not a HEAD: an error answer then has a body that says why.
            await indices.get_alias(name=self._index_name)
        except NotFoundError:
            pass
        else:
            await self._put_mapping()
            return True
        try:
            await indices.create(
                index=self._index_name, mappings=self.mapping["mappings"]
            )
            logger.debug("created cache index %s", self._index_name)
        except BadRequestError as exc:
            # Another task, thread or process created it first: fine.
            if not is_error_type(exc, "resource_already_exists_exception"):
                raise
            await self._put_mapping()
        return False

    async def _put_mapping(self) -> None:
        try:
            await self._client.indices.put_mapping(
                index=self._index_name, **self.mapping["mappings"]
            )
        except BadRequestError as exc:
            if not is_error_type(exc, "illegal_argument_exception"):
                raise
            raise mapping_conflict(self._index_name, exc) from exc

    async def _realtime_read(
        self, ids: list[str], fields: list[str]
    ) -> dict[str, Mapping[str, Any]]:
        """Realtime-read `ids` (get/mget, never a search): the newest ``_source``
        of each one found, reading every index behind an alias."""
        if not self._multi_index:
            response = await self._client.mget(
                index=self._index_name, ids=ids, source_includes=fields
            )
            docs: list[dict[str, Any]] = response["docs"]
            errors = [e for e in map(mget_doc_error, docs) if e is not None]
            if not errors:
                return newest_by_id(docs)
            if not any(is_multi_index_doc_error(e) for e in errors):
                raise CacheError(f"mget failed: {errors[0]}")
            # A single-index read cannot span an alias's indices: from now on
            # read them all and keep the newest copy.
            self._multi_index = True
        indices = await self._indices()
        found: dict[str, Mapping[str, Any]] = {}
        per_request = max(1, MAX_DOCS_PER_REQUEST // len(indices))
        for chunk in chunked(ids, per_request):
            response = await self._client.mget(
                docs=[
                    {"_index": index, "_id": doc_id}
                    for doc_id in chunk
                    for index in indices
                ],
                source_includes=fields,
            )
            docs = response["docs"]
            for error in map(mget_doc_error, docs):
                if error is not None:
                    # A copy we cannot read may be the newest: not a silent miss.
                    raise CacheError(f"mget failed: {error}")
            found.update(newest_by_id(docs))
        return found

    async def _indices(self) -> list[str]:
        """The indices behind the alias, or the index name itself."""
        if self._is_alias is False:
            return [self._index_name]
        try:
            aliases = await self._client.indices.get_alias(name=self._index_name)
        except NotFoundError:
            return [self._index_name]
        return sorted(aliases)

    async def _store(
        self, doc_id: str, document: dict[str, Any], *, refresh: Refresh = False
    ) -> bool:
        """Write one document under the cache's name; tell whether it was written.

        Failures go to the `on_error` policy.
        """
        try:
            alias = await self.is_alias()
            await self._client.index(
                index=self._index_name,
                id=doc_id,
                document=document,
                # Through an alias, never let a write auto-create an index named
                # like the alias.
                require_alias=alias,
                refresh=refresh,
            )
        except ES_ERRORS as exc:
            self._outcomes.failed("update", exc)
            return False
        self._outcomes.count("writes")
        return True

    async def _clear(self, filters: dict[str, Any]) -> bool:
        """Delete the namespace's entries matching `filters` (`clear`'s keywords).

        Logs how many were deleted; tells whether the clear went through.
        """
        query = clear_query(filters, namespace=self._namespace, now=self._clock())
        try:
            deleted = await self._delete_matching(query)
        except ES_ERRORS as exc:
            self._outcomes.failed("clear", exc)
            return False
        logger.info("cleared %d entries from %s", deleted, self._index_name)
        return True

    async def apurge_expired(self) -> int:
        """Delete the entries older than `ttl` (in the namespace); return how many."""
        if self._ttl is None:
            raise ValueError("purge_expired() needs a cache constructed with a ttl")
        query = purge_query(self._namespace, self._clock() - self._ttl)
        try:
            deleted = await self._delete_matching(query)
        except ES_ERRORS as exc:
            self._outcomes.failed("purge_expired", exc)
            return 0
        logger.info("purged %d expired entries from %s", deleted, self._index_name)
        return deleted

    async def _delete_matching(self, query: dict[str, Any]) -> int:
        """Delete what `query` matches in every index behind the name; count it.

        Scan and bulk delete: the test server, like some managed clusters, has no
        ``_delete_by_query``.
        """
        try:
            # A scan only sees refreshed documents: make recent writes visible.
            await self._client.indices.refresh(index=self._index_name)
        except NotFoundError:
            return 0
        deleted, _ = await async_bulk(
            self._client,
            self._delete_actions(query),
            # A document deleted or rewritten by a racing writer is not a failure.
            ignore_status=(404,),
            stats_only=True,
        )
        return deleted

    def _scan(self, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        """elasticsearch-py's scan helper: a generator, though typed as iterable."""
        return cast(
            AsyncGenerator[dict[str, Any], None], async_scan(self._client, **kwargs)
        )

    async def _delete_actions(
        self, query: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        # Closed with this generator, so a failed bulk leaves no scroll open.
        async with aclosing(
            self._scan(
                index=self._index_name,
                query={"query": query},
                _source=False,
                size=1000,
            )
        ) as hits:
            async for hit in hits:
                yield {
                    "_op_type": "delete",
                    "_index": hit["_index"],
                    "_id": hit["_id"],
                }

    async def aclose(self) -> None:
        """Close the client if the cache created it; a client passed in stays open."""
        if self._owned_client is not None:
            await self._owned_client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
