"""Deterministic LangChain models for the tests, counting how often they are called."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import LLM, BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    GenerationChunk,
)
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr


class CountingChatModel(BaseChatModel):
    """A chat model answering `answer`, `n` generations a call; counts its calls."""

    answer: str = "Paris is the capital of France."
    n: int = 1
    temperature: float = 0.0
    _calls: int = PrivateAttr(default=0)

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def _llm_type(self) -> str:
        return "counting-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": "counting-1", "temperature": self.temperature, "n": self.n}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._calls += 1
        generations = [
            ChatGeneration(
                message=AIMessage(
                    content=f"{self.answer} ({i})" if self.n > 1 else self.answer,
                    response_metadata={"model_name": "counting-1", "finish": "stop"},
                    usage_metadata={
                        "input_tokens": 7,
                        "output_tokens": 6,
                        "total_tokens": 13,
                    },
                ),
                generation_info={"finish_reason": "stop", "index": i},
            )
            for i in range(self.n)
        ]
        return ChatResult(generations=generations)


class CountingLLM(LLM):
    """A plain text-completion model echoing its prompt; counts its calls."""

    _calls: int = PrivateAttr(default=0)

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def _llm_type(self) -> str:
        return "counting-llm"

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        self._calls += 1
        return f"completion of {prompt!r}"


class CountingEmbeddings(Embeddings):
    """A deterministic embedding model; records every text it embeds.

    Each vector is derived from the text's SHA-256, as full-precision doubles
    (so a lossy cache would show), and `vector` recomputes it without counting.
    """

    def __init__(self, dimensions: int = 8) -> None:
        self.dimensions = dimensions
        self.embedded: list[str] = []
        self._lock = threading.Lock()

    def vector(self, text: str) -> list[float]:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        while len(digest) < 8 * self.dimensions:
            digest += hashlib.sha256(digest).digest()
        return [
            struct.unpack("<Q", digest[8 * i : 8 * i + 8])[0] / 2**64 * 2 - 1
            for i in range(self.dimensions)
        ]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            self.embedded.extend(texts)
        return [self.vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class TableEmbeddings(Embeddings):
    """A deterministic embedding model for the semantic cache: a table of vectors.

    Paraphrases are given close directions and unrelated texts distant ones, so
    similarities are exact and known in advance. A text not in the table is an
    error (a test that embeds what it did not plan). Records what it embeds.
    """

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.embedded: list[str] = []
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            self.embedded.extend(texts)
        missing = [text for text in texts if text not in self.vectors]
        if missing:
            raise KeyError(f"no test vector for {missing}")
        return [list(self.vectors[text]) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


# --- streaming models, for cache_streams ---


class Answers:
    """Answers for langchain-core's `GenericFakeChatModel`, counting those taken."""

    def __init__(self, *answers: str) -> None:
        self._answers = list(answers)
        self.calls = 0

    def __iter__(self) -> Answers:
        return self

    def __next__(self) -> str:
        self.calls += 1
        return self._answers.pop(0)


