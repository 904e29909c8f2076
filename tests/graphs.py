"""A LangGraph graph with a cached node, importable by tests and their subprocesses.

The node's cache namespace holds its module and name, so a second process
that imports this module builds a graph whose entries are the same.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy

RUNS: list[int] = []
"""The inputs the node ran for, in this process."""


class State(TypedDict):
    x: int
    y: int


def square(state: State) -> dict[str, int]:
    RUNS.append(state["x"])
    return {"y": state["x"] ** 2}


def build(cache: Any, ttl: int | None = None) -> Any:
    """The one-node graph, compiled with `cache`."""
    builder = StateGraph(State)
    builder.add_node("square", square, cache_policy=CachePolicy(ttl=ttl))
    builder.add_edge(START, "square")
    return builder.compile(cache=cache)
