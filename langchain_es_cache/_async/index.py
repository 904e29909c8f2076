"""The client and the index behind every cache class."""

from __future__ import annotations

import copy
import logging
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing, contextmanager
from datetime import timedelta
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
from elasticsearch.helpers import async_scan, async_streaming_bulk
from typing_extensions import Self, TypedDict

from langchain_es_cache._common import breaker as _breaker
from langchain_es_cache._common.batching import (
    MAX_BYTES_PER_REQUEST,
    MAX_DOCS_PER_REQUEST,
    chunked,
)
from langchain_es_cache._common.coalescing import split_results, strongest_refresh
from langchain_es_cache._common.connection import USER_AGENT, client_settings
from langchain_es_cache._common.documents import Stamp, utc_now
from langchain_es_cache._common.failures import (
    ES_ERRORS,
    api_error,
    client_server_mismatch,
    is_error_type,
    is_multi_index_error,
    mapping_conflict,
    wrong_client_error,
)
from langchain_es_cache._common.lifecycle import (
    SHARD_START_WAITS,
    WRITE_ATTEMPTS,
    ShardsStarting,
    failed_deletes,
    guarded_action,
    index_header,
    index_vanished,
    is_shard_starting,
    item_id,
    search_met_starting_shard,
    stamped,
    unprepared_index,
)
from langchain_es_cache._common.queries import clear_query, purge_query
from langchain_es_cache._common.responses import (
    bulk_failure,
    is_conflict,
    is_multi_index_doc_error,
    mget_doc_error,
    newest_by_id,
)
from langchain_es_cache._common.state import Outcomes, RefreshTracker
from langchain_es_cache._common.validation import (
    check_keywords,
    check_metadata_fields,
    validate_clock,
    validate_flag,
    validate_index_name,
    validate_metadata,
    validate_namespace,
    validate_on_error,
    validate_ttl,
)
from langchain_es_cache._twins import (
    AsyncActions,
    AsyncClients,
    AsyncCoalescer,
    AsyncIndexLock,
    async_sleep,
)
from langchain_es_cache.errors import CacheError, CircuitOpenError
from langchain_es_cache.types import (
    BreakerSettings,
    CacheStats,
    CheckReport,
    Clock,
    OnError,
    Refresh,
)

logger = logging.getLogger("langchain_es_cache")

Read = tuple[tuple[str, ...], tuple[str, ...], bool]
"""A coalesced read: its ids, the fields it reads, and whether, alone, it
may be a ``get`` (one document)."""
Write = tuple[str, dict[str, Any], Refresh]
"""A coalesced write: id, document, refresh."""


class AsyncConnection(TypedDict, total=False):
    """How a cache reaches Elasticsearch: keywords every cache class takes.

    Pass `client`, or `es_url` or `es_cloud_id` with `es_api_key` (or `es_user`
    and `es_password`); anything else is a `ValueError` naming the rule.
    """

    client: AsyncElasticsearch | None
    """A client of your own; never closed or changed by the cache."""
    es_url: str | None
    """URL of the cluster, when the cache creates its own client."""
    es_cloud_id: str | None
    """Elastic Cloud id, instead of `es_url`."""
    es_user: str | None
    """User for basic authentication, with `es_password`."""
    es_api_key: str | None
    """Encoded API key, instead of user and password."""
    es_password: str | None
    """Password for `es_user`."""


class AsyncOptions(AsyncConnection, total=False):
    """The connection, and the options every cache class takes."""

    metadata: dict[str, Any] | None
    """JSON-serializable dict stored with every entry (default: none)."""
    on_error: OnError
    """``"raise"`` (the default) a `CacheError` when Elasticsearch fails, or
    ``"warn"``: log it and go on as without a cache."""
    clock: Clock
    """Returns the current aware datetime (default: UTC now); for tests."""
    breaker: BreakerSettings | None
    """The circuit breaker's settings (default: `BreakerSettings()`), or `None`
    for none: after consecutive transport failures the cache sends nothing for
    a cool-down."""


class AsyncEntryOptions(AsyncOptions, total=False):
    """`AsyncOptions`, and those of the caches whose entries share an index by
    namespace and age."""

    namespace: str | None
    """Keeps this cache's entries apart from other caches' in the same index:
    part of the key, and the scope of ``clear`` (default: none)."""
    ttl: float | timedelta | None
    """Entries older than this (seconds or `timedelta`) are misses (default:
    none)."""


