"""Security against the secured node: credentials, authorization, secrets, privacy."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from langchain_core.globals import set_llm_cache

from langchain_es_cache import (
    AsyncElasticsearchCache,
    AsyncElasticsearchEmbeddingsCache,
    CacheError,
    ElasticsearchCache,
)
from reliability.conftest import Recorder
from reliability.helpers import LLM, answer, value_for
from tests.models import CountingChatModel
from utils import es_server


class SecretScan(logging.Handler):
    """Keeps every log record (DEBUG and up, every logger) and every text to scan."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        self.texts.append(self.format(record))

    def exception(self, exc: BaseException) -> None:
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.texts += [str(current), repr(current), repr(current.args)]
            current = current.__cause__ or current.__context__

    def objects(self, *items: object) -> None:
        for item in items:
            self.texts += [str(item), repr(item)]

    def leaks(self, secrets: list[str]) -> list[str]:
        return [s for s in secrets for text in self.texts if s in text]


@pytest.fixture
def scan() -> Iterator[SecretScan]:
    handler = SecretScan()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def secrets_of(api_key: str | None = None, password: str | None = None) -> list[str]:
    """A secret and every spelling of it that could leak."""
    found = []
    if api_key:
        found.append(api_key)
        decoded = base64.b64decode(api_key).decode()
        found.append(decoded.partition(":")[2])  # the key's secret part
    if password:
        found.append(password)
        found.append(base64.b64encode(f"elastic:{password}".encode()).decode())
    return found


@pytest.fixture(scope="module")
def elastic(es_conn: es_server.Connection) -> Iterator[Elasticsearch]:
    """The superuser by basic auth: API keys with limits must be created so."""
    if es_conn.password is None:
        pytest.skip("needs the elastic user's password")
    client = Elasticsearch(es_conn.url, basic_auth=("elastic", es_conn.password))
    yield client
    client.close()


async def roundtrip(cache: AsyncElasticsearchCache, prompt: str) -> None:
    await cache.aupdate(prompt, LLM, value_for(prompt))
    assert await cache.alookup(prompt, LLM) == value_for(prompt)


async def test_credentials(
    es_conn: es_server.Connection,
    elastic: Elasticsearch,
    index_name: str,
    scan: SecretScan,
    report: Recorder,
) -> None:
    """Basic auth and API key work; bad ones fail saying so, without the secret."""
    assert es_conn.password is not None and es_conn.api_key is not None
    watched = secrets_of(es_conn.api_key, es_conn.password)
    basic = AsyncElasticsearchCache(
        index_name, es_url=es_conn.url, es_user="elastic", es_password=es_conn.password
    )
    keyed = AsyncElasticsearchCache(
        index_name, es_url=es_conn.url, es_api_key=es_conn.api_key
    )
    scan.objects(basic, keyed, basic.stats())
    await roundtrip(basic, "basic")
    await roundtrip(keyed, "keyed")
    assert await keyed.alookup("basic", LLM) == value_for("basic")

    wrong = "Wr0ng-" + es_conn.password[::-1]
    created = elastic.security.create_api_key(name="rel-revoked")
    revoked_key = str(created["encoded"])
    elastic.security.invalidate_api_key(ids=[created["id"]])
    watched += secrets_of(revoked_key, wrong)
    messages = []
    for label, settings in (
        ("wrong password", {"es_user": "elastic", "es_password": wrong}),
        ("revoked API key", {"es_api_key": revoked_key}),
    ):
        for cls in (AsyncElasticsearchCache, AsyncElasticsearchEmbeddingsCache):
            cache: Any = cls(index_name, es_url=es_conn.url, **settings)
            scan.objects(cache)
            call = (
                cache.alookup("basic", LLM)
                if cls is AsyncElasticsearchCache
                else cache.amget(["k"])
            )
            with pytest.raises(CacheError) as info:
                await call
            scan.exception(info.value)
            text = str(info.value)
            assert "authentication" in text.lower() or "401" in text, text
            assert "unable to authenticate" in text, text
            messages.append(f"{label}: {text[:160]}")
            await cache.aclose()
    await basic.aclose()
    await keyed.aclose()
    assert scan.leaks(watched) == []
    report.row(
        "security: basic auth, API key, wrong password, revoked API key",
        "round trip with elastic/password and with an API key; lookup (LLM cache) "
        "and mget (embeddings cache) with a wrong password and an invalidated key",
        "both credentials work; each bad one a CacheError with status 401 and "
        "'unable to authenticate'; no secret in it; e.g. " + messages[0][:150],
    )


async def test_read_only_api_key(
    es_conn: es_server.Connection,
    elastic: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    scan: SecretScan,
    caplog: pytest.LogCaptureFixture,
    report: Recorder,
) -> None:
    """A key that may only read the cache index: lookups work, updates refused."""
    async with AsyncElasticsearchCache(
        index_name, es_url=es_conn.url, **_auth(es_conn)
    ) as owner:
        await roundtrip(owner, "stored")
    created = elastic.security.create_api_key(
        name="rel-read-only",
        role_descriptors={
            "cache-reader": {
                "indices": [
                    {
                        "names": [index_name],
                        "privileges": ["read", "view_index_metadata"],
                    }
                ]
            }
        },
    )
    key = str(created["encoded"])
    strict = AsyncElasticsearchCache(index_name, es_url=es_conn.url, es_api_key=key)
    warn = AsyncElasticsearchCache(
        index_name, es_url=es_conn.url, es_api_key=key, on_error="warn"
    )
    assert await strict.alookup("stored", LLM) == value_for("stored")
    with pytest.raises(CacheError) as info:
        await strict.aupdate("new", LLM, answer("refused"))
    scan.exception(info.value)
    text = str(info.value)
    assert "cache update on index" in text
    assert "403" in text and "unauthorized" in text, text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="langchain_es_cache"):
        await warn.aupdate("new", LLM, answer("refused"))
    assert "continuing without the cache" in caplog.text
    assert await warn.alookup("stored", LLM) == value_for("stored")
    assert await warn.alookup("new", LLM) is None
    admin.indices.refresh(index=index_name)
    assert admin.count(index=index_name)["count"] == 1
    await strict.aclose()
    await warn.aclose()
    assert scan.leaks(secrets_of(key)) == []
    report.row(
        "security: API key limited to reading the cache index",
        "key with read + view_index_metadata on the index only; lookup, then "
        "update with on_error 'raise' and 'warn'",
        "lookup hit; update: CacheError with 403 security_exception 'unauthorized' "
        "('raise') / warning and skipped write ('warn'); index still holds 1 entry",
    )


