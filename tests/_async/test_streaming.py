"""`cache_streams` against the real node: streamed answers read and fill the cache."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from functools import reduce
from typing import Any, cast

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from langchain_es_cache import AsyncElasticsearchCache, cache_streams
from tests.models import (
    Answers,
    CountingLimiter,
    StreamingLLM,
    ToolChatModel,
)

QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital and largest city of France."


@pytest.fixture
async def async_cache(
    async_client: AsyncElasticsearch, index_name: str
) -> AsyncIterator[AsyncElasticsearchCache]:
    yield AsyncElasticsearchCache(index_name, client=async_client)


@pytest.fixture
def global_cache() -> Iterator[None]:
    """Reset LangChain's global cache after a test that sets it."""
    yield None
    set_llm_cache(None)


def count(admin: Elasticsearch, index: str) -> int:
    """Entries in `index`, which the cache may not have created yet."""
    if not admin.indices.exists(index=index):
        return 0
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


def join(chunks: Sequence[BaseMessage]) -> AIMessageChunk:
    """The sum of a chat stream's chunks (typed as messages by ``Runnable``)."""
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    return cast(AIMessageChunk, reduce(operator.add, chunks))


def without_cost(usage: Any) -> Any:
    """`usage` without the ``total_cost: 0`` langchain-core 1.x adds to the
    usage of a hit served to ``invoke`` (not part of the cached answer)."""
    return {k: v for k, v in usage.items() if k != "total_cost"}


