"""Reading Elasticsearch's answers: multi-get documents and bulk items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from langchain_es_cache._common.documents import parse_timestamp


def newest_source(docs: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Return the ``_source`` of the newest found document of an mget answer."""
    best: Mapping[str, Any] | None = None
    best_time: datetime | None = None
    for doc in docs:
        source = doc.get("_source")
        if not doc.get("found") or not isinstance(source, Mapping):
            continue
        when = parse_timestamp(source)
        if best is None or (
            when is not None and (best_time is None or when > best_time)
        ):
            best, best_time = source, when
    return best


def mget_doc_error(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The error of one mget answer, `None` for a found or missing document.

    A document of a missing index is simply missing.
    """
    error = doc.get("error")
    if not isinstance(error, dict) or error.get("type") == "index_not_found_exception":
        return None
    return error


def is_multi_index_doc_error(error: Mapping[str, Any]) -> bool:
    """Tell whether an mget document failed because an alias has 2+ indices."""
    return error.get(
        "type"
    ) == "illegal_argument_exception" and "more than one index" in str(
        error.get("reason", "")
    )


def newest_by_id(docs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Group mget answers by ``_id``; keep each id's newest found ``_source``."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for doc in docs:
        groups.setdefault(str(doc.get("_id")), []).append(doc)
    found = {}
    for doc_id, group in groups.items():
        source = newest_source(group)
        if source is not None:
            found[doc_id] = source
    return found


def bulk_failure(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(id, reason)`` of a failed bulk item, `None` if it succeeded.

    A delete of something already gone (404) succeeded: the key is not stored.
    """
    ((operation, info),) = item.items()
    status = int(info.get("status", 500))
    if 200 <= status < 300 or (operation == "delete" and status == 404):
        return None
    error = info.get("error")
    if isinstance(error, dict):
        reason = f"{error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    else:
        reason = f"status {status}: {error}"
    return str(info.get("_id")), reason


def is_conflict(item: Mapping[str, Any]) -> bool:
    """Tell whether a bulk item failed on a version conflict (409): a
    ``create`` of an existing id, or a conditional write that lost."""
    ((_, info),) = item.items()
    return int(info.get("status", 0)) == 409


def stored_key(hit: Mapping[str, Any], prefix: str | None) -> str | None:
    """The key stored in a search hit, if it has one starting with `prefix`.

    The cluster filters on the key's first `KEY_PREFIX_CHARS` characters; a
    longer prefix is checked here.
    """
    source = hit.get("_source")
    key = source.get("text_input") if isinstance(source, Mapping) else None
    if not isinstance(key, str) or (prefix and not key.startswith(prefix)):
        return None
    return key
