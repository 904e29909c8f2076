"""`cache_streams` beyond the twin tests: async-only caches, cancellation, any
BaseCache, threads and tasks, what the returned model is, and bad arguments."""

from __future__ import annotations

import asyncio
import logging
import operator
import pickle
from collections.abc import Iterator
from functools import reduce
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from langchain_core.caches import RETURN_VAL_TYPE, InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import (
    BaseChatModel,
    BaseLLM,
    FakeListChatModel,
    GenericFakeChatModel,
)
from pydantic import BaseModel

from langchain_es_cache import (
    AsyncElasticsearchCache,
    CacheError,
    ElasticsearchCache,
    OnError,
    cache_streams,
)
from tests.models import (
    Answers,
    CountingChatModel,
    CountingLimiter,
    CountingLLM,
    StreamingLLM,
    ToolChatModel,
)

QUESTION = "What is the capital of France?"


class Capital(BaseModel):
    """The capital of a country."""

    city: str


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield None
    set_llm_cache(None)


def count(admin: Elasticsearch, index: str) -> int:
    if not admin.indices.exists(index=index):
        return 0
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


class CountingCache(InMemoryCache):
    """Counts lookups and updates, whichever of the sync and async API runs."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = self.updates = 0

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        self.lookups += 1
        return super().lookup(prompt, llm_string)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self.updates += 1
        super().update(prompt, llm_string, return_val)


async def test_async_only_cache_refuses_stream_as_it_refuses_invoke(
    api_key_settings: dict[str, Any], admin: Elasticsearch, index_name: str
) -> None:
    async with AsyncElasticsearchCache(index_name, **api_key_settings) as cache:
        plain = ToolChatModel(cache=cache)
        model = cache_streams(plain)
        with pytest.raises(TypeError) as from_invoke:
            plain.invoke(QUESTION)
        with pytest.raises(TypeError) as from_stream:
            list(model.stream(QUESTION))
        assert str(from_stream.value) == str(from_invoke.value)
        assert "Use ElasticsearchCache for sync or mixed" in str(from_stream.value)
        assert plain.calls == 0
        # The async path works with the same cache.
        first = [chunk async for chunk in model.astream(QUESTION)]
        second = [chunk async for chunk in model.astream(QUESTION)]
        assert plain.calls == 1
        assert len(second) > 1 and len(first) > 1
    assert count(admin, index_name) == 1


async def test_async_only_cache_serves_astream_of_a_sync_only_model(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    """LangChain runs a sync-only model's ``_stream`` in a thread for ``astream``;
    the cache is still used through its async API."""
    answers = Answers("Paris, of course.", "unused")
    async with AsyncElasticsearchCache(index_name, **api_key_settings) as cache:
        model = cache_streams(GenericFakeChatModel(messages=answers, cache=cache))
        for _ in range(2):
            chunks = [chunk async for chunk in model.astream(QUESTION)]
            assert "".join(str(c.content) for c in chunks) == "Paris, of course."
    assert answers.calls == 1


async def test_a_cancelled_astream_writes_nothing(
    api_key_settings: dict[str, Any], admin: Elasticsearch, index_name: str
) -> None:
    async with AsyncElasticsearchCache(index_name, **api_key_settings) as cache:
        plain = ToolChatModel(cache=cache, pause_after=3)
        model = cache_streams(plain)
        received: list[Any] = []
        three = asyncio.Event()

        async def consume() -> None:
            async for chunk in model.astream(QUESTION):
                received.append(chunk)
                if len(received) == 3:
                    three.set()

        task = asyncio.create_task(consume())
        await three.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert count(admin, index_name) == 0
        complete = cache_streams(plain.model_copy(update={"pause_after": None}))
        [chunk async for chunk in complete.astream(QUESTION)]
        [chunk async for chunk in complete.astream(QUESTION)]
        assert plain.calls == 2
    assert count(admin, index_name) == 1


@pytest.mark.parametrize("on_error", ["raise", "warn"])
def test_a_failed_write_is_raised_at_the_end_or_logged(
    api_key_settings: dict[str, Any],
    admin: Elasticsearch,
    index_name: str,
    on_error: OnError,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ElasticsearchCache(index_name, on_error=on_error, **api_key_settings) as cache:
        plain = ToolChatModel(cache=cache)
        model = cache_streams(plain)
        list(model.stream("first question"))
        # Lookups still work on a write-blocked index; writes fail.
        admin.indices.put_settings(index=index_name, settings={"blocks.write": True})
        try:
            received = []
            if on_error == "raise":
                with pytest.raises(CacheError, match="cache update on index"):
                    for chunk in model.stream(QUESTION):
                        received.append(chunk)
            else:
                with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
                    received = list(model.stream(QUESTION))
                assert "continuing without the cache" in caplog.text
            assert "".join(str(c.content) for c in received) == plain.text
            list(model.stream("first question"))
            assert plain.calls == 2
        finally:
            admin.indices.put_settings(
                index=index_name, settings={"blocks.write": None}
            )
    assert count(admin, index_name) == 1


@pytest.mark.parametrize("make", [ToolChatModel, StreamingLLM])
def test_in_memory_cache_sync(make: Any) -> None:
    cache = InMemoryCache()
    model = cache_streams(make(cache=cache))
    first = list(model.stream("a frog"))
    second = list(model.stream("a frog"))
    assert model.calls == 1
    assert len(second) > 1
    assert len(first) > 1


@pytest.mark.parametrize("make", [ToolChatModel, StreamingLLM])
async def test_in_memory_cache_async(make: Any) -> None:
    model = cache_streams(make(cache=InMemoryCache()))
    [chunk async for chunk in model.astream("a frog")]
    [chunk async for chunk in model.astream("a frog")]
    assert model.calls == 1


@pytest.mark.parametrize("make", [ToolChatModel, StreamingLLM])
def test_a_model_calling_its_own_stream_by_keyword(make: Any) -> None:
    """The mixin's ``_stream`` takes the model's arguments by name too."""
    model = cache_streams(make(cache=InMemoryCache(), by_keyword=True))
    answer = model.invoke(QUESTION)
    streamed = reduce(operator.add, list(model.stream(QUESTION)))
    assert model.calls == 1
    assert getattr(streamed, "content", streamed) == getattr(answer, "content", answer)


@pytest.mark.parametrize("usage", [True, False])
def test_a_hit_after_invoke_marked_it_in_an_in_memory_cache(usage: bool) -> None:
    """langchain-core 1.x adds ``total_cost: 0`` to the usage of an answer it
    serves to invoke, in place in an in-memory cache: streams still replay it."""
    chat = FakeListChatModel(responses=["Paris, on the Seine."], cache=InMemoryCache())
    plain: BaseChatModel = chat if not usage else ToolChatModel(cache=InMemoryCache())
    model = cache_streams(plain)
    first = reduce(operator.add, list(model.stream(QUESTION)))
    invoked = plain.invoke(QUESTION)
    again = reduce(operator.add, list(model.stream(QUESTION)))
    assert again.content == invoked.content == first.content
    if usage:
        assert again.usage_metadata == invoked.usage_metadata
    else:
        assert again.usage_metadata is None


def test_invoke_through_the_streaming_path_looks_up_and_writes_once() -> None:
    """``invoke`` of a ``streaming=True`` model reaches ``_stream``: only
    LangChain's own lookup and update run, never a second pair of ours."""
    cache = CountingCache()
    model = cache_streams(ToolChatModel(cache=cache, streaming=True))
    model.invoke(QUESTION)
    assert (cache.lookups, cache.updates) == (1, 1)
    list(model.stream(QUESTION))
    assert (cache.lookups, cache.updates) == (2, 1)
    list(model.stream("another question"))
    assert (cache.lookups, cache.updates) == (3, 2)


