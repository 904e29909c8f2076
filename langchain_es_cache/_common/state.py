"""Small thread-safe state of one cache object: outcome counts with the
`on_error` policy, and which writes a search must refresh to see."""

from __future__ import annotations

import logging
import threading

from langchain_es_cache._common.failures import client_server_mismatch
from langchain_es_cache.errors import CacheError, CircuitOpenError
from langchain_es_cache.types import CacheStats, OnError

logger = logging.getLogger("langchain_es_cache")


class Outcomes:
    """Counts what happens and applies the `on_error` policy; safe across threads.

    A lock, not atomics: `+=` on an attribute is not atomic across threads, and
    the lock is never held across an ``await``.
    """

    def __init__(self, index: str, on_error: OnError) -> None:
        self._index = index
        self._on_error = on_error
        self._lock = threading.Lock()
        self._counts = {
            "hits": 0,
            "misses": 0,
            "writes": 0,
            "errors": 0,
            "coalesced": 0,
            "skipped": 0,
        }

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount

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


class RefreshTracker:
    """Tells when a search must refresh first to see this object's own writes.

    kNN search reads only refreshed segments. Instead of a refresh per write (a
    segment each), a lookup refreshes once if this object wrote since the last
    refresh that started after that write; many writes then one lookup cost one
    refresh. Generations make it safe for concurrent lookups, tasks or threads,
    and let those that wait for a refresh in flight share the next one (the
    index's ``_refresh_for_search``).
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
