"""The exceptions the caches raise: a public module, so that tracebacks and
``isinstance`` checks name a stable path."""

from __future__ import annotations


class CacheError(Exception):
    """A cache operation failed in Elasticsearch; ``__cause__`` holds the reason."""


class CircuitOpenError(CacheError):
    """A cache operation was not sent: the circuit breaker is open (says why)."""


class MappingConflictError(CacheError, ValueError):
    """The cache's index exists with fields the cache cannot use.

    A `CacheError`, so `on_error` decides what becomes of it.
    """


class MigrationError(ValueError):
    """A migration cannot start: what SOURCE or DEST holds does not allow it."""


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
