"""What truly differs between the async source and its generated sync twin.

The async source imports the ``Async*`` names; the code generator strips the
prefix, so the sync twin imports the plain names from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.caches import BaseCache as LangChainBaseCache
from langchain_core.stores import ByteStore

from langchain_es_cache._common.coalescing import Pending
from langchain_es_cache._common.failures import sync_use_error

if TYPE_CHECKING:
    # LangGraph is optional: its names are only needed for type checking here.
    from langgraph.cache.base import FullKey, Namespace

__all__ = [
    "Actions",
    "AsyncActions",
    "AsyncBaseCache",
    "AsyncByteStore",
    "AsyncCaller",
    "AsyncClients",
    "AsyncCoalescer",
    "AsyncGraphBaseCache",
    "AsyncIndexLock",
    "AsyncSignal",
    "BaseCache",
    "ByteStore",
    "Caller",
    "Clients",
    "Coalescer",
    "GraphBaseCache",
    "IndexLock",
    "Signal",
    "async_sleep",
    "sleep",
]

logger = logging.getLogger("langchain_es_cache")

AsyncActions = Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]]
"""Bulk actions, as elasticsearch-py's async bulk helpers take them."""
Actions = Iterable[dict[str, Any]]
"""Bulk actions, as its sync bulk helpers take them (the sync `AsyncActions`)."""

CLOSE_TIMEOUT = 30.0
"""Seconds `AsyncClients.aclose` waits for another thread's loop to close its client."""


async def async_sleep(seconds: float) -> None:
    """Wait `seconds` without blocking the event loop."""
    await asyncio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Wait `seconds` (the sync `async_sleep`)."""
    time.sleep(seconds)


class AsyncClients:
    """The clients an async cache creates: one per event loop, each closed with it.

    A client's connections belong to the event loop that opened them, and a
    cache object may serve several loops in turn (one ``asyncio.run`` after
    another) or at once (threads running loops of their own). Each loop gets a
    client of its own at first use, closed when the loop shuts down its async
    generators (``asyncio.run``, ``asyncio.Runner`` and pytest-asyncio do), or
    by `aclose`. A loop closed without that leaves its client to the garbage
    collector.
    """

    def __init__(self, factory: Callable[[], AsyncElasticsearch]) -> None:
        # Built now, so bad settings fail at construction; it binds to no loop
        # until its first request.
        self._spare: AsyncElasticsearch | None = factory()
        self._factory = factory
        self._clients: dict[
            asyncio.AbstractEventLoop,
            tuple[AsyncElasticsearch, AsyncGenerator[None, None]],
        ] = {}
        self._guard = threading.Lock()

    def current(self) -> AsyncElasticsearch:
        """The running loop's client, created at its first use."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        with self._guard:
            entry = self._clients.get(loop)
            if entry is None:
                # Loops closed without shutting down their async generators:
                # their clients cannot be closed any more, only forgotten.
                for gone in [other for other in self._clients if other.is_closed()]:
                    del self._clients[gone]
                client, self._spare = self._spare or self._factory(), None
                closer = self._closer(loop, client)
                _start_in_running_loop(closer)
                entry = self._clients[loop] = (client, closer)
        return entry[0]

    async def _closer(
        self, loop: asyncio.AbstractEventLoop, client: AsyncElasticsearch
    ) -> AsyncGenerator[None, None]:
        """Waits at its yield; finalized by its loop's shutdown (or `aclose`),
        it closes `client` while the loop still runs."""
        try:
            yield
        finally:
            with self._guard:
                if self._clients.get(loop, (None,))[0] is client:
                    del self._clients[loop]
            await client.close()

    async def aclose(self) -> None:
        """Close every client: the running loop's here, another running loop's
        in that loop (waiting at most `CLOSE_TIMEOUT`); a loop that is not
        running closes its own when it shuts down."""
        if self._spare is not None:
            await self._spare.close()
            self._spare = None
        current = asyncio.get_running_loop()
        with self._guard:
            entries = list(self._clients.items())
        for loop, (_, closer) in entries:
            if loop is current:
                await closer.aclose()
            elif loop.is_running():
                done = asyncio.run_coroutine_threadsafe(_finalize(closer), loop)
                try:
                    await asyncio.wait_for(asyncio.wrap_future(done), CLOSE_TIMEOUT)
                except asyncio.TimeoutError:
                    logger.warning("a client of another event loop was not closed")


def _start_in_running_loop(generator: AsyncGenerator[None, None]) -> None:
    """Run `generator` to its first ``yield`` now, without awaiting.

    Its first iteration registers it with the running loop, which finalizes
    the async generators it knows when it shuts down. It must not await
    before that ``yield``.
    """
    step = generator.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return
    raise RuntimeError("the generator awaited before its first yield")


async def _finalize(generator: AsyncGenerator[None, None]) -> None:
    await generator.aclose()