class Tokens(BaseCallbackHandler):
    """Records the tokens the streaming callbacks receive."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.tokens.append(token)


class Capital(BaseModel):
    """The capital of a country."""

    city: str
    country: str


def get_weather(city: str, country: str) -> str:
    """The weather in a city."""
    return "sunny"


def get_time(city: str, country: str) -> str:
    """The local time in a city."""
    return "noon"


async def test_chat_stream_twice_calls_the_model_once(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    answers = Answers(ANSWER, "a second answer")
    model = cache_streams(GenericFakeChatModel(messages=answers, cache=async_cache))
    first = [chunk async for chunk in model.astream(QUESTION)]
    second = [chunk async for chunk in model.astream(QUESTION)]
    assert answers.calls == 1
    assert len(second) > 1
    assert join(second).content == join(first).content == ANSWER
    # Each stream gives its own run's id, not the first run's.
    ids = {join(first).id, join(second).id}
    assert len(ids) == 2 and all(i and i.startswith(("run-", "lc_run-")) for i in ids)
    assert count(admin, index_name) == 1


async def test_a_chain_streaming_the_model_is_cached(
    async_cache: AsyncElasticsearchCache,
) -> None:
    plain = ToolChatModel(cache=async_cache)
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    chain = prompt | cache_streams(plain) | StrOutputParser()
    runs = []
    for _ in range(2):
        runs.append([piece async for piece in chain.astream({"question": QUESTION})])
    assert plain.calls == 1
    assert len(runs[1]) > 1
    assert "".join(runs[1]) == "".join(runs[0]) == plain.text


async def test_llm_stream_twice_calls_the_model_once(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    llm = StreamingLLM(cache=async_cache)
    model = cache_streams(llm)
    first = [chunk async for chunk in model.astream("a frog")]
    second = [chunk async for chunk in model.astream("a frog")]
    assert llm.calls == 1
    assert len(second) > 1
    assert "".join(second) == "".join(first) == await llm.ainvoke("a frog")
    assert count(admin, index_name) == 1


@pytest.mark.parametrize("make", [ToolChatModel, StreamingLLM])
async def test_a_model_calling_its_own_stream_by_keyword_shares_the_entry(
    async_cache: AsyncElasticsearchCache,
    admin: Elasticsearch,
    index_name: str,
    make: Any,
) -> None:
    """Some integrations generate through ``self._stream(messages=...)``."""
    model = cache_streams(make(cache=async_cache, by_keyword=True))
    answer = await model.ainvoke(QUESTION)
    chunks = [chunk async for chunk in model.astream(QUESTION)]
    streamed = reduce(operator.add, chunks)
    assert model.calls == 1
    assert getattr(streamed, "content", streamed) == getattr(answer, "content", answer)
    assert count(admin, index_name) == 1


async def test_chat_invoke_then_stream_share_the_entry(
    async_cache: AsyncElasticsearchCache,
) -> None:
    plain = ToolChatModel(cache=async_cache)
    invoked = await plain.ainvoke(QUESTION)
    streamed = join([c async for c in cache_streams(plain).astream(QUESTION)])
    assert plain.calls == 1
    assert streamed.content == invoked.content
    assert streamed.usage_metadata == invoked.usage_metadata
    assert streamed.response_metadata == invoked.response_metadata


async def test_chat_stream_then_invoke_share_the_entry(
    async_cache: AsyncElasticsearchCache,
) -> None:
    plain = ToolChatModel(cache=async_cache)
    streamed = join([c async for c in cache_streams(plain).astream(QUESTION)])
    invoked = await plain.ainvoke(QUESTION)
    assert plain.calls == 1
    assert invoked.content == streamed.content
    assert without_cost(invoked.usage_metadata) == streamed.usage_metadata
    assert invoked.response_metadata == streamed.response_metadata
    assert [m.content for m in await plain.abatch([QUESTION, QUESTION])] == [
        streamed.content
    ] * 2
    assert plain.calls == 1


async def test_llm_invoke_then_stream_share_the_entry(
    async_cache: AsyncElasticsearchCache,
) -> None:
    llm = StreamingLLM(cache=async_cache)
    invoked = await llm.ainvoke("a toad")
    streamed = [chunk async for chunk in cache_streams(llm).astream("a toad")]
    assert llm.calls == 1
    assert len(streamed) > 1
    assert "".join(streamed) == invoked


async def test_llm_stream_then_invoke_share_the_entry(
    async_cache: AsyncElasticsearchCache,
) -> None:
    llm = StreamingLLM(cache=async_cache)
    streamed = [chunk async for chunk in cache_streams(llm).astream("a newt")]
    assert await llm.ainvoke("a newt") == "".join(streamed)
    assert llm.calls == 1


async def test_messages_with_ids_share_the_entry_as_invoke_keys_them(
    async_cache: AsyncElasticsearchCache,
) -> None:
    """Whatever langchain-core does with message ids, streams do the same."""
    plain = ToolChatModel(cache=async_cache)
    conversation: list[BaseMessage] = [HumanMessage(QUESTION, id="message-1")]
    await plain.ainvoke(conversation)
    [chunk async for chunk in cache_streams(plain).astream(conversation)]
    assert plain.calls == 1


async def test_stop_words_and_bound_arguments_are_part_of_the_key(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    plain = ToolChatModel(cache=async_cache)
    model = cache_streams(plain)
    [c async for c in model.astream(QUESTION)]
    [c async for c in model.astream(QUESTION, stop=["."])]
    [c async for c in model.bind(temperature=0.5).astream(QUESTION)]
    [c async for c in model.bind(temperature=0.5).astream(QUESTION)]
    assert plain.calls == 3
    assert count(admin, index_name) == 3


async def test_a_hit_replays_content_tools_usage_metadata_and_tokens(
    async_cache: AsyncElasticsearchCache,
) -> None:
    plain = ToolChatModel(cache=async_cache)
    model = cache_streams(plain).bind_tools([get_weather])
    first = [c async for c in model.astream(QUESTION)]
    tokens = Tokens()
    second = [c async for c in model.astream(QUESTION, config={"callbacks": [tokens]})]
    assert plain.calls == 1
    assert len(second) > 1
    assert tokens.tokens == [chunk.content for chunk in second]
    hit, fresh = join(second), join(first)
    for field in ("content", "tool_calls", "usage_metadata", "response_metadata"):
        assert getattr(hit, field) == getattr(fresh, field), field
    assert hit.id == fresh.id == "provider-msg-1"


async def test_llm_hit_fires_the_streaming_callbacks(
    async_cache: AsyncElasticsearchCache,
) -> None:
    llm = StreamingLLM(cache=async_cache)
    model = cache_streams(llm)
    [c async for c in model.astream("a frog")]
    tokens = Tokens()
    second = [c async for c in model.astream("a frog", config={"callbacks": [tokens]})]
    assert llm.calls == 1
    assert tokens.tokens == second


async def test_tool_call_chunks_round_trip(
    async_cache: AsyncElasticsearchCache,
) -> None:
    plain = ToolChatModel(cache=async_cache)
    model = cache_streams(plain).bind_tools([get_weather])
    streamed = join([c async for c in model.astream(QUESTION)])
    replayed = join([c async for c in model.astream(QUESTION)])
    invoked = await plain.bind_tools([get_weather]).ainvoke(QUESTION)
    unstreamed = (
        await ToolChatModel(cache=False).bind_tools([get_weather]).ainvoke(QUESTION)
    )
    assert plain.calls == 1
    expected = [
        {
            "name": "get_weather",
            "args": {"city": "Paris", "country": "France"},
            "id": "call-1",
            "type": "tool_call",
        }
    ]
    assert unstreamed.tool_calls == expected
    assert streamed.tool_calls == replayed.tool_calls == invoked.tool_calls == expected


async def test_two_tool_sets_are_two_entries(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    plain = ToolChatModel(cache=async_cache)
    model = cache_streams(plain)
    weather, time = model.bind_tools([get_weather]), model.bind_tools([get_time])
    names = []
    for bound in (weather, time, weather, time):
        answer = join([c async for c in bound.astream(QUESTION)])
        names.append(answer.tool_calls[0]["name"])
    assert names == ["get_weather", "get_time"] * 2
    assert plain.calls == 2
    assert count(admin, index_name) == 2


async def test_structured_output_is_cached(
    async_cache: AsyncElasticsearchCache,
) -> None:
    plain = ToolChatModel(cache=async_cache)
    structured = cache_streams(plain).with_structured_output(Capital)
    first = [c async for c in structured.astream(QUESTION)]
    second = [c async for c in structured.astream(QUESTION)]
    invoked = await plain.with_structured_output(Capital).ainvoke(QUESTION)
    assert plain.calls == 1
    assert first[-1] == second[-1] == invoked == Capital(city="Paris", country="France")


async def test_an_exception_mid_stream_writes_nothing(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    plain = ToolChatModel(cache=async_cache, fail_first=1)
    model = cache_streams(plain)
    received = []
    with pytest.raises(RuntimeError, match="dropped mid-stream"):
        async for chunk in model.astream(QUESTION):
            received.append(chunk)
    assert len(received) == 2
    assert count(admin, index_name) == 0
    [c async for c in model.astream(QUESTION)]
    [c async for c in model.astream(QUESTION)]
    assert plain.calls == 2
    assert count(admin, index_name) == 1


async def test_an_llm_exception_mid_stream_writes_nothing(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    llm = StreamingLLM(cache=async_cache, fail_first=1)
    model = cache_streams(llm)
    with pytest.raises(RuntimeError, match="dropped mid-stream"):
        [c async for c in model.astream("a frog")]
    assert count(admin, index_name) == 0
    streamed = "".join([c async for c in model.astream("a frog")])
    assert streamed == await llm.ainvoke("a frog")
    assert llm.calls == 2


@pytest.mark.parametrize("kind", ["chat", "llm"])
async def test_a_stream_stopped_early_writes_nothing(
    async_cache: AsyncElasticsearchCache,
    admin: Elasticsearch,
    index_name: str,
    kind: str,
) -> None:
    source = (
        ToolChatModel(cache=async_cache)
        if kind == "chat"
        else StreamingLLM(cache=async_cache)
    )
    model = cache_streams(source)
    stream: AsyncIterator[Any] = model.astream("a frog")
    async with aclosing(stream):  # type: ignore[type-var]
        async for _ in stream:
            break
    async for _ in model.astream("a frog"):
        break
    assert count(admin, index_name) == 0
    [c async for c in model.astream("a frog")]
    assert source.calls == 3
    assert count(admin, index_name) == 1


async def test_model_cache_false_turns_caching_off(
    async_cache: AsyncElasticsearchCache,
    admin: Elasticsearch,
    index_name: str,
    global_cache: None,
) -> None:
    set_llm_cache(async_cache)
    answers = Answers(ANSWER, ANSWER)
    model = cache_streams(GenericFakeChatModel(messages=answers, cache=False))
    [c async for c in model.astream(QUESTION)]
    [c async for c in model.astream(QUESTION)]
    assert answers.calls == 2
    assert count(admin, index_name) == 0


async def test_which_cache_argument_then_model_then_global(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    global_cache: None,
) -> None:
    names = {k: f"{index_name}-{k}" for k in ("argument", "model", "global")}
    caches = {
        k: AsyncElasticsearchCache(name, client=async_client)
        for k, name in names.items()
    }
    set_llm_cache(caches["global"])
    for question, model in (
        ("q1", cache_streams(ToolChatModel(), cache=caches["argument"])),
        ("q2", cache_streams(ToolChatModel(cache=caches["model"]))),
        ("q3", cache_streams(ToolChatModel())),
    ):
        [c async for c in model.astream(question)]
        # The returned model's invoke uses the same cache as its streams.
        await model.ainvoke(question)
        assert model.calls == 1
    assert {k: count(admin, name) for k, name in names.items()} == {
        "argument": 1,
        "model": 1,
        "global": 1,
    }


async def test_a_hit_does_not_take_the_rate_limiter(
    async_cache: AsyncElasticsearchCache,
) -> None:
    limiter = CountingLimiter()
    plain = ToolChatModel(cache=async_cache, rate_limiter=limiter)
    model = cache_streams(plain)
    [c async for c in model.astream(QUESTION)]
    assert limiter.acquired == 1
    [c async for c in model.astream(QUESTION)]
    await model.ainvoke(QUESTION)
    assert limiter.acquired == 1
    assert plain.calls == 1


async def test_invoke_through_the_streaming_path_is_cached_once(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    """A model with ``streaming=True`` invokes through ``_stream``: LangChain
    caches that call itself, and the stream then hits it."""
    plain = ToolChatModel(cache=async_cache, streaming=True)
    model = cache_streams(plain)
    invoked = await model.ainvoke(QUESTION)
    streamed = join([c async for c in model.astream(QUESTION)])
    assert plain.calls == 1
    assert streamed.content == invoked.content
    assert count(admin, index_name) == 1
