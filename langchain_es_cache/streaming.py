"""Streamed answers served from and written to the cache: `cache_streams`.

LangChain's ``stream()``/``astream()`` of a model that implements ``_stream``
never consult the cache. `cache_streams` returns the same model with a class
derived from the model's own, whose stream methods do, under the key LangChain's
``invoke`` uses. The sync and async paths are hand-written side by side here,
not generated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.caches import BaseCache
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, BaseLLM, LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import RunnableConfig

from langchain_es_cache._common.streams import (
    adopt,
    chat_answer,
    chat_hit_chunks,
    chat_key,
    derive_class,
    first_chat_generation,
    is_hit,
    llm_answer,
    llm_hit_chunks,
    llm_key,
    origin_class,
    resolve_cache,
)

__all__ = ["cache_streams"]

ModelT = TypeVar("ModelT", bound="BaseChatModel | BaseLLM")
T = TypeVar("T")


def cache_streams(model: ModelT, *, cache: BaseCache | None = None) -> ModelT:
    """Return `model` with its ``stream()`` and ``astream()`` cached too.

    The returned model is a copy of `model` of a class derived from its own (so
    a chat model stays a ``BaseChatModel`` and an LLM a ``BaseLLM``), sharing
    its clients. A streamed call is looked up under the key LangChain's
    ``invoke`` uses for the same model, input, stop words and bound arguments:
    a hit is replayed as chunks without calling the model, and a miss is
    passed through as it arrives and written once the stream has completed.
    ``invoke`` and ``batch`` are LangChain's own, unchanged.

    Args:
        model: A chat model or an LLM.
        cache: The cache for the returned model (streams and ``invoke`` alike);
            by default the model's own ``cache=``, else LangChain's global one.
            ``cache=False`` on the model turns caching off, as in LangChain.
    """
    if isinstance(model, BaseChatModel):
        kind: tuple[type[Any], ...] = _chat_mixins(type(model))
    elif isinstance(model, BaseLLM):
        kind = _llm_mixins(type(model))
    else:
        raise TypeError(
            "cache_streams() takes a chat model or an LLM, not "
            f"{type(model).__name__}; wrap the model before bind_tools(), "
            "with_structured_output() or with_config()"
        )
    if cache is not None and not isinstance(cache, BaseCache):
        raise TypeError(
            f"cache must be a LangChain BaseCache or None, not {type(cache).__name__}"
        )
    cls = derive_class(origin_class(type(model)), kind)
    return adopt(model, cls, {} if cache is None else {"cache": cache})


def _restore(cls: type[ModelT], state: dict[Any, Any]) -> ModelT:
    """Unpickle a model returned by `cache_streams`."""
    model = cls.__new__(cls)
    model.__setstate__(state)
    return cache_streams(model)


# --- one stream call, told to the ``_stream``/``_astream`` it leads to ---


@dataclass(eq=False)
class _Plan:
    """A cached ``stream()`` call, for the first ``_stream``/``_astream`` of `owner`.

    Only that call serves from the cache: ``invoke`` (which LangChain caches
    itself) also reaches ``_stream`` when a streaming callback is attached, and
    the async fallback of a sync-only model calls ``_stream`` from ``_astream``.
    """

    owner: object
    cache: BaseCache
    rate_limiter: BaseRateLimiter | None
    claimed: bool = False


_plan: ContextVar[_Plan | None] = ContextVar("langchain_es_cache_stream", default=None)


def _claim(model: object) -> _Plan | None:
    plan = _plan.get()
    if plan is None or plan.claimed or plan.owner is not model:
        return None
    plan.claimed = True
    return plan


def _new_plan(model: BaseChatModel | BaseLLM, cache: BaseCache) -> _Plan:
    """The plan for one stream of `model`; its owner runs the stream.

    A rate limiter must only hold back model calls, as on LangChain's
    ``invoke`` path: the owner is then a copy without it, which the plan
    acquires on a miss.
    """
    limiter = getattr(model, "rate_limiter", None)
    owner = (
        model if limiter is None else model.model_copy(update={"rate_limiter": None})
    )
    return _Plan(owner, cache, limiter)


def _drive(stream: Iterator[T], plan: _Plan) -> Iterator[T]:
    """Yield from `stream`, with `plan` visible to each step until claimed.

    Set per step, never across a ``yield``: the consumer's code between chunks
    must not see it. Closing this closes `stream`.
    """
    try:
        while True:
            token = None if plan.claimed else _plan.set(plan)
            try:
                item = next(stream)
            except StopIteration:
                return
            finally:
                if token is not None:
                    _plan.reset(token)
            yield item
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


async def _adrive(stream: AsyncIterator[T], plan: _Plan) -> AsyncIterator[T]:
    """The async `_drive`."""
    try:
        while True:
            token = None if plan.claimed else _plan.set(plan)
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return
            finally:
                if token is not None:
                    _plan.reset(token)
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def _run_manager(run_manager: object | None) -> dict[str, Any]:
    """``run_manager`` for a model's ``_stream`` only if it was given one:
    LangChain's chat ``stream()`` gives none, and some models take none."""
    return {} if run_manager is None else {"run_manager": run_manager}


