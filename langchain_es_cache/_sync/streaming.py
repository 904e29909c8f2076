# Generated from langchain_es_cache/_async/streaming.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The stream mixins of `cache_streams`: ``stream`` and ``_stream`` served
from and written to the cache (``stream`` and ``_stream`` in the sync twin).

`langchain_es_cache.streaming` puts both twins' mixins before the model's own
class; the rules (keys, the chunks of a hit, the answer of a miss, which call
serves from the cache) are in `langchain_es_cache._common.streams`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import (
    BaseChatModel,
    BaseLanguageModel,
    BaseLLM,
    LanguageModelInput,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.runnables import RunnableConfig

from langchain_es_cache._common.streams import (
    CURRENT_PLAN,
    Plan,
    chat_answer,
    chat_hit_chunks,
    chat_key,
    claim_plan,
    first_chat_generation,
    is_hit,
    llm_answer,
    llm_hit_chunks,
    llm_key,
    new_plan,
    resolve_cache,
    run_manager_kwargs,
)

T = TypeVar("T")

if TYPE_CHECKING:
    _Model = BaseLanguageModel[Any]
    _Chat = BaseChatModel
    _LLM = BaseLLM
else:
    _Model = _Chat = _LLM = object


def drive(stream: Iterator[T], plan: Plan) -> Iterator[T]:
    """Yield from `stream`, with `plan` visible to each step until claimed.

    Closing this closes `stream`.
    """
    try:
        while True:
            token = None if plan.claimed else CURRENT_PLAN.set(plan)
            try:
                item = next(stream)
            except StopIteration:
                return
            finally:
                if token is not None:
                    CURRENT_PLAN.reset(token)
            yield item
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


class Streams(_Model):
    """``stream`` that lets the model's ``_stream`` use the cache."""

    __slots__ = ()

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        cache = resolve_cache(self.cache)
        if cache is None:
            for chunk in super().stream(input, config, stop=stop, **kwargs):
                yield chunk
            return
        plan = new_plan(self, cache)
        owner: Streams = plan.owner  # type: ignore[assignment]
        stream = super(Streams, owner).stream(input, config, stop=stop, **kwargs)
        for chunk in drive(stream, plan):
            yield chunk


class ChatSource(_Chat):
    """``_stream`` serving a planned stream from the cache."""

    __slots__ = ()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan = claim_plan(self)
        if plan is None:
            for chunk in super()._stream(
                messages, stop=stop, **run_manager_kwargs(run_manager), **kwargs
            ):
                yield chunk
            return
        prompt, llm_string = chat_key(self, messages, stop, kwargs)
        cached = plan.cache.lookup(prompt, llm_string)
        if is_hit(cached):
            for chunk in chat_hit_chunks(first_chat_generation(cached)):
                yield chunk
            return
        if plan.rate_limiter is not None:
            plan.rate_limiter.acquire(blocking=True)
        chunks = []
        for chunk in super()._stream(
            messages, stop=stop, **run_manager_kwargs(run_manager), **kwargs
        ):
            chunks.append(chunk)
            yield chunk
        answer = chat_answer(chunks)
        if answer is not None:
            plan.cache.update(prompt, llm_string, answer)


class LLMSource(_LLM):
    """``_stream`` serving a planned stream from the cache."""

    __slots__ = ()

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        plan = claim_plan(self)
        if plan is None:
            for chunk in super()._stream(
                prompt, stop=stop, run_manager=run_manager, **kwargs
            ):
                yield chunk
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
