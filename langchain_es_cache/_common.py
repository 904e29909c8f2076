"""Pure logic shared by the async cache and its generated sync twin: no I/O here."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from elasticsearch import ApiError, TransportError
from elasticsearch.helpers import BulkIndexError, ScanError
from langchain_core._api import LangChainBetaWarning
from langchain_core.load import dumps, loads
from langchain_core.outputs import Generation

from langchain_es_cache._version import __version__

logger = logging.getLogger("langchain_es_cache")

USER_AGENT = f"langchain-es-cache/{__version__}"
"""Sent with every request, so cluster operators can tell where traffic comes from."""

Refresh = bool | Literal["wait_for"]
Clock = Callable[[], datetime]

LOOKUP_FIELDS = ["llm_output", "timestamp"]
"""The only fields a lookup fetches: the answer, and its age to pick the newest."""

METADATA_STRINGS_AS_KEYWORDS = {
    "metadata_strings": {
        "path_match": "metadata.*",
        "match_mapping_type": "string",
        "mapping": {"type": "keyword"},
    }
}
"""Strings in `metadata` are exact values, so that ``clear(metadata=...)`` can match."""

LLM_CACHE_MAPPING: dict[str, Any] = {
    "dynamic_templates": [METADATA_STRINGS_AS_KEYWORDS],
    "properties": {
        "llm_output": {"type": "text", "index": False},
        "llm_params": {"type": "text", "index": False},
        "llm_input": {"type": "text", "index": False},
        "metadata": {"type": "object"},
        "timestamp": {"type": "date"},
        "namespace": {"type": "keyword"},
        "llm_string_hash": {"type": "keyword"},
    },
}
"""The reference's fields and types, plus what namespaces and filtered clear need."""

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
    if not _is_utf8(json.dumps(metadata, ensure_ascii=False)):
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
        if value is not None and require_str(name, value) == "":
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


def _is_utf8(text: str) -> bool:
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


