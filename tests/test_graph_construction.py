"""Construction of the graph cache classes: the other classes' rules, and serde.

No request is sent while constructing, so none of these needs a server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

# LangGraph is optional: without it (as with langchain-core 0.3.0, which LangGraph
# cannot run with), these tests are skipped and test_graph_optional.py runs.
pytest.importorskip("langgraph.cache.base", reason="LangGraph is not installed")
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langchain_es_cache import AsyncElasticsearchGraphCache, ElasticsearchGraphCache

CLASSES = [ElasticsearchGraphCache, AsyncElasticsearchGraphCache]
URL = "http://127.0.0.1:1"
SECRET = "s3cr3t-Pa55"


@pytest.fixture(params=CLASSES, ids=lambda c: c.__name__)
def cls(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "no connection given: pass client="),
        ({"es_url": URL, "es_cloud_id": "x:eQ=="}, ValueError, "not both"),
        ({"es_url": URL, "es_user": "u"}, ValueError, "given together"),
        (
            {
                "es_url": URL,
                "es_api_key": SECRET,
                "es_user": "u",
                "es_password": SECRET,
            },
            ValueError,
            "es_api_key or es_user and es_password, not both",
        ),
        ({"es_url": ""}, ValueError, "es_url must not be empty"),
        ({"es_url": URL, "index_name": "Bad"}, ValueError, "lowercase"),
        ({"es_url": URL, "index_name": "a:b"}, ValueError, "must not contain ':'"),
        ({"es_url": URL, "metadata": [1]}, ValueError, "must be a dict"),
        ({"es_url": URL, "on_error": "ignore"}, ValueError, "on_error must be"),
        ({"es_url": URL, "clock": 3}, TypeError, "clock must be callable"),
        ({"es_url": URL, "serde": object()}, TypeError, "dumps_typed and loads_typed"),
        ({"es_url": URL, "namespace": "n"}, TypeError, "unexpected keyword"),
        ({"es_url": URL, "ttl": 60}, TypeError, "unexpected keyword"),
    ],
)
def test_bad_arguments(
    cls: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    arguments: dict[str, Any] = {"index_name": "cache", **kwargs}
    with pytest.raises(error, match=message) as info:
        cls(**arguments)
    assert SECRET not in str(info.value)


def test_client_rules(cls: Any) -> None:
    own, other = (
        (AsyncElasticsearch, Elasticsearch)
        if cls is AsyncElasticsearchGraphCache
        else (Elasticsearch, AsyncElasticsearch)
    )
    with pytest.raises(ValueError, match="client or connection settings, not both"):
        cls("cache", client=own(URL), es_api_key=SECRET)
    with pytest.raises(TypeError, match="client must be an elasticsearch"):
        cls("cache", client=other(URL))
    with pytest.raises(TypeError):
        cls("cache", None)


def test_serde_defaults_to_langgraphs(cls: Any) -> None:
    cache = cls("cache", es_url=URL)
    assert isinstance(cache, BaseCache)
    assert cache.serde is BaseCache.serde
    own = JsonPlusSerializer()
    assert cls("cache", es_url=URL, serde=own).serde is own
    assert repr(cache) == f"{cls.__name__}(index_name='cache')"


def test_secrets_stay_out_of_repr_and_logs(
    cls: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        cache = cls("cache", es_url=URL, es_api_key=SECRET, on_error="warn")
        assert SECRET not in repr(cache)
        if cls is AsyncElasticsearchGraphCache:
            assert asyncio.run(cache.aget([(("n",), "k")])) == {}
            asyncio.run(cache.aclose())
        else:
            assert cache.get([(("n",), "k")]) == {}
            cache.close()
    assert "cache get on index 'cache' failed" in caplog.text
    assert SECRET not in caplog.text
