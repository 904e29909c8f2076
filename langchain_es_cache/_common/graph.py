"""Pure logic of the LangGraph node cache: ids, documents, queries; no I/O here.

LangGraph itself is imported by the graph cache classes only, never here, so
this module loads without it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from langchain_es_cache._common.documents import format_time, storable_text
from langchain_es_cache._common.keys import cache_key
from langchain_es_cache._common.mappings import ENTRY_FIELDS, METADATA_RULES
from langchain_es_cache.errors import CacheError

logger = logging.getLogger("langchain_es_cache")

INSTALL_HINT = "pip install 'langchain-es-cache[langgraph]'"

GRAPH_CACHE_MAPPING: dict[str, Any] = {
    **METADATA_RULES,
    "properties": {
        "value_type": {"type": "keyword", "index": False, "doc_values": False},
        "value_dump": {"type": "binary"},
        "graph_namespace": {"type": "text", "index": False},
        "graph_key": {"type": "text", "index": False},
        "graph_namespace_id": {"type": "keyword"},
        **ENTRY_FIELDS,
        "expires_at": {"type": "date"},
    },
}
"""The serialized value and its serializer's type tag; the namespace and key as
given (for people reading the index); ``graph_namespace_id``, the exact
identity of the namespace that ``clear`` matches; the write time; the expiry."""

GRAPH_LOOKUP_FIELDS = ["value_type", "value_dump", "expires_at", "timestamp"]
"""The only fields a lookup fetches (``timestamp`` picks the newest copy)."""

CLEAR_TERMS = 10_000
"""Most namespaces one clear query names (Elasticsearch allows 65,536 terms)."""


def missing_langgraph(cls_name: str, exc: ImportError) -> ImportError:
    """The error for a graph cache class used without LangGraph installed."""
    return ImportError(
        f"{cls_name} needs LangGraph, which is not installed ({exc}). "
        f"Install it with: {INSTALL_HINT}",
        name="langgraph",
    )


def validate_serde(serde: object) -> None:
    """Check that `serde` speaks LangGraph's serializer protocol (or is `None`)."""
    if serde is None:
        return
    missing = [
        name
        for name in ("dumps_typed", "loads_typed")
        if not callable(getattr(serde, name, None))
    ]
    if missing:
        raise TypeError(
            "serde must implement LangGraph's SerializerProtocol "
            f"(dumps_typed and loads_typed); {type(serde).__name__} lacks "
            f"{' and '.join(missing)}"
        )


def validate_namespace(namespace: object) -> tuple[str, ...]:
    """Return `namespace` if it is a tuple of str (LangGraph's ``Namespace``)."""
    if not isinstance(namespace, tuple):
        raise TypeError(
            f"a namespace must be a tuple of str, not {type(namespace).__name__}"
        )
    for part in namespace:
        if not isinstance(part, str):
            raise TypeError(
                f"a namespace must be a tuple of str; {namespace!r} holds a "
                f"{type(part).__name__}"
            )
    return namespace


def validate_full_key(full_key: object) -> tuple[tuple[str, ...], str]:
    """Return `full_key` if it is ``(namespace, key)``: LangGraph's ``FullKey``."""
    if not isinstance(full_key, tuple) or len(full_key) != 2:
        raise TypeError(
            "cache keys must be (namespace, key) tuples, "
            f"not {type(full_key).__name__} {full_key!r}"[:200]
        )
    namespace, key = full_key
    validate_namespace(namespace)
    if not isinstance(key, str):
        raise TypeError(f"a cache key must be a str, not {type(key).__name__}")
    return namespace, key


def validate_namespaces(namespaces: object) -> list[tuple[str, ...]]:
    """Return `namespaces` (``clear``'s argument) as a list of checked tuples."""
    if isinstance(namespaces, (str, bytes, tuple)) or not isinstance(
        namespaces, Iterable
    ):
        # A bare tuple is one namespace, not a list of them: clearing each of
        # its strings as a namespace would silently clear nothing.
        raise TypeError(
            "namespaces must be a list of namespace tuples (or None for all), "
            f"not {type(namespaces).__name__}"
        )
    return [validate_namespace(namespace) for namespace in namespaces]


def validate_set_pairs(
    pairs: object,
) -> Iterator[tuple[tuple[str, ...], str, Any, object]]:
    """``(namespace, key, value, ttl)`` of each entry of `set()`'s mapping
    ``{(namespace, key): (value, ttl)}``, its key and shape checked as it is
    reached (the ttl is checked with the value, by `validate_entry_ttl`)."""
    if not isinstance(pairs, Mapping):
        raise TypeError(
            "set() takes a mapping {(namespace, key): (value, ttl)}, "
            f"not {type(pairs).__name__}"
        )
    for full_key, entry in pairs.items():
        namespace, key = validate_full_key(full_key)
        if not isinstance(entry, tuple) or len(entry) != 2:
            raise TypeError("set() takes {(namespace, key): (value, ttl)}")
        value, ttl = entry
        yield namespace, key, value, ttl