class Clients:
    """The client a sync cache creates (the sync `AsyncClients`)."""

    def __init__(self, factory: Callable[[], Elasticsearch]) -> None:
        self._client = factory()

    def current(self) -> Elasticsearch:
        return self._client

    def close(self) -> None:
        self._client.close()


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

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock().release()


class IndexLock:
    """Lets one thread at a time prepare the index (the sync `AsyncIndexLock`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class AsyncBaseCache(LangChainBaseCache):
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


class BaseCache(LangChainBaseCache):
    """LangChain's cache base, whose async methods run the sync ones in a thread
    on behalf of the calling task (`Caller`), as LangChain's do."""

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        with _calling_task():
            return await super().alookup(prompt, llm_string)

    async def aupdate(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> None:
        with _calling_task():
            await super().aupdate(prompt, llm_string, return_val)


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


# LangGraph's cache interface has a sync and an async method for each
# operation. These mixins supply the half each class does not write itself;
# the graph cache classes put them before LangGraph's `BaseCache`, which is
# imported there (LangGraph is optional, so not here).

_GRAPH_CALLERS = "invoke() or stream()"


class AsyncGraphBaseCache:
    """The sync half of LangGraph's cache interface, for the async-only class.

    A graph run with ``invoke``/``stream`` calls these; they raise a
    `TypeError` that names the sync class, instead of blocking the event loop.
    """

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        raise sync_use_error(type(self).__name__, "get", callers=_GRAPH_CALLERS)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        raise sync_use_error(type(self).__name__, "set", callers=_GRAPH_CALLERS)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        raise sync_use_error(type(self).__name__, "clear", callers=_GRAPH_CALLERS)


class GraphBaseCache(ABC):
    """The async half of LangGraph's cache interface, for the sync class.

    A graph run with ``ainvoke``/``astream`` awaits these: each runs the sync
    method in a worker thread, so the event loop is never blocked.
    """

    @abstractmethod
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]: ...

    @abstractmethod
    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None: ...

    @abstractmethod
    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None: ...

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """`get` in a worker thread."""
        return await asyncio.to_thread(self.get, keys)

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """`set` in a worker thread."""
        await asyncio.to_thread(self.set, pairs)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """`clear` in a worker thread."""
        await asyncio.to_thread(self.clear, namespaces)


# --- single flight: who is asking, and how to wait for an answer ---

_TASK: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "langchain_es_cache_task", default=None
)
"""The task a sync method works for, when LangChain runs it in a thread."""


@contextlib.contextmanager
def _calling_task() -> Iterator[None]:
    # LangChain's executor copies the context into its thread, with this in it.
    token = _TASK.set(asyncio.current_task())
    try:
        yield
    finally:
        _TASK.reset(token)


class AsyncCaller:
    """Who is asking, in async code: the current task."""

    @staticmethod
    def current() -> object:
        """The current task (the thread, outside any task)."""
        return asyncio.current_task() or threading.current_thread()


class Caller:
    """Who is asking, in sync code: the current thread, or the task that a
    thread runs a sync method for (`BaseCache`'s async methods)."""

    @staticmethod
    def current() -> object:
        """The task this thread works for, else the thread."""
        return _TASK.get() or threading.current_thread()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncSignal:
    """Wakes every task waiting for it, in any event loop or thread, once set.

    Not an `asyncio.Event`, which belongs to one loop and is not thread-safe:
    each waiter has a future of its own loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._is_set = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self) -> None:
        """Wake the waiters, now and for good."""
        with self._lock:
            self._is_set = True
            waiters, self._waiters = self._waiters, []
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, future in waiters:
            if loop is running:
                _wake(future)
            else:
                # A loop closed meanwhile has no waiter left to wake.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_wake, future)

    async def wait(self, timeout: float | None) -> bool:
        """Wait until set, for at most `timeout` seconds; tell whether it is."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._is_set:
                return True
            self._waiters.append(entry)
        try:
            done, _ = await asyncio.wait({future}, timeout=timeout)
            return bool(done)
        finally:
            future.cancel()
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(entry)


class Signal:
    """Wakes every thread waiting for it once set (the sync `AsyncSignal`)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Wake the waiters, now and for good."""
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        """Block this thread until set, for at most `timeout` seconds."""
        return self._event.wait(timeout)


T = TypeVar("T")
R = TypeVar("R")

Send = Callable[[list[T]], Awaitable[list["R | Exception"]]]


class _Lane(Generic[T, R]):
    """One event loop's share of an `AsyncCoalescer`: its queue and its sender."""

    def __init__(self, weight: Callable[[T], int]) -> None:
        self.busy = False
        self.pending: Pending[tuple[T, asyncio.Future[R]]] = Pending(
            lambda waiter: weight(waiter[0]), lambda waiter: not waiter[1].done()
        )
        self.drain: asyncio.Task[None] | None = None


