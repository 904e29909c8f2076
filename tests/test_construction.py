"""Construction: validation, connection rules and secrets, for both classes.

No request is sent while constructing, so none of these needs a server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from langchain_es_cache import (
    AsyncElasticsearchCache,
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
)
from tests.models import CountingEmbeddings

CLASSES = [ElasticsearchCache, AsyncElasticsearchCache]
URL = "http://127.0.0.1:1"
SECRET = "s3cr3t-Pa55"


@pytest.fixture(params=CLASSES, ids=lambda c: c.__name__)
def cls(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "no connection given: pass client="),
        ({"es_url": URL, "es_cloud_id": "x:eQ=="}, "es_url or es_cloud_id, not both"),
        (
            {"es_url": URL, "es_user": "u"},
            "es_user and es_password must be given together",
        ),
        (
            {"es_url": URL, "es_password": SECRET},
            "es_user and es_password must be given together",
        ),
        (
            {
                "es_url": URL,
                "es_api_key": SECRET,
                "es_user": "u",
                "es_password": SECRET,
            },
            "es_api_key or es_user and es_password, not both",
        ),
        ({"es_api_key": SECRET}, "no connection given"),
        ({"es_url": ""}, "es_url must not be empty"),
    ],
)
def test_connection_rules(cls: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        cls("cache", **kwargs)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "extra",
    [{"es_url": URL}, {"es_api_key": SECRET}, {"es_user": "u", "es_password": SECRET}],
)
def test_client_with_credentials_is_refused(cls: Any, extra: dict[str, Any]) -> None:
    client_cls = AsyncElasticsearch if cls is AsyncElasticsearchCache else Elasticsearch
    client = client_cls(URL)
    with pytest.raises(
        ValueError, match="client or connection settings, not both"
    ) as info:
        cls("cache", client=client, **extra)
    assert SECRET not in str(info.value)


def test_client_of_the_wrong_kind(cls: Any) -> None:
    wrong = (
        Elasticsearch(URL)
        if cls is AsyncElasticsearchCache
        else AsyncElasticsearch(URL)
    )
    with pytest.raises(TypeError, match="client must be an elasticsearch"):
        cls("cache", client=wrong)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"index_name": "Bad"}, ValueError, "lowercase"),
        ({"index_name": 3}, TypeError, "index_name must be a str"),
        ({"metadata": {"t": object()}}, ValueError, "JSON-serializable"),
        ({"metadata": [1]}, ValueError, "must be a dict"),
        ({"store_input": "yes"}, TypeError, "store_input must be a bool"),
        ({"store_input_params": 1}, TypeError, "store_input_params must be a bool"),
        ({"refresh": "now"}, ValueError, "refresh must be"),
        ({"es_url": 9200}, TypeError, "es_url must be a str"),
    ],
)
def test_bad_arguments(
    cls: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    arguments: dict[str, Any] = {"index_name": "cache", "es_url": URL, **kwargs}
    with pytest.raises(error, match=message):
        cls(**arguments)


def test_secrets_stay_out_of_repr_and_logs(
    cls: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for auth in ({"es_api_key": SECRET}, {"es_user": "u", "es_password": SECRET}):
            cache = cls("cache", es_url=URL, on_error="warn", **auth)
            assert SECRET not in repr(cache) and SECRET not in str(cache)
            assert repr(cache) == f"{cls.__name__}(index_name='cache')"
            # A failing request (nothing listens on URL) logs: never the secret.
            if cls is AsyncElasticsearchCache:
                asyncio.run(cache.alookup("p", "l"))
                asyncio.run(cache.aclose())
            else:
                cache.lookup("p", "l")
                cache.close()
    assert "cache lookup on index 'cache' failed" in caplog.text
    assert SECRET not in caplog.text


def test_positional_arguments_beyond_index_name_are_refused(cls: Any) -> None:
    with pytest.raises(TypeError):
        cls("cache", True)


@pytest.mark.parametrize(
    "factory",
    [
        lambda kw: ElasticsearchCache("cache", es_url=URL, **kw),
        lambda kw: AsyncElasticsearchCache("cache", es_url=URL, **kw),
        lambda kw: ElasticsearchEmbeddingsCache("cache", es_url=URL, **kw),
        lambda kw: ElasticsearchSemanticCache(
            "cache", CountingEmbeddings(), es_url=URL, **kw
        ),
    ],
    ids=["exact", "async-exact", "embeddings", "semantic"],
)
def test_unknown_keyword_is_refused_by_name(factory: Any) -> None:
    """The shared options arrive as keywords (`AsyncEntryOptions`): a misspelt
    one is a TypeError naming it, not silently ignored."""
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*es_passwrd"):
        factory({"es_passwrd": SECRET})


def test_graph_cache_refuses_the_entry_options() -> None:
    """The graph cache has no cache-wide namespace or ttl (LangGraph passes
    them per call): they are refused, not ignored."""
    graph = pytest.importorskip("langchain_es_cache._sync.graph")
    for option in ({"namespace": "n"}, {"ttl": 60}):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            graph.ElasticsearchGraphCache("cache", es_url=URL, **option)
