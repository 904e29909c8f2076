"""Bad input, table-driven: each with its expected outcome, nothing half-written."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchCache,
    ElasticsearchCache,
    MappingConflictError,
)
from langchain_es_cache._common.keys import llm_key
from reliability.conftest import Recorder
from reliability.helpers import LLM, answer
from utils import es_server

URL = "http://127.0.0.1:1"
SECRET = "bad-input-s3cret"

# (id, constructor keyword arguments, expected exception, message fragment)
CONSTRUCTION: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("index: not a str", {"index_name": 7}, TypeError, "index_name must be a str"),
    ("index: empty", {"index_name": ""}, ValueError, "must not be empty"),
    ("index: '.'", {"index_name": "."}, ValueError, "must not be '.'"),
    ("index: '..'", {"index_name": ".."}, ValueError, "must not be '..'"),
    ("index: uppercase", {"index_name": "Cache"}, ValueError, "must be lowercase"),
    *(
        (
            f"index: starts with {c!r}",
            {"index_name": f"{c}cache"},
            ValueError,
            "must not start with",
        )
        for c in "-_+"
    ),
    *(
        (
            f"index: contains {c!r}",
            {"index_name": f"ca{c}che"},
            ValueError,
            "must not contain",
        )
        for c in '\\/*?"<>|,#: '
    ),
    ("index: 256 bytes", {"index_name": "a" * 256}, ValueError, "at most 255 bytes"),
    (
        "index: 128 x 'é' = 256 bytes",
        {"index_name": "é" * 128},
        ValueError,
        "at most 255 bytes",
    ),
    (
        "index: lone surrogate",
        {"index_name": "a\ud800"},
        ValueError,
        "must be valid Unicode",
    ),
    (
        "metadata: not a dict",
        {"metadata": ["a"]},
        ValueError,
        "metadata must be a dict",
    ),
    ("metadata: a str", {"metadata": "a=b"}, ValueError, "metadata must be a dict"),
    (
        "metadata: a set inside",
        {"metadata": {"a": {1}}},
        ValueError,
        "JSON-serializable",
    ),
    (
        "metadata: an object inside",
        {"metadata": {"a": object()}},
        ValueError,
        "JSON-serializable",
    ),
    (
        "metadata: NaN",
        {"metadata": {"a": float("nan")}},
        ValueError,
        "JSON-serializable",
    ),
    (
        "metadata: lone surrogate",
        {"metadata": {"a": "\udc80"}},
        ValueError,
        "valid Unicode",
    ),
    (
        "store_input: str",
        {"store_input": "yes"},
        TypeError,
        "store_input must be a bool",
    ),
    (
        "store_input_params: int",
        {"store_input_params": 1},
        TypeError,
        "store_input_params must be a bool",
    ),
    ("client: not a client", {"client": object(), "es_url": None}, TypeError, "client"),
    ("es_url: int", {"es_url": 9200}, TypeError, "es_url must be a str"),
    (
        "es_cloud_id: int",
        {"es_url": None, "es_cloud_id": 1},
        TypeError,
        "es_cloud_id must be a str",
    ),
    (
        "es_user: int",
        {"es_user": 1, "es_password": SECRET},
        TypeError,
        "es_user must be a str",
    ),
    (
        "es_password: bytes",
        {"es_user": "u", "es_password": SECRET.encode()},
        TypeError,
        "es_password must be a str",
    ),
    (
        "es_api_key: bytes",
        {"es_api_key": SECRET.encode()},
        TypeError,
        "es_api_key must be a str",
    ),
    ("namespace: int", {"namespace": 1}, TypeError, "namespace must be a str"),
    ("namespace: empty", {"namespace": ""}, ValueError, "namespace must not be empty"),
    ("namespace: lone surrogate", {"namespace": "\ud800"}, ValueError, "valid Unicode"),
    ("ttl: str", {"ttl": "60"}, TypeError, "ttl must be seconds or a timedelta"),
    ("ttl: bool", {"ttl": True}, TypeError, "ttl must be seconds or a timedelta"),
    ("ttl: negative", {"ttl": -1}, ValueError, "ttl must be positive"),
    ("on_error: unknown", {"on_error": "ignore"}, ValueError, "on_error must be"),
    ("refresh: str", {"refresh": "yes"}, ValueError, "refresh must be"),
    ("clock: not callable", {"clock": 5}, TypeError, "clock must be callable"),
    ("credentials: none at all", {"es_url": None}, ValueError, "no connection given"),
    (
        "credentials: url and cloud id",
        {"es_cloud_id": "x:eQ=="},
        ValueError,
        "not both",
    ),
    (
        "credentials: user without password",
        {"es_user": "u"},
        ValueError,
        "given together",
    ),
    (
        "credentials: password without user",
        {"es_password": SECRET},
        ValueError,
        "given together",
    ),
    (
        "credentials: api key and user+password",
        {"es_api_key": SECRET, "es_user": "u", "es_password": SECRET},
        ValueError,
        "not both",
    ),
    ("credentials: empty api key", {"es_api_key": ""}, ValueError, "must not be empty"),
    (
        "credentials: client and api key",
        {"client": Elasticsearch(URL), "es_url": None, "es_api_key": SECRET},
        ValueError,
        "not both",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [pytest.param(k, e, m, id=i) for i, k, e, m in CONSTRUCTION],
)
@pytest.mark.parametrize("cls", [ElasticsearchCache, AsyncElasticsearchCache])
def test_construction_refuses(
    cls: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every bad constructor argument is refused at construction, before any I/O."""
    arguments = {"index_name": "cache", "es_url": URL, **kwargs}
    if cls is AsyncElasticsearchCache and isinstance(
        arguments.get("client"), Elasticsearch
    ):
        arguments["client"] = AsyncElasticsearch(URL)
    with pytest.raises(error, match=message) as info:
        cls(arguments.pop("index_name"), **arguments)
    assert SECRET not in str(info.value)


