# Generated from tests/_async/test_cache.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The LLM cache against the real node, through its API and through LangChain."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_es_cache import ElasticsearchCache
from langchain_es_cache._common.keys import llm_key
from tests.models import CountingChatModel, CountingLLM
from tests.twins import gather

LLM_STRING = "model=counting-1 temperature=0"


@pytest.fixture
def cache(client: Elasticsearch, index_name: str) -> Iterator[ElasticsearchCache]:
    yield ElasticsearchCache(index_name, client=client)


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


def test_changing_the_returned_mapping_changes_nothing(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """`mapping` is a copy: the index is created with the cache's own types."""
    cache = ElasticsearchCache(index_name, client=client)
    expected = cache.mapping
    changed = cache.mapping
    changed["mappings"]["properties"]["timestamp"]["type"] = "keyword"
    changed["mappings"]["properties"]["metadata"]["enabled"] = False
    other = ElasticsearchCache(f"{index_name}-other", client=client)
    assert cache.mapping == other.mapping == expected
    assert expected["mappings"]["properties"]["timestamp"] == {"type": "date"}
    cache.update("p", LLM_STRING, [Generation(text="a")])
    assert_cache_mapping(admin, index_name, expected)


@pytest.mark.parametrize("auth", ["api_key", "basic"])
def test_invoke_twice_calls_the_model_once(
    request: pytest.FixtureRequest, index_name: str, auth: str, global_cache: None
) -> None:
    settings = request.getfixturevalue(f"{auth}_settings")
    with ElasticsearchCache(index_name, **settings) as cache:
        set_llm_cache(cache)
        model = CountingChatModel()
        first = model.invoke("What is the capital of France?")
        second = model.invoke("What is the capital of France?")
    assert model.calls == 1
    assert second.content == first.content == "Paris is the capital of France."
    assert second.response_metadata == first.response_metadata


def test_tokens_saved_counts_the_usage_of_cached_answers(
    cache: ElasticsearchCache,
) -> None:
    chat = CountingChatModel(cache=cache, n=2)
    for _ in range(3):
        chat.invoke("What is the capital of France?")
    assert chat.calls == 1
    # Two hits of two generations, 13 tokens each (the model's usage_metadata).
    assert cache.stats().tokens_saved == 2 * 2 * 13
    completion = CountingLLM(cache=cache)
    completion.invoke("plain text")
    completion.invoke("plain text")
    assert completion.calls == 1
    assert cache.stats().hits == 3
    assert cache.stats().tokens_saved == 52  # plain text carries no usage


def test_model_cache_argument(
    cache: ElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    model = CountingChatModel(cache=cache)
    model.invoke("hello")
    answer = model.invoke("hello")
    assert model.calls == 1
    assert answer.content == model.answer
    assert count(admin, index_name) == 1


def test_lookup_returns_a_list_of_the_stored_generations(
    cache: ElasticsearchCache,
) -> None:
    assert cache.lookup("prompt", LLM_STRING) is None
    generations = [
        Generation(text="one"),
        Generation(text="two", generation_info={"a": 1}),
    ]
    cache.update("prompt", LLM_STRING, generations)
    found = cache.lookup("prompt", LLM_STRING)
    assert type(found) is list
    assert found == generations
    assert cache.lookup("prompt", LLM_STRING + " ") is None
    assert cache.lookup("prompt ", LLM_STRING) is None


def test_batch_of_prompts(cache: ElasticsearchCache) -> None:
    model = CountingChatModel(cache=cache)
    prompts: list[LanguageModelInput] = [f"question {i}" for i in range(5)]
    first = model.batch(prompts)
    second = model.batch(prompts)
    assert model.calls == 5
    assert [m.content for m in second] == [m.content for m in first]


def test_n_generations_keep_content_and_metadata(
    cache: ElasticsearchCache,
) -> None:
    model = CountingChatModel(cache=cache, n=3)
    messages: list[list[BaseMessage]] = [[HumanMessage("Name three colours")]]
    first = model.generate(messages)
    second = model.generate(messages)
    assert model.calls == 1
    fresh, cached = first.generations[0], second.generations[0]
    assert len(cached) == 3
    for a, b in zip(fresh, cached, strict=True):
        assert isinstance(a, ChatGeneration)
        assert isinstance(b, ChatGeneration)
        assert b.message.content == a.message.content
        assert b.message.response_metadata == a.message.response_metadata
        assert b.generation_info == a.generation_info


def test_plain_llm(cache: ElasticsearchCache) -> None:
    llm = CountingLLM(cache=cache)
    first = llm.invoke("Once upon a time")
    second = llm.invoke("Once upon a time")
    assert llm.calls == 1
    assert second == first == "completion of 'Once upon a time'"


def test_model_parameters_make_separate_entries(
    cache: ElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    cold = CountingChatModel(cache=cache, temperature=0.0)
    warm = CountingChatModel(cache=cache, temperature=0.9, answer="Lyon?")
    assert (cold.invoke("capital?")).content == cold.answer
    assert (warm.invoke("capital?")).content == "Lyon?"
    assert (cold.invoke("capital?")).content == cold.answer
    assert (cold.calls, warm.calls) == (1, 1)
    assert count(admin, index_name) == 2


def test_document_fields(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchCache(
        index_name, client=client, metadata={"project": "demo", "tags": ["a"]}
    )
    cache.update("the prompt", LLM_STRING, [Generation(text="answer")])
    source = stored(admin, index_name, "the prompt", LLM_STRING)
    assert source["metadata"] == {"project": "demo", "tags": ["a"]}
    assert source["llm_input"] == "the prompt"
    assert source["llm_params"] == LLM_STRING
    assert [json.loads(s)["kwargs"]["text"] for s in source["llm_output"]] == ["answer"]
    written = datetime.fromisoformat(source["timestamp"])
    assert written.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - written) < timedelta(minutes=5)
    assert_cache_mapping(admin, index_name, cache.mapping)


def test_store_flags_off_keep_prompt_and_params_out(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchCache(
        index_name, client=client, store_input=False, store_input_params=False
    )
    prompt, params = "secret-prompt-7f3a", "secret-params-9c1d"
    cache.update(prompt, params, [Generation(text="public answer")])
    source = stored(admin, index_name, prompt, params)
    # A SHA-256 of the parameters stays, for clear(llm_string=...).
    assert set(source) == {"llm_output", "timestamp", "llm_string_hash"}
    raw = json.dumps(source)
    assert prompt not in raw and params not in raw
    assert cache.lookup(prompt, params) == [Generation(text="public answer")]


def test_write_is_visible_without_refresh(
    cache: ElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    cache.update("p", LLM_STRING, [Generation(text="v1")])
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    cache.update("p", LLM_STRING, [Generation(text="v2")])
    assert cache.lookup("p", LLM_STRING) == [Generation(text="v2")]


def test_alias_with_moving_write_index_returns_newest(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    alias, first, second = index_name, f"{index_name}-000001", f"{index_name}-000002"
    for index, write in ((first, True), (second, False)):
        admin.indices.create(index=index, settings={"refresh_interval": "-1"})
        admin.indices.put_alias(index=index, name=alias, is_write_index=write)
    cache = ElasticsearchCache(alias, client=client)
    assert cache.is_alias() is True
    cache.update("p", LLM_STRING, [Generation(text="old")])
    assert cache.lookup("p", LLM_STRING) == [Generation(text="old")]
    # The write index moves to the second index.
    admin.indices.update_aliases(
        actions=[
            {"add": {"index": first, "alias": alias, "is_write_index": False}},
            {"add": {"index": second, "alias": alias, "is_write_index": True}},
        ]
    )
    cache.update("p", LLM_STRING, [Generation(text="new")])
    assert admin.exists(index=first, id=llm_key("p", LLM_STRING))
    assert admin.exists(index=second, id=llm_key("p", LLM_STRING))
    assert cache.lookup("p", LLM_STRING) == [Generation(text="new")]
    assert cache.lookup("other", LLM_STRING) is None
    assert not admin.indices.exists(index=f"{alias}-000003")
    for index in (first, second):
        assert_cache_mapping(admin, index, cache.mapping)


def test_write_through_deleted_alias_never_creates_an_index(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    backing = f"{index_name}-000001"
    admin.indices.create(index=backing)
    admin.indices.put_alias(index=backing, name=index_name, is_write_index=True)
    cache = ElasticsearchCache(index_name, client=client)
    cache.update("p", LLM_STRING, [Generation(text="x")])
    admin.indices.delete_alias(index=backing, name=index_name)
    with pytest.raises(Exception, match="alias"):
        cache.update("p", LLM_STRING, [Generation(text="y")])
    assert not admin.indices.exists(index=index_name)


def test_clear_index(
    cache: ElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    cache.clear()  # nothing there yet: no error
    for i in range(25):
        cache.update(f"p{i}", LLM_STRING, [Generation(text=str(i))])
    cache.clear()
    for i in range(25):
        assert cache.lookup(f"p{i}", LLM_STRING) is None
    assert count(admin, index_name) == 0
    cache.update("p0", LLM_STRING, [Generation(text="again")])
    assert cache.lookup("p0", LLM_STRING) == [Generation(text="again")]


def test_clear_alias_clears_every_index(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first, second = f"{index_name}-a", f"{index_name}-b"
    admin.indices.create(index=first)
    admin.indices.create(index=second)
    admin.indices.put_alias(index=first, name=index_name, is_write_index=False)
    admin.indices.put_alias(index=second, name=index_name, is_write_index=True)
    cache = ElasticsearchCache(index_name, client=client)
    assert cache.is_alias() is True
    old = cache.build_document("old", LLM_STRING, [Generation(text="o")])
    admin.index(index=first, id=llm_key("old", LLM_STRING), document=old)
    cache.update("new", LLM_STRING, [Generation(text="n")])
    assert cache.lookup("old", LLM_STRING) == [Generation(text="o")]
    cache.clear()
    assert cache.lookup("old", LLM_STRING) is None
    assert cache.lookup("new", LLM_STRING) is None
    assert count(admin, first) == count(admin, second) == 0


def test_concurrent_first_use_of_a_fresh_index(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    caches = [ElasticsearchCache(index_name, client=client) for _ in range(50)]

    def writer(i: int) -> Any:
        return lambda: caches[i].update(f"p{i}", LLM_STRING, [Generation(text=str(i))])

    gather([writer(i) for i in range(50)])
    assert list(admin.indices.get(index=f"{index_name}*")) == [index_name]
    assert_cache_mapping(admin, index_name, caches[0].mapping)
    for i in range(50):
        assert caches[-1 - i].lookup(f"p{i}", LLM_STRING) == [Generation(text=str(i))]


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
def test_unusual_prompts(
    cache: ElasticsearchCache,
    admin: Elasticsearch,
    index_name: str,
    prompt: str,
) -> None:
    model = CountingChatModel(cache=cache)
    model.invoke(prompt)
    model.invoke(prompt)
    assert model.calls == 1
    cache.update(prompt, LLM_STRING, [Generation(text=prompt)])
    assert cache.lookup(prompt, LLM_STRING) == [Generation(text=prompt)]
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
def test_corrupt_document_is_a_miss_with_a_warning(
    cache: ElasticsearchCache,
    admin: Elasticsearch,
    index_name: str,
    source: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache.is_alias()
    admin.index(index=index_name, id=llm_key("p", LLM_STRING), document=source)
    with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
        assert cache.lookup("p", LLM_STRING) is None
    assert "unreadable cache entry" in caplog.text
    model = CountingChatModel(cache=cache)
    assert (model.invoke("p")).content == model.answer


def test_lookup_on_missing_index_is_a_miss_and_creates_nothing(
    cache: ElasticsearchCache, admin: Elasticsearch, index_name: str
) -> None:
    assert cache.lookup("p", LLM_STRING) is None
    assert not admin.indices.exists(index=index_name)


def test_client_passed_in_is_never_closed(
    client: Elasticsearch, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[bool] = []
    monkeypatch.setattr(client.transport, "close", lambda: closed.append(True))
    headers_before = dict(client._headers)
    with ElasticsearchCache(index_name, client=client) as cache:
        cache.update("p", LLM_STRING, [Generation(text="x")])
    cache.close()
    assert closed == []
    assert dict(client._headers) == headers_before
    assert (client.cluster.health())["status"] in ("green", "yellow")


def test_own_client_is_closed(
    api_key_settings: dict[str, Any], index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ElasticsearchCache(index_name, **api_key_settings)
    transport = cache._client.transport
    close = transport.close
    closed: list[bool] = []

    def spy() -> None:
        closed.append(True)
        close()

    monkeypatch.setattr(transport, "close", spy)
    with cache:
        cache.update("p", LLM_STRING, [Generation(text="x")])
        assert closed == []
    assert closed == [True]


def test_conflicting_mapping_is_a_clear_error(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    admin.indices.create(
        index=index_name, mappings={"properties": {"llm_output": {"type": "long"}}}
    )
    cache = ElasticsearchCache(index_name, client=client)
    with pytest.raises(ValueError, match=f"index '{index_name}' has a mapping that"):
        cache.update("p", LLM_STRING, [Generation(text="x")])
    assert count(admin, index_name) == 0
