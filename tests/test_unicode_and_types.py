"""Bad input caught before any request: wrong types, and lone surrogates.

Elasticsearch refuses a document holding a lone surrogate (invalid UTF-8), so
metadata and namespaces with one are refused at construction, while prompts and
parameters with one are cached: the key keeps every code point, the stored
copies escape them.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.outputs import Generation

from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache
from langchain_es_cache._common.documents import (
    build_llm_document,
    storable_text,
    utc_now,
)
from langchain_es_cache._common.keys import llm_key
from langchain_es_cache._common.validation import validate_metadata

CLASSES = [ElasticsearchCache, AsyncElasticsearchCache]
URL = "http://127.0.0.1:1"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metadata": {"k": "a\ud800"}}, "metadata must be valid Unicode"),
        ({"metadata": {"\udc00": 1}}, "metadata must be valid Unicode"),
        ({"namespace": "n\ud800"}, "namespace must be valid Unicode"),
    ],
)
def test_lone_surrogates_refused_at_construction(
    cls: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cls("cache", es_url=URL, **kwargs)


def test_valid_unicode_metadata_is_kept() -> None:
    metadata = {"a": "é€😀", "b": "x\\ud800"}
    assert validate_metadata(metadata) == metadata


def test_stored_prompt_escapes_lone_surrogates_but_key_keeps_them() -> None:
    document = build_llm_document(
        "x\ud800y",
        "llm\udfff",
        [Generation(text="t")],
        store_input=True,
        store_input_params=True,
        metadata=None,
        now=utc_now(),
    )
    assert document["llm_input"] == "x\\ud800y"
    assert document["llm_params"] == "llm\\udfff"
    assert llm_key("x\ud800y", "l") != llm_key("x\\ud800y", "l")
    assert storable_text("plain é😀") == "plain é😀"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, "l", [Generation(text="t")]), "prompt must be a str, not int"),
        ((b"p", "l", [Generation(text="t")]), "prompt must be a str, not bytes"),
        (("p", None, [Generation(text="t")]), "llm_string must be a str, not NoneType"),
        (("p", "l", None), "return_val must be a list of Generation objects"),
        (("p", "l", "text"), "return_val must be a list of Generation objects"),
        (("p", "l", Generation(text="t")), "return_val must be a list of Generation"),
        (("p", "l", ["text"]), "return_val must hold Generation objects, not str"),
    ],
)
def test_wrong_argument_types_are_type_errors(
    args: tuple[Any, Any, Any], message: str
) -> None:
    cache = ElasticsearchCache("cache", es_url=URL)
    with pytest.raises(TypeError, match=message):
        cache.update(*args)
    if not isinstance(args[0], str) or not isinstance(args[1], str):
        with pytest.raises(TypeError, match=message):
            cache.lookup(args[0], args[1])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_clock_must_be_callable(cls: Any) -> None:
    with pytest.raises(TypeError, match="clock must be callable, not int"):
        cls("cache", es_url=URL, clock=1)