class AsyncCoalescer(Generic[T, R]):
    """Sends concurrent calls of one kind together (the DataLoader pattern).

    A call made with none in flight is sent at once, alone, by its caller.
    Calls made while one is in flight wait, and go out together (in batches
    of bounded weight, `coalescing.Pending`) when it returns. `send` answers
    each call of a batch with its result or its own exception; an exception
    it raises is every caller's of that batch. A cancelled waiting caller is
    dropped from its batch, or its answer ignored. Each event loop has a
    queue of its own.
    """

    def __init__(self, send: Send[T, R], weight: Callable[[T], int]) -> None:
        self._send = send
        self._weight = weight
        self._lanes: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Lane[T, R]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _lane(self, loop: asyncio.AbstractEventLoop) -> _Lane[T, R]:
        lane = self._lanes.get(loop)
        if lane is None:
            with self._lock:
                lane = self._lanes.setdefault(loop, _Lane(self._weight))
        return lane

    async def call(self, item: T) -> R:
        """`item`'s result, sent alone now or with the calls waiting with it."""
        loop = asyncio.get_running_loop()
        lane = self._lane(loop)
        if lane.busy:
            future: asyncio.Future[R] = loop.create_future()
            lane.pending.add((item, future))
            return await future
        lane.busy = True
        try:
            (result,) = await self._send([item])
        finally:
            self._hand_over(lane, loop)
        if isinstance(result, Exception):
            raise result
        return result

    def _hand_over(self, lane: _Lane[T, R], loop: asyncio.AbstractEventLoop) -> None:
        """Send what waited meanwhile, in a task of its own (so the caller that
        sent alone returns now), or mark the lane idle."""
        if not lane.pending:
            lane.busy = False
            return
        lane.drain = loop.create_task(self._drain(lane))

    async def _drain(self, lane: _Lane[T, R]) -> None:
        try:
            while batch := lane.pending.take():
                try:
                    results = await self._send([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                # One loop turn for the callers just answered: those that call
                # again join the next batch instead of finding the lane idle
                # and going alone (which would cost a round trip a batch).
                await asyncio.sleep(0)
        finally:
            for _, future in lane.pending.clear():
                future.cancel()
            lane.busy = False
            lane.drain = None


class _Waiter(Generic[T, R]):
    """A thread's call waiting in a `Coalescer`: its item, then its outcome."""

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = threading.Event()
        self.lead = False
        self.result: R | Exception | None = None


class Coalescer(Generic[T, R]):
    """Sends concurrent calls of one kind together, across threads (the sync
    `AsyncCoalescer`).

    A call made with none in flight is sent at once, alone, by its thread.
    Calls made while one is in flight wait; when it returns, the oldest
    waiting thread is woken to send every waiting call (up to the batch
    limit) in one request and hand the answers out, then the lead passes on
    the same way. No thread of its own, no timer.
    """

    def __init__(
        self, send: Callable[[list[T]], list[R | Exception]], weight: Callable[[T], int]
    ) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._busy = False
        self._pending: Pending[_Waiter[T, R]] = Pending(
            lambda waiter: weight(waiter.item), lambda waiter: True
        )

    def call(self, item: T) -> R:
        """`item`'s result, sent alone now or with the calls waiting with it."""
        waiter: _Waiter[T, R] | None = None
        with self._lock:
            if self._busy:
                waiter = _Waiter(item)
                self._pending.add(waiter)
            self._busy = True
        if waiter is None:
            # Alone: no waiter object, no event, as cheap as a plain call.
            try:
                (result,) = self._send([item])
            finally:
                self._hand_over([])
            if isinstance(result, Exception):
                raise result
            return result
        waiter.done.wait()
        if not waiter.lead:
            return self._outcome(waiter)
        with self._lock:
            batch = self._pending.take()
        try:
            try:
                results = self._send([w.item for w in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for other, result in zip(batch, results, strict=True):
                other.result = result
                other.done.set()
        finally:
            self._hand_over(batch)
        return self._outcome(waiter)

    def _hand_over(self, batch: list[_Waiter[T, R]]) -> None:
        """Wake the oldest waiting thread to send the next batch, or mark the
        coalescer idle. Calls of a batch left unanswered (an interrupt) fail."""
        for other in batch:
            if not other.done.is_set():
                other.result = CancelledCall("the thread sending this call stopped")
                other.done.set()
        with self._lock:
            nxt = self._pending.peek()
            if nxt is None:
                self._busy = False
                return
            nxt.lead = True
        nxt.done.set()

    @staticmethod
    def _outcome(waiter: _Waiter[T, R]) -> R:
        result = waiter.result
        if isinstance(result, Exception):
            raise result
        return cast(R, result)


class CancelledCall(Exception):
    """The thread that was sending a call with others' stopped before an answer."""
