"""The LLM cache against the real node, through its API and through LangChain."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_es_cache import AsyncElasticsearchCache
from langchain_es_cache._common.keys import llm_key
from tests.models import CountingChatModel, CountingLLM
from tests.twins import async_gather

LLM_STRING = "model=counting-1 temperature=0"


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


def stored(admin: Elasticsearch, index: str, prompt: str, llm_string: str) -> Any:
    return admin.get(index=index, id=llm_key(prompt, llm_string))["_source"]


def assert_cache_mapping(admin: Elasticsearch, index: str, expected: Any) -> None:
    """The index holds the cache's fields with the cache's types."""
    actual = admin.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    for name, spec in expected["mappings"]["properties"].items():
        if spec["type"] == "object":
            assert actual[name].get("type", "object") == "object", name
        else:
            assert actual[name] == spec, name


def count(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


async def test_changing_the_returned_mapping_changes_nothing(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """`mapping` is a copy: the index is created with the cache's own types."""
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    expected = cache.mapping
    changed = cache.mapping
    changed["mappings"]["properties"]["timestamp"]["type"] = "keyword"
    changed["mappings"]["properties"]["metadata"]["enabled"] = False
    other = AsyncElasticsearchCache(f"{index_name}-other", client=async_client)
    assert cache.mapping == other.mapping == expected
    assert expected["mappings"]["properties"]["timestamp"] == {"type": "date"}
    await cache.aupdate("p", LLM_STRING, [Generation(text="a")])
    assert_cache_mapping(admin, index_name, expected)


@pytest.mark.parametrize("auth", ["api_key", "basic"])
async def test_invoke_twice_calls_the_model_once(
    request: pytest.FixtureRequest, index_name: str, auth: str, global_cache: None
) -> None:
    settings = request.getfixturevalue(f"{auth}_settings")
    async with AsyncElasticsearchCache(index_name, **settings) as cache:
        set_llm_cache(cache)
        model = CountingChatModel()
        first = await model.ainvoke("What is the capital of France?")
        second = await model.ainvoke("What is the capital of France?")
    assert model.calls == 1
    assert second.content == first.content == "Paris is the capital of France."
    assert second.response_metadata == first.response_metadata


async def test_tokens_saved_counts_the_usage_of_cached_answers(
    async_cache: AsyncElasticsearchCache,
) -> None:
    chat = CountingChatModel(cache=async_cache, n=2)
    for _ in range(3):
        await chat.ainvoke("What is the capital of France?")
    assert chat.calls == 1
    # Two hits of two generations, 13 tokens each (the model's usage_metadata).
    assert async_cache.stats().tokens_saved == 2 * 2 * 13
    completion = CountingLLM(cache=async_cache)
    await completion.ainvoke("plain text")
    await completion.ainvoke("plain text")
    assert completion.calls == 1
    assert async_cache.stats().hits == 3
    assert async_cache.stats().tokens_saved == 52  # plain text carries no usage


