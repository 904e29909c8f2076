# Generated from tests/_async/test_streaming_graph.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""A LangGraph graph streaming a model through ``cache_streams``, on the real node.

Apart from tests/_sync/test_streaming.py so that a run without LangGraph (the
minimum-versions row of the compatibility matrix) skips only this.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("langgraph.graph", reason="LangGraph is not installed")

from elasticsearch import Elasticsearch
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_es_cache import ElasticsearchCache, cache_streams
from tests.models import Answers

QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital and largest city of France."


@pytest.fixture
def cache(client: Elasticsearch, index_name: str) -> Iterator[ElasticsearchCache]:
    yield ElasticsearchCache(index_name, client=client)


def respond_node(model: Any) -> Any:
    def respond(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        answer = None
        for chunk in model.stream(state["messages"], config):
            answer = chunk if answer is None else answer + chunk
        return {"messages": [answer]}

    return respond


def test_langgraph_streaming_the_model_hits_on_its_second_run(
    cache: ElasticsearchCache,
) -> None:
    answers = Answers(ANSWER, "a second answer")
    model = cache_streams(GenericFakeChatModel(messages=answers, cache=cache))
    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond_node(model))
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    graph = builder.compile()
    runs: list[list[tuple[Any, Any]]] = []
    for _ in range(2):
        # A fixed id: older langchain-core keys message ids (invoke's too), and
        # LangGraph gives a message without one a new random id every run.
        inputs: Any = {"messages": [HumanMessage(QUESTION, id="question-1")]}
        runs.append(
            [
                (chunk, meta)
                for chunk, meta in graph.stream(inputs, stream_mode="messages")
            ]
        )
    assert answers.calls == 1
    for run in runs:
        assert len(run) > 1
        assert {meta["langgraph_node"] for _, meta in run} == {"respond"}
        assert "".join(str(chunk.content) for chunk, _ in run) == ANSWER
