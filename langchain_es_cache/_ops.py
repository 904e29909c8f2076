"""Operating cache indices: migration, statistics, access checks and deletes.

Sync only: these are batch jobs for the command line and operators' scripts,
where async gains nothing (the scan and bulk helpers already stream, and an
async application can run them in a thread with ``asyncio.to_thread``). The
pure parts are in `_migrate` and `_inspect`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from contextlib import closing
from datetime import datetime, tzinfo
from typing import Any, cast

from elasticsearch import (
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    TransportError,
)
from elasticsearch.helpers import scan, streaming_bulk

from langchain_es_cache._common import batching, inspection, migration
from langchain_es_cache._common import breaker as _breaker
from langchain_es_cache._common.connection import USER_AGENT
from langchain_es_cache._common.failures import wrong_client_error
from langchain_es_cache._common.migration import Kind
from langchain_es_cache._common.queries import clear_query, namespace_filter
from langchain_es_cache._common.responses import bulk_failure
from langchain_es_cache._common.single_flight import ENTRIES_ONLY
from langchain_es_cache._common.validation import (
    validate_flag,
    validate_index_name,
    validate_namespace,
)
from langchain_es_cache._sync.cache import ElasticsearchCache
from langchain_es_cache._sync.embeddings import ElasticsearchEmbeddingsCache
from langchain_es_cache._sync.index import CacheIndex
from langchain_es_cache.errors import CacheError, MigrationError
from langchain_es_cache.types import MigrationReport

Progress = Callable[[int, int], None]

DETECTION_SAMPLE = 100
"""Documents of SOURCE read to tell which cache wrote it."""

MAX_BATCH = 10_000
"""Largest batch: a scan page cannot be larger."""


def _client(client: object) -> Elasticsearch:
    if not isinstance(client, Elasticsearch):
        raise wrong_client_error(Elasticsearch, client)
    return client.options(headers={"user-agent": USER_AGENT})


# --- migration ---


def migrate(
    client: Elasticsearch,
    source: str,
    dest: str,
    *,
    kind: Kind | None = None,
    namespace: str | None = None,
    source_timezone: tzinfo | None = None,
    dry_run: bool = False,
    batch_size: int = batching.MAX_DOCS_PER_REQUEST,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy a langchain-elasticsearch cache index into a cache index of ours.

    Every entry that stored what its key needs (prompt and ``llm_string`` for
    ``ElasticsearchCache``; key, and namespace if any, for
    ``ElasticsearchEmbeddingsCache``) is re-keyed and written to `dest` with
    its answer, metadata and timestamp; the others are counted, never guessed.
    `source` is only read. `dest` may be new (created with the cache's
    mapping) or an existing cache index of the same kind; where it already
    has an entry, the newer copy wins, so running twice changes nothing.

    Args:
        client: A sync ``Elasticsearch`` client; never closed.
        source: Index or alias written by langchain-elasticsearch.
        dest: Index or alias of ours to write to.
        kind: ``"llm"`` or ``"embeddings"``; by default read from the first
            documents of `source` (`MigrationError` if they do not tell).
        namespace: The namespace of ours the LLM entries go to (the
            ``namespace=`` of the cache that will read them); embeddings
            entries keep the namespace they were stored with.
        source_timezone: The time zone of the naive local times
            langchain-elasticsearch wrote; by default this machine's.
        dry_run: Read and count only; write nothing, create nothing.
        batch_size: Documents per scan page and per bulk request (1 to 10,000).
        progress: Called with (documents read, documents in `source`) after
            each batch.

    Returns the `MigrationReport`. Raises `MigrationError` before writing
    anything when `source` or `dest` cannot be used, and elasticsearch-py's
    errors when the cluster fails (running again resumes safely).
    """
    client = _client(client)
    source = validate_index_name(source)
    dest = validate_index_name(dest)
    namespace = validate_namespace(namespace)
    validate_flag("dry_run", dry_run)
    if kind is not None and kind not in migration.KINDS:
        raise ValueError(f"kind must be 'llm' or 'embeddings', not {kind!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int, not {type(batch_size).__name__}")
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
    if source_timezone is not None and not isinstance(source_timezone, tzinfo):
        raise TypeError("source_timezone must be a datetime.tzinfo")
    _refuse_overlap(client, source, dest)
    try:
        total = int(client.count(index=source)["count"])
    except NotFoundError:
        raise MigrationError(f"source index {source!r} does not exist") from None
    if kind is None:
        sample = client.search(
            index=source,
            size=DETECTION_SAMPLE,
            source_includes=["llm_output", "vector_dump", *migration.OURS_FIELDS],
        )
        kind = migration.detect_kind(
            source, (hit.get("_source", {}) for hit in sample["hits"]["hits"])
        )
    if kind == "embeddings" and namespace is not None:
        raise ValueError(
            "namespace applies to LLM entries only: embeddings entries keep the "
            "namespace they were stored with"
        )
    report = MigrationReport(source=source, dest=dest, kind=kind, dry_run=dry_run)
    if kind is None:
        return report  # nothing in SOURCE: DEST is left as it is
    cache: CacheIndex = (
        ElasticsearchCache(dest, client=client, namespace=namespace)
        if kind == "llm"
        else ElasticsearchEmbeddingsCache(dest, client=client)
    )
    _check_dest(client, kind, dest)
    alias = False if dry_run else cache.is_alias()
    # scan is a generator, though typed as an iterable; closing it clears the
    # scroll when a batch fails.
    hits = cast(
        Generator[dict[str, Any], None, None],
        scan(client, index=source, query={"query": {"match_all": {}}}, size=batch_size),
    )
    with closing(hits):
        for batch in batching.chunked(hits, batch_size):
            _migrate_batch(
                client,
                cache,
                batch,
                report,
                kind=kind,
                namespace=namespace,
                zone=source_timezone,
                alias=alias,
            )
            if progress is not None:
                progress(report.scanned, max(total, report.scanned))
    return report