class ToolChatModel(BaseChatModel):
    """A serializable chat model streaming text, tool calls, usage and metadata.

    With tools bound, its answer calls the first of them with `tool_args`. The
    first `fail_first` calls raise after two chunks; with `pause_after`, the
    async stream waits forever after that many chunks. `calls` is shared with
    copies of the model (such as the one `cache_streams` returns). With
    `by_keyword`, it generates through its own ``_stream``, called by keyword,
    as some integrations do.
    """

    text: str = "Let me look that up for you."
    tool_args: dict[str, Any] = Field(
        default_factory=lambda: {"city": "Paris", "country": "France"}
    )
    fail_first: int = 0
    pause_after: int | None = None
    streaming: bool = False
    by_keyword: bool = False
    _log: list[str] = PrivateAttr(default_factory=list)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    def calls(self) -> int:
        return len(self._log)

    @property
    def _llm_type(self) -> str:
        return "tool-chat"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _answer(self, kwargs: dict[str, Any]) -> AIMessage:
        self._log.append("call")
        tools = kwargs.get("tools") or []
        calls = [
            {"name": tool["function"]["name"], "args": self.tool_args, "id": "call-1"}
            for tool in tools[:1]
        ]
        return AIMessage(
            content=self.text,
            tool_calls=calls,
            id="provider-msg-1",
            usage_metadata={
                "input_tokens": 9,
                "output_tokens": 12,
                "total_tokens": 21,
                "input_token_details": {"cache_read": 2},
            },
            response_metadata={
                "model_name": "tool-chat-1",
                "finish_reason": "tool_calls" if calls else "stop",
            },
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.by_keyword:
            chunks = self._stream(messages=messages, stop=stop, **kwargs)
            return generate_from_stream(chunks)
        return ChatResult(generations=[ChatGeneration(message=self._answer(kwargs))])

    def _chunks(self, answer: AIMessage) -> list[ChatGenerationChunk]:
        """The answer as a provider streams it: words, tool-call pieces, usage."""
        chunks = [
            AIMessageChunk(content=word, id=answer.id)
            for word in re.split(r"(?<= )", str(answer.content))
        ]
        for i, call in enumerate(answer.tool_calls):
            arguments = json.dumps(call["args"])
            cut = len(arguments) // 2
            chunks.append(
                AIMessageChunk(
                    content="",
                    id=answer.id,
                    tool_call_chunks=[
                        tool_call_chunk(name=call["name"], id=call["id"], index=i)
                    ],
                )
            )
            for piece in (arguments[:cut], arguments[cut:]):
                chunks.append(
                    AIMessageChunk(
                        content="",
                        id=answer.id,
                        tool_call_chunks=[tool_call_chunk(args=piece, index=i)],
                    )
                )
        chunks.append(
            AIMessageChunk(
                content="",
                id=answer.id,
                usage_metadata=answer.usage_metadata,
                response_metadata={"model_name": "tool-chat-1"},
            )
        )
        finish = answer.response_metadata["finish_reason"]
        return [ChatGenerationChunk(message=chunk) for chunk in chunks[:-1]] + [
            ChatGenerationChunk(
                message=chunks[-1], generation_info={"finish_reason": finish}
            )
        ]

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        fails = self.calls < self.fail_first
        for i, chunk in enumerate(self._chunks(self._answer(kwargs))):
            if fails and i == 2:
                raise RuntimeError("the connection dropped mid-stream")
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        fails = self.calls < self.fail_first
        for i, chunk in enumerate(self._chunks(self._answer(kwargs))):
            if fails and i == 2:
                raise RuntimeError("the connection dropped mid-stream")
            if i == self.pause_after:
                await asyncio.Event().wait()
            yield chunk


class StreamingLLM(LLM):
    """A text-completion model streaming its answer word by word; counts calls.

    The first `fail_first` calls raise after two chunks. `calls` is shared with
    copies of the model. With `by_keyword`, it answers through its own
    ``_stream``, called by keyword, as some integrations do.
    """

    fail_first: int = 0
    by_keyword: bool = False
    _log: list[str] = PrivateAttr(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self._log)

    @property
    def _llm_type(self) -> str:
        return "streaming-llm"

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        if self.by_keyword:
            chunks = self._stream(prompt=prompt, stop=stop, **kwargs)
            return "".join(chunk.text for chunk in chunks)
        return self._text(prompt)

    def _text(self, prompt: str) -> str:
        self._log.append(prompt)
        return f"Once upon a time, {prompt} lived happily ever after."

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        fails = self.calls < self.fail_first
        words = re.split(r"(?<= )", self._text(prompt))
        for i, word in enumerate(words):
            if fails and i == 2:
                raise RuntimeError("the connection dropped mid-stream")
            last = i == len(words) - 1
            chunk = GenerationChunk(
                text=word, generation_info={"finish_reason": "stop"} if last else None
            )
            if run_manager is not None:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


class CountingLimiter(BaseRateLimiter):
    """A rate limiter that never waits and counts what it lets through."""

    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True


class SlowChatModel(BaseChatModel):
    """A chat model whose call takes `delay` seconds (the workload of a burst of
    identical prompts); counts its calls across threads and tasks, and raises
    on the first `failures` of them."""

    answer: str = "Paris is the capital of France."
    delay: float = 0.5
    failures: int = 0
    total_tokens: int = 0
    """Token usage reported with the answer (none when 0)."""
    _calls: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def _llm_type(self) -> str:
        return "slow-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # Not the delay: a slow and a fast model share their cache entries.
        return {"model": "slow-1"}

    def _count(self) -> ChatResult:
        with self._lock:
            self._calls += 1
            failing = self._calls <= self.failures
        if failing:
            raise RuntimeError(f"model call {self._calls} failed")
        usage = (
            {
                "input_tokens": 1,
                "output_tokens": self.total_tokens - 1,
                "total_tokens": self.total_tokens,
            }
            if self.total_tokens
            else None
        )
        message = AIMessage(content=self.answer, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.delay)
        return self._count()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.sleep(self.delay)
        return self._count()