def _auth(es_conn: es_server.Connection) -> dict[str, Any]:
    return {"es_api_key": es_conn.api_key}


def test_no_secret_in_repr_str_logs_errors_sync(
    es_conn: es_server.Connection, index_name: str, scan: SecretScan, report: Recorder
) -> None:
    """The sync class, every path that produces text, at DEBUG, scanned."""
    assert es_conn.password is not None and es_conn.api_key is not None
    watched = secrets_of(es_conn.api_key, es_conn.password)
    for settings in (
        {"es_api_key": es_conn.api_key},
        {"es_user": "elastic", "es_password": es_conn.password},
    ):
        with ElasticsearchCache(
            index_name, es_url=es_conn.url, ttl=60, **settings
        ) as cache:
            scan.objects(cache, cache.stats(), cache.mapping, vars(cache))
            cache.update("p", LLM, answer("x"))
            cache.lookup("p", LLM)
            cache.clear()
            cache.purge_expired()
        for bad in (
            {"es_api_key": es_conn.api_key, "es_user": "u", "es_password": "p"},
            {"es_password": es_conn.password},
            {"es_user": "u", "es_password": es_conn.password, "es_cloud_id": "x:eQ=="},
        ):
            with pytest.raises((TypeError, ValueError)) as info:
                ElasticsearchCache(index_name, es_url=es_conn.url, **bad)
            scan.exception(info.value)
    # A cache pointing at a closed port: connection errors, at DEBUG.
    dead = ElasticsearchCache(
        index_name, es_url="http://127.0.0.1:9", es_api_key=es_conn.api_key
    )
    with pytest.raises(CacheError) as info:
        dead.lookup("p", LLM)
    scan.exception(info.value)
    scan.objects(dead)
    dead.close()
    assert scan.records > 0
    assert scan.leaks(watched) == []
    report.row(
        "security: no secret in repr, str, DEBUG logs, exceptions",
        "every log record at DEBUG of every logger (cache, client, transport) "
        "captured through the security tests; repr/str of caches and stats; "
        "str/repr/args of every exception and its causes (auth failures, "
        "authorization failure, connection refused, bad constructor arguments)",
        f"{scan.records} log records in this test (plus those of the other "
        "security tests) and every exception scanned for the password, its "
        "base64 header, the API key and its secret part: 0 found",
    )


@pytest.mark.parametrize("cls", [AsyncElasticsearchCache, ElasticsearchCache])
async def test_nothing_of_prompt_or_params_stored(
    cls: Any,
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    index_name: str,
    report: Recorder,
) -> None:
    """store_input=False, store_input_params=False: no prompt text in the index."""
    prompt_marker = "PromptSentinelQx7"
    params_marker = "ParamSentinelZk9"
    settings = {**es_conn.cache_settings(), "store_input": False}
    settings["store_input_params"] = False
    cache = cls(index_name, **settings)
    prompts = [f"{prompt_marker} number {i}" for i in range(20)]
    llm_string = f"model={params_marker} temperature=0.{params_marker}"
    for prompt in prompts:
        if cls is AsyncElasticsearchCache:
            await cache.aupdate(prompt, llm_string, value_for("generic"))
        else:
            cache.update(prompt, llm_string, value_for("generic"))
    # And through a chat model, as LangChain calls it.
    set_llm_cache(cache)
    try:
        model = CountingChatModel()
        if cls is AsyncElasticsearchCache:
            await model.ainvoke(f"{prompt_marker} via model")
        else:
            model.invoke(f"{prompt_marker} via model")
    finally:
        set_llm_cache(None)
    admin.indices.refresh(index=index_name)
    hits = admin.search(
        index=index_name, size=100, query={"match_all": {}}, fields=["*"]
    )["hits"]["hits"]
    assert len(hits) == len(prompts) + 1
    dump = json.dumps(hits, ensure_ascii=False)
    mapping = json.dumps(admin.indices.get_mapping(index=index_name).body)
    for marker in (prompt_marker, params_marker, "temperature"):
        assert marker not in dump
        assert marker not in mapping
        found = admin.search(
            index=index_name, query={"query_string": {"query": f"*{marker}*"}}
        )["hits"]["total"]["value"]
        assert found == 0
    fields = sorted({f for hit in hits for f in hit["_source"]})
    assert fields == ["llm_output", "llm_string_hash", "timestamp"]
    if cls is AsyncElasticsearchCache:
        await cache.aclose()
    else:
        cache.close()
    report.row(
        f"security: store_input=False, store_input_params=False ({cls.__name__})",
        "20 updates + 1 chat-model call with marker words in prompt and "
        "llm_string; every field of every document (_source and fields=*), "
        "the mapping, and a query_string search scanned",
        f"{len(hits)} documents, fields {', '.join(fields)} only; markers found 0 "
        "times",
    )
