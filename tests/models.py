"""Deterministic LangChain models for the tests, counting how often they are called."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import threading
import time
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import LLM, BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr


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


class SlowChatModel(BaseChatModel):
    """A chat model whose call takes `delay` seconds (the workload of a burst of
    identical prompts); counts its calls across threads and tasks, and raises
    on the first `failures` of them."""

    answer: str = "Paris is the capital of France."
    delay: float = 0.5
    failures: int = 0
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
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(content=self.answer))]
        )

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
