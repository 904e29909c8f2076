"""The semantic cache's classes from the other side, and the text it embeds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_es_cache import (
    AsyncElasticsearchSemanticCache,
    ElasticsearchSemanticCache,
)
from langchain_es_cache._common.prompts import prompt_text
from tests.models import CountingChatModel, TableEmbeddings
from utils import es_server

FRANCE = "What is the capital of France?"
PARAPHRASE = "Tell me France's capital city."
VECTORS = {FRANCE: [1.0, 0.0], PARAPHRASE: [0.9, 0.1]}


async def test_async_class_refuses_sync_calls(es_conn: es_server.Connection) -> None:
    async with AsyncElasticsearch(es_conn.url, **es_conn.client_auth()) as client:
        cache = AsyncElasticsearchSemanticCache(
            "semantic", TableEmbeddings(VECTORS), client=client
        )
        model = CountingChatModel(cache=cache)
        with pytest.raises(TypeError, match="Use ElasticsearchSemanticCache"):
            model.invoke(FRANCE)
        calls: list[Callable[[], object]] = [
            lambda: cache.lookup("p", "l"),
            lambda: cache.clear(),
        ]
        for call in calls:
            with pytest.raises(TypeError, match="is async-only"):
                call()
        assert model.calls == 0


async def test_sync_class_serves_async_calls(
    admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchSemanticCache(
        index_name, TableEmbeddings(VECTORS), client=admin
    )
    model = CountingChatModel(cache=cache)
    first = await model.ainvoke(FRANCE)
    second = await model.ainvoke(PARAPHRASE)
    assert model.calls == 1
    assert second.content == first.content


def test_prompt_text_of_chat_messages() -> None:
    assert prompt_text(dumps([HumanMessage(FRANCE)])) == FRANCE
    messages = [
        SystemMessage("Answer briefly."),
        HumanMessage(FRANCE),
        AIMessage("Paris."),
        HumanMessage(
            content=[
                {"type": "text", "text": "And this one?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ]
        ),
    ]
    assert prompt_text(dumps(messages)) == (
        "system: Answer briefly.\n"
        f"{FRANCE}\n"
        "ai: Paris.\n"
        "And this one?\n"
        '{"image_url": {"url": "https://x/y.png"}, "type": "image_url"}'
    )


@pytest.mark.parametrize(
    "prompt",
    [
        "plain text prompt",
        "",
        "[{not json",
        '[{"a": 1}]',
        '[{"lc": 1, "kwargs": {"content": 5}}]',
        "[]",
        '{"lc": 1}',
    ],
)
def test_prompt_text_leaves_other_prompts_alone(prompt: str) -> None:
    assert prompt_text(prompt) == prompt