def storable_text(text: str) -> str:
    """`text` as Elasticsearch can store it: lone surrogates as ``\\udXXX``.

    Elasticsearch refuses a document holding a lone surrogate (invalid UTF-8).
    Only the stored copies of prompt and parameters pass through here; the key
    (`cache_key`) keeps every code point, so lookups stay exact.
    """
    if _is_utf8(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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


def llm_key(prompt: str, llm_string: str, namespace: str | None = None) -> str:
    """Return the document id of the LLM cache entry for `(prompt, llm_string)`.

    A namespace is a third, leading part, so no namespace and any namespace
    never share a key.
    """
    require_str("prompt", prompt)
    require_str("llm_string", llm_string)
    if namespace is None:
        return cache_key(prompt, llm_string)
    return cache_key(namespace, prompt, llm_string)


def llm_string_hash(llm_string: str) -> str:
    """The indexed stand-in for `llm_string`: filterable, and no parameter text."""
    return cache_key(llm_string)


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
        "llm_output": [dumps(item) for item in generations],
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


def api_error(exc: Exception) -> dict[str, Any] | None:
    """The ``error`` object of an API error's answer, if it has one."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def is_multi_index_error(exc: Exception) -> bool:
    """Tell whether a single-document request failed because an alias has 2+ indices."""
    error = api_error(exc)
    return error is not None and is_multi_index_doc_error(error)


def is_error_type(exc: Exception, error_type: str) -> bool:
    """Tell whether an API error's body names `error_type`."""
    error = api_error(exc)
    return error is not None and error.get("type") == error_type


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
    error = api_error(exc)
    reason = error.get("reason") if error is not None else str(exc)
    return MappingConflictError(
        f"index {index!r} has a mapping that conflicts with the cache's: {reason}. "
        "Use another index_name, or move the data to an index with the cache's "
        "mapping."
    )


def sync_use_error(
    cls_name: str, method: str, *, callers: str = "invoke() or batch()"
) -> TypeError:
    """The error for a sync call (made by LangChain's `callers`) on an async class."""
    sync_name = cls_name.removeprefix("Async")
    async_callers = ", ".join(f"a{name.strip()}" for name in callers.split(" or "))
    return TypeError(
        f"{cls_name} is async-only, but {method}() was called from sync code "
        f"(for example {callers}). Use {sync_name} for sync or mixed sync/async "
        f"code, or call the async methods ({async_callers}, a{method}())."
    )


# --- options beyond the reference: expiry, namespaces, clear filters, errors ---

OnError = Literal["raise", "warn"]


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
    if not _is_utf8(namespace):
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


def is_expired(source: Mapping[str, Any], ttl: timedelta | None, now: datetime) -> bool:
    """Tell whether an entry is older than `ttl` (an entry of unknown age is)."""
    if ttl is None:
        return False
    written = parse_timestamp(source)
    return written is None or now - written > ttl


def namespace_filter(namespace: str | None) -> dict[str, Any]:
    """The query clause selecting a namespace's entries (or those without one)."""
    if namespace is None:
        return {"bool": {"must_not": {"exists": {"field": "namespace"}}}}
    return {"term": {"namespace": namespace}}


def older_than_filter(cutoff: datetime) -> dict[str, Any]:
    """The query clause selecting entries written before `cutoff`."""
    return {"range": {"timestamp": {"lt": format_time(cutoff)}}}


def purge_query(namespace: str | None, cutoff: datetime) -> dict[str, Any]:
    """The query selecting the namespace's entries written before `cutoff`."""
    return {
        "bool": {"filter": [namespace_filter(namespace), older_than_filter(cutoff)]}
    }


def _flatten(prefix: str, value: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, item in value.items():
        if isinstance(item, Mapping):
            yield from _flatten(f"{prefix}.{key}", item)
        else:
            yield f"{prefix}.{key}", item


CLEAR_FILTERS = ("llm_string", "metadata", "older_than")


def clear_query(
    filters: Mapping[str, Any], *, namespace: str | None, now: datetime
) -> dict[str, Any]:
    """Return the query selecting what ``clear(**filters)`` deletes.

    Accepted filters, all optional and combined with AND:
    ``llm_string`` (entries of that model configuration), ``older_than``
    (seconds or `timedelta`: entries written longer ago), ``metadata`` (a dict:
    entries whose stored metadata has each of these values). Always limited to
    the cache's own namespace.
    """
    unknown = sorted(set(filters) - set(CLEAR_FILTERS))
    if unknown:
        raise TypeError(
            f"clear() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(CLEAR_FILTERS)}"
        )
    # A filter given as None would silently widen the clear to everything.
    for name, value in filters.items():
        if value is None:
            raise TypeError(f"clear({name}=None): leave the filter out instead")
    clauses = [namespace_filter(namespace)]
    if "llm_string" in filters:
        llm_string = filters["llm_string"]
        if not isinstance(llm_string, str):
            raise TypeError("clear(llm_string=...) must be a str")
        clauses.append({"term": {"llm_string_hash": llm_string_hash(llm_string)}})
    if "older_than" in filters:
        age = validate_ttl(filters["older_than"])
        assert age is not None
        clauses.append(older_than_filter(now - age))
    if "metadata" in filters:
        wanted = validate_metadata(filters["metadata"])
        assert wanted is not None
        clauses.extend(
            {"term": {field: value}} for field, value in _flatten("metadata", wanted)
        )
    return {"bool": {"filter": clauses}}


class CacheError(Exception):
    """A cache operation failed in Elasticsearch; ``__cause__`` holds the reason."""


class CircuitOpenError(CacheError):
    """A cache operation was not sent: the circuit breaker is open (says why)."""


ES_ERRORS = (ApiError, TransportError, BulkIndexError, ScanError, CacheError)
"""What a failing cluster raises, and our errors about its answers: `on_error`
decides what becomes of these."""


@dataclass(frozen=True)
class CacheStats:
    """Counts since the cache was constructed."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: int = 0
    skipped: int = 0
    """Operations not sent because the circuit breaker was open."""


class Outcomes:
    """Counts what happens and applies the `on_error` policy; safe across threads.

    A lock, not atomics: `+=` on an attribute is not atomic across threads, and
    the lock is never held across an ``await``.
    """

    def __init__(self, index: str, on_error: OnError) -> None:
        self._index = index
        self._on_error = on_error
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0, "writes": 0, "errors": 0, "skipped": 0}

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._counts)

    def failed(self, operation: str, exc: Exception) -> None:
        """Count an Elasticsearch failure; raise it (``"raise"``) or log it.

        A client the server cannot talk to is a setup mistake no retry fixes:
        that always raises, whatever `on_error` says. An operation the circuit
        breaker did not send counts as skipped, and is not logged: the breaker
        logged once when it opened.
        """
        if isinstance(exc, CircuitOpenError):
            self.count("skipped")
            if self._on_error == "raise":
                raise exc
            return
        self.count("errors")
        mismatch = client_server_mismatch(exc)
        if mismatch is not None:
            raise mismatch from exc
        message = f"cache {operation} on index {self._index!r} failed: {exc}"
        if self._on_error == "raise":
            if isinstance(exc, CacheError):
                raise exc  # already says what failed, with details to keep
            raise CacheError(message) from exc
        logger.warning("%s; continuing without the cache (on_error='warn')", message)


def client_server_mismatch(exc: Exception) -> RuntimeError | None:
    """The clear error for a client 9 refused by an Elasticsearch 8 server, or `None`.

    Such a server answers every request with a 400 ``media_type_header_exception``
    naming ``compatible-with=9`` in its cause (a ``HEAD`` answer has no body to
    tell it by).
    """
    error = api_error(exc)
    if error is None or error.get("type") != "media_type_header_exception":
        return None
    cause = error.get("caused_by")
    reason = str(cause.get("reason", "")) if isinstance(cause, dict) else ""
    if "compatible-with=9" not in reason:
        return None
    return RuntimeError(
        "elasticsearch client 9 cannot talk to Elasticsearch 8.x servers: "
        "install elasticsearch>=8,<9 (client 8 talks to 8.x and 9.x servers). "
        f"The server said: {reason}"
    )


# --- the embeddings cache (a LangChain ByteStore) ---

EMBEDDINGS_CACHE_MAPPING: dict[str, Any] = {
    "properties": {
        "text_input": {"type": "text", "index": False},
        "key_prefix": {"type": "keyword"},
        "vector_dump": {"type": "binary"},  # no doc_values: the default
        "metadata": {"type": "object"},
        "timestamp": {"type": "date"},
        "namespace": {"type": "keyword"},
    }
}
"""The reference's fields, plus ``key_prefix`` so ``yield_keys(prefix=)`` filters
in the cluster (the key's first `KEY_PREFIX_CHARS` characters: a keyword term
must stay under Lucene's 32 KB limit whatever the key's length)."""

EMBEDDING_LOOKUP_FIELDS = ["vector_dump", "timestamp"]
"""The only fields an embeddings lookup fetches."""

KEY_PREFIX_CHARS = 256
"""Indexed length of a key: at most 1 KB in UTF-8, far below the term limit."""

STORE_REQUEST_DOCS = 500
"""Most documents one mget or bulk request of the embeddings cache carries."""

STORE_REQUEST_BYTES = 10 * 1024 * 1024
"""Most bytes one bulk request of the embeddings cache carries."""


class StoreError(CacheError):
    """An embeddings cache request failed in Elasticsearch."""


class StoreWriteError(StoreError):
    """Some keys of an `mset` / `mdelete` failed; ``failures`` says which and why.

    ``failures`` lists ``(key, reason)`` pairs; every key not listed was written
    (or deleted).
    """

    def __init__(self, operation: str, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        shown = "; ".join(f"{_short(key)}: {reason}" for key, reason in failures[:10])
        more = f"; and {len(failures) - 10} more" if len(failures) > 10 else ""
        super().__init__(
            f"{operation} failed for {len(failures)} key(s): {shown}{more}"
        )


def _short(key: str) -> str:
    """`key` for a message: its repr, cut to 80 characters."""
    return repr(key) if len(key) <= 80 else f"{key[:80]!r}... ({len(key)} chars)"


def validate_maximum_duplicates(value: object) -> int:
    """Return `value` if it is an int of at least 1 (``maximum_duplicates_allowed``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"maximum_duplicates_allowed must be an int, not {type(value).__name__}"
        )
    if value < 1:
        raise ValueError(f"maximum_duplicates_allowed must be at least 1, not {value}")
    return value


def embedding_key(key: str, namespace: str | None) -> str:
    """Return the document id of the embeddings cache entry for `key`.

    `cache_key` over ``("embedding", namespace or "", key)``: parts are
    length-prefixed, so no namespace/key split is ambiguous, and since an empty
    namespace is refused (`validate_namespace`), "" can stand for "none".
    """
    return cache_key("embedding", namespace or "", key)


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
        if not _is_utf8(key):
            # The key is stored for yield_keys, and Elasticsearch refuses
            # invalid UTF-8: refuse it before anything is written.
            raise ValueError(
                f"keys must be valid Unicode (no lone surrogates): {key!r}"
            )
        if not isinstance(value, bytes):
            raise TypeError(f"values must be bytes, not {type(value).__name__}")


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


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield `items` in lists of at most `size`."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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


def stored_keys_query(prefix: str | None, namespace: str | None) -> dict[str, Any]:
    """The query selecting a namespace's stored keys starting with `prefix`."""
    clauses: list[dict[str, Any]] = [
        namespace_filter(namespace),
        {"exists": {"field": "key_prefix"}},
    ]
    if prefix:
        clauses.append({"prefix": {"key_prefix": prefix[:KEY_PREFIX_CHARS]}})
    return {"bool": {"filter": clauses}}


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


def no_keys_stored_error(cls_name: str) -> ValueError:
    """The error for listing keys of a cache that does not store them."""
    return ValueError(
        f"{cls_name} was created with store_input=False, so it stores no keys "
        "and cannot list them: use store_input=True to make yield_keys work"
    )


# --- the semantic LLM cache ---

SEMANTIC_VECTOR_FIELD = "llm_input_vector"
"""The ``dense_vector`` field holding the prompt's embedding."""

DEFAULT_SIMILARITY_THRESHOLD = 0.8
"""Default minimum cosine similarity, in [-1, 1], between a prompt and a cached one."""

KNN_NUM_CANDIDATES = 100
"""Candidates the kNN search considers per shard before keeping the nearest."""

MAX_DIMENSIONS = 4096
"""The most dimensions Elasticsearch indexes in a ``dense_vector``."""


def semantic_mapping(dimensions: int | None) -> dict[str, Any]:
    """The semantic cache's mapping: the LLM cache's fields plus the prompt's vector.

    Cosine similarity over unquantized HNSW (``index_options`` ``hnsw``): the
    scores are those of the float vectors, so the threshold means what it says
    (the default ``int8_hnsw``/``bbq_hnsw`` quantize and shift scores). Without
    `dimensions`, Elasticsearch takes them from the first stored vector.
    """
    vector: dict[str, Any] = {
        "type": "dense_vector",
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": "hnsw"},
    }
    if dimensions is not None:
        vector["dims"] = dimensions
    return {
        **LLM_CACHE_MAPPING,
        "properties": {
            **LLM_CACHE_MAPPING["properties"],
            SEMANTIC_VECTOR_FIELD: vector,
        },
    }


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


def semantic_knn(
    vector: list[float],
    llm_string: str,
    *,
    namespace: str | None,
    threshold: float,
    ttl: timedelta | None,
    now: datetime,
) -> dict[str, Any]:
    """The kNN search finding the nearest entry of this model that counts as a hit.

    Every condition of a hit is a filter *inside* the kNN search: the model
    (``llm_string_hash``), the namespace, the age (`ttl`) and the threshold
    (``similarity`` is the raw cosine, not the score). A nearer entry of another
    model, namespace or age can never take the one place of a valid entry.
    """
    filters = [
        {"term": {"llm_string_hash": llm_string_hash(llm_string)}},
        namespace_filter(namespace),
    ]
    if ttl is not None:
        filters.append({"range": {"timestamp": {"gte": format_time(now - ttl)}}})
    return {
        "field": SEMANTIC_VECTOR_FIELD,
        "query_vector": vector,
        "k": 1,
        "num_candidates": KNN_NUM_CANDIDATES,
        "similarity": threshold,
        "filter": filters,
    }


class RefreshTracker:
    """Tells when a search must refresh first to see this object's own writes.

    kNN search reads only refreshed segments. Instead of a refresh per write (a
    segment each), a lookup refreshes once if this object wrote since the last
    refresh that started after that write; many writes then one lookup cost one
    refresh. Generations make it safe for concurrent lookups, tasks or threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written = 0
        self._refreshed = 0

    def wrote(self) -> None:
        """Record a completed write."""
        with self._lock:
            self._written += 1

    def pending(self) -> int | None:
        """The generation a refresh started now would make visible; `None`: no need."""
        with self._lock:
            return self._written if self._written > self._refreshed else None

    def refreshed(self, generation: int) -> None:
        """Record that a refresh started at `generation` completed."""
        with self._lock:
            self._refreshed = max(self._refreshed, generation)


def prompt_text(prompt: str) -> str:
    """The text the semantic cache embeds for `prompt`.

    LangChain hands a chat model's prompt to caches as ``dumps`` of its
    messages: JSON full of class paths and field names that every prompt
    shares, which would make any two prompts look alike to an embedding model.
    For such a prompt this returns each message's text on a line of its own
    (prefixed by its type, such as ``system: ``, unless it is the human's); a
    part that is not text (an image) becomes its JSON, so that it still counts.
    Any other prompt is returned as it is.
    """
    if not prompt.startswith("[{"):
        return prompt
    try:
        items = json.loads(prompt)
    except ValueError:
        return prompt
    lines = []
    for item in items if isinstance(items, list) else [None]:
        kwargs = item.get("kwargs") if isinstance(item, dict) else None
        if not isinstance(kwargs, dict) or item.get("lc") != 1:  # type: ignore[union-attr]
            return prompt
        content = kwargs.get("content")
        parts = [content] if isinstance(content, str) else content
        if not isinstance(parts, list):
            return prompt
        texts = [
            part
            if isinstance(part, str)
            else part["text"]
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
            else json.dumps(part, sort_keys=True)
            for part in parts
        ]
        kind = kwargs.get("type")
        prefix = "" if kind == "human" else f"{kind}: "
        lines.append(prefix + "\n".join(texts))
    return "\n".join(lines)
