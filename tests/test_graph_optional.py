"""LangGraph is optional: the package works without it; the graph classes say so."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

WITHOUT_LANGGRAPH = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class NoLangGraph(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "langgraph" or name.startswith("langgraph."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoLangGraph())
    """
)

CHECKS = textwrap.dedent(
    """
    import langchain_es_cache
    from langchain_es_cache import *  # noqa: F403
    assert "langgraph" not in sys.modules
    cache = ElasticsearchCache("cache", es_url="http://127.0.0.1:1")
    print("imported", cache)
    assert "ElasticsearchGraphCache" in dir(langchain_es_cache)
    for name in ("ElasticsearchGraphCache", "AsyncElasticsearchGraphCache"):
        try:
            getattr(langchain_es_cache, name)
        except ImportError as exc:
            print(f"{name}: {type(exc).__name__}: {exc}")
        else:
            raise AssertionError(f"{name} imported without LangGraph")
    try:
        from langchain_es_cache._sync.graph import ElasticsearchGraphCache
    except ImportError as exc:
        print(f"module: {exc}")
    try:
        langchain_es_cache.NoSuchName
    except AttributeError as exc:
        print(f"AttributeError: {exc}")
    """
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_langgraph_the_graph_classes_say_what_to_install() -> None:
    result = run(WITHOUT_LANGGRAPH + CHECKS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "imported ElasticsearchCache(index_name='cache')"
    hint = "Install it with: pip install 'langchain-es-cache[langgraph]'"
    assert lines[1].startswith(
        "ElasticsearchGraphCache: ImportError: ElasticsearchGraphCache needs "
        "LangGraph, which is not installed"
    )
    assert lines[2].startswith(
        "AsyncElasticsearchGraphCache: ImportError: AsyncElasticsearchGraphCache "
        "needs LangGraph"
    )
    assert lines[3].startswith("module: ElasticsearchGraphCache needs LangGraph")
    assert all(line.endswith(hint) for line in lines[1:4])
    assert lines[4] == (
        "AttributeError: module 'langchain_es_cache' has no attribute 'NoSuchName'"
    )


def test_with_langgraph_the_classes_are_langgraph_caches() -> None:
    pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")
    result = run(
        "from langgraph.cache.base import BaseCache\n"
        "from langchain_es_cache import *\n"
        "from langchain_es_cache import ElasticsearchGraphCache as S, "
        "AsyncElasticsearchGraphCache as A\n"
        "print(issubclass(S, BaseCache), issubclass(A, BaseCache))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