# --- mixins placed before the model's class ---

if TYPE_CHECKING:
    _Chat = BaseChatModel
    _LLM = BaseLLM
else:
    _Chat = _LLM = object


class _ChatStreams(_Chat):
    """``stream``/``astream`` that let the model's ``_stream`` use the cache."""

    __slots__ = ()

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        cache = resolve_cache(self.cache)
        if cache is None:
            yield from super().stream(input, config, stop=stop, **kwargs)
            return
        plan = _new_plan(self, cache)
        owner: _ChatStreams = plan.owner  # type: ignore[assignment]
        stream = super(_ChatStreams, owner).stream(input, config, stop=stop, **kwargs)
        yield from _drive(stream, plan)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        cache = resolve_cache(self.cache)
        if cache is None:
            async for chunk in super().astream(input, config, stop=stop, **kwargs):
                yield chunk
            return
        plan = _new_plan(self, cache)
        owner: _ChatStreams = plan.owner  # type: ignore[assignment]
        stream = super(_ChatStreams, owner).astream(input, config, stop=stop, **kwargs)
        async for chunk in _adrive(stream, plan):
            yield chunk

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (origin_class(type(self)), self.__getstate__()))


class _ChatSyncSource(_Chat):
    """``_stream`` serving a planned stream from the cache."""

    __slots__ = ()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan = _claim(self)
        if plan is None:
            yield from super()._stream(
                messages, stop=stop, **_run_manager(run_manager), **kwargs
            )
            return
        prompt, llm_string = chat_key(self, messages, stop, kwargs)
        cached = plan.cache.lookup(prompt, llm_string)
        if is_hit(cached):
            yield from chat_hit_chunks(first_chat_generation(cached))
            return
        if plan.rate_limiter is not None:
            plan.rate_limiter.acquire(blocking=True)
        chunks = []
        for chunk in super()._stream(
            messages, stop=stop, **_run_manager(run_manager), **kwargs
        ):
            chunks.append(chunk)
            yield chunk
        answer = chat_answer(chunks)
        if answer is not None:
            plan.cache.update(prompt, llm_string, answer)


class _ChatAsyncSource(_Chat):
    """``_astream`` serving a planned stream from the cache."""

    __slots__ = ()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        plan = _claim(self)
        if plan is None:
            async for chunk in super()._astream(
                messages, stop=stop, **_run_manager(run_manager), **kwargs
            ):
                yield chunk
            return
        prompt, llm_string = chat_key(self, messages, stop, kwargs)
        cached = await plan.cache.alookup(prompt, llm_string)
        if is_hit(cached):
            for chunk in chat_hit_chunks(first_chat_generation(cached)):
                yield chunk
            return
        if plan.rate_limiter is not None:
            await plan.rate_limiter.aacquire(blocking=True)
        chunks = []
        async for chunk in super()._astream(
            messages, stop=stop, **_run_manager(run_manager), **kwargs
        ):
            chunks.append(chunk)
            yield chunk
        answer = chat_answer(chunks)
        if answer is not None:
            await plan.cache.aupdate(prompt, llm_string, answer)