def _refuse_overlap(client: Elasticsearch, source: str, dest: str) -> None:
    """Refuse a DEST that is SOURCE or shares an index with it: SOURCE is read only."""
    if source == dest:
        raise MigrationError("source and dest must be different indices")
    shared = _concrete(client, source) & _concrete(client, dest)
    if shared:
        raise MigrationError(
            f"source {source!r} and dest {dest!r} share the index "
            f"{sorted(shared)[0]!r}: dest must be another index"
        )


def _concrete(client: Elasticsearch, name: str) -> set[str]:
    """The indices behind `name`; empty if it does not exist (or is hidden to us)."""
    try:
        return set(client.indices.get_alias(index=name))
    except (NotFoundError, AuthorizationException):
        return set()


def _check_dest(client: Elasticsearch, kind: Kind, dest: str) -> None:
    try:
        mappings = client.indices.get_mapping(index=dest)
    except NotFoundError:
        return
    for name, body in mappings.items():
        properties = body.get("mappings", {}).get("properties", {})
        problem = migration.dest_problem(kind, dest, properties)
        if problem is not None:
            where = "" if name == dest else f" (index {name!r} behind it)"
            raise MigrationError(problem + where)


def _migrate_batch(
    client: Elasticsearch,
    cache: CacheIndex,
    batch: list[dict[str, Any]],
    report: MigrationReport,
    *,
    kind: Kind,
    namespace: str | None,
    zone: tzinfo | None,
    alias: bool,
) -> None:
    report.scanned += len(batch)
    converted = []
    for hit in batch:
        result = migration.convert(
            kind, hit, namespace=namespace, zone=zone, index=report.source
        )
        if isinstance(result, migration.Skip):
            report.note(result.reason, f"{hit.get('_id')}: {result.detail}")
            continue
        converted.append(result)
        if result.written is None:
            report.without_timestamp += 1
    entries = migration.newest_entries(converted)
    # Older copies of one entry (SOURCE behind an alias) give way to the newest.
    report.unchanged += len(converted) - len(entries)
    if not entries:
        return
    existing = cache._realtime_read([e.doc_id for e in entries], ["timestamp"])
    actions = []
    for entry in entries:
        action = migration.plan(entry, existing.get(entry.doc_id))
        if action == "unchanged":
            report.unchanged += 1
        elif report.dry_run:
            report.created += action == "create"
            report.updated += action == "update"
        else:
            actions.append(
                {
                    # create, not index: a copy written since the read is kept.
                    "_op_type": "create" if action == "create" else "index",
                    "_index": report.dest,
                    "_id": entry.doc_id,
                    "_source": entry.document,
                }
            )
    done = _bulk(client, actions, alias, report)
    report.created += done["create"]
    report.updated += done["index"]


def _bulk(
    client: Elasticsearch,
    actions: list[dict[str, Any]],
    alias: bool,
    report: MigrationReport,
) -> dict[str, int]:
    """Write `actions`; count failures in `report`; return successes per op type."""
    done = {"create": 0, "index": 0}
    if not actions:
        return done
    for _, item in streaming_bulk(
        client,
        actions,
        chunk_size=batching.MAX_DOCS_PER_REQUEST,
        max_chunk_bytes=batching.MAX_BYTES_PER_REQUEST,
        raise_on_error=False,
        # Through an alias, never let a write auto-create an index named like it.
        require_alias=alias,
    ):
        ((operation, info),) = item.items()
        if operation == "create" and info.get("status") == 409:
            report.unchanged += 1  # written meanwhile by someone else: theirs stays
            continue
        failure = bulk_failure(item)
        if failure is None:
            done[operation] += 1
        else:
            report.note("failed", f"{failure[0]}: {failure[1]}")
    return done


# --- statistics ---