def test_calls_between_chunks_are_not_taken_for_the_stream() -> None:
    cache = CountingCache()
    plain = ToolChatModel(cache=cache, streaming=True)
    model = cache_streams(plain)
    asked = 0
    for i, chunk in enumerate(model.stream(QUESTION)):
        model.invoke(f"asked while streaming chunk {i}: {chunk.content!r}")
        asked += 1
    calls = plain.calls
    assert calls == asked + 1
    # One lookup per call, one write per model call: none taken twice.
    assert (cache.lookups, cache.updates) == (calls, calls)
    list(model.stream(QUESTION))
    assert plain.calls == calls


def test_threads_share_one_model(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ElasticsearchCache(index_name, **api_key_settings) as cache:
        llm = StreamingLLM(cache=cache)
        model = cache_streams(llm)
        prompts = [f"frog number {i}" for i in range(8)]
        for _ in range(2):
            with ThreadPoolExecutor(max_workers=8) as pool:
                texts = list(pool.map(lambda p: "".join(model.stream(p)), prompts))
            assert texts == [llm.invoke(p) for p in prompts]
        assert llm.calls == 8


async def test_tasks_share_one_model(
    api_key_settings: dict[str, Any], index_name: str
) -> None:
    async with AsyncElasticsearchCache(index_name, **api_key_settings) as cache:
        llm = StreamingLLM(cache=cache)
        model = cache_streams(llm)
        prompts = [f"toad number {i}" for i in range(8)]

        async def text(prompt: str) -> str:
            return "".join([chunk async for chunk in model.astream(prompt)])

        for _ in range(2):
            texts = await asyncio.gather(*(text(p) for p in prompts))
            assert texts == [await llm.ainvoke(p) for p in prompts]
        assert llm.calls == 8


async def test_astream_events_of_a_hit_report_its_chunks() -> None:
    model = cache_streams(ToolChatModel(cache=InMemoryCache()))
    runs = []
    for _ in range(2):
        events = [e async for e in model.astream_events(QUESTION, version="v2")]
        runs.append(
            [
                e["data"]["chunk"].content
                for e in events
                if e["event"].endswith("stream")
            ]
        )
    assert model.calls == 1
    assert "".join(runs[1]) == "".join(runs[0]) == ToolChatModel().text
    assert len(runs[1]) > 1


class AsyncStreamingOnly(ToolChatModel):
    """Streams natively in async code only."""

    _stream = BaseChatModel._stream


async def test_a_model_streaming_only_in_async_code() -> None:
    model = cache_streams(AsyncStreamingOnly(cache=InMemoryCache()))
    for _ in range(2):
        chunks = [chunk async for chunk in model.astream(QUESTION)]
        assert len(chunks) > 1
    assert model.calls == 1
    # Its sync stream is LangChain's fallback to invoke, which hits the entry.
    assert [c.content for c in model.stream(QUESTION)] == [model.text]
    assert model.calls == 1


def test_a_model_that_does_not_stream_stays_cached_by_langchain() -> None:
    chat, llm = CountingChatModel(cache=InMemoryCache()), CountingLLM()
    llm_model = cache_streams(llm, cache=InMemoryCache())
    chat_model = cache_streams(chat)
    for _ in range(2):
        assert [c.content for c in chat_model.stream(QUESTION)] == [chat.answer]
        assert list(llm_model.stream("a frog")) == ["completion of 'a frog'"]
    assert (chat_model.calls, llm_model.calls) == (1, 1)


def test_the_returned_model_is_the_model() -> None:
    plain = ToolChatModel(cache=InMemoryCache(), text="Bonjour.")
    model = cache_streams(plain)
    assert isinstance(model, ToolChatModel) and isinstance(model, BaseChatModel)
    assert type(model) is not ToolChatModel
    assert type(model).__name__ == "ToolChatModel"
    assert model.get_name() == plain.get_name()
    assert model.text == "Bonjour." and model.cache is plain.cache
    assert type(cache_streams(model)) is type(model)
    assert type(cache_streams(ToolChatModel())) is type(model)
    assert model._get_llm_string() == plain._get_llm_string()
    llm = cache_streams(StreamingLLM())
    assert isinstance(llm, StreamingLLM) and isinstance(llm, BaseLLM)
    # The original is left as it was: its streams are not cached.
    list(plain.stream(QUESTION))
    list(plain.stream(QUESTION))
    assert plain.calls == 2


def test_the_cache_argument_does_not_change_the_original() -> None:
    own, given = InMemoryCache(), InMemoryCache()
    plain = ToolChatModel(cache=own)
    model = cache_streams(plain, cache=given)
    assert (plain.cache, model.cache) == (own, given)
    list(model.stream(QUESTION))
    model.invoke(QUESTION)
    assert plain.calls == 1
    plain.invoke(QUESTION)
    assert plain.calls == 2


def test_a_returned_model_pickles() -> None:
    model = cache_streams(StreamingLLM(cache=InMemoryCache()))
    list(model.stream("a frog"))
    copy = pickle.loads(pickle.dumps(model))
    assert type(copy) is type(model)
    assert list(copy.stream("a frog")) == list(model.stream("a frog"))
    assert copy.calls == 1


def test_cache_true_needs_a_global_cache(global_cache: None) -> None:
    model = cache_streams(ToolChatModel(cache=True))
    with pytest.raises(ValueError, match="cache=True but no global cache is set"):
        list(model.stream(QUESTION))
    set_llm_cache(InMemoryCache())
    list(model.stream(QUESTION))
    list(model.stream(QUESTION))
    assert model.calls == 1


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("a model name", "takes a chat model or an LLM, not str"),
        (ToolChatModel().bind(stop=["."]), "wrap the model before bind_tools"),
        (ToolChatModel().with_structured_output(Capital), "not RunnableSequence"),
    ],
)
def test_what_is_not_a_model_is_refused(model: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        cache_streams(model)


@pytest.mark.parametrize("cache", ["redis://", True, False, object()])
def test_what_is_not_a_cache_is_refused(cache: Any) -> None:
    with pytest.raises(TypeError, match="cache must be a LangChain BaseCache or None"):
        cache_streams(ToolChatModel(), cache=cache)


class LimitedLLM(StreamingLLM):
    """An LLM holding a rate limiter of its own, which its stream acquires."""

    rate_limiter: Any = None

    def _stream(self, prompt: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.rate_limiter.acquire()
        yield from super()._stream(prompt, *args, **kwargs)


def test_an_llm_streams_as_itself_with_its_own_fields() -> None:
    """Only a chat model's rate limiter is LangChain's to hold back model calls;
    an LLM's own field stays with the model that streams."""
    limiter = CountingLimiter()
    model = cache_streams(LimitedLLM(rate_limiter=limiter), cache=InMemoryCache())
    first = "".join(model.stream(QUESTION))
    assert "".join(model.stream(QUESTION)) == first
    assert (model.calls, limiter.acquired) == (1, 1)
