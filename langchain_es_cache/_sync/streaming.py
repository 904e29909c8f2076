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


class Source(_Model):
    """``_stream`` serving a planned stream from the cache: a chat model's or
    an LLM's (`StreamKind`)."""

    __slots__ = ()

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """The model's ``_stream``, served from the cache under a plan.

        Takes what the model's ``_stream`` takes, by position or by name, and
        hands it on unchanged.
        """
        # The model class after this mixin is a chat model or an LLM: both have
        # _stream, which the type-checking base does not declare.
        model_stream = super()._stream  # type: ignore[misc]
        plan = claim_plan(self)
        if plan is None:
            for chunk in model_stream(*args, **kwargs):
                yield chunk
            return
        call = plan.kind.bind(args, kwargs)
        prompt, llm_string = plan.kind.key(self, call.input, call.stop, call.kwargs)
        cached = plan.cache.lookup(prompt, llm_string)
        if is_hit(cached):
            for chunk in plan.kind.hit_chunks(cached):
                if plan.kind.reports_hits and call.run_manager is not None:
                    call.run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
            return
        if plan.rate_limiter is not None:
            plan.rate_limiter.acquire(blocking=True)
        chunks = []
        for chunk in model_stream(*args, **kwargs):
            chunks.append(chunk)
            yield chunk
        answer = plan.kind.answer(chunks)
        if answer is not None:
            plan.cache.update(prompt, llm_string, answer)
