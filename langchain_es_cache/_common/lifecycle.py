"""Pure logic for indices that change under a running cache: no I/O here.

An index may be deleted, or an alias rolled over to a new write index, while
caches write to it; writes then go to an index that lacks the cache's mapping.
An alias may hold several copies of an entry, one per index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from elasticsearch.helpers import expand_action

from langchain_es_cache._common.documents import format_time
from langchain_es_cache._common.responses import newest_source
from langchain_es_cache.errors import CacheError

NOT_PREPARED_TEMPLATE = "langchain-es-cache-index-not-prepared"
"""A dynamic template that no index has, named by every write for the cache's
own fields (the bulk action's ``dynamic_templates``).

Where a field is mapped, Elasticsearch ignores the name; where it is not (an
index auto-created after a delete, a rollover's new write index), it refuses
the document, naming this template and the field, instead of mapping the field
by guesswork (``namespace`` as ``text``, a vector as ``float``). The cache then
puts its mapping on the index named in the answer and writes again."""

WRITE_ATTEMPTS = 3
"""Sends of one write: an index deleted again right after it was prepared
refuses the next send too."""

SHARD_START_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Seconds to wait before each new read (realtime read or search) of a shard
that is starting.

A rollover points the alias at its new index before that index's shard has
started, and an index auto-created by a write starts the same way: a read
meeting such a shard waits (3.15 s at most in all) instead of failing."""

_SHARD_STARTING = (
    "no_shard_available_action_exception",
    "illegal_index_shard_state_exception",
)

KNN_COPIES = 5
"""Hits a semantic lookup asks for: enough for the copies of one entry in the
indices behind an alias, so that the newest can win."""


def index_header(
    index: str,
    doc_id: str,
    document: Mapping[str, Any],
    fields: Iterable[str],
    *,
    require_alias: bool,
    op: str = "index",
    conditions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The bulk `op` action (``index`` or ``create``, with optional
    `conditions` such as ``if_seq_no``) writing `document`, refused by an index
    where any of the cache's `fields` in it is unmapped (`NOT_PREPARED_TEMPLATE`)."""
    action: dict[str, Any] = {
        **(conditions or {}),
        "_index": index,
        "_id": doc_id,
        "dynamic_templates": {
            field: NOT_PREPARED_TEMPLATE for field in fields if field in document
        },
    }
    if require_alias:
        # Through an alias, never let a write auto-create an index named like
        # the alias.
        action["require_alias"] = True
    return {op: action}


def guarded_action(
    action: bytes | str | dict[str, Any], index: str, fields: Iterable[str]
) -> tuple[dict[str, Any], bytes | dict[str, Any] | None]:
    """elasticsearch-py's expansion of a bulk action (``expand_action``), with
    an index action guarded like `index_header`'s against an index without
    the cache's `fields`."""
    header, body = expand_action(action)
    if "index" in header and isinstance(body, dict):
        guard = index_header(
            index, header["index"].get("_id", ""), body, fields, require_alias=False
        )
        header["index"]["dynamic_templates"] = guard["index"]["dynamic_templates"]
    return header, body


def unprepared_index(item: Mapping[str, Any]) -> str | None:
    """The concrete index that refused a bulk item for lacking the cache's
    mapping, or `None` if the item did not fail for that."""
    ((_, info),) = item.items()
    error = info.get("error")
    if not isinstance(error, dict):
        return None
    reasons = [error.get("reason")]
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        reasons.append(cause.get("reason"))
    if not any(NOT_PREPARED_TEMPLATE in str(reason) for reason in reasons):
        return None
    index = info.get("_index")
    return index if isinstance(index, str) else None


class ShardsStarting(CacheError):
    """A realtime read met a shard that is not started yet."""


def is_shard_starting(error: Mapping[str, Any] | None) -> bool:
    """Tell whether an error (the ``error`` object of an answer or of one of
    its documents) says a shard is not started yet."""
    return error is not None and error.get("type") in _SHARD_STARTING


def search_met_starting_shard(answer: Mapping[str, Any] | None) -> bool:
    """Tell whether a search met a shard that is not started yet: the error
    object of a search that failed on every shard (its ``failed_shards``), or
    a partial answer (its ``_shards.failures``)."""
    if answer is None:
        return False
    failures = answer.get("failed_shards")
    if failures is None:
        shards = answer.get("_shards")
        failures = shards.get("failures") if isinstance(shards, Mapping) else None
    return isinstance(failures, list) and any(
        isinstance(failure, Mapping) and is_shard_starting(failure.get("reason"))
        for failure in failures
    )


def index_vanished(item: Mapping[str, Any]) -> bool:
    """Tell whether a bulk item failed because its index was deleted while the
    write was on its way (sent again, the write creates it anew)."""
    ((_, info),) = item.items()
    error = info.get("error")
    return isinstance(error, dict) and error.get("type") == "index_not_found_exception"


def item_id(item: Mapping[str, Any]) -> str:
    """The document id of a bulk answer's item."""
    ((_, info),) = item.items()
    return str(info.get("_id"))


def stamped(document: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """`document` with ``timestamp`` `now`: the time the write is sent, so an
    entry's age under `ttl` never includes the wait to prepare its index."""
    if now.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    return {**document, "timestamp": format_time(now)}


def failed_deletes(failures: Sequence[tuple[str, str]]) -> str:
    """Say why deletes failed: how many, and each distinct reason (up to 3)."""
    reasons = list(dict.fromkeys(reason for _, reason in failures))
    shown = "; ".join(reasons[:3])
    more = f"; and {len(reasons) - 3} other reason(s)" if len(reasons) > 3 else ""
    return f"{len(failures)} document(s) could not be deleted: {shown}{more}"


def newest_copy(
    hits: Sequence[Mapping[str, Any]],
) -> tuple[Mapping[str, Any] | None, bool]:
    """The newest copy (by ``timestamp``) of the nearest hit's entry, and
    whether more copies may exist than the hits hold.

    Copies of an entry share its id, one per index behind an alias; equal
    vectors score the same, so the first hit is any copy.
    """
    if not hits:
        return None, False
    doc_id = hits[0].get("_id")
    copies = [hit for hit in hits if hit.get("_id") == doc_id]
    newest = newest_source(
        {"found": True, "_source": hit.get("_source")} for hit in copies
    )
    best = next(hit for hit in copies if hit.get("_source") is newest)
    return best, len(copies) >= KNN_COPIES
