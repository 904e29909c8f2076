"""Checks of every argument a caller passes, before any request."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from langchain_es_cache._common.mappings import (
    MAX_DIMENSIONS,
    METADATA_STRINGS_AS_KEYWORDS,
)
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
    """Return a private copy of `metadata`, which must be a JSON-serializable dict
    that Elasticsearch can store (`metadata_fields` names the rules)."""
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
    metadata_fields(copy)
    return copy


# --- what Elasticsearch refuses in metadata, namespaces and clear filters ---
# Checked before any request: a value Elasticsearch refuses would fail every
# write of the cache (or every clear), long after construction.

KEYWORD_MAX_BYTES = 32766
"""Longest term Lucene indexes, in UTF-8 bytes: a longer keyword is refused."""

LONG_RANGE = (-(2**63), 2**63 - 1)
"""Elasticsearch's ``long``, the type it gives an integer in metadata."""

MAPPING_DEPTH_LIMIT = 20
"""``index.mapping.depth.limit``'s default: ``metadata`` itself is depth 1."""

MAPPING_TOTAL_FIELDS_LIMIT = 1000
"""``index.mapping.total_fields.limit``'s default: objects count, each leaf too."""


@dataclass
class _Field:
    """What one field path below ``metadata`` holds, as Elasticsearch maps it."""

    kinds: set[str]


def _key_parts(key: str, where: str) -> list[str]:
    """`key`'s dot-separated parts (Elasticsearch reads dots as nesting), checked."""
    if not key or key.isspace():
        raise ValueError(
            f"metadata keys must not be empty or blank: {where}{key!r} "
            "(Elasticsearch refuses such a field name)"
        )
    parts = key.split(".")
    if any(not part or part.isspace() for part in parts):
        raise ValueError(
            f"metadata key {where}{key!r} has an empty or blank part between or "
            "around dots: Elasticsearch reads dots in keys as nesting"
        )
    return parts


