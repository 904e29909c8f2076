"""Pure logic of `cache_streams`: keys, chunks of a hit, the answer of a miss.

No requests here. Keys come from langchain-core itself, so that a streamed call and
LangChain's own ``invoke``/``generate`` path read and write the same entries.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import re
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard, TypeVar

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import BaseChatModel, BaseLanguageModel, BaseLLM
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
)
from langchain_core.rate_limiters import BaseRateLimiter
from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)

LANGCHAIN_ID_PREFIXES = ("run-", "lc_run-")
"""Message ids that LangChain makes up from a run id (0.3: ``run-``, 1.x:
``lc_run-``), as opposed to an id the provider gave."""

HIT_CHUNKS = 64
"""At most this many text chunks replay a hit: a word each for short answers,
runs of words for long ones (each chunk costs a callback round in LangChain)."""

_WORD = re.compile(r"\S+\s*|\s+")
_HAS_CHUNK_POSITION = "chunk_position" in AIMessageChunk.model_fields
_TOKEN_COUNTS = ("input_tokens", "output_tokens", "total_tokens")


class NoCacheError(ValueError):
    """``cache=True`` on the model, but LangChain has no global cache set."""


def resolve_cache(setting: BaseCache | bool | None) -> BaseCache | None:
    """The cache a model with ``cache=setting`` uses, as LangChain resolves it.

    A cache object is used as is; `False` means no cache; `None` means the
    global one, if any; `True` means the global one, which must then be set.
    """
    if isinstance(setting, BaseCache):
        return setting
    if setting is False:
        return None
    found = get_llm_cache()
    if found is None and setting is True:
        raise NoCacheError(
            "The model has cache=True but no global cache is set: call "
            "set_llm_cache(...) or give cache_streams(model, cache=...)."
        )
    return found


# --- classes derived from the model's own class ---

_derived: dict[tuple[type[Any], tuple[type[Any], ...]], type[Any]] = {}
_origins: dict[type[Any], type[Any]] = {}
_derived_lock = threading.Lock()


def origin_class(cls: type[ModelT]) -> type[ModelT]:
    """The class `cls` was derived from by `derive_class`, else `cls`."""
    return _origins.get(cls, cls)


def derive_class(base: type[ModelT], mixins: tuple[type[Any], ...]) -> type[ModelT]:
    """`base` with `mixins` in front, under `base`'s own name and module.

    Same name and module keep LangChain's view of the model unchanged:
    ``lc_id``, the serialized form in the cache key, the run name in traces.
    Made once per `base` and `mixins`.
    """
    with _derived_lock:
        found = _derived.get((base, mixins))
        if found is None:
            namespace = {
                "__module__": base.__module__,
                "__qualname__": base.__qualname__,
                "__doc__": base.__doc__,
                "__slots__": (),
            }
            try:
                metaclass: type[Any] = type(base)
                found = metaclass(base.__name__, (*mixins, base), namespace)
            except Exception as exc:
                raise TypeError(
                    f"cannot derive a class from {base.__qualname__}: {exc}"
                ) from exc
            _derived[(base, mixins)] = found
            _origins[found] = base
    return found


def adopt(model: BaseModel, cls: type[ModelT], update: dict[str, Any]) -> ModelT:
    """A shallow copy of `model` (fields updated by `update`) of class `cls`.

    `cls` derives from the model's class and adds no state, so the copy is
    the same model with more methods: nothing is validated or built again.
    """
    clone = model.model_copy(update=update)
    try:
        object.__setattr__(clone, "__class__", cls)
    except TypeError as exc:
        raise TypeError(
            f"cannot derive from {type(model).__qualname__} objects: {exc}"
        ) from exc
    return clone  # type: ignore[return-value]


# --- keys ---


class _KeyFound(Exception):
    def __init__(self, prompt: str, llm_string: str) -> None:
        super().__init__("key found")
        self.prompt = prompt
        self.llm_string = llm_string


class _KeyProbeCache(BaseCache):
    """A cache whose first lookup stops LangChain with the key it computed."""

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        raise _KeyFound(prompt, llm_string)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        _probe_escaped()

    def clear(self, **kwargs: Any) -> None:
        """Nothing is stored."""


def _probe_escaped(*args: Any, **kwargs: Any) -> NoReturn:
    raise RuntimeError(
        "langchain-core did not look up its cache before calling the model: "
        "cache_streams cannot compute its cache keys with this version."
    )


class _NeverCallsTheModel:
    """Makes any model call on a key probe an error instead of a request."""

    __slots__ = ()
    _generate = _agenerate = _stream = _astream = _probe_escaped


def chat_key(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> tuple[str, str]:
    """``(prompt, llm_string)`` under which LangChain caches this chat call.

    Runs langchain-core's own cached-generation step on a copy of `model` whose
    cache stops it at its lookup, so keys match the installed version exactly
    (recent versions leave message ids out of the key, older ones do not).
    `messages` are those ``_stream`` receives, normalized as ``generate`` does.
    """
    probe = adopt(
        model,
        derive_class(origin_class(type(model)), (_NeverCallsTheModel,)),
        {"cache": _KeyProbeCache(), "rate_limiter": None},
    )
    try:
        probe._generate_with_cache(messages, stop=stop, **kwargs)
    except _KeyFound as found:
        return found.prompt, found.llm_string
    _probe_escaped()


def llm_key(model: BaseLLM, stop: list[str] | None) -> str:
    """The ``llm_string`` under which LangChain caches this LLM's answers.

    LangChain's ``generate`` keys an LLM's answers by its parameters and stop
    words only (call arguments are left out); the prompt is the text itself.
    """
    as_dict = getattr(model, "_dict_for_compat", None)
    params = dict(as_dict() if callable(as_dict) else model.dict())
    params["stop"] = stop
    return str(sorted(params.items()))


# --- a hit: the cached answer as chunks ---


def split_text(text: str, limit: int = HIT_CHUNKS) -> list[str]:
    """`text` in at most `limit` pieces of whole words that join back to it."""
    words: list[str] = _WORD.findall(text) or [text]
    size = -(-len(words) // limit)
    if size == 1:
        return words
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def first_chat_generation(cached: Sequence[Generation]) -> ChatGeneration:
    """The answer ``invoke`` returns from a cached list of generations."""
    generation = cached[0]
    if isinstance(generation, ChatGeneration):
        return generation
    # A text-only entry (an older or foreign cache), as LangChain reads it.
    return ChatGeneration(
        message=AIMessage(content=generation.text),
        generation_info=generation.generation_info,
    )


def _tool_call_chunks(message: AIMessage) -> list[ToolCallChunk]:
    return [
        tool_call_chunk(
            name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=i
        )
        for i, call in enumerate(message.tool_calls)
    ]


def _usage(message: AIMessage) -> UsageMetadata | None:
    """The message's usage, or `None` if it holds no token counts.

    langchain-core 1.x marks a hit it serves to ``invoke`` with ``total_cost:
    0``, in place in an in-memory cache: an answer without usage then holds
    ``{"total_cost": 0}``, which no chunk can carry.
    """
    usage = message.usage_metadata
    if usage is None or not all(key in usage for key in _TOKEN_COUNTS):
        return None
    return usage


def chat_hit_chunks(generation: ChatGeneration) -> list[ChatGenerationChunk]:
    """Chunks whose sum is ``generation``'s message: its text in pieces, the
    first also carrying the rest (tool calls, usage and response metadata).

    The rest goes first because langchain-core 0.3 keeps nested usage details
    only from the left-hand chunk of a sum. An id LangChain made up for the
    first run is dropped, so the stream gives this run's id; a provider's id is
    kept.
    """
    message = generation.message
    if not isinstance(message, AIMessage):
        message = AIMessage(content=message.content)
    message_id = message.id
    if message_id is not None and message_id.startswith(LANGCHAIN_ID_PREFIXES):
        message_id = None
    content = message.content
    pieces: list[Any] = split_text(content) if isinstance(content, str) else [content]
    if message.invalid_tool_calls:
        # Chunks carry tool calls as raw argument strings that LangChain parses
        # leniently when it sums them, which could turn a malformed call into a
        # valid one: such an answer is replayed as one chunk, exact as cached.
        pieces = [content]
    first = AIMessageChunk(
        content=pieces[0],
        id=message_id,
        additional_kwargs=copy.deepcopy(message.additional_kwargs),
        response_metadata=copy.deepcopy(message.response_metadata),
        usage_metadata=copy.deepcopy(_usage(message)),
        tool_call_chunks=_tool_call_chunks(message),
    )
    messages = [first] + [
        AIMessageChunk(content=piece, id=message_id) for piece in pieces[1:]
    ]
    if _HAS_CHUNK_POSITION:
        # Tells langchain-core 1.x the stream is complete, so it adds no empty
        # closing chunk of its own.
        messages[-1].chunk_position = "last"
    if message.invalid_tool_calls:
        first.invalid_tool_calls = copy.deepcopy(message.invalid_tool_calls)
    info = copy.deepcopy(generation.generation_info)
    return [ChatGenerationChunk(message=first, generation_info=info)] + [
        ChatGenerationChunk(message=m) for m in messages[1:]
    ]


def llm_hit_chunks(generation: Generation) -> list[GenerationChunk]:
    """Chunks whose sum is `generation`: its text in pieces, the info last."""
    pieces = split_text(generation.text)
    chunks = [GenerationChunk(text=piece) for piece in pieces[:-1]]
    info = copy.deepcopy(generation.generation_info)
    chunks.append(GenerationChunk(text=pieces[-1], generation_info=info))
    return chunks


# --- a miss: the streamed answer as a cache entry ---


def chat_answer(chunks: Sequence[ChatGenerationChunk]) -> list[Generation] | None:
    """The entry for a completed chat stream, as ``invoke`` would store it.

    `chunks` are those the stream gave its consumer, so they already carry what
    LangChain's ``stream`` adds (run id, response metadata). `None` if empty.
    """
    if not chunks:
        return None
    generation = generate_from_stream(iter(chunks)).generations[0]
    message = generation.message
    message.response_metadata = {
        **(generation.generation_info or {}),
        **message.response_metadata,
    }
    return [generation]


def llm_answer(chunks: Sequence[GenerationChunk]) -> list[Generation] | None:
    """The entry for a completed LLM stream: one generation. `None` if empty."""
    if not chunks:
        return None
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return [Generation(text=total.text, generation_info=total.generation_info)]


@dataclass(frozen=True)
class StreamCall:
    """The arguments of one ``_stream`` call, read as the model reads them."""

    input: Any
    stop: list[str] | None
    run_manager: Any
    kwargs: dict[str, Any]
    """The call's other keywords."""


