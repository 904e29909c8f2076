"""The stream mixins of `cache_streams`: ``astream`` and ``_astream`` served
from and written to the cache (``stream`` and ``_stream`` in the sync twin).

`langchain_es_cache.streaming` puts both twins' mixins before the model's own
class; the rules (keys, the chunks of a hit, the answer of a miss, which call
serves from the cache) are in `langchain_es_cache._common.streams`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.language_models import BaseLanguageModel, LanguageModelInput
from langchain_core.runnables import RunnableConfig

from langchain_es_cache._common.streams import (
    CURRENT_PLAN,
    Plan,
    claim_plan,
    is_hit,
    new_plan,
    resolve_cache,
)

T = TypeVar("T")

if TYPE_CHECKING:
    _Model = BaseLanguageModel[Any]
else:
    _Model = object


async def async_drive(stream: AsyncIterator[T], plan: Plan) -> AsyncIterator[T]:
    """Yield from `stream`, with `plan` visible to each step until claimed.

    Closing this closes `stream`.
    """
    try:
        while True:
            token = None if plan.claimed else CURRENT_PLAN.set(plan)
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return
            finally:
                if token is not None:
                    CURRENT_PLAN.reset(token)
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class AsyncStreams(_Model):
    """``astream`` that lets the model's ``_astream`` use the cache."""

    __slots__ = ()

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        cache = resolve_cache(self.cache)
        if cache is None:
            async for chunk in super().astream(input, config, stop=stop, **kwargs):
                yield chunk
            return
        plan = new_plan(self, cache)
        owner: AsyncStreams = plan.owner  # type: ignore[assignment]
        stream = super(AsyncStreams, owner).astream(input, config, stop=stop, **kwargs)
        async for chunk in async_drive(stream, plan):
            yield chunk


class AsyncSource(_Model):
    """``_astream`` serving a planned stream from the cache: a chat model's or
    an LLM's (`StreamKind`)."""

    __slots__ = ()

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """The model's ``_astream``, served from the cache under a plan.

        Takes what the model's ``_astream`` takes, by position or by name, and
        hands it on unchanged.
        """
        # The model class after this mixin is a chat model or an LLM: both have
        # _astream, which the type-checking base does not declare.
        model_stream = super()._astream  # type: ignore[misc]
        plan = claim_plan(self)
        if plan is None:
            async for chunk in model_stream(*args, **kwargs):
                yield chunk
            return
        call = plan.kind.bind(args, kwargs)
        prompt, llm_string = plan.kind.key(self, call.input, call.stop, call.kwargs)
        cached = await plan.cache.alookup(prompt, llm_string)
        if is_hit(cached):
            for chunk in plan.kind.hit_chunks(cached):
                if plan.kind.reports_hits and call.run_manager is not None:
                    await call.run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
            return
        if plan.rate_limiter is not None:
            await plan.rate_limiter.aacquire(blocking=True)
        chunks = []
        async for chunk in model_stream(*args, **kwargs):
            chunks.append(chunk)
            yield chunk
        answer = plan.kind.answer(chunks)
        if answer is not None:
            await plan.cache.aupdate(prompt, llm_string, answer)
