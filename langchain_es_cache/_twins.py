"""What truly differs between the async source and its generated sync twin.

The async source imports the ``Async*`` names; the code generator strips the
prefix, so the sync twin imports the plain names from here.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.stores import ByteStore

from langchain_es_cache._common.failures import sync_use_error

__all__ = [
    "AsyncBaseCache",
    "AsyncByteStore",
    "AsyncIndexLock",
    "BaseCache",
    "ByteStore",
    "IndexLock",
]


class AsyncIndexLock:
    """Lets one task at a time prepare the index: an `asyncio.Lock` per event loop.

    A cache object may serve several event loops in turn (one per
    ``asyncio.run``); an `asyncio.Lock` must not outlive its loop.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Lock
        ] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            lock = self._locks.get(loop)
            if lock is None:
                lock = self._locks[loop] = asyncio.Lock()
            return lock

    async def __aenter__(self) -> None:
        await self._lock().acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock().release()


class IndexLock:
    """Lets one thread at a time prepare the index (the sync `AsyncIndexLock`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


class AsyncBaseCache(BaseCache):
    """A LangChain cache that only works from async code.

    LangChain calls the sync methods from ``invoke``; instead of its bare
    ``NotImplementedError`` they raise a `TypeError` that names the sync class.
    """

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        raise sync_use_error(type(self).__name__, "lookup")

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        raise sync_use_error(type(self).__name__, "update")

    def clear(self, **kwargs: Any) -> None:
        raise sync_use_error(type(self).__name__, "clear")


class AsyncByteStore(ByteStore):
    """A LangChain byte store that only works from async code.

    The sync methods raise a `TypeError` that names the sync class, instead of
    blocking the event loop.
    """

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        raise sync_use_error(type(self).__name__, "mget", callers="embed_documents()")

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        raise sync_use_error(type(self).__name__, "mset", callers="embed_documents()")

    def mdelete(self, keys: Sequence[str]) -> None:
        raise sync_use_error(
            type(self).__name__, "mdelete", callers="embed_documents()"
        )

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        raise sync_use_error(
            type(self).__name__, "yield_keys", callers="embed_documents()"
        )
