"""Which failures the caches expect, and the errors that explain them."""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, TransportError
from elasticsearch.helpers import BulkIndexError, ScanError

from langchain_es_cache._common.responses import is_multi_index_doc_error
from langchain_es_cache.errors import CacheError, MappingConflictError

ES_ERRORS = (ApiError, TransportError, BulkIndexError, ScanError, CacheError)
"""What a failing cluster raises, and our errors about its answers: `on_error`
decides what becomes of these."""


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


def no_keys_stored_error(cls_name: str) -> ValueError:
    """The error for listing keys of a cache that does not store them."""
    return ValueError(
        f"{cls_name} was created with store_input=False, so it stores no keys "
        "and cannot list them: use store_input=True to make yield_keys work"
    )
