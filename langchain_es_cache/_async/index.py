"""The client and the index behind every cache class: written once, async."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing, contextmanager
from datetime import timedelta
from types import TracebackType
from typing import Any, ClassVar, cast

from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    NotFoundError,
    TransportError,
)
from elasticsearch.helpers import async_bulk, async_scan
from typing_extensions import Self

from langchain_es_cache import _breaker, _common
from langchain_es_cache._common import Refresh
from langchain_es_cache._twins import AsyncIndexLock

logger = logging.getLogger("langchain_es_cache")


class AsyncCacheIndex:
    """Owns the connection and prepares the index; subclasses add the cache API.

    A client the class creates from credentials is closed by `aclose` and
    ``async with``, and gets timeouts sized for a cache (`_breaker`); a client
    passed in is used through ``options()`` (so never changed) and never closed.
    Every operation passes the cache's circuit breaker (`_gate`).
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
        on_error: _common.OnError,
        clock: _common.Clock,
        breaker: _breaker.BreakerSettings | None,
    ) -> None:
        self._index_name = _common.validate_index_name(index_name)
        self._store_input = _common.validate_flag("store_input", store_input)
        self._metadata = _common.validate_metadata(metadata)
        self._namespace = _common.validate_namespace(namespace)
        self._ttl = _common.validate_ttl(ttl)
        self._clock = _common.validate_clock(clock)
        self._outcomes = _common.Outcomes(
            self._index_name, _common.validate_on_error(on_error)
        )
        settings_of_breaker = _breaker.validate_breaker(breaker)
        self._breaker = (
            None
            if settings_of_breaker is None
            else _breaker.CircuitBreaker(settings_of_breaker)
        )
        settings = _common.client_settings(
            has_client=client is not None,
            es_url=es_url,
            es_cloud_id=es_cloud_id,
            es_user=es_user,
            es_api_key=es_api_key,
            es_password=es_password,
        )
        if client is None:
            self._owned_client: AsyncElasticsearch | None = AsyncElasticsearch(
                **settings or {}, **_breaker.own_client_options()
            )
            self._fixed_client = self._owned_client
            # Requests whose work grows with the data get a longer timeout.
            self._batch_client = self._owned_client.options(
                request_timeout=_breaker.BATCH_REQUEST_TIMEOUT
            )
            self._latency: _breaker.Latency | None = _breaker.Latency()
        else:
            if not isinstance(client, AsyncElasticsearch):
                raise _common.wrong_client_error(AsyncElasticsearch, client)
            self._owned_client = None
            # options() returns a new client sharing the transport: the
            # caller's object is left as it was.
            self._fixed_client = client.options(
                headers={"user-agent": _common.USER_AGENT}
            )
            self._batch_client = self._fixed_client
            self._latency = None
        # Clients with each timeout step, made once: options() is slow.
        self._timed_clients: dict[float, AsyncElasticsearch] = {}
        self._is_alias: bool | None = None
        self._multi_index = False
        self._index_lock = AsyncIndexLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index_name={self._index_name!r})"

    @property
    def _client(self) -> AsyncElasticsearch:
        """The client for requests about one document.

        A client the cache created gives them a timeout following how fast the
        cluster has been answering (`_breaker.Latency`); a client passed in,
        its own settings.
        """
        if self._latency is None:
            return self._fixed_client
        timeout = self._latency.timeout()
        client = self._timed_clients.get(timeout)
        if client is None:
            client = self._timed_clients.setdefault(
                timeout, self._fixed_client.options(request_timeout=timeout)
            )
        return client

    def stats(self) -> _common.CacheStats:
        """Hits, misses, writes, errors and skipped operations since construction."""
        return self._outcomes.snapshot()

    @contextmanager
    def _gate(
        self, operation: str, *, timed: bool = False
    ) -> Iterator[_breaker.Stopwatch]:
        """Let `operation`'s requests go unless the circuit breaker is open.

        Wraps the requests of one operation, inside the ``try`` that hands its
        failures to `Outcomes.failed`: when open, raises `CircuitOpenError`
        (skipped, or raised, by `on_error`); otherwise tells the breaker how the
        requests went (only transport failures, `_breaker.is_outage`, count).
        A `timed` operation, a request or two about one document, also tells
        how long the answer took (the yielded stopwatch is restarted by an
        operation that does something else first).
        """
        breaker = self._breaker
        permit = None
        if breaker is not None:
            permit = breaker.admit()
            if permit is None:
                raise _common.CircuitOpenError(
                    f"cache {operation} on index {self._index_name!r} not sent: "
                    f"{breaker.refusal()}"
                )
        stopwatch = _breaker.Stopwatch()
        try:
            yield stopwatch
        except _common.ES_ERRORS as exc:
            outage = _breaker.is_outage(exc)
            if not outage:
                self._answered(stopwatch, timed)
            if breaker is not None and permit is not None:
                if outage:
                    change = breaker.failed(permit, _breaker.describe(exc))
                else:
                    change = breaker.succeeded(permit)
                self._log_change(change)
            raise
        except BaseException:
            if breaker is not None and permit is not None:
                breaker.abandoned(permit)
            raise
        self._answered(stopwatch, timed)
        if breaker is not None and permit is not None:
            self._log_change(breaker.succeeded(permit))

    def _answered(self, stopwatch: _breaker.Stopwatch, timed: bool) -> None:
        if self._latency is not None and timed:
            self._latency.answered(stopwatch.seconds())

    def _log_change(self, change: _breaker.Change | None) -> None:
        if change is not None:
            logger.log(change.level, change.message(self._index_name))

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
        indices = self._batch_client.indices
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
            if not _common.is_error_type(exc, "resource_already_exists_exception"):
                raise
            await self._put_mapping()
        return False

    async def _put_mapping(self) -> None:
        try:
            await self._batch_client.indices.put_mapping(
                index=self._index_name, **self.mapping["mappings"]
            )
        except BadRequestError as exc:
            if not _common.is_error_type(exc, "illegal_argument_exception"):
                raise
            raise _common.mapping_conflict(self._index_name, exc) from exc

    async def _realtime_read(
        self, ids: list[str], fields: list[str]
    ) -> dict[str, Mapping[str, Any]]:
        """Realtime-read `ids` (get/mget, never a search): the newest ``_source``
        of each one found, reading every index behind an alias."""
        client = self._client if len(ids) == 1 else self._batch_client
        if not self._multi_index:
            response = await client.mget(
                index=self._index_name, ids=ids, source_includes=fields
            )
            docs: list[dict[str, Any]] = response["docs"]
            errors = [e for e in map(_common.mget_doc_error, docs) if e is not None]
            if not errors:
                return _common.newest_by_id(docs)
            if not any(_common.is_multi_index_doc_error(e) for e in errors):
                raise _common.CacheError(f"mget failed: {errors[0]}")
            # A single-index read cannot span an alias's indices: from now on
            # read them all and keep the newest copy.
            self._multi_index = True
        indices = await self._indices()
        found: dict[str, Mapping[str, Any]] = {}
        per_request = max(1, _common.STORE_REQUEST_DOCS // len(indices))
        for chunk in _common.chunked(ids, per_request):
            response = await client.mget(
                docs=[
                    {"_index": index, "_id": doc_id}
                    for doc_id in chunk
                    for index in indices
                ],
                source_includes=fields,
            )
            docs = response["docs"]
            for error in map(_common.mget_doc_error, docs):
                if error is not None:
                    # A copy we cannot read may be the newest: not a silent miss.
                    raise _common.CacheError(f"mget failed: {error}")
            found.update(_common.newest_by_id(docs))
        return found

    async def _indices(self) -> list[str]:
        """The indices behind the alias, or the index name itself."""
        if self._is_alias is False:
            return [self._index_name]
        try:
            aliases = await self._batch_client.indices.get_alias(name=self._index_name)
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
            with self._gate("update", timed=True):
                await self._write(doc_id, document, refresh=refresh)
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("update", exc)
            return False
        self._outcomes.count("writes")
        return True

    async def _write(
        self, doc_id: str, document: dict[str, Any], *, refresh: Refresh = False
    ) -> None:
        """The requests of `_store`: prepare the index, index the document."""
        # The first writes of this object may create the index, then wait for
        # its shard to start: they get the longer timeout.
        client = self._batch_client if self._is_alias is None else self._client
        alias = await self.is_alias()
        await client.index(
            index=self._index_name,
            id=doc_id,
            document=document,
            # Through an alias, never let a write auto-create an index named
            # like the alias.
            require_alias=alias,
            refresh=refresh,
        )

    async def _clear(self, filters: dict[str, Any]) -> bool:
        """Delete the namespace's entries matching `filters` (`clear`'s keywords).

        Logs how many were deleted; tells whether the clear went through.
        """
        query = _common.clear_query(
            filters, namespace=self._namespace, now=self._clock()
        )
        try:
            with self._gate("clear"):
                deleted = await self._delete_matching(query)
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("clear", exc)
            return False
        logger.info("cleared %d entries from %s", deleted, self._index_name)
        return True

    async def apurge_expired(self) -> int:
        """Delete the entries older than `ttl` (in the namespace); return how many."""
        if self._ttl is None:
            raise ValueError("purge_expired() needs a cache constructed with a ttl")
        query = _common.purge_query(self._namespace, self._clock() - self._ttl)
        try:
            with self._gate("purge_expired"):
                deleted = await self._delete_matching(query)
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("purge_expired", exc)
            return 0
        logger.info("purged %d expired entries from %s", deleted, self._index_name)
        return deleted

    async def acheck(self) -> _breaker.CheckReport:
        """Connect, authenticate and check the privileges the cache needs on its
        index; for health checks at application start.

        Returns a `CheckReport`. Raises `CacheError` saying what is wrong when
        the cache cannot work: cluster unreachable, credentials refused, a
        privilege missing (``read``, ``write``; ``create_index`` or ``manage``
        while the index does not exist). Whatever `on_error` says, sent even
        while the circuit breaker is open, and not counted in `stats`.
        """
        name = self._index_name
        try:
            try:
                answer = await self._batch_client.security.has_privileges(
                    index=[
                        {
                            "names": [name],
                            "privileges": list(_breaker.CHECKED_PRIVILEGES),
                        }
                    ]
                )
            except ApiError as exc:
                if not _breaker.is_security_off(exc):
                    raise
                user, privileges = _breaker.NO_SECURITY
            else:
                user, privileges = _breaker.privileges_of(answer.body, name)
            _breaker.missing_privileges(name, user, privileges)
            exists = await self._index_exists()
        except AuthenticationException as exc:
            raise _common.CacheError(
                f"check of cache index {name!r}: Elasticsearch refused the "
                f"credentials: {exc}"
            ) from exc
        except TransportError as exc:
            raise _common.CacheError(
                f"check of cache index {name!r}: cannot reach Elasticsearch: "
                f"{_breaker.describe(exc)}"
            ) from exc
        except ApiError as exc:
            raise _common.CacheError(
                f"check of cache index {name!r}: Elasticsearch refused: {exc}"
            ) from exc
        return _breaker.check_report(name, user, privileges, index_exists=exists)

    async def _index_exists(self) -> bool:
        """Whether the index or alias exists: a realtime read of an id never
        stored, which needs only the ``read`` privilege."""
        try:
            await self._batch_client.get(
                index=self._index_name, id=_breaker.CHECK_ID, source=False
            )
        except NotFoundError as exc:
            return not _common.is_error_type(exc, "index_not_found_exception")
        except BadRequestError as exc:
            if not _common.is_multi_index_error(exc):
                raise
        return True

    async def _delete_matching(self, query: dict[str, Any]) -> int:
        """Delete what `query` matches in every index behind the name; count it.

        Scan and bulk delete: the test server, like some managed clusters, has no
        ``_delete_by_query``.
        """
        try:
            # A scan only sees refreshed documents: make recent writes visible.
            await self._batch_client.indices.refresh(index=self._index_name)
        except NotFoundError:
            return 0
        deleted, _ = await async_bulk(
            self._batch_client,
            self._delete_actions(query),
            # A document deleted or rewritten by a racing writer is not a failure.
            ignore_status=(404,),
            stats_only=True,
        )
        return deleted

    def _scan(self, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        """elasticsearch-py's scan helper: a generator, though typed as iterable."""
        return cast(
            AsyncGenerator[dict[str, Any], None],
            async_scan(self._batch_client, **kwargs),
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