@functools.cache
def _stream_signature(input_name: str) -> inspect.Signature:
    """``_stream``'s parameters in LangChain's base classes, without ``self``."""
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [
            inspect.Parameter(input_name, positional),
            inspect.Parameter("stop", positional, default=None),
            inspect.Parameter("run_manager", positional, default=None),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ]
    )


@dataclass(frozen=True)
class StreamKind:
    """What serving a stream from the cache does for a chat model or an LLM."""

    input_name: str
    """The name of ``_stream``'s first parameter: ``messages`` or ``prompt``."""
    key: Callable[[Any, Any, list[str] | None, dict[str, Any]], tuple[str, str]]
    """``(prompt, llm_string)`` of a ``_stream`` call: from its model, input,
    stop words and keywords."""
    hit_chunks: Callable[[RETURN_VAL_TYPE], Sequence[Any]]
    """The chunks that stream a hit."""
    answer: Callable[[Sequence[Any]], list[Generation] | None]
    """The entry a miss stores, from the chunks streamed (`None`: none)."""
    reports_hits: bool
    """Whether ``_stream`` reports a hit's chunks to its run manager:
    ``BaseLLM.stream`` leaves that to ``_stream``, ``BaseChatModel.stream``
    reports each chunk itself."""

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StreamCall:
        """Read a ``_stream`` call's arguments, given by position or by name
        (some models call their own ``_stream`` by keyword); `TypeError` as
        Python's for a call its signature refuses."""
        bound = _stream_signature(self.input_name).bind(*args, **kwargs)
        given = bound.arguments
        return StreamCall(
            given[self.input_name],
            given.get("stop"),
            given.get("run_manager"),
            dict(given.get("kwargs", {})),
        )


