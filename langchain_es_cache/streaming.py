"""Streamed answers served from and written to the cache: `cache_streams`.

LangChain's ``stream()``/``astream()`` of a model that implements ``_stream``
never consult the cache. `cache_streams` returns the same model with a class
derived from the model's own, whose stream methods do, under the key LangChain's
``invoke`` uses. The stream mixins are written once as async code
(`langchain_es_cache._async.streaming`) with a generated sync twin; this module
puts both before the model's class.
"""

from __future__ import annotations

from typing import Any, TypeVar

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel, BaseLLM

from langchain_es_cache._async.streaming import (
    AsyncSource,
    AsyncStreams,
)
from langchain_es_cache._common.streams import (
    adopt,
    derive_class,
    origin_class,
)
from langchain_es_cache._sync.streaming import (
    Source,
    Streams,
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
    if not isinstance(model, (BaseChatModel, BaseLLM)):
        raise TypeError(
            "cache_streams() takes a chat model or an LLM, not "
            f"{type(model).__name__}; wrap the model before bind_tools(), "
            "with_structured_output() or with_config()"
        )
    if cache is not None and not isinstance(cache, BaseCache):
        raise TypeError(
            f"cache must be a LangChain BaseCache or None, not {type(cache).__name__}"
        )
    cls = derive_class(origin_class(type(model)), _mixins(type(model)))
    return adopt(model, cls, {} if cache is None else {"cache": cache})


def _restore(cls: type[ModelT], state: dict[Any, Any]) -> ModelT:
    """Unpickle a model returned by `cache_streams`."""
    model = cls.__new__(cls)
    model.__setstate__(state)
    return cache_streams(model)


class _Streams(Streams, AsyncStreams):
    """``stream``/``astream`` that let the model's ``_stream`` use the cache."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (origin_class(type(self)), self.__getstate__()))


def _mixins(cls: type[Any]) -> tuple[type[Any], ...]:
    """The mixins for a model class: sources only where it streams.

    A model without ``_stream``/``_astream`` streams through ``invoke``, which
    LangChain caches already; adding a source would make LangChain call it.
    """
    base: type[Any] = BaseChatModel if issubclass(cls, BaseChatModel) else BaseLLM
    if cls._stream is not base._stream:
        return (_Streams, Source, AsyncSource)
    if cls._astream is not base._astream:
        return (_Streams, AsyncSource)
    return (_Streams,)
