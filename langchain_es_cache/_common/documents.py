"""The stored documents: built from a cache's arguments, read back into values."""

from __future__ import annotations

import base64
import inspect
import json
import logging
import threading
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from langchain_core.load import dumps, loads
from langchain_core.outputs import Generation
from typing_extensions import TypedDict

from langchain_es_cache._common.keys import llm_string_hash
from langchain_es_cache._common.mappings import KEY_PREFIX_CHARS
from langchain_es_cache._common.validation import is_utf8, require_str

logger = logging.getLogger("langchain_es_cache")


class Stamp(TypedDict):
    """The keywords `build_llm_document` and `build_embedding_document` take
    from the cache: whether to store the input, its metadata and namespace,
    and the write time."""

    store_input: bool
    metadata: Mapping[str, Any] | None
    namespace: str | None
    now: datetime


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


# A shared index must not be a way to construct arbitrary objects in our
# process: only langchain-core's own classes may come out of a stored entry, and
# the top level must be generations (checked after loading). "core" is also
# what langchain-core < 1.0 allows; an explicit class list would cost 5x more
# per lookup, as langchain-core rebuilds its allow-list on every call.
_LOADS_OPTIONS: dict[str, Any] = (
    {"allowed_objects": "core"}
    if "allowed_objects" in inspect.signature(loads).parameters
    else {}
)

_first_revival = threading.Lock()
_revived = False


def revive(text: str) -> Any:
    """`langchain_core.load.loads` of a stored value, with the allow-list above.

    ``loads`` is marked beta and warns on its first call from outside LangChain;
    the format it reads is the one LangChain's own caches use. Only that first
    call runs under ``catch_warnings`` (which swaps process-wide state), once,
    behind a lock: no warnings filter is changed for anyone else.
    """
    global _revived
    if not _revived:
        with _first_revival, warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r"The function `loads` is in beta"
            )
            value = loads(text, **_LOADS_OPTIONS)
            _revived = True
            return value
    return loads(text, **_LOADS_OPTIONS)