def _chat_hit_chunks(cached: RETURN_VAL_TYPE) -> list[ChatGenerationChunk]:
    return chat_hit_chunks(first_chat_generation(cached))


def _llm_call_key(
    model: BaseLLM, prompt: str, stop: list[str] | None, kwargs: dict[str, Any]
) -> tuple[str, str]:
    return prompt, llm_key(model, stop)


def _llm_hit_chunks(cached: RETURN_VAL_TYPE) -> list[GenerationChunk]:
    return llm_hit_chunks(cached[0])


CHAT_STREAMS = StreamKind(
    "messages", chat_key, _chat_hit_chunks, chat_answer, reports_hits=False
)
LLM_STREAMS = StreamKind(
    "prompt", _llm_call_key, _llm_hit_chunks, llm_answer, reports_hits=True
)


def is_hit(cached: RETURN_VAL_TYPE | None) -> TypeGuard[RETURN_VAL_TYPE]:
    """Whether a lookup found an answer (an empty list holds none)."""
    return isinstance(cached, list) and len(cached) > 0


# --- one stream call, told to the ``_stream``/``_astream`` it leads to ---


@dataclass(eq=False)
class Plan:
    """A cached ``stream()`` call, for the first ``_stream``/``_astream`` of `owner`.

    Only that call serves from the cache: ``invoke`` (which LangChain caches
    itself) also reaches ``_stream`` when a streaming callback is attached, and
    the async fallback of a sync-only model calls ``_stream`` from ``_astream``.
    """

    owner: object
    cache: BaseCache
    kind: StreamKind
    rate_limiter: BaseRateLimiter | None
    claimed: bool = False


CURRENT_PLAN: ContextVar[Plan | None] = ContextVar(
    "langchain_es_cache_stream", default=None
)
"""The plan of the stream step running now; set per step, never across a
``yield``, so the consumer's code between chunks never sees it."""


def claim_plan(model: object) -> Plan | None:
    """The plan of the stream step running now, if it is `model`'s and unclaimed."""
    plan = CURRENT_PLAN.get()
    if plan is None or plan.claimed or plan.owner is not model:
        return None
    plan.claimed = True
    return plan


def new_plan(model: BaseLanguageModel[Any], cache: BaseCache) -> Plan:
    """The plan for one stream of `model`; its owner runs the stream.

    A chat model's rate limiter must only hold back model calls, as on
    LangChain's ``invoke`` path: the owner is then a copy without it, which the
    plan acquires on a miss. An LLM streams as itself (LangChain gives LLMs no
    rate limiter; one of a model's own is the model's business).
    """
    if not isinstance(model, BaseChatModel):
        return Plan(model, cache, LLM_STREAMS, None)
    limiter = model.rate_limiter
    owner = (
        model if limiter is None else model.model_copy(update={"rate_limiter": None})
    )
    return Plan(owner, cache, CHAT_STREAMS, limiter)