def _chat_mixins(cls: type[BaseChatModel]) -> tuple[type[Any], ...]:
    """The mixins for a chat model class: sources only where it streams.

    A model without ``_stream``/``_astream`` streams through ``invoke``, which
    LangChain caches already; adding a source would make LangChain call it.
    """
    if cls._stream is not BaseChatModel._stream:
        return (_ChatStreams, _ChatSyncSource, _ChatAsyncSource)
    if cls._astream is not BaseChatModel._astream:
        return (_ChatStreams, _ChatAsyncSource)
    return (_ChatStreams,)


class _LLMStreams(_LLM):
    """``stream``/``astream`` that let the LLM's ``_stream`` use the cache."""

    __slots__ = ()

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        cache = resolve_cache(self.cache)
        if cache is None:
            yield from super().stream(input, config, stop=stop, **kwargs)
            return
        plan = _Plan(self, cache, None)
        yield from _drive(super().stream(input, config, stop=stop, **kwargs), plan)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        cache = resolve_cache(self.cache)
        if cache is None:
            async for chunk in super().astream(input, config, stop=stop, **kwargs):
                yield chunk
            return
        plan = _Plan(self, cache, None)
        stream = super().astream(input, config, stop=stop, **kwargs)
        async for chunk in _adrive(stream, plan):
            yield chunk

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (origin_class(type(self)), self.__getstate__()))


class _LLMSyncSource(_LLM):
    """``_stream`` serving a planned stream from the cache."""

    __slots__ = ()

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        plan = _claim(self)
        if plan is None:
            yield from super()._stream(
                prompt, stop=stop, run_manager=run_manager, **kwargs
            )
            return
        llm_string = llm_key(self, stop)
        cached = plan.cache.lookup(prompt, llm_string)
        if is_hit(cached):
            for chunk in llm_hit_chunks(cached[0]):
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
            return
        chunks = []
        for chunk in super()._stream(
            prompt, stop=stop, run_manager=run_manager, **kwargs
        ):
            chunks.append(chunk)
            yield chunk
        answer = llm_answer(chunks)
        if answer is not None:
            plan.cache.update(prompt, llm_string, answer)


class _LLMAsyncSource(_LLM):
    """``_astream`` serving a planned stream from the cache."""

    __slots__ = ()

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        plan = _claim(self)
        if plan is None:
            async for chunk in super()._astream(
                prompt, stop=stop, run_manager=run_manager, **kwargs
            ):
                yield chunk
            return
        llm_string = llm_key(self, stop)
        cached = await plan.cache.alookup(prompt, llm_string)
        if is_hit(cached):
            for chunk in llm_hit_chunks(cached[0]):
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
            return
        chunks = []
        async for chunk in super()._astream(
            prompt, stop=stop, run_manager=run_manager, **kwargs
        ):
            chunks.append(chunk)
            yield chunk
        answer = llm_answer(chunks)
        if answer is not None:
            await plan.cache.aupdate(prompt, llm_string, answer)


def _llm_mixins(cls: type[BaseLLM]) -> tuple[type[Any], ...]:
    """The mixins for an LLM class: sources only where it streams."""
    if cls._stream is not BaseLLM._stream:
        return (_LLMStreams, _LLMSyncSource, _LLMAsyncSource)
    if cls._astream is not BaseLLM._astream:
        return (_LLMStreams, _LLMAsyncSource)
    return (_LLMStreams,)