def storable_text(text: str) -> str:
    """`text` as Elasticsearch can store it: lone surrogates as ``\\udXXX``.

    Elasticsearch refuses a document holding a lone surrogate (invalid UTF-8).
    Only the stored copies of prompt and parameters pass through here; the key
    (`cache_key`) keeps every code point, so lookups stay exact.
    """
    if is_utf8(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def build_llm_document(
    prompt: str,
    llm_string: str,
    return_val: Iterable[Generation],
    *,
    store_input: bool,
    store_input_params: bool,
    metadata: Mapping[str, Any] | None,
    now: datetime,
    namespace: str | None = None,
) -> dict[str, Any]:
    """Build the stored document for one LLM answer.

    ``llm_input`` only with `store_input`, ``llm_params`` only with
    `store_input_params`; ``timestamp`` is `now` in UTC ISO-8601, to the
    millisecond (the precision of Elasticsearch's ``date``). Lone surrogates in
    the stored prompt and parameters are escaped (`storable_text`).
    """
    require_str("prompt", prompt)
    require_str("llm_string", llm_string)
    if isinstance(return_val, (str, bytes, Generation)) or not isinstance(
        return_val, Iterable
    ):
        raise TypeError(
            "return_val must be a list of Generation objects, "
            f"not {type(return_val).__name__}"
        )
    generations = list(return_val)
    if not generations:
        raise ValueError("return_val must hold at least one Generation")
    for item in generations:
        if not isinstance(item, Generation):
            raise TypeError(
                f"return_val must hold Generation objects, not {type(item).__name__}"
            )
    if now.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    body: dict[str, Any] = {
        "llm_output": dump_generations(generations),
        "timestamp": format_time(now),
        "llm_string_hash": llm_string_hash(llm_string),
    }
    if namespace is not None:
        body["namespace"] = namespace
    if store_input_params:
        body["llm_params"] = storable_text(llm_string)
    if store_input:
        body["llm_input"] = storable_text(prompt)
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


def dump_generations(generations: list[Generation]) -> list[str]:
    """Each generation as ``langchain_core.load.dumps`` writes it.

    ``dumps`` writes a value it cannot serialize (a `datetime`, a `set`...) as a
    ``"not_implemented"`` marker that ``loads`` refuses: such an entry could
    never be read back, so it is a `TypeError` naming the value instead. Only an
    output holding the marker's text is parsed to find it.
    """
    dumped = [dumps(item) for item in generations]
    for position, text in enumerate(dumped):
        if '"not_implemented"' in text:
            found = _unserializable(json.loads(text), f"return_val[{position}]")
            if found is not None:
                where, type_name = found
                raise TypeError(
                    f"{where} is a {type_name}, which langchain_core.load.dumps "
                    "cannot serialize: the entry could never be read back, so it "
                    "is not cached. Store JSON values (str, numbers, lists, "
                    "dicts) there instead"
                )
    return dumped


def _unserializable(value: Any, path: str) -> tuple[str, str] | None:
    """Where ``dumps`` output `value` holds a ``not_implemented`` marker, and the
    type it stands for; `None` if nowhere."""
    items: Iterable[tuple[str, Any]] = ()
    if isinstance(value, list):
        items = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    elif isinstance(value, dict):
        if value.get("lc") == 1 and value.get("type") == "not_implemented":
            type_id = value.get("id")
            name = ".".join(map(str, type_id)) if isinstance(type_id, list) else "?"
            return path, name
        kwargs = value.get("kwargs")
        if value.get("lc") == 1 and isinstance(kwargs, dict):
            items = ((f"{path}.{key}", item) for key, item in kwargs.items())
        else:
            # An escaped dict is the caller's data, never a marker.
            items = (
                (f"{path}[{key!r}]", item)
                for key, item in value.items()
                if key != "__lc_escaped__"
            )
    for where, item in items:
        found = _unserializable(item, where)
        if found is not None:
            return found
    return None


def format_time(when: datetime) -> str:
    """`when` in UTC ISO-8601 to the millisecond, as stored in ``timestamp``."""
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse_timestamp(source: Mapping[str, Any]) -> datetime | None:
    """Return the document's timestamp as an aware datetime, or `None` if unusable."""
    value = source.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        # Documents written by langchain-elasticsearch carry local naive times.
        parsed = parsed.astimezone(timezone.utc)
    return parsed


def parse_generations(
    source: Mapping[str, Any] | None, *, index: str, key: str
) -> list[Generation] | None:
    """Return the generations stored in `source`, or `None` with a warning if unusable.

    A foreign or corrupt document is a miss, never an exception in the LLM call.
    """
    if source is None:
        return None
    raw = source.get("llm_output")
    try:
        if not isinstance(raw, list) or not raw:
            raise ValueError("llm_output is not a non-empty list")
        generations = [revive(item) for item in raw]
        for item in generations:
            if not isinstance(item, Generation):
                raise ValueError(f"llm_output holds a {type(item).__name__}")
    except Exception as exc:
        logger.warning(
            "ignoring unreadable cache entry %s in index %s: %s", key, index, exc
        )
        return None
    return generations


def is_expired(source: Mapping[str, Any], ttl: timedelta | None, now: datetime) -> bool:
    """Tell whether an entry is older than `ttl` (an entry of unknown age is)."""
    if ttl is None:
        return False
    written = parse_timestamp(source)
    return written is None or now - written > ttl


def encode_vector(data: bytes) -> str:
    """The stored form of a value: standard base64, as Elasticsearch's ``binary``."""
    return base64.b64encode(data).decode("ascii")


def decode_vector(data: str) -> bytes:
    """The value stored as `data` by `encode_vector`; `ValueError` if not base64."""
    return base64.b64decode(data, validate=True)


def build_embedding_document(
    key: str,
    vector: bytes,
    *,
    store_input: bool,
    metadata: Mapping[str, Any] | None,
    namespace: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Build the stored document for one value of the embeddings cache.

    The key (``text_input``, and its indexed start ``key_prefix``) only with
    `store_input`; ``timestamp`` is `now` in UTC ISO-8601.
    """
    if now.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    body: dict[str, Any] = {
        "vector_dump": encode_vector(vector),
        "timestamp": format_time(now),
    }
    if store_input:
        body["text_input"] = key
        body["key_prefix"] = key[:KEY_PREFIX_CHARS]
    if namespace is not None:
        body["namespace"] = namespace
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


def parse_vector(source: Mapping[str, Any] | None, *, index: str) -> bytes | None:
    """Return the value stored in `source`, or `None` with a warning if unusable."""
    if source is None:
        return None
    raw = source.get("vector_dump")
    try:
        if not isinstance(raw, str):
            raise ValueError("vector_dump is not a string")
        return decode_vector(raw)
    except ValueError as exc:
        logger.warning(
            "ignoring unreadable embeddings entry in index %s: %s", index, exc
        )
        return None
