"""Pure logic shared by the async cache and its generated sync twin: no I/O here."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from langchain_core import messages
from langchain_core._api import LangChainBetaWarning
from langchain_core.load import dumps, loads
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
)

from langchain_es_cache._version import __version__

logger = logging.getLogger("langchain_es_cache")

USER_AGENT = f"langchain-es-cache/{__version__}"
"""Sent with every request, so cluster operators can tell where traffic comes from."""

Refresh = bool | Literal["wait_for"]
Clock = Callable[[], datetime]

LOOKUP_FIELDS = ["llm_output", "timestamp"]
"""The only fields a lookup fetches: the answer, and its age to pick the newest."""

LLM_CACHE_MAPPING: dict[str, Any] = {
    "properties": {
        "llm_output": {"type": "text", "index": False},
        "llm_params": {"type": "text", "index": False},
        "llm_input": {"type": "text", "index": False},
        "metadata": {"type": "object"},
        "timestamp": {"type": "date"},
    }
}
"""Field names and types as in langchain-elasticsearch's cache."""

# Only generations and messages may come out of a stored entry: a shared index
# must not be a way to construct arbitrary LangChain objects in our process.
_ALLOWED_OBJECTS = [
    Generation,
    GenerationChunk,
    ChatGeneration,
    ChatGenerationChunk,
    *(
        cls
        for cls in (getattr(messages, name) for name in messages.__all__)
        if isinstance(cls, type) and issubclass(cls, messages.BaseMessage)
    ),
]
# langchain-core < 1.0 has no allow-list and constructs core classes only.
_LOADS_OPTIONS: dict[str, Any] = (
    {"allowed_objects": _ALLOWED_OBJECTS}
    if "allowed_objects" in inspect.signature(loads).parameters
    else {}
)
# `loads` is marked beta; the format it reads is the one LangChain's own caches use.
warnings.filterwarnings(
    "ignore", category=LangChainBetaWarning, module=r"langchain_es_cache\."
)

_INDEX_NAME_FORBIDDEN = set('\\/*?"<>|,#: ')
_INDEX_NAME_MAX_BYTES = 255


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def validate_index_name(index_name: object) -> str:
    """Return `index_name` if Elasticsearch accepts it as an index or alias name.

    Raises `ValueError` naming the rule broken (or `TypeError` for a non-string).
    """
    if not isinstance(index_name, str):
        raise TypeError(f"index_name must be a str, not {type(index_name).__name__}")
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


def client_settings(
    *,
    has_client: bool,
    es_url: str | None,
    es_cloud_id: str | None,
    es_user: str | None,
    es_api_key: str | None,
    es_password: str | None,
) -> dict[str, Any] | None:
    """Check that exactly one connection source is given.

    Returns the keyword arguments for a new client, or `None` when the caller
    passed a client of their own. Messages never include a secret.
    """
    for name, value in (
        ("es_url", es_url),
        ("es_cloud_id", es_cloud_id),
        ("es_user", es_user),
        ("es_api_key", es_api_key),
        ("es_password", es_password),
    ):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
        if value == "":
            raise ValueError(f"{name} must not be empty")
    if has_client:
        given = [
            name
            for name, value in (
                ("es_url", es_url),
                ("es_cloud_id", es_cloud_id),
                ("es_user", es_user),
                ("es_password", es_password),
                ("es_api_key", es_api_key),
            )
            if value is not None
        ]
        if given:
            raise ValueError(
                "pass either client or connection settings, not both: "
                f"got client together with {', '.join(given)}"
            )
        return None
    if es_url is not None and es_cloud_id is not None:
        raise ValueError("pass es_url or es_cloud_id, not both")
    if es_url is None and es_cloud_id is None:
        raise ValueError(
            "no connection given: pass client=Elasticsearch(...), "
            "or es_url='http://host:9200' (or es_cloud_id) with es_api_key "
            "or es_user and es_password"
        )
    if (es_user is None) != (es_password is None):
        raise ValueError("es_user and es_password must be given together")
    if es_api_key is not None and es_user is not None:
        raise ValueError("pass es_api_key or es_user and es_password, not both")
    settings: dict[str, Any] = {"headers": {"user-agent": USER_AGENT}}
    if es_url is not None:
        settings["hosts"] = [es_url]
    else:
        settings["cloud_id"] = es_cloud_id
    if es_api_key is not None:
        settings["api_key"] = es_api_key
    elif es_user is not None:
        settings["basic_auth"] = (es_user, es_password)
    return settings