def _value_kind(value: Any, path: str) -> str:
    """The kind of a scalar, checked against what Elasticsearch stores for it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if not LONG_RANGE[0] <= value <= LONG_RANGE[1]:
            raise ValueError(
                f"{path} = {value} is outside Elasticsearch's long range "
                "(-2**63 to 2**63 - 1), the type of an integer in metadata"
            )
        return "integer"
    if isinstance(value, float):
        try:
            struct.pack("<f", value)
        except OverflowError:
            raise ValueError(
                f"{path} = {value!r} is beyond float32's range (about 3.4e38), "
                "Elasticsearch's type for a decimal number in metadata"
            ) from None
        return "float"
    size = len(value.encode("utf-8"))
    if size > KEYWORD_MAX_BYTES:
        raise ValueError(
            f"{path} is a string of {size} bytes in UTF-8: Elasticsearch "
            f"indexes strings in metadata as keywords of at most "
            f"{KEYWORD_MAX_BYTES} bytes"
        )
    return "string"


def _collect_fields(
    value: Any, path: tuple[str, ...], fields: dict[tuple[str, ...], _Field]
) -> None:
    """Record every field below `path` (JSON values only) in `fields`."""
    shown = ".".join(("metadata", *path))
    if isinstance(value, list):
        for item in value:  # arrays are flattened into their field
            _collect_fields(item, path, fields)
        return
    if value is None:
        return  # Elasticsearch maps nothing for a null
    if isinstance(value, dict):
        if path:
            fields.setdefault(path, _Field(set())).kinds.add("object")
        for key, item in value.items():
            parts = _key_parts(key, f"{shown}: " if path else "")
            for depth in range(1, len(parts)):
                fields.setdefault(path + tuple(parts[:depth]), _Field(set())).kinds.add(
                    "object"
                )
            _collect_fields(item, path + tuple(parts), fields)
        return
    field = fields.setdefault(path, _Field(set()))
    kind = _value_kind(value, shown)
    field.kinds.add(kind)


def _check_fields(fields: Mapping[tuple[str, ...], _Field]) -> None:
    """Each field holds one type, and nests no deeper than the index allows."""
    for path, field in fields.items():
        shown = ".".join(("metadata", *path))
        kinds = field.kinds
        if "object" in kinds and len(kinds) > 1:
            other = sorted(kinds - {"object"})[0]
            raise ValueError(
                f"{shown} holds both objects and {other} values: Elasticsearch "
                "maps each field to one type and refuses the other"
            )
        scalars = {"number" if k in ("integer", "float") else k for k in kinds}
        if len(scalars) > 1:
            raise ValueError(
                f"{shown} mixes {' and '.join(sorted(scalars))} values: "
                "Elasticsearch maps each field to one type and refuses the other"
            )
        if kinds >= {"integer", "float"}:
            # Elasticsearch 8 maps the field to the first value's type and
            # refuses to change it within the document; 9 accepts some mixes.
            raise ValueError(
                f"{shown} mixes integers and decimal numbers: Elasticsearch maps "
                "each field to one type (write 1.0 for 1)"
            )
        # `metadata` is depth 1; an object at depth d holds fields at d + 1.
        depth = 1 + len(path) + ("object" in kinds)
        if depth > MAPPING_DEPTH_LIMIT:
            raise ValueError(
                f"{shown} nests too deep for Elasticsearch's "
                f"index.mapping.depth.limit ({MAPPING_DEPTH_LIMIT}): at most "
                f"{MAPPING_DEPTH_LIMIT - 1} keys below metadata for a value, "
                f"{MAPPING_DEPTH_LIMIT - 2} for an object"
            )


def metadata_fields(metadata: Mapping[str, Any]) -> dict[tuple[str, ...], _Field]:
    """The field paths `metadata` maps below ``metadata``; `ValueError` naming the
    rule for what Elasticsearch would refuse on every write."""
    fields: dict[tuple[str, ...], _Field] = {}
    _collect_fields(metadata, (), fields)
    _check_fields(fields)
    return fields


def check_keywords(
    callee: str, keywords: Iterable[str], allowed: Collection[str]
) -> None:
    """Refuse keywords that `callee` does not take, as Python would, naming
    those it takes."""
    unknown = sorted(set(keywords) - set(allowed))
    if unknown:
        raise TypeError(
            f"{callee}() got unexpected keyword argument(s): {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(allowed))}"
        )


def check_metadata_fields(
    metadata: Mapping[str, Any] | None, mapping: Mapping[str, Any]
) -> None:
    """Refuse `metadata` that maps more fields than a new index allows beside the
    cache's own `mapping` (``index.mapping.total_fields.limit``).

    Without the keyword template, Elasticsearch maps a string as ``text`` with a
    ``keyword`` sub-field: two fields.
    """
    if metadata is None:
        return
    keywords = METADATA_STRINGS_AS_KEYWORDS in mapping.get("dynamic_templates", [])
    own = len(mapping["properties"])  # `metadata` itself is one of them
    used = sum(
        1 + (not keywords and "string" in field.kinds)
        for field in metadata_fields(metadata).values()
    )
    if own + used > MAPPING_TOTAL_FIELDS_LIMIT:
        raise ValueError(
            f"metadata maps {used} fields, which with the cache's own {own} "
            "exceed Elasticsearch's index.mapping.total_fields.limit "
            f"({MAPPING_TOTAL_FIELDS_LIMIT}): at most "
            f"{MAPPING_TOTAL_FIELDS_LIMIT - own} fit"
        )


def metadata_filter_terms(metadata: object) -> list[tuple[str, Any]]:
    """The ``(field, value)`` terms that ``clear(metadata=...)`` must all match.

    Refused before any request: an empty filter (it would widen the clear to the
    whole namespace) or an empty nested dict, a list or `None` (a term query
    matches one value), and whatever `validate_metadata` refuses.
    """
    try:
        wanted = validate_metadata(metadata)
    except ValueError as exc:
        raise ValueError(f"clear(metadata=...): {exc}") from None
    if not wanted:
        raise ValueError(
            "clear(metadata={}) would delete every entry of the namespace: "
            "give at least one key, or call clear() without metadata"
        )
    terms: list[tuple[str, Any]] = []

    def add(prefix: str, value: Mapping[str, Any]) -> None:
        for key, item in value.items():
            field = f"{prefix}.{key}"
            if isinstance(item, dict):
                if not item:
                    raise ValueError(
                        f"clear(metadata=...) has an empty dict at {field}, which "
                        "would match every entry: give the values to match"
                    )
                add(field, item)
            elif item is None or isinstance(item, list):
                raise TypeError(
                    f"clear(metadata=...) cannot match {field} = {item!r}: give "
                    "a str, number or bool (one element matches an array)"
                )
            else:
                terms.append((field, item))

    add("metadata", wanted)
    return terms


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


MAX_TTL = timedelta(days=36525)
"""The longest `ttl` (and ``clear(older_than=)``): 100 years. Longer ones would
overflow `datetime` arithmetic at lookup time; none is needed."""


def validate_ttl(ttl: object, name: str = "ttl") -> timedelta | None:
    """Return `ttl` (seconds or `timedelta`) as a positive `timedelta` of at most
    `MAX_TTL`, or `None`; errors name the parameter `name`."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float, timedelta)):
        raise TypeError(
            f"{name} must be seconds or a timedelta, not {type(ttl).__name__}"
        )
    if isinstance(ttl, float) and math.isnan(ttl):
        raise ValueError(f"{name} must be a number of seconds, not NaN")
    # Compared before converting: timedelta(seconds=inf or 1e20) overflows.
    if isinstance(ttl, timedelta):
        positive, too_long = ttl > timedelta(0), ttl > MAX_TTL
    else:
        positive, too_long = ttl > 0, ttl > MAX_TTL.total_seconds()
    if not positive:
        raise ValueError(f"{name} must be positive, not {ttl!r}")
    if too_long:
        raise ValueError(f"{name} must be at most 100 years (MAX_TTL), not {ttl!r}")
    return ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)


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
    size = len(namespace.encode("utf-8"))
    if size > KEYWORD_MAX_BYTES:
        raise ValueError(
            f"namespace is {size} bytes in UTF-8: it is stored as a keyword, "
            f"which Elasticsearch indexes up to {KEYWORD_MAX_BYTES} bytes"
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


def _iterable(name: str, items: object) -> list[Any]:
    """`items`, any iterable but a str or bytes, read once into a list."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(
            f"{name} must be an iterable (a list, a generator...), "
            f"not {type(items).__name__}"
        )
    return list(items)


def validate_store_keys(keys: object) -> list[str]:
    """Return `keys` (any iterable, read once) as a list, each checked to be a str."""
    checked = _iterable("keys", keys)
    for key in checked:
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, not {type(key).__name__}")
    return checked


def validate_store_pairs(pairs: object) -> list[tuple[str, bytes]]:
    """Return `pairs` (any iterable, read once, such as a ``zip``) as a list of
    ``(str, bytes)`` tuples, every one checked before anything is written."""
    checked = []
    for pair in _iterable("key_value_pairs", pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                "key_value_pairs must hold (key, value) pairs, "
                f"not {type(pair).__name__}"
            )
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
        checked.append((key, value))
    return checked


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
