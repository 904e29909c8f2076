"""Input that Elasticsearch would refuse, or that would break later, refused early.

Pure rules of `_common`, checked without a server; tests/_async/test_input_rules.py
proves against the real node that each limit is where Elasticsearch puts it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    AsyncElasticsearchSemanticCache,
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
)
from langchain_es_cache._common.documents import (
    build_llm_document,
    dump_generations,
    format_time,
    is_expired,
    parse_generations,
)
from langchain_es_cache._common.prompts import prompt_text
from langchain_es_cache._common.queries import (
    clear_query,
    fresh_filter,
    knn_similarity,
    purge_query,
)
from langchain_es_cache._common.validation import (
    MAX_TTL,
    metadata_fields,
    validate_metadata,
    validate_store_keys,
    validate_store_pairs,
    validate_ttl,
)
from tests.models import CountingEmbeddings

URL = "http://127.0.0.1:1"  # nothing listens: a request would fail, not pass
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
HUNDRED_YEARS = timedelta(days=36525)
CLASSES = [
    ElasticsearchCache,
    AsyncElasticsearchCache,
    ElasticsearchSemanticCache,
    AsyncElasticsearchSemanticCache,
    ElasticsearchEmbeddingsCache,
    AsyncElasticsearchEmbeddingsCache,
]


def make(cls: Any, **kwargs: Any) -> Any:
    """A cache of class `cls` that could never reach a server."""
    if "Semantic" in cls.__name__:
        return cls("cache", CountingEmbeddings(), es_url=URL, **kwargs)
    return cls("cache", es_url=URL, **kwargs)


def nested(levels: int, leaf: Any = 1) -> dict[str, Any]:
    """`leaf` `levels` keys below the top: ``{"k1": {"k2": ... leaf}}``."""
    value: dict[str, Any] = {f"k{levels}": leaf}
    for level in range(levels - 1, 0, -1):
        value = {f"k{level}": value}
    return value


# --- metadata (item 10) -------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "rule"),
    [
        ({"": 1}, "must not be empty or blank"),
        ({" ": 1}, "must not be empty or blank"),
        ({"\t\n": 1}, "must not be empty or blank"),
        ({".": 1}, "empty or blank part"),
        ({"..": 1}, "empty or blank part"),
        ({"a..b": 1}, "empty or blank part"),
        ({".a": 1}, "empty or blank part"),
        ({"a.": 1}, "empty or blank part"),
        ({"a. .b": 1}, "empty or blank part"),
        ({"team": {"": 1}}, "must not be empty or blank: metadata.team: ''"),
        ({"s": "a" * 32767}, "32767 bytes in UTF-8"),
        ({"s": ["ok", "é" * 16384]}, "32768 bytes in UTF-8"),
        ({"n": 2**63}, "outside Elasticsearch's long range"),
        ({"n": -(2**63) - 1}, "outside Elasticsearch's long range"),
        ({"f": 3.5e38}, "beyond float32's range"),
        ({"f": [-1e39]}, "beyond float32's range"),
        ({"m": [1, "a"]}, "metadata.m mixes number and string"),
        ({"m": ["a", 1]}, "metadata.m mixes number and string"),
        ({"m": [True, 1]}, "mixes boolean and number"),
        ({"m": ["a", False]}, "mixes boolean and string"),
        ({"m": [{"a": 1}, 1]}, "metadata.m holds both objects and integer values"),
        ({"m": [1, {"a": 1}]}, "holds both objects"),
        ({"m": [{"a": 1}, {"a": "x"}]}, "metadata.m.a mixes number and string"),
        ({"m": [[1], ["x"]]}, "mixes number and string"),
        ({"a": 1, "a.b": 2}, "metadata.a holds both objects"),
        ({"a.b": 1, "a": {"b": "x"}}, "metadata.a.b mixes"),
        ({"m": [1, 1e19]}, "mixes integers and decimal numbers"),
        ({"m": [1, 1.5]}, "mixes integers and decimal numbers"),
        (nested(20), "metadata.k1.k2.+k19 nests too deep"),
        (nested(19, {}), "nests too deep"),
        ({".".join(f"k{i}" for i in range(20)): 1}, "nests too deep"),
        ({"k1.k2": nested(18)}, "nests too deep"),
    ],
)
def test_metadata_elasticsearch_refuses(metadata: dict[str, Any], rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        validate_metadata(metadata)


@pytest.mark.parametrize(
    "metadata",
    [
        {"e ": 1, "\u00a0x": 1, "_id": "not the document's", "a.b.c": 1},
        {"s": "a" * 32766, "u": "é" * 16383, "list": ["x", "y" * 32766]},
        {"n": [2**63 - 1, -(2**63)], "f": [3.4028234e38, -3.4028234e38, 1e-50]},
        {"decimals": [1.0, 1.5, -(2.0**63)], "rev": [1e30, 2.5]},
        {"m": [None, "a", []], "o": [{"a": 1}, {"b": "x"}, None], "e": {}},
        {"same": {"path": 1}, "same.path": 2},
        nested(19),
        nested(18, {}),
        {".".join(f"k{i}" for i in range(19)): True},
    ],
)
def test_metadata_just_inside_the_limits(metadata: dict[str, Any]) -> None:
    assert validate_metadata(metadata) == json.loads(json.dumps(metadata))


def test_metadata_fields_count_as_elasticsearch_maps_them() -> None:
    fields = metadata_fields(
        {"a.b": 1, "a": {"c": [{"d": "x"}, {"e": True}]}, "z": None, "y": []}
    )
    assert sorted(".".join(path) for path in fields) == [
        "a",
        "a.b",
        "a.c",
        "a.c.d",
        "a.c.e",
    ]


# Each class's own mapping fields, from the node (see the async test): the LLM
# cache 7 (metadata itself included), the semantic 8, the embeddings cache 6 and
# two per string (text with a keyword sub-field).
FIELD_ROOM = {
    "ElasticsearchCache": (993, 993),
    "ElasticsearchSemanticCache": (992, 992),
    "ElasticsearchEmbeddingsCache": (994, 497),
}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("value", [1, "s"], ids=["numbers", "strings"])
def test_metadata_fields_within_the_index_limit(cls: Any, value: object) -> None:
    numbers, strings = FIELD_ROOM[cls.__name__.removeprefix("Async")]
    room = numbers if value == 1 else strings
    make(cls, metadata={f"f{i}": value for i in range(room)})
    with pytest.raises(ValueError, match=r"index\.mapping\.total_fields\.limit"):
        make(cls, metadata={f"f{i}": value for i in range(room + 1)})
    # An object is a field too.
    with pytest.raises(ValueError, match="total_fields"):
        make(cls, metadata={"o": {f"f{i}": value for i in range(room)}})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_construction_applies_the_metadata_rules(cls: Any) -> None:
    with pytest.raises(ValueError, match="empty or blank part"):
        make(cls, metadata={"a..b": 1})
    with pytest.raises(ValueError, match="mixes number and string"):
        make(cls, metadata={"m": [1, "a"]})


# --- namespaces (item 10) -----------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_namespace_must_fit_a_keyword(cls: Any) -> None:
    make(cls, namespace="n" * 32766)
    make(cls, namespace="€" * 10922)  # 32766 bytes
    with pytest.raises(ValueError, match="namespace is 32767 bytes in UTF-8"):
        make(cls, namespace="n" * 32767)
    with pytest.raises(ValueError, match="namespace is 32769 bytes"):
        make(cls, namespace="€" * 10923)


# --- ttl and older_than (item 11) --------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "rule"),
    [
        (timedelta.max, "at most 100 years"),
        (float("inf"), "at most 100 years"),
        (1e20, "at most 100 years"),
        (10**30, "at most 100 years"),
        (HUNDRED_YEARS.total_seconds() + 1, "at most 100 years"),
        (HUNDRED_YEARS + timedelta(microseconds=1), "at most 100 years"),
        (float("nan"), "a number of seconds, not NaN"),
        (float("-inf"), "positive"),
        (timedelta.min, "positive"),
    ],
)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_ttl_out_of_range_is_refused(cls: Any, ttl: object, rule: str) -> None:
    with pytest.raises(ValueError, match=f"^ttl must be {rule}"):
        make(cls, ttl=ttl)


def test_ttl_up_to_a_hundred_years() -> None:
    assert HUNDRED_YEARS == MAX_TTL
    assert validate_ttl(36525 * 86400) == MAX_TTL
    assert validate_ttl(MAX_TTL) == MAX_TTL
    # The arithmetic of lookups and purges stays in range for such a ttl.
    cutoff = NOW - MAX_TTL
    assert is_expired({"timestamp": format_time(cutoff)}, MAX_TTL, NOW) is False
    purge_query(None, cutoff)


@pytest.mark.parametrize(
    "older_than", [timedelta.max, float("inf"), 1e20, float("nan"), 0]
)
def test_clear_older_than_is_bounded_like_ttl(older_than: object) -> None:
    with pytest.raises(ValueError, match="older_than must"):
        clear_query({"older_than": older_than}, namespace=None, now=NOW)


# --- clear(metadata=...) (items 2 and 10) -------------------------------------


@pytest.mark.parametrize(
    ("metadata", "error", "message"),
    [
        ({}, ValueError, "would delete every entry of the namespace"),
        ({"team": {}}, ValueError, "empty dict at metadata.team"),
        ({"a": {"b": {}}, "c": 1}, ValueError, "empty dict at metadata.a.b"),
        (
            {"tags": ["a", "b"]},
            TypeError,
            "cannot match metadata.tags = \\['a', 'b'\\]",
        ),
        ({"tags": []}, TypeError, "cannot match metadata.tags"),
        ({"team": None}, TypeError, "cannot match metadata.team = None"),
        ({"a": {"b": None}}, TypeError, "cannot match metadata.a.b"),
        ({"a..b": 1}, ValueError, "empty or blank part"),
        ({"s": "x" * 32767}, ValueError, "32767 bytes"),
        ({"n": 2**64}, ValueError, "long range"),
        ([("team", "x")], ValueError, "must be a dict"),
    ],
)
def test_clear_metadata_filter_that_cannot_match_as_given(
    metadata: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        clear_query({"metadata": metadata}, namespace="ns", now=NOW)


def test_clear_metadata_filter_terms() -> None:
    query = clear_query(
        {"metadata": {"team": "search", "a": {"b": 1, "c.d": True}, "f": 0.5}},
        namespace="ns",
        now=NOW,
    )
    assert query["bool"]["filter"] == [
        {"term": {"namespace": "ns"}},
        {"term": {"metadata.team": "search"}},
        {"term": {"metadata.a.b": 1}},
        {"term": {"metadata.a.c.d": True}},
        {"term": {"metadata.f": 0.5}},
    ]


# --- chat prompts with tool calls (item 4) ------------------------------------


def agent(
    city: str = "Paris", call_id: str = "call_1", tool: str = "get_weather"
) -> str:
    """A serialized agent conversation, as LangChain hands it to a cache."""
    return dumps(
        [
            HumanMessage("What is the weather like?"),
            AIMessage(
                "",
                tool_calls=[{"name": tool, "args": {"city": city}, "id": call_id}],
            ),
            ToolMessage("Sunny, 21 °C", tool_call_id=call_id, name=tool),
        ]
    )


def test_prompt_text_carries_tool_calls_and_results() -> None:
    text = prompt_text(agent())
    assert '"name": "get_weather"' in text and '"city": "Paris"' in text
    assert 'tool tool_call_id: "call_1"' in text
    assert 'tool name: "get_weather"' in text
    variants = [
        agent(),
        agent(city="Rome"),
        agent(call_id="call_2"),
        agent(tool="get_forecast"),
    ]
    assert len({prompt_text(prompt) for prompt in variants}) == len(variants)


def test_prompt_text_leaves_message_ids_out() -> None:
    # Run ids say nothing of the meaning; LangChain drops them from prompts too.
    first = [HumanMessage("Hi", id="h1"), AIMessage("Hello", id="run-1")]
    second = [HumanMessage("Hi", id="h2"), AIMessage("Hello", id="run-2")]
    assert prompt_text(dumps(first)) == prompt_text(dumps(second))
    assert prompt_text(dumps(first)) == "Hi\nai: Hello"


# --- similarity threshold rounding (item 5) -----------------------------------


@pytest.mark.parametrize("dims", [1, 3, 256, 1536, 4096])
def test_knn_similarity_allows_float32_rounding(dims: int) -> None:
    tolerance = (dims + 32) * 2**-24
    assert knn_similarity(1.0, dims) == 1.0 - tolerance
    assert knn_similarity(0.8, dims) == 0.8 - tolerance
    assert knn_similarity(-1.0, dims) == -1.0  # never below -1


# --- embeddings store arguments (item 12) -------------------------------------


def test_store_pairs_from_any_iterable() -> None:
    keys, values = ["a", "b"], [b"1", b"2"]
    expected = [("a", b"1"), ("b", b"2")]
    assert validate_store_pairs(zip(keys, values, strict=True)) == expected
    assert validate_store_pairs(iter(expected)) == expected
    assert validate_store_pairs([["a", b"1"], ("b", b"2")]) == expected
    assert validate_store_pairs(()) == []
    assert validate_store_keys(k for k in keys) == keys
    assert validate_store_keys({"a": 1, "b": 2}) == keys


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ("ab", "key_value_pairs must be an iterable .*not str"),
        (5, "key_value_pairs must be an iterable .*not int"),
        ([("a", b"1", b"2")], "must hold \\(key, value\\) pairs, not tuple"),
        ({"a": b"1"}, "must hold \\(key, value\\) pairs, not str"),
        ((p for p in [("a", b"1"), ("b", "2")]), "values must be bytes"),
    ],
)
def test_store_pairs_refused(pairs: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        validate_store_pairs(pairs)


@pytest.mark.parametrize("keys", ["abc", b"abc", 3, None])
def test_store_keys_refused(keys: object) -> None:
    with pytest.raises(TypeError, match="keys must be an iterable"):
        validate_store_keys(keys)


# --- generations that could never be read back (item 13) ---------------------


@pytest.mark.parametrize(
    ("generation", "where", "type_name"),
    [
        (
            Generation(text="x", generation_info={"created": NOW}),
            "return_val\\[1\\].generation_info\\['created'\\]",
            "datetime.datetime",
        ),
        (
            Generation(text="x", generation_info={"ids": [1, {"s": {1, 2}}]}),
            "return_val\\[1\\].generation_info\\['ids'\\]\\[1\\]\\['s'\\]",
            "builtins.set",
        ),
        (
            ChatGeneration(message=AIMessage("x", response_metadata={"at": NOW})),
            "return_val\\[1\\].message.response_metadata\\['at'\\]",
            "datetime.datetime",
        ),
    ],
)
def test_unserializable_generation_is_refused(
    generation: Generation, where: str, type_name: str
) -> None:
    with pytest.raises(TypeError, match=f"{where} is a {type_name}, which"):
        build_llm_document(
            "p",
            "l",
            [Generation(text="fine"), generation],
            store_input=True,
            store_input_params=True,
            metadata=None,
            now=NOW,
        )


def read_back(generations: list[Generation]) -> list[Generation] | None:
    source = {"llm_output": dump_generations(generations)}
    return parse_generations(source, index="i", key="k")


def test_marker_text_in_data_is_not_mistaken_for_a_marker() -> None:
    generations = [
        Generation(
            text='{"type": "not_implemented"}',
            generation_info={"not_implemented": {"type": "not_implemented"}},
        )
    ]
    assert read_back(generations) == generations
    shaped = [
        Generation(
            text="x",
            generation_info={"a": {"lc": 1, "type": "not_implemented", "id": ["x"]}},
        )
    ]
    if "__lc_escaped__" in dumps(shaped[0]):
        # langchain-core escapes such a dict: the caller's data, read back as is.
        assert read_back(shaped) == shaped
    else:
        # Older releases write it as is, and loads would take it for a marker.
        with pytest.raises(TypeError, match="generation_info\\['a'\\] is a x"):
            read_back(shaped)


# --- yield_keys under a ttl (item 7) -----------------------------------------


@pytest.mark.parametrize(
    ("now", "cutoff"),
    [
        (NOW, "2026-01-02T02:04:05.000+00:00"),
        (NOW + timedelta(microseconds=1), "2026-01-02T02:04:05.001+00:00"),
        (NOW + timedelta(microseconds=999), "2026-01-02T02:04:05.001+00:00"),
        (NOW + timedelta(microseconds=1000), "2026-01-02T02:04:05.001+00:00"),
    ],
)
def test_fresh_filter_agrees_with_is_expired(now: datetime, cutoff: str) -> None:
    ttl = timedelta(hours=1)
    assert fresh_filter(ttl, now) == {"range": {"timestamp": {"gte": cutoff}}}
    at_cutoff = {"timestamp": cutoff}
    just_before = {
        "timestamp": format_time(
            datetime.fromisoformat(cutoff) - timedelta(milliseconds=1)
        )
    }
    assert not is_expired(at_cutoff, ttl, now)
    assert is_expired(just_before, ttl, now)