def validate_entry_ttl(ttl: object) -> timedelta | None:
    """Return an entry's ttl (seconds, as LangGraph gives it) as a `timedelta`."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"a ttl must be seconds or None, not {type(ttl).__name__}")
    if not ttl > 0:  # also refuses NaN
        raise ValueError(f"a ttl must be a positive number of seconds, not {ttl!r}")
    try:
        return timedelta(seconds=ttl)
    except OverflowError:
        raise ValueError(f"a ttl of {ttl!r} seconds is too large") from None


def namespace_id(namespace: tuple[str, ...]) -> str:
    """The exact identity of a namespace, stored in ``graph_namespace_id``.

    `cache_key` over a tag and every part: parts are length-prefixed, so
    ``("a", "b")``, ``("a:b",)``, ``("a",)`` and ``()`` all differ, and no
    namespace can be taken for a prefix of another.
    """
    return cache_key("langgraph-namespace", *namespace)


def entry_id(namespace: tuple[str, ...], key: str) -> str:
    """The document id of the entry for ``(namespace, key)``."""
    return cache_key("langgraph", namespace_id(namespace), key)


def build_document(
    namespace: tuple[str, ...],
    key: str,
    typed_value: tuple[str, bytes],
    *,
    ttl: timedelta | None,
    metadata: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The stored document for one serialized value (`typed_value`).

    ``expires_at`` is `now` plus `ttl` (absent without one); lone surrogates
    in the stored namespace and key are escaped (`storable_text`), which the
    id and ``graph_namespace_id`` never need.
    """
    if now.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    value_type, data = typed_value
    if not isinstance(value_type, str) or not isinstance(data, (bytes, bytearray)):
        raise TypeError(
            "serde.dumps_typed must return (str, bytes), "
            f"not ({type(value_type).__name__}, {type(data).__name__})"
        )
    body: dict[str, Any] = {
        "value_type": storable_text(value_type),
        "value_dump": base64.b64encode(data).decode("ascii"),
        "graph_namespace": [storable_text(part) for part in namespace],
        "graph_key": storable_text(key),
        "graph_namespace_id": namespace_id(namespace),
        "timestamp": format_time(now),
    }
    if ttl is not None:
        body["expires_at"] = format_time(now + ttl)
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expires_at is not a date")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("expires_at has no timezone")
    return parsed


def stored_value(
    source: Mapping[str, Any], *, now: datetime, index: str, doc_id: str
) -> tuple[str, bytes] | None:
    """The ``(type, bytes)`` stored in `source`; `None` when expired or unreadable.

    An unreadable document (written by something else) is logged as a warning.
    """
    try:
        if "expires_at" in source and now >= _parse_time(source["expires_at"]):
            return None
        value_type, dump = source.get("value_type"), source.get("value_dump")
        if not isinstance(value_type, str) or not isinstance(dump, str):
            raise ValueError("no value_type and value_dump strings")
        return value_type, base64.b64decode(dump, validate=True)
    except (ValueError, binascii.Error) as exc:
        logger.warning(
            "ignoring unreadable graph cache entry %s in index %s: %s",
            doc_id,
            index,
            exc,
        )
        return None


def clear_query(namespace_ids: list[str] | None) -> dict[str, Any]:
    """The query selecting the graph entries of these namespaces (all: `None`)."""
    if namespace_ids is None:
        return {"exists": {"field": "graph_namespace_id"}}
    return {"terms": {"graph_namespace_id": namespace_ids}}


def expired_query(now: datetime) -> dict[str, Any]:
    """The query selecting the graph entries expired at `now`."""
    return {
        "bool": {
            "filter": [
                {"exists": {"field": "graph_namespace_id"}},
                {"range": {"expires_at": {"lte": format_time(now)}}},
            ]
        }
    }


def describe_key(full_key: tuple[tuple[str, ...], str]) -> str:
    """`full_key` for a message, cut to 120 characters."""
    text = repr(full_key)
    return text if len(text) <= 120 else f"{text[:120]}..."


def write_error(failures: list[tuple[str, str]]) -> CacheError:
    """The error for a `set` whose bulk write failed for some entries."""
    shown = "; ".join(f"{key}: {reason}" for key, reason in failures[:10])
    more = f"; and {len(failures) - 10} more" if len(failures) > 10 else ""
    return CacheError(
        f"set failed for {len(failures)} entr{'y' if len(failures) == 1 else 'ies'}"
        f": {shown}{more}"
    )