async def test_model_cache_argument(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    model = CountingChatModel(cache=async_cache)
    await model.ainvoke("hello")
    answer = await model.ainvoke("hello")
    assert model.calls == 1
    assert answer.content == model.answer
    assert count(admin, index_name) == 1


async def test_lookup_returns_a_list_of_the_stored_generations(
    async_cache: AsyncElasticsearchCache,
) -> None:
    assert await async_cache.alookup("prompt", LLM_STRING) is None
    generations = [
        Generation(text="one"),
        Generation(text="two", generation_info={"a": 1}),
    ]
    await async_cache.aupdate("prompt", LLM_STRING, generations)
    found = await async_cache.alookup("prompt", LLM_STRING)
    assert type(found) is list
    assert found == generations
    assert await async_cache.alookup("prompt", LLM_STRING + " ") is None
    assert await async_cache.alookup("prompt ", LLM_STRING) is None


async def test_batch_of_prompts(async_cache: AsyncElasticsearchCache) -> None:
    model = CountingChatModel(cache=async_cache)
    prompts: list[LanguageModelInput] = [f"question {i}" for i in range(5)]
    first = await model.abatch(prompts)
    second = await model.abatch(prompts)
    assert model.calls == 5
    assert [m.content for m in second] == [m.content for m in first]


async def test_n_generations_keep_content_and_metadata(
    async_cache: AsyncElasticsearchCache,
) -> None:
    model = CountingChatModel(cache=async_cache, n=3)
    messages: list[list[BaseMessage]] = [[HumanMessage("Name three colours")]]
    first = await model.agenerate(messages)
    second = await model.agenerate(messages)
    assert model.calls == 1
    fresh, cached = first.generations[0], second.generations[0]
    assert len(cached) == 3
    for a, b in zip(fresh, cached, strict=True):
        assert isinstance(a, ChatGeneration)
        assert isinstance(b, ChatGeneration)
        assert b.message.content == a.message.content
        assert b.message.response_metadata == a.message.response_metadata
        assert b.generation_info == a.generation_info


async def test_plain_llm(async_cache: AsyncElasticsearchCache) -> None:
    llm = CountingLLM(cache=async_cache)
    first = await llm.ainvoke("Once upon a time")
    second = await llm.ainvoke("Once upon a time")
    assert llm.calls == 1
    assert second == first == "completion of 'Once upon a time'"


async def test_model_parameters_make_separate_entries(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    cold = CountingChatModel(cache=async_cache, temperature=0.0)
    warm = CountingChatModel(cache=async_cache, temperature=0.9, answer="Lyon?")
    assert (await cold.ainvoke("capital?")).content == cold.answer
    assert (await warm.ainvoke("capital?")).content == "Lyon?"
    assert (await cold.ainvoke("capital?")).content == cold.answer
    assert (cold.calls, warm.calls) == (1, 1)
    assert count(admin, index_name) == 2


async def test_document_fields(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = AsyncElasticsearchCache(
        index_name, client=async_client, metadata={"project": "demo", "tags": ["a"]}
    )
    await cache.aupdate("the prompt", LLM_STRING, [Generation(text="answer")])
    source = stored(admin, index_name, "the prompt", LLM_STRING)
    assert source["metadata"] == {"project": "demo", "tags": ["a"]}
    assert source["llm_input"] == "the prompt"
    assert source["llm_params"] == LLM_STRING
    assert [json.loads(s)["kwargs"]["text"] for s in source["llm_output"]] == ["answer"]
    written = datetime.fromisoformat(source["timestamp"])
    assert written.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - written) < timedelta(minutes=5)
    assert_cache_mapping(admin, index_name, cache.mapping)


async def test_store_flags_off_keep_prompt_and_params_out(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = AsyncElasticsearchCache(
        index_name, client=async_client, store_input=False, store_input_params=False
    )
    prompt, params = "secret-prompt-7f3a", "secret-params-9c1d"
    await cache.aupdate(prompt, params, [Generation(text="public answer")])
    source = stored(admin, index_name, prompt, params)
    # A SHA-256 of the parameters stays, for clear(llm_string=...).
    assert set(source) == {"llm_output", "timestamp", "llm_string_hash"}
    raw = json.dumps(source)
    assert prompt not in raw and params not in raw
    assert await cache.alookup(prompt, params) == [Generation(text="public answer")]


async def test_write_is_visible_without_refresh(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    await async_cache.aupdate("p", LLM_STRING, [Generation(text="v1")])
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    await async_cache.aupdate("p", LLM_STRING, [Generation(text="v2")])
    assert await async_cache.alookup("p", LLM_STRING) == [Generation(text="v2")]


async def test_alias_with_moving_write_index_returns_newest(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    alias, first, second = index_name, f"{index_name}-000001", f"{index_name}-000002"
    for index, write in ((first, True), (second, False)):
        admin.indices.create(index=index, settings={"refresh_interval": "-1"})
        admin.indices.put_alias(index=index, name=alias, is_write_index=write)
    cache = AsyncElasticsearchCache(alias, client=async_client)
    assert await cache.is_alias() is True
    await cache.aupdate("p", LLM_STRING, [Generation(text="old")])
    assert await cache.alookup("p", LLM_STRING) == [Generation(text="old")]
    # The write index moves to the second index.
    admin.indices.update_aliases(
        actions=[
            {"add": {"index": first, "alias": alias, "is_write_index": False}},
            {"add": {"index": second, "alias": alias, "is_write_index": True}},
        ]
    )
    await cache.aupdate("p", LLM_STRING, [Generation(text="new")])
    assert admin.exists(index=first, id=llm_key("p", LLM_STRING))
    assert admin.exists(index=second, id=llm_key("p", LLM_STRING))
    assert await cache.alookup("p", LLM_STRING) == [Generation(text="new")]
    assert await cache.alookup("other", LLM_STRING) is None
    assert not admin.indices.exists(index=f"{alias}-000003")
    for index in (first, second):
        assert_cache_mapping(admin, index, cache.mapping)


async def test_write_through_deleted_alias_never_creates_an_index(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    backing = f"{index_name}-000001"
    admin.indices.create(index=backing)
    admin.indices.put_alias(index=backing, name=index_name, is_write_index=True)
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    await cache.aupdate("p", LLM_STRING, [Generation(text="x")])
    admin.indices.delete_alias(index=backing, name=index_name)
    with pytest.raises(Exception, match="alias"):
        await cache.aupdate("p", LLM_STRING, [Generation(text="y")])
    assert not admin.indices.exists(index=index_name)


async def test_clear_index(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    await async_cache.aclear()  # nothing there yet: no error
    for i in range(25):
        await async_cache.aupdate(f"p{i}", LLM_STRING, [Generation(text=str(i))])
    await async_cache.aclear()
    for i in range(25):
        assert await async_cache.alookup(f"p{i}", LLM_STRING) is None
    assert count(admin, index_name) == 0
    await async_cache.aupdate("p0", LLM_STRING, [Generation(text="again")])
    assert await async_cache.alookup("p0", LLM_STRING) == [Generation(text="again")]


async def test_clear_alias_clears_every_index(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first, second = f"{index_name}-a", f"{index_name}-b"
    admin.indices.create(index=first)
    admin.indices.create(index=second)
    admin.indices.put_alias(index=first, name=index_name, is_write_index=False)
    admin.indices.put_alias(index=second, name=index_name, is_write_index=True)
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    assert await cache.is_alias() is True
    old = cache.build_document("old", LLM_STRING, [Generation(text="o")])
    admin.index(index=first, id=llm_key("old", LLM_STRING), document=old)
    await cache.aupdate("new", LLM_STRING, [Generation(text="n")])
    assert await cache.alookup("old", LLM_STRING) == [Generation(text="o")]
    await cache.aclear()
    assert await cache.alookup("old", LLM_STRING) is None
    assert await cache.alookup("new", LLM_STRING) is None
    assert count(admin, first) == count(admin, second) == 0


async def test_concurrent_first_use_of_a_fresh_index(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    caches = [
        AsyncElasticsearchCache(index_name, client=async_client) for _ in range(50)
    ]

    def writer(i: int) -> Any:
        return lambda: caches[i].aupdate(f"p{i}", LLM_STRING, [Generation(text=str(i))])

    await async_gather([writer(i) for i in range(50)])
    assert list(admin.indices.get(index=f"{index_name}*")) == [index_name]
    assert_cache_mapping(admin, index_name, caches[0].mapping)
    for i in range(50):
        assert await caches[-1 - i].alookup(f"p{i}", LLM_STRING) == [
            Generation(text=str(i))
        ]


@pytest.mark.parametrize(
    "prompt",
    [
        "emoji 😀🚀👩‍👩‍👧",
        "中文 日本語 한국어",
        "nul \x00 inside \x00",
        "",
        "x" * (1024 * 1024),
    ],
    ids=["emoji", "cjk", "nul", "empty", "1mb"],
)
async def test_unusual_prompts(
    async_cache: AsyncElasticsearchCache,
    admin: Elasticsearch,
    index_name: str,
    prompt: str,
) -> None:
    model = CountingChatModel(cache=async_cache)
    await model.ainvoke(prompt)
    await model.ainvoke(prompt)
    assert model.calls == 1
    await async_cache.aupdate(prompt, LLM_STRING, [Generation(text=prompt)])
    assert await async_cache.alookup(prompt, LLM_STRING) == [Generation(text=prompt)]
    assert stored(admin, index_name, prompt, LLM_STRING)["llm_input"] == prompt


@pytest.mark.parametrize(
    "source",
    [
        {"llm_output": ["{not json"]},
        {"llm_output": "a string"},
        {"llm_output": []},
        {
            "llm_output": [
                json.dumps(
                    {
                        "lc": 1,
                        "type": "constructor",
                        "id": ["os", "system"],
                        "kwargs": {},
                    }
                )
            ]
        },
        {"something": "else"},
    ],
    ids=["bad-json", "not-a-list", "empty", "foreign-class", "no-output"],
)
async def test_corrupt_document_is_a_miss_with_a_warning(
    async_cache: AsyncElasticsearchCache,
    admin: Elasticsearch,
    index_name: str,
    source: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await async_cache.is_alias()
    admin.index(index=index_name, id=llm_key("p", LLM_STRING), document=source)
    with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
        assert await async_cache.alookup("p", LLM_STRING) is None
    assert "unreadable cache entry" in caplog.text
    model = CountingChatModel(cache=async_cache)
    assert (await model.ainvoke("p")).content == model.answer


async def test_lookup_on_missing_index_is_a_miss_and_creates_nothing(
    async_cache: AsyncElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    assert await async_cache.alookup("p", LLM_STRING) is None
    assert not admin.indices.exists(index=index_name)


async def test_client_passed_in_is_never_closed(
    async_client: AsyncElasticsearch, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[bool] = []
    monkeypatch.setattr(async_client.transport, "close", lambda: closed.append(True))
    headers_before = dict(async_client._headers)
    async with AsyncElasticsearchCache(index_name, client=async_client) as cache:
        await cache.aupdate("p", LLM_STRING, [Generation(text="x")])
    await cache.aclose()
    assert closed == []
    assert dict(async_client._headers) == headers_before
    assert (await async_client.cluster.health())["status"] in ("green", "yellow")


async def test_own_client_is_closed(
    api_key_settings: dict[str, Any], index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = AsyncElasticsearchCache(index_name, **api_key_settings)
    transport = cache._client.transport
    close = transport.close
    closed: list[bool] = []

    async def spy() -> None:
        closed.append(True)
        await close()

    monkeypatch.setattr(transport, "close", spy)
    async with cache:
        await cache.aupdate("p", LLM_STRING, [Generation(text="x")])
        assert closed == []
    assert closed == [True]


async def test_conflicting_mapping_is_a_clear_error(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    admin.indices.create(
        index=index_name, mappings={"properties": {"llm_output": {"type": "long"}}}
    )
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    with pytest.raises(ValueError, match=f"index '{index_name}' has a mapping that"):
        await cache.aupdate("p", LLM_STRING, [Generation(text="x")])
    assert count(admin, index_name) == 0
