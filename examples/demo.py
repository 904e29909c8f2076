"""Ask a chat model the same question twice, with its answers cached in Elasticsearch.

Then stream the question twice through ``cache_streams``, and run a LangGraph
graph twice, its node's result cached in Elasticsearch. Run with
``nox -s demo``: it starts a local Elasticsearch (or uses ``ES_URL``) and
removes what it created. The model is langchain-core's fake chat model with
simulated latency (0.5 s a call, 0.05 s a streamed character), as no LLM
service is reachable here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict

from elasticsearch import Elasticsearch
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy

from langchain_es_cache import (
    AsyncElasticsearchCache,
    ElasticsearchCache,
    ElasticsearchGraphCache,
    cache_streams,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from utils import es_server

QUESTION = "What is the capital of France?"
LATENCY = 0.5
STREAMED_ANSWER = "Paris, on the Seine."
CHARACTER_LATENCY = 0.05


def model() -> FakeListChatModel:
    return FakeListChatModel(responses=["Paris."], sleep=LATENCY)


def report(label: str, hit: bool, seconds: float, answer: object) -> None:
    verdict = "hit " if hit else "miss"
    print(f"  {label:<8} {verdict}  {seconds * 1000:7.1f} ms  -> {answer}")


def sync_part(settings: dict[str, Any], index: str) -> None:
    print(f"ElasticsearchCache, model.invoke(), index {index!r}")
    with ElasticsearchCache(index, **settings) as cache:
        set_llm_cache(cache)
        chat = model()
        for label in ("first", "second"):
            hits, start = cache.stats().hits, time.perf_counter()
            answer = chat.invoke(QUESTION)
            seconds = time.perf_counter() - start
            report(label, cache.stats().hits > hits, seconds, answer.content)
    set_llm_cache(None)


async def async_part(settings: dict[str, Any], index: str) -> None:
    print(f"AsyncElasticsearchCache, await model.ainvoke(), index {index!r}")
    async with AsyncElasticsearchCache(index, **settings) as cache:
        set_llm_cache(cache)
        chat = model()
        for label in ("first", "second"):
            hits, start = cache.stats().hits, time.perf_counter()
            answer = await chat.ainvoke(QUESTION)
            seconds = time.perf_counter() - start
            report(label, cache.stats().hits > hits, seconds, answer.content)
    set_llm_cache(None)


def stream_part(settings: dict[str, Any], index: str) -> None:
    print(f"cache_streams(model).stream(), ElasticsearchCache, index {index!r}")
    print(f"  (the model streams a character every {CHARACTER_LATENCY} s)")
    with ElasticsearchCache(index, **settings) as cache:
        chat = FakeListChatModel(
            responses=[STREAMED_ANSWER], sleep=CHARACTER_LATENCY, cache=cache
        )
        streaming = cache_streams(chat)
        for label in ("first", "second"):
            hits, start = cache.stats().hits, time.perf_counter()
            chunks, first_chunk = [], None
            for chunk in streaming.stream(QUESTION):
                if first_chunk is None:
                    first_chunk = time.perf_counter() - start
                chunks.append(chunk.content)
            seconds = time.perf_counter() - start
            verdict = "hit " if cache.stats().hits > hits else "miss"
            print(
                f"  {label:<8} {verdict}  {seconds * 1000:7.1f} ms, first chunk after "
                f"{(first_chunk or 0) * 1000:.1f} ms, {len(chunks)} chunks:"
            )
            print(f"           {'|'.join(str(c) for c in chunks)}")
        answer = chat.invoke(QUESTION)
        verdict = "hit " if cache.stats().hits > hits + 1 else "miss"
        print(
            f"  then model.invoke() on the plain model: {verdict} -> {answer.content}"
        )


class Chat(TypedDict):
    question: str
    answer: AIMessage | None


NODE_RUNS: list[str] = []


def ask(state: Chat) -> dict[str, Any]:
    """The graph's node: asks the (slow) model; LangGraph caches what it returns."""
    NODE_RUNS.append(state["question"])
    return {"answer": model().invoke(state["question"])}


def graph_part(settings: dict[str, Any], index: str) -> None:
    print(f"ElasticsearchGraphCache, graph.invoke(), index {index!r}")
    with ElasticsearchGraphCache(index, **settings) as cache:
        builder = StateGraph(Chat)
        builder.add_node("ask", ask, cache_policy=CachePolicy(ttl=3600))
        builder.add_edge(START, "ask")
        graph = builder.compile(cache=cache)
        for label in ("first", "second"):
            runs, start = len(NODE_RUNS), time.perf_counter()
            state = graph.invoke({"question": QUESTION, "answer": None})
            seconds = time.perf_counter() - start
            ran = len(NODE_RUNS) > runs
            verdict = "node ran      " if ran else "from the cache"
            print(
                f"  {label:<8} {verdict}  {seconds * 1000:7.1f} ms  "
                f"-> {state['answer'].content}"
            )


def show_document(admin: Elasticsearch, index: str) -> None:
    hit = admin.search(index=index, size=1, query={"match_all": {}})["hits"]["hits"][0]
    source = hit["_source"]
    output = [json.loads(item) for item in source.pop("llm_output")]
    message = output[0]["kwargs"]["message"]["kwargs"]
    print(f"\nThe stored document {hit['_id'][:16]}... in {index!r}:")
    print(f"  timestamp   {source['timestamp']}")
    print(f"  llm_input   {source['llm_input'][:90]}...")
    print(f"  llm_params  {source['llm_params'][:90]}...")
    print(f"  metadata    {source.get('metadata')}")
    print(f"  llm_output  [ChatGeneration: AIMessage(content={message['content']!r})]")


def main() -> None:
    run = uuid.uuid4().hex[:8]
    sync_index, async_index = f"demo-sync-{run}", f"demo-async-{run}"
    stream_index = f"demo-stream-{run}"
    graph_index = f"demo-graph-{run}"
    with es_server.cluster() as conn:
        settings = conn.cache_settings()
        admin = Elasticsearch(conn.url, **conn.client_auth())
        try:
            print(f"Elasticsearch at {conn.url}; the model takes {LATENCY} s a call.\n")
            sync_part(settings, sync_index)
            print()
            asyncio.run(async_part(settings, async_index))
            admin.indices.refresh(index=async_index)
            show_document(admin, async_index)
            print()
            stream_part(settings, stream_index)
            print()
            graph_part(settings, graph_index)
        finally:
            indices = (sync_index, async_index, stream_index, graph_index)
            for index in indices:
                admin.indices.delete(index=index, ignore_unavailable=True)
            print(f"\nRemoved the demo indices {', '.join(map(repr, indices))}.")
            admin.close()


if __name__ == "__main__":
    main()