def test_construction_table_reported(report: Recorder) -> None:
    """The construction table, as one report row."""
    report.row(
        "bad input: constructor arguments",
        f"{len(CONSTRUCTION)} bad inputs x 2 classes: every illegal index-name rule, "
        "metadata not a dict / not JSON / lone surrogate, a wrong type for every "
        "parameter, missing and ambiguous credentials",
        f"{2 * len(CONSTRUCTION)} cases, each a TypeError/ValueError at construction "
        "naming the parameter (no request sent, no secret in the message)",
        covers="test_construction_refuses",
    )


def count(admin: Elasticsearch, index: str) -> int:
    if not admin.indices.exists(index=index):
        return 0
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


def source(admin: Elasticsearch, index: str, prompt: str) -> dict[str, Any]:
    doc = admin.get(index=index, id=llm_key(prompt, LLM))
    return dict(doc["_source"])


# (id, prompt) stored and returned exactly; the stored llm_input as expected.
PROMPTS = [
    ("NUL characters", "a\x00b\x00", "a\x00b\x00"),
    ("lone surrogates", "x\ud800y\udfffz", "x\\ud800y\\udfffz"),
    ("10 MB of text", "0123456789" * 1_000_000, "0123456789" * 1_000_000),
    ("astral and combining", "😀 é e\u0301 \u202e", "😀 é e\u0301 \u202e"),
]


async def test_prompts(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    report: Recorder,
) -> None:
    """Odd prompts are stored and returned faithfully (answers and keys exact)."""
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    for label, prompt, stored in PROMPTS:
        value = [Generation(text=f"answer {prompt[:20]}")]
        await cache.aupdate(prompt, LLM, value)
        assert await cache.alookup(prompt, LLM) == value, label
        assert source(admin, index_name, prompt)["llm_input"] == stored, label
    # A lone surrogate is not its escaped spelling: two keys.
    assert await cache.alookup("x\\ud800y\\udfffz", LLM) is None
    # The answer itself may hold anything, a lone surrogate included.
    odd = [Generation(text="\ud800\x00")]
    await cache.aupdate("odd answer", "llm\udc00", odd)
    assert await cache.alookup("odd answer", "llm\udc00") == odd
    assert count(admin, index_name) == len(PROMPTS) + 1
    report.row(
        "bad input: prompts",
        "prompts with NUL, lone surrogates, 10 MB of text, astral/combining "
        "characters; an answer and llm_string holding lone surrogates",
        "all stored and returned exactly; lone surrogates kept in the key and "
        "escaped as \\udXXX in the stored llm_input/llm_params (Elasticsearch "
        "refuses them: fixed, it used to fail the write with a 400)",
    )


# (id, update arguments, expected exception, message)
BAD_CALLS: list[tuple[str, tuple[Any, ...], type[Exception], str]] = [
    ("return_val empty", ("p", LLM, []), ValueError, "at least one Generation"),
    ("return_val holds str", ("p", LLM, ["text"]), TypeError, "hold Generation"),
    (
        "return_val holds a message",
        ("p", LLM, [HumanMessage("hi")]),
        TypeError,
        "hold Generation",
    ),
    (
        "return_val is a Generation",
        ("p", LLM, Generation(text="t")),
        TypeError,
        "must be a list",
    ),
    ("return_val is None", ("p", LLM, None), TypeError, "must be a list"),
    ("prompt is bytes", (b"p", LLM, answer("t")), TypeError, "prompt must be a str"),
    ("prompt is None", (None, LLM, answer("t")), TypeError, "prompt must be a str"),
    ("llm_string is int", ("p", 3, answer("t")), TypeError, "llm_string must be a str"),
]