class AsyncCacheIndex:
    """Owns the connection and prepares the index; subclasses add the cache API.

    The clients the class creates from credentials (`AsyncClients`) are closed
    by `aclose` and ``async with``; a client passed in is used through
    ``options()`` (so never changed) and never closed; the created ones give
    requests timeouts sized for a cache (`_common.breaker`). Every operation
    passes the cache's circuit breaker (`_gate`). A write refused by an
    index for lacking the cache's mapping (`lifecycle.NOT_PREPARED_TEMPLATE`)
    puts the mapping on that index and is sent again.
    """

    MAPPING: ClassVar[dict[str, Any]]
    """The ``mappings`` body of the index: set by each cache class."""

    OPTIONS: ClassVar[frozenset[str]] = frozenset(AsyncEntryOptions.__annotations__)
    """The names of the keyword options the class takes (`AsyncEntryOptions`)."""

    def __init__(
        self, index_name: str, *, store_input: bool, options: Mapping[str, Any]
    ) -> None:
        """Validate `options` (the class's `OPTIONS`) and the settings."""
        check_keywords(type(self).__name__, options, self.OPTIONS)
        client = options.get("client")
        es_url = options.get("es_url")
        es_cloud_id = options.get("es_cloud_id")
        es_user = options.get("es_user")
        es_api_key = options.get("es_api_key")
        es_password = options.get("es_password")
        metadata = options.get("metadata")
        namespace = options.get("namespace")
        ttl = options.get("ttl")
        on_error = options.get("on_error", "raise")
        clock = options.get("clock", utc_now)
        breaker = options.get("breaker", _breaker.DEFAULT_BREAKER)
        self._index_name = validate_index_name(index_name)
        self._store_input = validate_flag("store_input", store_input)
        self._metadata = validate_metadata(metadata)
        self._namespace = validate_namespace(namespace)
        self._ttl = validate_ttl(ttl)
        self._clock = validate_clock(clock)
        self._outcomes = Outcomes(self._index_name, validate_on_error(on_error))
        settings_of_breaker = _breaker.validate_breaker(breaker)
        self._breaker = (
            None
            if settings_of_breaker is None
            else _breaker.CircuitBreaker(settings_of_breaker)
        )
        settings = client_settings(
            has_client=client is not None,
            es_url=es_url,
            es_cloud_id=es_cloud_id,
            es_user=es_user,
            es_api_key=es_api_key,
            es_password=es_password,
        )
        self._owned_clients: AsyncClients | None = None
        self._given_client: AsyncElasticsearch | None = None
        if client is None:
            self._owned_clients = AsyncClients(
                lambda: AsyncElasticsearch(
                    **settings or {}, **_breaker.own_client_options()
                )
            )
        else:
            if not isinstance(client, AsyncElasticsearch):
                raise wrong_client_error(AsyncElasticsearch, client)
            # options() returns a new client sharing the transport: the
            # caller's object is left as it was.
            self._given_client = client.options(headers={"user-agent": USER_AGENT})
        check_metadata_fields(self._metadata, self.MAPPING)
        # How fast the cluster answers, to size the timeouts of the clients the
        # cache created; a client passed in keeps its own settings.
        self._latency: _breaker.Latency | None = (
            _breaker.Latency() if client is None else None
        )
        # Each created client's variants with a timeout step, made once:
        # options() is slow. Keyed by the client (one per event loop).
        self._timed_clients: dict[
            tuple[int, float], tuple[AsyncElasticsearch, AsyncElasticsearch]
        ] = {}
        self._is_alias: bool | None = None
        self._multi_index = False
        self._index_lock = AsyncIndexLock()
        self._refresh: Refresh = False
        # Preparations of indices that refused writes: a count, and the count
        # at each index's latest, so that the writes one new index refuses at
        # once prepare it once.
        self._preparations = 0
        self._prepared_at: dict[str, int] = {}
        self._may_refresh = True
        # Concurrent reads go out as one mget, concurrent writes as one bulk.
        self._reads: AsyncCoalescer[Read, dict[str, Mapping[str, Any]]] = (
            AsyncCoalescer(self._send_reads, lambda read: len(read[0]))
        )
        self._writes: AsyncCoalescer[Write, None] = AsyncCoalescer(
            self._send_writes, lambda write: 1
        )
        # Concurrent searches that must see this object's writes share a
        # refresh (`_refresh_for_search`).
        self._search_refreshes: AsyncCoalescer[RefreshTracker, bool] = AsyncCoalescer(
            self._send_search_refreshes, lambda writes: 1
        )

    @property
    def _base_client(self) -> AsyncElasticsearch:
        """The client to use now: the one passed in, or one the cache created."""
        if self._given_client is not None:
            return self._given_client
        assert self._owned_clients is not None
        return self._owned_clients.current()

    @property
    def _client(self) -> AsyncElasticsearch:
        """The client for requests about one document.

        A client the cache created gives them a timeout following how fast the
        cluster has been answering (`_breaker.Latency`); a client passed in,
        its own settings.
        """
        if self._latency is None:
            return self._base_client
        return self._with_timeout(self._latency.timeout())

    @property
    def _batch_client(self) -> AsyncElasticsearch:
        """The client for requests whose work grows with the data (and the
        first writes, which may create the index): a longer timeout on a
        client the cache created."""
        if self._latency is None:
            return self._base_client
        return self._with_timeout(_breaker.BATCH_REQUEST_TIMEOUT)

    def _with_timeout(self, timeout: float) -> AsyncElasticsearch:
        base = self._base_client
        key = (id(base), timeout)
        entry = self._timed_clients.get(key)
        # The base is kept in the entry: an id is only unique while its
        # object lives.
        if entry is None or entry[0] is not base:
            entry = (base, base.options(request_timeout=timeout))
            self._timed_clients[key] = entry
        return entry[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index_name={self._index_name!r})"

    def stats(self) -> CacheStats:
        """Hits, misses, writes, errors and skipped operations since construction."""
        return self._outcomes.snapshot()

    def _stamp(self) -> Stamp:
        """This cache's `Stamp` for a document written now."""
        return {
            "store_input": self._store_input,
            "metadata": self._metadata,
            "namespace": self._namespace,
            "now": self._clock(),
        }

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
                raise CircuitOpenError(
                    f"cache {operation} on index {self._index_name!r} not sent: "
                    f"{breaker.refusal()}"
                )
        stopwatch = _breaker.Stopwatch()
        try:
            yield stopwatch
        except ES_ERRORS as exc:
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

    def _skipped(self, operation: str) -> bool:
        """Whether the circuit breaker would refuse `operation` now: then it is
        skipped (or raised, by `on_error`). For work to spare before the
        operation's requests (an embedding); takes no permit."""
        breaker = self._breaker
        if breaker is None or not breaker.refuses():
            return False
        self._outcomes.failed(
            operation,
            CircuitOpenError(
                f"cache {operation} on index {self._index_name!r} not sent: "
                f"{breaker.refusal()}"
            ),
        )
        return True

    def _answered(self, stopwatch: _breaker.Stopwatch, timed: bool) -> None:
        if self._latency is not None and timed:
            self._latency.answered(stopwatch.seconds())

    def _log_change(self, change: _breaker.Change | None) -> None:
        if change is not None:
            logger.log(change.level, change.message(self._index_name))

    @property
    def mapping(self) -> dict[str, Any]:
        """The index mapping the cache creates (or adds to an alias's indices):
        a copy, so changing it changes nothing of the cache's."""
        return {"mappings": copy.deepcopy(self._mappings(self.MAPPING))}

    def _mappings(self, mappings: dict[str, Any]) -> dict[str, Any]:
        """The ``mappings`` body of the index, from the class's `mappings`."""
        return mappings

    async def is_alias(self) -> bool:
        """Make sure the index exists with the cache's mapping; tell if it is an alias.

        The first call creates the index, or puts the mapping on an existing index
        or on every index behind an alias; the answer is then remembered. Raises
        `CacheError`, with Elasticsearch's error as its cause, if that fails.
        """
        try:
            return await self._prepared()
        except (ApiError, TransportError) as exc:
            mismatch = client_server_mismatch(exc)
            if mismatch is not None:
                raise mismatch from exc
            raise CacheError(
                f"preparing index {self._index_name!r} failed: {exc}"
            ) from exc

    async def _prepared(self) -> bool:
        """`is_alias`, raising Elasticsearch's errors as they are (for `on_error`)."""
        if self._is_alias is None:
            # Many tasks or threads using a fresh cache at once prepare it once,
            # instead of stampeding the master with creates and mappings.
            async with self._index_lock:
                if self._is_alias is None:
                    self._is_alias = await self._prepare_index()
        return self._is_alias

    async def _prepare_index(self) -> bool:
        try:
            behind = await self._alias_indices()
        except AuthorizationException:
            # May neither read index metadata nor search: take it as an index.
            behind = None
        try:
            if behind is None:
                await self._create_or_map()
            else:
                await self._put_mapping(self._index_name)
        except AuthorizationException as exc:
            # Credentials that may write documents but not manage the index, or
            # a read-only index behind an alias. Writes go ahead: an index that
            # gets them without the cache's mapping refuses them (see _write).
            logger.info(
                "not allowed to prepare index %s (%s); assuming it is ready",
                self._index_name,
                api_error(exc) or exc,
            )
        return behind is not None

    async def _alias_indices(self) -> list[str] | None:
        """The indices behind the name if it is an alias; `None` for an index
        or nothing. Needs the right to read index metadata, or else to search."""
        try:
            # A GET, not a HEAD: an error answer then has a body that says why.
            # Limited to the name, so that indices deleted meanwhile elsewhere
            # in the cluster cannot make it fail.
            aliases = await self._batch_client.indices.get_alias(
                index=self._index_name, name=self._index_name
            )
        except NotFoundError:
            return None
        except AuthorizationException:
            # field_caps needs only the right to read documents, and names
            # every concrete index behind the name (even one with no mapping).
            try:
                response = await self._batch_client.field_caps(
                    index=self._index_name, fields="timestamp"
                )
            except NotFoundError:
                return None
            indices = sorted(response["indices"])
            return None if indices == [self._index_name] else indices
        return sorted(aliases)

    async def _create_or_map(self) -> None:
        try:
            await self._batch_client.indices.create(
                index=self._index_name, mappings=self.mapping["mappings"]
            )
            logger.debug("created cache index %s", self._index_name)
        except BadRequestError as exc:
            # Another task, thread or process created it first: fine.
            if not is_error_type(exc, "resource_already_exists_exception"):
                raise
            await self._put_mapping(self._index_name)

    async def _put_mapping(self, index: str) -> None:
        try:
            await self._batch_client.indices.put_mapping(
                index=index, **self.mapping["mappings"]
            )
        except BadRequestError as exc:
            if not is_error_type(exc, "illegal_argument_exception"):
                raise
            raise mapping_conflict(index, exc) from exc

    async def _prepare_refused(self, index: str, sent_at: int) -> None:
        """Put the cache's mapping on `index`, which refused a write sent when
        `_preparations` was `sent_at`, unless it was prepared since."""
        async with self._index_lock:
            if self._prepared_at.get(index, -1) > sent_at:
                return
            try:
                await self._put_mapping(index)
            except NotFoundError:
                # Deleted again since it refused: the next send meets
                # whatever index is there then.
                return
            except AuthorizationException as exc:
                raise CacheError(
                    f"index {index!r} receives the cache's writes but lacks the "
                    f"cache's mapping, and adding it was refused ({exc}): put "
                    "the cache's mapping on it (and on an index template for "
                    "the indices to come)"
                ) from exc
            logger.info("put the cache's mapping on index %s", index)
            self._preparations += 1
            self._prepared_at[index] = self._preparations

    async def _search_started(self, **kwargs: Any) -> dict[str, Any]:
        """The answer of a search (`kwargs`) from every shard it needs.

        A search that met a shard not started yet (a new index's: created by
        another writer, or by a rollover) is sent again after a wait, as the
        realtime reads are (`SHARD_START_WAITS`). After the last wait its error
        is raised, or for an answer missing those shards `ShardsStarting`: a
        copy it could not search may be the newest.
        """
        waits = iter(SHARD_START_WAITS)
        while True:
            try:
                response = await self._client.search(**kwargs)
            except ApiError as exc:
                wait = next(waits, None)
                if wait is None or not search_met_starting_shard(api_error(exc)):
                    raise
            else:
                answer: dict[str, Any] = response.body
                if not search_met_starting_shard(answer):
                    return answer
                wait = next(waits, None)
                if wait is None:
                    raise ShardsStarting(
                        f"search of {self._index_name!r} missed shards not "
                        f"started: {answer['_shards']['failures']}"
                    )
            await async_sleep(wait)

    # --- realtime reads: the only place that knows whether the name spans
    # several indices (`_multi_index`) ---

    async def _realtime_get(
        self, doc_id: str, fields: list[str]
    ) -> Mapping[str, Any] | None:
        """Realtime-read the newest copy of one document, with the reads of
        concurrent calls (`_lookup`)."""
        return (await self._lookup((doc_id,), fields, get=True)).get(doc_id)

    async def _lookup(
        self, ids: Sequence[str], fields: Sequence[str], *, get: bool = False
    ) -> dict[str, Mapping[str, Any]]:
        """`_realtime_read`, sent together with the reads of concurrent calls
        (one ``mget``); a call of more than a request's worth goes alone, a
        request's worth at a time. With `get`, one id read alone is a ``get``
        (`_get_alone`)."""
        if not ids:
            return {}
        if len(ids) <= MAX_DOCS_PER_REQUEST:
            return await self._reads.call((tuple(ids), tuple(fields), get))
        found: dict[str, Mapping[str, Any]] = {}
        for chunk in chunked(ids, MAX_DOCS_PER_REQUEST):
            found.update(await self._realtime_read(chunk, list(fields)))
        return found

    async def _send_reads(
        self, calls: list[Read]
    ) -> list[dict[str, Mapping[str, Any]] | Exception]:
        """Read the ids of `calls` at once; each gets its own sources, or the
        error of one of its own ids. A call alone is sent as it is."""
        if len(calls) == 1:
            ((ids, fields, get),) = calls
            if get and len(ids) == 1:
                source = await self._get_alone(ids[0], list(fields))
                return [{} if source is None else {ids[0]: source}]
            return [await self._realtime_read(list(ids), list(fields))]
        found, errors = await self._realtime_read_items(
            list(dict.fromkeys(doc_id for call, _, _ in calls for doc_id in call)),
            sorted({field for _, call, _ in calls for field in call}),
        )
        return split_results([call for call, _, _ in calls], found, errors)

    async def _get_alone(
        self, doc_id: str, fields: list[str]
    ) -> Mapping[str, Any] | None:
        """Realtime-read the newest copy of one document: one ``get``, the hot
        path (measured faster than a one-document ``mget``), until an alias
        over several indices makes the multi-index read necessary."""
        waits = iter(SHARD_START_WAITS)
        while not self._multi_index:
            try:
                doc = await self._client.get(
                    index=self._index_name, id=doc_id, source_includes=fields
                )
            except NotFoundError:
                return None
            except BadRequestError as exc:
                if not is_multi_index_error(exc):
                    raise
                # A single-index read cannot span an alias's indices: from now
                # on read them all and keep the newest copy.
                self._multi_index = True
            except ApiError as exc:
                wait = next(waits, None)
                if wait is None or not is_shard_starting(api_error(exc)):
                    raise
                await async_sleep(wait)
            else:
                source: Mapping[str, Any] | None = doc.get("_source")
                return source
        return (await self._realtime_read([doc_id], fields)).get(doc_id)

    async def _realtime_read(
        self, ids: list[str], fields: list[str]
    ) -> dict[str, Mapping[str, Any]]:
        """Realtime-read `ids` (get/mget, never a search): the newest ``_source``
        of each one found, reading every index behind an alias."""
        return newest_by_id(await self._realtime_docs(ids, fields))

    async def _realtime_read_items(
        self, ids: list[str], fields: list[str]
    ) -> tuple[dict[str, Mapping[str, Any]], dict[str, Exception]]:
        """`_realtime_read`, with the error of each id that failed instead of
        raising it: the ids found, and the ids failed."""
        docs, failed = await self._realtime_docs_items(ids, fields)
        return newest_by_id(d for d in docs if str(d.get("_id")) not in failed), failed

    async def _realtime_docs(
        self, ids: list[str], fields: list[str]
    ) -> list[dict[str, Any]]:
        """The mget answers for `ids`: every copy in every index behind an
        alias (with ``_index``, ``_seq_no``, ``_primary_term``).

        A shard that is starting (a rollover's new index) is read again after
        a wait (`SHARD_START_WAITS`).
        """
        docs, failed = await self._realtime_docs_items(ids, fields)
        for error in failed.values():
            raise error
        return docs

    async def _realtime_docs_items(
        self, ids: list[str], fields: list[str]
    ) -> tuple[list[dict[str, Any]], dict[str, Exception]]:
        """`_realtime_docs`, with the error of each id that failed instead of
        raising it; the ids on a starting shard are read again after a wait."""
        docs: list[dict[str, Any]] = []
        failed: dict[str, Exception] = {}
        todo = ids
        for wait in (*SHARD_START_WAITS, None):
            read, errors = await self._realtime_docs_once(todo, fields)
            docs += read
            failed.update(errors)
            starting = [i for i, e in errors.items() if isinstance(e, ShardsStarting)]
            if not starting or wait is None:
                break
            await async_sleep(wait)
            todo = starting
            for doc_id in starting:
                del failed[doc_id]
        return docs, failed

    async def _realtime_docs_once(
        self, ids: list[str], fields: list[str]
    ) -> tuple[list[dict[str, Any]], dict[str, Exception]]:
        client = self._client if len(ids) == 1 else self._batch_client
        if not self._multi_index:
            response = await client.mget(
                index=self._index_name, ids=ids, source_includes=fields
            )
            docs: list[dict[str, Any]] = response["docs"]
            errors = {
                str(doc.get("_id")): error
                for doc in docs
                if (error := mget_doc_error(doc)) is not None
            }
            if not any(map(is_multi_index_doc_error, errors.values())):
                return [d for d in docs if str(d.get("_id")) not in errors], {
                    doc_id: _read_error(error) for doc_id, error in errors.items()
                }
            self._multi_index = True
        indices = await self._indices()
        found: list[dict[str, Any]] = []
        failed: dict[str, Exception] = {}
        per_request = max(1, MAX_DOCS_PER_REQUEST // len(indices))
        for chunk in chunked(ids, per_request):
            response = await client.mget(
                docs=[
                    {"_index": index, "_id": doc_id}
                    for doc_id in chunk
                    for index in indices
                ],
                source_includes=fields,
            )
            for doc in response["docs"]:
                error = mget_doc_error(doc)
                if error is None:
                    found.append(doc)
                else:
                    # A copy we cannot read may be the newest: not a silent miss.
                    failed.setdefault(str(doc.get("_id")), _read_error(error))
        return found, failed

    async def _indices(self) -> list[str]:
        """The indices behind the alias, or the index name itself."""
        if self._is_alias is False:
            return [self._index_name]
        return await self._alias_indices() or [self._index_name]

    async def _store(
        self, doc_id: str, document: dict[str, Any], *, refresh: Refresh = False
    ) -> bool:
        """Write one document under the cache's name; tell whether it was written.

        Failures go to the `on_error` policy.
        """
        try:
            with self._gate("update", timed=True):
                await self._writes.call((doc_id, document, refresh))
        except ES_ERRORS as exc:
            self._outcomes.failed("update", exc)
            return False
        self._outcomes.count("writes")
        return True

    async def _send_writes(self, calls: list[Write]) -> list[Exception | None]:
        """Write the documents of `calls` in one bulk request (`_bulk_index`,
        so through the same guard as `_write`); a failed item fails its call."""
        if len(calls) == 1:
            doc_id, document, refresh = calls[0]
            await self._write(doc_id, document, refresh)
            return [None]
        alias = await self._prepared()

        def actions(ids: set[str] | None) -> Iterable[dict[str, Any]]:
            for doc_id, document, _ in calls:
                if ids is None or doc_id in ids:
                    yield {
                        "_op_type": "index",
                        "_index": self._index_name,
                        "_id": doc_id,
                        "_source": stamped(document, self._clock()),
                    }

        failures = dict(
            await self._bulk_index(
                actions,
                alias=alias,
                refresh=strongest_refresh([refresh for _, _, refresh in calls]),
            )
        )
        return [
            None
            if doc_id not in failures
            else CacheError(
                f"cache update on index {self._index_name!r} failed: {failures[doc_id]}"
            )
            for doc_id, _, _ in calls
        ]

    async def _write(
        self,
        doc_id: str,
        document: dict[str, Any],
        refresh: Refresh,
        *,
        op: str = "index",
        target: str | None = None,
        conditions: Mapping[str, Any] | None = None,
        then: Sequence[dict[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """One bulk write of `document`, followed by the actions `then`; return
        the answer's items.

        An entry (``op`` ``index`` under the cache's name) is stamped when sent.
        `target` names a concrete index instead, `conditions` such as
        ``if_seq_no`` make the write conditional, and a ``create`` or a
        conditional write that conflicts is returned, not raised. An index that
        refuses the write for lacking the cache's mapping gets the mapping, then
        the write again (as does a write whose index was deleted on its way).
        """
        # The first writes of this object may create the index, then wait for
        # its shard to start: they get the longer timeout.
        client = self._batch_client if self._is_alias is None else self._client
        alias = False if target is not None else await self._prepared()
        fields = self.MAPPING["properties"]
        conditional = op == "create" or conditions is not None
        for attempt in range(WRITE_ATTEMPTS):
            sent_at = self._preparations
            response = await client.bulk(
                operations=[
                    index_header(
                        target or self._index_name,
                        doc_id,
                        document,
                        fields,
                        require_alias=alias,
                        op=op,
                        conditions=conditions,
                    ),
                    document if conditional else stamped(document, self._clock()),
                    *then,
                ],
                refresh=refresh,
            )
            items: list[dict[str, Any]] = response["items"]
            item = items[0]
            failure = bulk_failure(item)
            if failure is None or (conditional and is_conflict(item)):
                return items
            index = unprepared_index(item)
            # An index deleted under the write: sent again, the write creates
            # it (never through an alias: require_alias refuses that).
            vanished = not alias and index_vanished(item)
            if (index is None and not vanished) or attempt == WRITE_ATTEMPTS - 1:
                raise CacheError(
                    f"cache update on index {self._index_name!r} failed: {failure[1]}"
                )
            if index is not None:
                await self._prepare_refused(index, sent_at)
        raise AssertionError("the last attempt returns or raises")

    async def _bulk_index(
        self,
        actions: Callable[[set[str] | None], Iterable[dict[str, Any]]],
        *,
        alias: bool,
        refresh: Refresh = False,
    ) -> list[tuple[str, str]]:
        """Bulk-index documents as `_write` indexes one; return ``(id, reason)``
        of each that failed.

        `actions` gives the index actions (``_index``, ``_id``, ``_source``) of
        the ids asked for, or of all with `None`: those an index refused for
        lacking the cache's mapping (or whose index vanished) are sent again
        once it is prepared.
        """
        failures: list[tuple[str, str]] = []
        pending: set[str] | None = None
        for attempt in range(WRITE_ATTEMPTS):
            sent_at = self._preparations
            refused: dict[str, set[str]] = {}
            again: set[str] = set()
            async for _, item in async_streaming_bulk(
                self._batch_client,
                actions(pending),
                chunk_size=MAX_DOCS_PER_REQUEST,
                max_chunk_bytes=MAX_BYTES_PER_REQUEST,
                raise_on_error=False,
                expand_action_callback=lambda action: guarded_action(
                    action, self._index_name, self.MAPPING["properties"]
                ),
                # Through an alias, never let a write auto-create an index
                # named like the alias.
                require_alias=alias,
                refresh=refresh,
            ):
                failure = bulk_failure(item)
                if failure is None:
                    continue
                index = unprepared_index(item)
                vanished = not alias and index_vanished(item)
                if (index is None and not vanished) or attempt == WRITE_ATTEMPTS - 1:
                    failures.append(failure)
                elif index is None:
                    again.add(item_id(item))
                else:
                    refused.setdefault(index, set()).add(item_id(item))
            for index, ids in refused.items():
                try:
                    await self._prepare_refused(index, sent_at)
                except ES_ERRORS as exc:
                    failures += [(doc_id, str(exc)) for doc_id in sorted(ids)]
                else:
                    again |= ids
            if not again:
                break
            pending = again
        return failures

    async def _clear(self, filters: dict[str, Any]) -> bool:
        """Delete the namespace's entries matching `filters` (`clear`'s keywords).

        Logs how many were deleted; tells whether the clear went through.
        """
        query = clear_query(filters, namespace=self._namespace, now=self._clock())
        deleted = await self._delete("clear", query)
        if deleted is None:
            return False
        logger.info("cleared %d entries from %s", deleted, self._index_name)
        return True

    async def apurge_expired(self) -> int:
        """Delete the entries older than `ttl` (in the namespace); return how many."""
        if self._ttl is None:
            raise ValueError("purge_expired() needs a cache constructed with a ttl")
        query = purge_query(self._namespace, self._clock() - self._ttl)
        deleted = await self._delete("purge_expired", query)
        if deleted is None:
            return 0
        logger.info("purged %d expired entries from %s", deleted, self._index_name)
        return deleted

    async def acheck(self) -> CheckReport:
        """Connect, authenticate and check the privileges the cache needs on its
        index; for health checks at application start.

        Returns a `CheckReport`. Raises `CacheError` saying what is wrong when
        the cache cannot work: cluster unreachable, credentials refused, a
        privilege missing (``read``, ``write``; ``create_index`` while the
        index does not exist). Whatever `on_error` says, sent even while the
        circuit breaker is open, and not counted in `stats`.
        """
        name = self._index_name
        try:
            try:
                answer = await self._batch_client.security.has_privileges(
                    index=_breaker.has_privileges_body(name)
                )
            except ApiError as exc:
                if not _breaker.is_security_off(exc):
                    raise
                user, privileges = _breaker.NO_SECURITY
            else:
                user, privileges = _breaker.privileges_of(answer.body, name)
            # Reading needs `read`; without it the verdict is known anyway.
            exists = await self._index_exists() if privileges["read"] else None
        except AuthenticationException as exc:
            raise CacheError(
                f"check of cache index {name!r}: Elasticsearch refused the "
                f"credentials: {exc}"
            ) from exc
        except TransportError as exc:
            raise CacheError(
                f"check of cache index {name!r}: cannot reach Elasticsearch: "
                f"{_breaker.describe(exc)}"
            ) from exc
        except ApiError as exc:
            raise CacheError(
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
            return not is_error_type(exc, "index_not_found_exception")
        except BadRequestError as exc:
            if not is_multi_index_error(exc):
                raise
        return True

    async def _delete(self, operation: str, *queries: dict[str, Any]) -> int | None:
        """Delete what `queries` match, through the breaker: how many, or `None`
        when Elasticsearch failed (`on_error` has then dealt with it)."""
        deleted = 0
        try:
            with self._gate(operation):
                for query in queries:
                    deleted += await self._delete_matching(query)
        except ES_ERRORS as exc:
            self._outcomes.failed(operation, exc)
            return None
        return deleted

    async def _delete_matching(self, query: dict[str, Any]) -> int:
        """Delete what `query` matches in every index behind the name; count it.

        Scan and bulk delete: the test server, like some managed clusters, has no
        ``_delete_by_query``.
        """
        # A scan only sees refreshed documents: make recent writes visible.
        if not await self._refresh_index():
            return 0
        deleted = 0
        failures: list[tuple[str, str]] = []
        try:
            deleted, failures = await self._bulk_delete(
                self._delete_actions(query), refresh=self._refresh
            )
        except NotFoundError as exc:
            # The index went away (or never was): nothing left to delete.
            if not is_error_type(exc, "index_not_found_exception"):
                raise
        if failures:
            raise CacheError(
                f"deleting from index {self._index_name!r} failed: "
                + failed_deletes(failures)
            )
        return deleted

    async def _bulk_delete(
        self,
        actions: AsyncActions,
        *,
        refresh: Refresh = False,
    ) -> tuple[int, list[tuple[str, str]]]:
        """Send delete `actions` in bounded requests: how many were deleted, and
        ``(id, reason)`` of each that failed."""
        deleted = 0
        failures: list[tuple[str, str]] = []
        async for ok, item in async_streaming_bulk(
            self._batch_client,
            actions,
            chunk_size=MAX_DOCS_PER_REQUEST,
            max_chunk_bytes=MAX_BYTES_PER_REQUEST,
            raise_on_error=False,
            refresh=refresh,
        ):
            # A document already gone (404: a racing delete) is not a failure.
            failure = bulk_failure(item)
            if ok:
                deleted += 1
            elif failure is not None:
                failures.append(failure)
        return deleted, failures

    async def _refresh_index(self) -> bool:
        """Make recent writes visible to a search; `False` if there is no index.

        Credentials that may not refresh search what the index's own periodic
        refresh made visible.
        """
        if not self._may_refresh:
            return True
        try:
            await self._batch_client.indices.refresh(index=self._index_name)
        except NotFoundError:
            return False
        except AuthorizationException:
            logger.info(
                "not allowed to refresh %s: searches see writes after the "
                "index's refresh interval",
                self._index_name,
            )
            self._may_refresh = False
        return True

    async def _refresh_for_search(self, writes: RefreshTracker) -> bool:
        """Make the writes that `writes` counts visible to a search, with the
        concurrent callers' (`RefreshTracker`); `False` if there is no index.

        A caller that comes while such a refresh is in flight waits for it:
        one refresh then serves all the callers that waited, and none at all
        when the refreshes completed meanwhile started after their writes.
        """
        if writes.pending() is None:
            return True
        return await self._search_refreshes.call(writes)

    async def _send_search_refreshes(
        self, calls: list[RefreshTracker]
    ) -> list[bool | Exception]:
        """One refresh for `calls`, unless what they wrote is already visible."""
        # Read before the refresh is sent: every write counted has completed.
        pending = [(writes, writes.pending()) for writes in dict.fromkeys(calls)]
        if all(generation is None for _, generation in pending):
            return [True] * len(calls)
        found = await self._refresh_index()
        if found:
            for writes, generation in pending:
                if generation is not None:
                    writes.refreshed(generation)
        return [found] * len(calls)

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
        """Close the clients the cache created; a client passed in stays open."""
        if self._owned_clients is not None:
            await self._owned_clients.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _read_error(error: Mapping[str, Any]) -> CacheError:
    """The error of an id an ``mget`` could not read: `ShardsStarting` (read
    again after a wait) or `CacheError`."""
    if is_shard_starting(error):
        return ShardsStarting(f"mget failed: {error}")
    return CacheError(f"mget failed: {error}")