def index_stats(
    client: Elasticsearch, index: str, *, top: int = 10
) -> inspection.IndexStats:
    """What `index` holds: entries, size, ages, per namespace and configuration.

    Counts what is searchable (written up to a refresh interval ago). Raises
    ``NotFoundError`` for a missing index.
    """
    client = _client(client)
    index = validate_index_name(index)
    try:
        properties = inspection.merged_properties(
            client.indices.get_mapping(index=index).body
        )
        kind = inspection.index_kind(properties)
    except AuthorizationException:
        kind = "unknown (no view_index_metadata privilege)"
    response = client.search(
        index=index,
        size=0,
        track_total_hits=True,
        # single_flight's claims are not entries: counted apart.
        query=ENTRIES_ONLY,
        aggs=inspection.stats_aggregations(top),
    )
    claims = client.count(index=index, query={"exists": {"field": "claim_expires"}})
    try:
        store = client.indices.stats(index=index, metric="store")
        size: int | None = int(store["_all"]["primaries"]["store"]["size_in_bytes"])
    except AuthorizationException:
        size = None
    return inspection.read_stats(
        index, kind, response.body, size, claims=int(claims["count"])
    )


# --- access check ---


def check_index(client: Elasticsearch, index: str) -> inspection.CheckReport:
    """Run the cache classes' ``check()`` on `index`, one line per finding, and
    add which realm authenticated the user and what the index is.

    Never raises for a failed check: each one is a line of the report (an
    error the check does not expect, such as a closed index's, too).
    """
    client = _client(client)
    index = validate_index_name(index)
    report = inspection.CheckReport(index)
    exists: bool | None
    try:
        found = ElasticsearchCache(index, client=client).check()
        user, privileges, exists = found.user, found.privileges, found.index_exists
    except _breaker.PrivilegeError as exc:
        user, privileges, exists = exc.user, exc.privileges, exc.index_exists
    except CacheError as exc:
        cause = exc.__cause__
        if isinstance(cause, AuthenticationException):
            report.add("connection", True, "the cluster answered")
            report.add("credentials", False, "refused (401): check the user or API key")
        elif isinstance(cause, TransportError):
            report.add("connection", False, f"no answer: {_breaker.describe(cause)}")
        else:
            report.add("connection", True, "the cluster answered")
            report.add("check", False, str(exc))
        return report
    report.add("connection", True, "the cluster answered")
    if user is None:
        report.add("credentials", True, "not checked: the cluster has no security")
    else:
        realm = client.security.authenticate().get("authentication_realm", {})
        report.add("credentials", True, f"user {user!r} ({realm.get('name', '?')})")
    seen = _check_index_kind(client, index, exists, report)
    # Without `read`, check() cannot tell whether the index exists; its mapping
    # may still say, and then whether `create_index` is needed.
    known = seen if exists is None else exists
    report.checks.extend(inspection.privilege_checks(privileges, index_exists=known))
    return report


def _check_index_kind(
    client: Elasticsearch,
    index: str,
    exists: bool | None,
    report: inspection.CheckReport,
) -> bool | None:
    """Add the index line: what the index is, as far as `client` may see.

    Tells whether the index exists (`None`: `client` may not see).
    """
    missing = "does not exist yet: the first write creates it"
    if exists is False:
        report.add("index", True, missing)
        return False
    try:
        mappings = client.indices.get_mapping(index=index)
    except NotFoundError:
        report.add("index", True, missing)
        return False
    except AuthorizationException:
        report.add("index", True, "not visible (no view_index_metadata privilege)")
        return None
    behind = sorted(mappings)
    what = "an index" if behind == [index] else f"an alias of {', '.join(behind)}"
    kind = inspection.index_kind(inspection.merged_properties(mappings.body))
    if kind.startswith("langchain-elasticsearch"):
        report.add(
            "index",
            False,
            f"{what} written by langchain-elasticsearch, whose entries this "
            "library does not find: migrate it (langchain-es-cache migrate)",
        )
    else:
        report.add("index", True, f"{what}, {kind}")
    return True


# --- clear and purge ---


def selection_query(
    filters: Mapping[str, Any],
    *,
    namespace: str | None,
    all_namespaces: bool,
    llm_string_hash: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The query of ``clear(**filters)``, over every namespace if asked, and
    limited to one ``llm_string_hash`` (as `index_stats` lists them) if given."""
    query = clear_query(filters, namespace=namespace, now=now)
    clauses: list[dict[str, Any]] = query["bool"]["filter"]
    if all_namespaces:
        if namespace is not None:
            raise ValueError("pass a namespace or all namespaces, not both")
        # clear_query puts the namespace clause first. In every namespace,
        # single_flight's claims (namespace "") are still not entries.
        assert clauses[0] == namespace_filter(None)
        clauses[0] = ENTRIES_ONLY
    if llm_string_hash is not None:
        clauses.append({"term": {"llm_string_hash": llm_string_hash}})
    return {"bool": {"filter": clauses}}


def count_matching(client: Elasticsearch, index: str, query: dict[str, Any]) -> int:
    """How many entries of `index` `query` selects, after a refresh."""
    client = _client(client)
    index = validate_index_name(index)
    client.indices.refresh(index=index)
    return int(client.count(index=index, query=query)["count"])


def delete_matching(client: Elasticsearch, index: str, query: dict[str, Any]) -> int:
    """Delete what `query` selects in every index behind `index`; return how many.

    The caches' own scan and bulk delete (no ``_delete_by_query`` needed).
    """
    return ElasticsearchCache(index, client=_client(client))._delete_matching(query)
