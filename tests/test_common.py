"""The shared pure logic (keys, documents, queries, validation): no server needed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.outputs import Generation

from langchain_es_cache._common.documents import build_llm_document, parse_generations
from langchain_es_cache._common.keys import cache_key, llm_key
from langchain_es_cache._common.lifecycle import (
    NOT_PREPARED_TEMPLATE,
    guarded_action,
    search_met_starting_shard,
)
from langchain_es_cache._common.queries import clear_query
from langchain_es_cache._common.responses import newest_source
from langchain_es_cache._common.validation import validate_index_name, validate_metadata


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "empty"),
        (".", "'.'"),
        ("..", "'..'"),
        ("Cache", "lowercase"),
        ("-cache", "start with"),
        ("_cache", "start with"),
        ("+cache", "start with"),
        *[(f"a{c}b", "contain") for c in '\\/*?"<>|,#: '],
        ("a" * 256, "255 bytes"),
        ("é" * 128, "255 bytes"),
        ("bad\ud800", "valid Unicode"),
    ],
)
def test_illegal_index_names(name: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        validate_index_name(name)


@pytest.mark.parametrize("name", ["llm-cache", "a" * 255, "é" * 127, "x.y_z+1", "..."])
def test_legal_index_names(name: str) -> None:
    assert validate_index_name(name) == name


def test_index_name_type() -> None:
    with pytest.raises(TypeError, match="index_name must be a str"):
        validate_index_name(b"cache")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (["a"], "must be a dict"),
        ("text", "must be a dict"),
        ({"when": datetime.now()}, "JSON-serializable"),
        ({"x": float("nan")}, "JSON-serializable"),
        ({"s": {1, 2}}, "JSON-serializable"),
    ],
)
def test_bad_metadata(metadata: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_metadata(metadata)


def test_metadata_is_copied() -> None:
    original = {"tags": ["a"]}
    copy = validate_metadata(original)
    original["tags"].append("b")
    assert copy == {"tags": ["a"]}


def test_keys_are_unambiguous_and_stable() -> None:
    assert llm_key("ab", "c") != llm_key("a", "bc")
    assert llm_key("", "x") != llm_key("x", "")
    assert cache_key("a", "b") != cache_key("a", "b", "")
    assert llm_key("\ud800", "x") != llm_key("\ud801", "x")
    # The scheme is a promise: these values must never change.
    assert llm_key("prompt", "llm") == (
        "753497fb876a1a61c3f95a061afb771f3f04bf1c6ec819c01da56cb7f491856f"
    )


def test_keys_are_stable_across_processes() -> None:
    code = (
        "from langchain_es_cache._common.keys import llm_key; print(llm_key('p', 'l'))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert other.stdout.strip() == llm_key("p", "l")


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))


def test_build_document_fields() -> None:
    generations = [Generation(text="a"), Generation(text="b")]
    doc = build_llm_document(
        "p",
        "l",
        generations,
        store_input=True,
        store_input_params=True,
        metadata={"k": 1},
        now=NOW,
    )
    assert doc == {
        "llm_output": [dumps(g) for g in generations],
        "timestamp": "2026-01-02T01:04:05.000+00:00",
        "llm_string_hash": cache_key("l"),
        "llm_params": "l",
        "llm_input": "p",
        "metadata": {"k": 1},
    }
    bare = build_llm_document(
        "p",
        "l",
        generations,
        store_input=False,
        store_input_params=False,
        metadata=None,
        now=NOW,
    )
    assert set(bare) == {"llm_output", "timestamp", "llm_string_hash"}


@pytest.mark.parametrize(
    ("return_val", "error"),
    [([], ValueError), (["text"], TypeError), ([{"text": "x"}], TypeError)],
)
def test_build_document_rejects_bad_return_val(
    return_val: list[Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match="return_val"):
        build_llm_document(
            "p",
            "l",
            return_val,
            store_input=True,
            store_input_params=True,
            metadata=None,
            now=NOW,
        )


@pytest.mark.parametrize("name", ["llm_string", "metadata", "older_than"])
def test_clear_filter_of_none_is_refused(name: str) -> None:
    with pytest.raises(TypeError, match=f"clear\\({name}=None\\)"):
        clear_query({name: None}, namespace=None, now=NOW)


def test_build_document_rejects_naive_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_llm_document(
            "p",
            "l",
            [Generation(text="x")],
            store_input=True,
            store_input_params=True,
            metadata=None,
            now=datetime(2026, 1, 1),
        )


def test_newest_source() -> None:
    def doc(ts: str | None, found: bool = True) -> dict[str, Any]:
        source = {"llm_output": [ts]} if ts is None else {"timestamp": ts}
        return {"found": found, "_source": source}

    docs = [
        doc("2026-01-01T00:00:00+00:00"),
        doc("2026-01-01T02:00:00+01:00"),  # same instant as 01:00 UTC: newest
        doc("2026-01-01T00:30:00+00:00"),
        doc("2027-01-01T00:00:00+00:00", found=False),
    ]
    assert newest_source(docs) == docs[1]["_source"]
    assert newest_source([]) is None


def test_parse_generations_round_trip() -> None:
    generations = [Generation(text="x", generation_info={"n": 1})]
    source = {"llm_output": [dumps(g) for g in generations]}
    assert parse_generations(source, index="i", key="k") == generations
    assert parse_generations(None, index="i", key="k") is None
    bad = {"llm_output": [json.dumps({"lc": 1})]}
    assert parse_generations(bad, index="i", key="k") is None


def test_guarded_action_names_the_template_for_the_cache_fields_only() -> None:
    """Index actions name the not-prepared template for the cache's fields the
    document holds; other actions pass through as elasticsearch-py expands them."""
    action = {
        "_op_type": "index",
        "_index": "c",
        "_id": "1",
        "_source": {"a": 1, "x": 2},
    }
    header, body = guarded_action(action, "c", ["a", "b"])
    assert header == {
        "index": {
            "_index": "c",
            "_id": "1",
            "dynamic_templates": {"a": NOT_PREPARED_TEMPLATE},
        }
    }
    assert body == {"a": 1, "x": 2}
    delete = {"_op_type": "delete", "_index": "c", "_id": "1"}
    assert guarded_action(delete, "c", ["a"]) == (
        {"delete": {"_index": "c", "_id": "1"}},
        None,
    )


def test_search_met_starting_shard() -> None:
    """The two shapes the node gives (all shards failed: a 503's error object;
    some failed: a partial answer), and failures that are not a starting shard."""
    starting = {"type": "no_shard_available_action_exception", "reason": None}
    other = {"type": "query_shard_exception", "reason": "bad query"}
    error = {
        "type": "search_phase_execution_exception",
        "failed_shards": [{"shard": 0, "index": "i", "reason": starting}],
    }
    partial = {"_shards": {"total": 2, "failed": 1, "failures": [{"reason": starting}]}}
    assert search_met_starting_shard(error)
    assert search_met_starting_shard(partial)
    assert not search_met_starting_shard(None)
    assert not search_met_starting_shard({"_shards": {"total": 1, "failed": 0}})
    assert not search_met_starting_shard(
        {**error, "failed_shards": [{"reason": other}]}
    )
    assert not search_met_starting_shard({"_shards": {"failures": [{"reason": other}]}})
