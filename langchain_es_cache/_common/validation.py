"""Checks of every argument a caller passes, before any request."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from langchain_es_cache._common.mappings import MAX_DIMENSIONS
from langchain_es_cache.types import Clock, OnError, Refresh

_INDEX_NAME_FORBIDDEN = set('\\/*?"<>|,#: ')


_INDEX_NAME_MAX_BYTES = 255


def validate_index_name(index_name: object) -> str:
    """Return `index_name` if Elasticsearch accepts it as an index or alias name.

    Raises `ValueError` naming the rule broken (or `TypeError` for a non-string).
    """
    index_name = require_str("index_name", index_name)
    if not index_name:
        raise ValueError("index_name must not be empty")
    if index_name in (".", ".."):
        raise ValueError(f"index_name must not be {index_name!r}")
    if index_name != index_name.lower():
        raise ValueError(f"index_name must be lowercase: {index_name!r}")
    if index_name[0] in "-_+":
        raise ValueError(
            f"index_name must not start with '-', '_' or '+': {index_name!r}"
        )
    bad = sorted(_INDEX_NAME_FORBIDDEN.intersection(index_name))
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ValueError(
            f"index_name must not contain {shown} "
            f'(forbidden: \\ / * ? " < > | , # : and space): {index_name!r}'
        )
    try:
        size = len(index_name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"index_name must be valid Unicode: {index_name!r}") from None
    if size > _INDEX_NAME_MAX_BYTES:
        raise ValueError(
            f"index_name must be at most {_INDEX_NAME_MAX_BYTES} bytes "
            f"in UTF-8, not {size}"
        )
    return index_name


def validate_metadata(metadata: object) -> dict[str, Any] | None:
    """Return a private copy of `metadata`, which must be a JSON-serializable dict."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, not {type(metadata).__name__}")
    try:
        text = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serializable: {exc}") from None
    if not is_utf8(json.dumps(metadata, ensure_ascii=False)):
        raise ValueError(
            "metadata must be valid Unicode: it holds a lone surrogate, "
            "which Elasticsearch cannot store"
        )
    # A round trip detaches the copy from the caller's objects and turns tuples
    # and non-string keys into what Elasticsearch will store.
    copy: dict[str, Any] = json.loads(text)
    return copy


def validate_flag(name: str, value: object) -> bool:
    """Return `value` if it is a bool; raise `TypeError` naming the parameter."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def validate_refresh(refresh: object) -> Refresh:
    """Return `refresh` if it is `False`, `True` or `"wait_for"`."""
    if refresh is True or refresh is False or refresh == "wait_for":
        return refresh
    raise ValueError(f"refresh must be False, True or 'wait_for', not {refresh!r}")


def validate_clock(clock: object) -> Clock:
    """Return `clock` if it is callable (it must return aware datetimes)."""
    if not callable(clock):
        raise TypeError(f"clock must be callable, not {type(clock).__name__}")
    return clock


def is_utf8(text: str) -> bool:
    """Tell whether `text` encodes to UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_str(name: str, value: object) -> str:
    """Return `value` if it is a str; raise `TypeError` naming the parameter."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def validate_ttl(ttl: object) -> timedelta | None:
    """Return `ttl` (seconds or `timedelta`) as a positive `timedelta`, or `None`."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float, timedelta)):
        raise TypeError(f"ttl must be seconds or a timedelta, not {type(ttl).__name__}")
    value = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    if value <= timedelta(0):
        raise ValueError(f"ttl must be positive, not {ttl!r}")
    return value


def validate_namespace(namespace: object) -> str | None:
    """Return `namespace` if it is `None` or a non-empty string."""
    if namespace is None:
        return None
    namespace = require_str("namespace", namespace)
    if not namespace:
        raise ValueError("namespace must not be empty (use None for no namespace)")
    if not is_utf8(namespace):
        raise ValueError(
            "namespace must be valid Unicode: it holds a lone surrogate, "
            "which Elasticsearch cannot store"
        )
    return namespace


def validate_on_error(on_error: object) -> OnError:
    """Return `on_error` if it is ``"raise"`` or ``"warn"``."""
    if on_error == "raise" or on_error == "warn":
        return on_error
    raise ValueError(f"on_error must be 'raise' or 'warn', not {on_error!r}")


def validate_maximum_duplicates(value: object) -> int:
    """Return `value` if it is an int of at least 1 (``maximum_duplicates_allowed``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"maximum_duplicates_allowed must be an int, not {type(value).__name__}"
        )
    if value < 1:
        raise ValueError(f"maximum_duplicates_allowed must be at least 1, not {value}")
    return value


def validate_store_keys(keys: Iterable[object]) -> list[str]:
    """Return `keys` as a list, each checked to be a str."""
    checked = list(keys)
    for key in checked:
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, not {type(key).__name__}")
    return checked  # type: ignore[return-value]


def validate_store_pairs(pairs: Iterable[object]) -> None:
    """Check that every pair is ``(str, bytes)`` before anything is written."""
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError("key_value_pairs must hold (key, value) tuples")
        key, value = pair
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, not {type(key).__name__}")
        if not is_utf8(key):
            # The key is stored for yield_keys, and Elasticsearch refuses
            # invalid UTF-8: refuse it before anything is written.
            raise ValueError(
                f"keys must be valid Unicode (no lone surrogates): {key!r}"
            )
        if not isinstance(value, bytes):
            raise TypeError(f"values must be bytes, not {type(value).__name__}")


def validate_similarity_threshold(value: object) -> float:
    """Return `value` if it is a cosine similarity: a real number in [-1, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"similarity_threshold must be a number, not {type(value).__name__}"
        )
    if not -1.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(
            "similarity_threshold is a cosine similarity and must be between "
            f"-1 and 1, not {value!r}"
        )
    return float(value)


def validate_dimensions(value: object) -> int | None:
    """Return `value` if it is `None` or an int in [1, `MAX_DIMENSIONS`]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"dimensions must be an int, not {type(value).__name__}")
    if not 1 <= value <= MAX_DIMENSIONS:
        raise ValueError(
            f"dimensions must be between 1 and {MAX_DIMENSIONS}, not {value}"
        )
    return value


def validate_embedding(vector: object, dimensions: int | None) -> list[float]:
    """Return the embedding model's `vector` as floats, checked for a cosine index.

    It must be a non-empty sequence of finite numbers, not all zero (a zero
    vector has no direction), of `dimensions` numbers when they are known.
    """
    try:
        values = [float(x) for x in vector]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise TypeError(
            "the embedding model must return a sequence of numbers, "
            f"not {type(vector).__name__}"
        ) from None
    if not values:
        raise ValueError("the embedding model returned an empty vector")
    if dimensions is not None and len(values) != dimensions:
        raise ValueError(
            f"the embedding model returned {len(values)} dimensions, but the "
            f"cache's vectors have {dimensions}: use one model per index "
            "(or per namespace with the same dimensions)"
        )
    if not all(abs(x) < float("inf") for x in values):
        raise ValueError("the embedding model returned a non-finite number")
    if not any(values):
        raise ValueError(
            "the embedding model returned a zero vector, which has no cosine "
            "similarity to anything"
        )
    return values