@pytest.mark.parametrize("on_error", ["raise", "warn"])
async def test_bad_calls_write_nothing(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    on_error: Any,
    report: Recorder,
) -> None:
    """Bad update/lookup arguments: an error before any request, nothing written."""
    cache = AsyncElasticsearchCache(index_name, client=async_client, on_error=on_error)
    for label, args, error, message in BAD_CALLS:
        with pytest.raises(error, match=message):
            await cache.aupdate(*args)
        if not isinstance(args[0], str) or not isinstance(args[1], str):
            with pytest.raises(TypeError, match=message):
                await cache.alookup(args[0], args[1])
        assert not admin.indices.exists(index=index_name), label
    assert cache.stats().errors == 0
    report.row(
        f"bad input: update/lookup arguments (on_error={on_error!r})",
        f"{len(BAD_CALLS)} bad calls: return_val empty, non-Generation items, not a "
        "list; prompt/llm_string of wrong types",
        f"{len(BAD_CALLS)}/{len(BAD_CALLS)} a TypeError/ValueError before any "
        "request (programming errors are raised even with 'warn'); index never "
        "created, 0 documents",
    )


# Stored documents that a lookup must treat as a miss, never an exception.
CORRUPT: list[tuple[str, dict[str, Any]]] = [
    ("no fields", {}),
    ("llm_output missing", {"timestamp": "2024-01-01T00:00:00.000+00:00"}),
    ("llm_output a str", {"llm_output": "text"}),
    ("llm_output empty", {"llm_output": []}),
    ("llm_output numbers", {"llm_output": [1, 2]}),
    ("llm_output not JSON", {"llm_output": ["{not json"]}),
    ("llm_output a message", {"llm_output": [dumps(HumanMessage("hi"))]}),
    (
        "llm_output a foreign class",
        {
            "llm_output": [
                '{"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {}}'
            ]
        },
    ),
    (
        "timestamp a number",
        {"llm_output": [dumps(Generation(text="t"))], "timestamp": 12},
    ),
]


async def test_corrupt_documents_are_misses(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    caplog: pytest.LogCaptureFixture,
    report: Recorder,
) -> None:
    """Missing or wrong-typed stored fields: a miss with a warning; update repairs."""
    ttl_cache = AsyncElasticsearchCache(index_name, client=async_client, ttl=3600)
    cache = AsyncElasticsearchCache(index_name, client=async_client)
    await cache.is_alias()
    for label, body in CORRUPT:
        prompt = f"corrupt {label}"
        # Written as a foreign writer would, bypassing the mapping's checks.
        admin.index(
            index=index_name,
            id=llm_key(prompt, LLM),
            document=body,
            refresh=True,
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
            got = await cache.alookup(prompt, LLM)
        if label == "timestamp a number":
            assert got == answer("t")  # no ttl: age not needed
            assert await ttl_cache.alookup(prompt, LLM) is None  # unknown age: expired
        else:
            assert got is None, label
            assert "ignoring unreadable cache entry" in caplog.text, label
        await cache.aupdate(prompt, LLM, answer("repaired"))
        assert await cache.alookup(prompt, LLM) == answer("repaired"), label
    assert cache.stats().errors == 0
    report.row(
        "bad input: stored documents with missing or wrong-typed fields",
        f"{len(CORRUPT)} foreign/corrupt documents under cache keys (no fields, "
        "llm_output missing/str/empty/numbers/not JSON/a message/a foreign class, "
        "timestamp a number)",
        "each a miss with a warning (foreign class never constructed), an entry of "
        "unknown age expired under ttl; the next update replaced each; 0 errors",
    )


async def test_conflicting_mapping(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    report: Recorder,
) -> None:
    """An existing index with a conflicting mapping: a clear error, nothing written."""
    admin.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "llm_output": {"type": "long"},
                "timestamp": {"type": "keyword"},
            }
        },
    )
    for on_error in ("raise", "warn"):
        cache = AsyncElasticsearchCache(
            index_name,
            client=async_client,
            on_error=on_error,  # type: ignore[arg-type]
        )
        if on_error == "raise":
            with pytest.raises(
                MappingConflictError, match="conflicts with the cache's"
            ):
                await cache.aupdate("p", LLM, answer("t"))
        else:
            # A CacheError like any other: never breaks the LLM call.
            await cache.aupdate("p", LLM, answer("t"))
            assert cache.stats().errors == 1
        with pytest.raises(MappingConflictError):
            await cache.is_alias()
        assert await cache.alookup("p", LLM) is None
    assert count(admin, index_name) == 0
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"]["llm_output"] == {"type": "long"}
    report.row(
        "bad input: index exists with a conflicting mapping",
        "index created beforehand with llm_output: long, timestamp: keyword; "
        "update with on_error 'raise' and 'warn'",
        "MappingConflictError naming the index at the first write with 'raise', "
        "a logged error with 'warn' (is_alias() raises it in both); 0 documents, "
        "mapping left untouched",
    )


@pytest.fixture
async def async_client(es_conn: es_server.Connection) -> Any:
    client = AsyncElasticsearch(es_conn.url, **es_conn.client_auth())
    yield client
    await client.close()