def _netstring(text: str) -> bytes:
    # surrogatepass keeps lone surrogates hashable and distinct instead of failing.
    data = text.encode("utf-8", "surrogatepass")
    return b"%d:%s," % (len(data), data)


def cache_key(*parts: str) -> str:
    """Return the document id for a cache entry identified by `parts`.

    Scheme (version 1, stable across processes, machines and releases): the
    SHA-256 hex digest of the ASCII tag ``lcesc1`` followed by each part as a
    netstring, ``<byte length>:<UTF-8 bytes>,`` (lone surrogates encoded with
    ``surrogatepass``). Length prefixes make the encoding unambiguous, so
    ``("ab", "c")`` and ``("a", "bc")`` never share a key.
    """
    digest = hashlib.sha256(b"lcesc1")
    for part in parts:
        digest.update(_netstring(part))
    return digest.hexdigest()


def llm_key(prompt: str, llm_string: str) -> str:
    """Return the document id of the LLM cache entry for `(prompt, llm_string)`."""
    return cache_key(prompt, llm_string)


def build_llm_document(
    prompt: str,
    llm_string: str,
    return_val: Iterable[Generation],
    *,
    store_input: bool,
    store_input_params: bool,
    metadata: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """Build the stored document for one LLM answer.

    ``llm_input`` only with `store_input`, ``llm_params`` only with
    `store_input_params`; ``timestamp`` is `now` in ISO-8601 with its offset.
    """
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
        "llm_output": [dumps(item) for item in generations],
        "timestamp": now.astimezone(timezone.utc).isoformat(),
    }
    if store_input_params:
        body["llm_params"] = llm_string
    if store_input:
        body["llm_input"] = prompt
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


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
        generations = [loads(item, **_LOADS_OPTIONS) for item in raw]
        for item in generations:
            if not isinstance(item, Generation):
                raise ValueError(f"llm_output holds a {type(item).__name__}")
    except Exception as exc:
        logger.warning(
            "ignoring unreadable cache entry %s in index %s: %s", key, index, exc
        )
        return None
    return generations


def is_multi_index_error(exc: Exception) -> bool:
    """Tell whether a single-document request failed because an alias has 2+ indices."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    reason = str(error.get("reason", ""))
    return (
        error.get("type") == "illegal_argument_exception"
        and "more than one index" in reason
    )


def is_error_type(exc: Exception, error_type: str) -> bool:
    """Tell whether an API error's body names `error_type`."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("type") == error_type


def wrong_client_error(expected: type, client: object) -> TypeError:
    """The error for a `client` argument of the wrong class."""
    return TypeError(
        f"client must be an {expected.__module__.split('.')[0]}.{expected.__name__}, "
        f"not {type(client).__module__}.{type(client).__name__}"
    )


class MappingConflictError(ValueError):
    """The cache's index exists with fields the cache cannot use."""


def mapping_conflict(index: str, exc: Exception) -> MappingConflictError:
    """The error for an index whose mapping conflicts with the cache's."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    reason = error.get("reason") if isinstance(error, dict) else str(exc)
    return MappingConflictError(
        f"index {index!r} has a mapping that conflicts with the cache's: {reason}. "
        "Use another index_name, or move the data to an index with the cache's "
        "mapping."
    )


def sync_use_error(cls_name: str, method: str) -> TypeError:
    """The error for a sync call on an async-only cache."""
    sync_name = cls_name.removeprefix("Async")
    return TypeError(
        f"{cls_name} is async-only, but {method}() was called from sync code "
        f"(for example invoke() or batch()). Use {sync_name} for sync or mixed "
        f"sync/async code, or call the async methods (ainvoke, abatch)."
    )
