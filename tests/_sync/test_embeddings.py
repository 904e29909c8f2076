# Generated from tests/_async/test_embeddings.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The embeddings cache against the real node, through its API and LangChain."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from langchain_es_cache._common.documents import format_time
from langchain_es_cache._common.keys import embedding_key
from langchain_es_cache.errors import StoreWriteError

try:
    from langchain_classic.embeddings import CacheBackedEmbeddings
except ImportError:  # langchain-core 0.3: it lives in langchain
    from langchain.embeddings import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        CacheBackedEmbeddings,
    )

from langchain_es_cache import ElasticsearchEmbeddingsCache
from tests.models import CountingEmbeddings


@pytest.fixture
def store(
    client: Elasticsearch, index_name: str
) -> Iterator[ElasticsearchEmbeddingsCache]:
    yield ElasticsearchEmbeddingsCache(index_name, client=client)


def collect(store: ElasticsearchEmbeddingsCache, **kwargs: Any) -> list[str]:
    return [key for key in store.yield_keys(**kwargs)]


def count(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


def stored(admin: Elasticsearch, index: str, key: str, ns: str | None = None) -> Any:
    return admin.get(index=index, id=embedding_key(key, ns))["_source"]


def test_missing_keys_are_none_in_order(
    store: ElasticsearchEmbeddingsCache,
    admin: Elasticsearch,
    index_name: str,
) -> None:
    # Never written: every key is missing, and nothing gets created.
    assert store.mget([]) == []
    assert store.mget([""]) == [None]
    assert store.mget(["a", "a", "b"]) == [None, None, None]
    store.mdelete(["a"])
    assert not admin.indices.exists(index=index_name)
    store.mset([("a", b"A"), ("", b"empty")])
    assert store.mget([]) == []
    assert store.mget([""]) == [b"empty"]
    assert store.mget(["a", "b", "a", ""]) == [b"A", None, b"A", b"empty"]
    store.mdelete(["a", "never-there"])
    assert store.mget(["a", ""]) == [None, b"empty"]


def test_values_round_trip_exactly(
    store: ElasticsearchEmbeddingsCache,
) -> None:
    values = [bytes(range(256)), b"", b"\x00" * 10, "é😀".encode()]
    pairs = [(f"k{i}", value) for i, value in enumerate(values)]
    store.mset(pairs)
    assert store.mget([k for k, _ in pairs]) == values


def test_write_is_visible_without_refresh(
    store: ElasticsearchEmbeddingsCache,
    admin: Elasticsearch,
    index_name: str,
) -> None:
    store.mset([("k", b"v1")])
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    store.mset([("k", b"v2"), ("new", b"n")])
    assert store.mget(["k", "new"]) == [b"v2", b"n"]
    store.mdelete(["k"])
    assert store.mget(["k", "new"]) == [None, b"n"]


def test_twenty_thousand_keys_in_bounded_requests(
    store: ElasticsearchEmbeddingsCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: dict[str, list[int]] = {"bulk": [], "mget": []}
    bulk, mget = Elasticsearch.bulk, Elasticsearch.mget

    def spy_bulk(self: Elasticsearch, *args: Any, **kwargs: Any) -> Any:
        sizes["bulk"].append(len(kwargs["operations"]) // 2)
        return bulk(self, *args, **kwargs)

    def spy_mget(self: Elasticsearch, *args: Any, **kwargs: Any) -> Any:
        sizes["mget"].append(len(kwargs.get("ids") or kwargs.get("docs") or []))
        return mget(self, *args, **kwargs)

    monkeypatch.setattr(Elasticsearch, "bulk", spy_bulk)
    monkeypatch.setattr(Elasticsearch, "mget", spy_mget)
    pairs = [(f"text {i}", i.to_bytes(4, "big") * 40) for i in range(20_000)]
    store.mset(pairs)
    keys = [key for key, _ in pairs] + ["absent"]
    values = store.mget(keys)
    assert values == [value for _, value in pairs] + [None]
    assert sum(sizes["bulk"]) == 20_000 and max(sizes["bulk"]) <= 500
    assert sum(sizes["mget"]) == 20_001 and max(sizes["mget"]) <= 500


def make_alias(admin: Elasticsearch, alias: str) -> tuple[str, str]:
    first, second = f"{alias}-a", f"{alias}-b"
    admin.indices.create(index=first, settings={"refresh_interval": "-1"})
    admin.indices.create(index=second, settings={"refresh_interval": "-1"})
    admin.indices.put_alias(index=first, name=alias, is_write_index=False)
    admin.indices.put_alias(index=second, name=alias, is_write_index=True)
    return first, second


def put_copy(
    admin: Elasticsearch,
    store: ElasticsearchEmbeddingsCache,
    index: str,
    key: str,
    value: bytes,
    age: timedelta,
) -> None:
    document = store.build_document(key, value)
    document["timestamp"] = format_time(datetime.now(timezone.utc) - age)
    admin.index(index=index, id=embedding_key(key, None), document=document)


def test_alias_returns_newest_copy_and_delete_removes_all(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    first, second = make_alias(admin, index_name)
    store = ElasticsearchEmbeddingsCache(index_name, client=client)
    assert store.is_alias() is True
    # The newest copy is in the second index for one key, the first for the other.
    put_copy(admin, store, first, "k1", b"old", timedelta(hours=2))
    put_copy(admin, store, second, "k1", b"new", timedelta(hours=1))
    put_copy(admin, store, first, "k2", b"new", timedelta(hours=1))
    put_copy(admin, store, second, "k2", b"old", timedelta(hours=2))
    assert store.mget(["k1", "k2", "k3"]) == [b"new", b"new", None]
    store.mset([("k3", b"written")])
    assert admin.exists(index=second, id=embedding_key("k3", None))
    assert store.mget(["k3", "k1"]) == [b"written", b"new"]
    assert sorted(collect(store)) == ["k1", "k2", "k3"]
    store.mdelete(["k1", "k2"])
    assert store.mget(["k1", "k2", "k3"]) == [None, None, b"written"]
    for index in (first, second):
        for key in ("k1", "k2"):
            assert not admin.exists(index=index, id=embedding_key(key, None))
    assert sorted(admin.indices.get(index=f"{index_name}*")) == [first, second]


def test_namespaces_never_collide(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    stores = {
        ns: ElasticsearchEmbeddingsCache(index_name, client=client, namespace=ns)
        for ns in (None, "a", "ab", "model-2")
    }
    for ns, store in stores.items():
        store.mset([("text", f"{ns}".encode()), ("bc", f"bc {ns}".encode())])
    for ns, store in stores.items():
        assert store.mget(["text", "bc"]) == [
            f"{ns}".encode(),
            f"bc {ns}".encode(),
        ]
        assert sorted(collect(store)) == ["bc", "text"]
    # ("a", "bc") and ("ab", "c") are different entries.
    assert stores["ab"].mget(["c"]) == [None]
    assert count(admin, index_name) == 8
    stores["a"].mdelete(["text"])
    assert stores["a"].mget(["text"]) == [None]
    assert stores["ab"].mget(["text"]) == [b"ab"]
    assert stored(admin, index_name, "text", "model-2")["namespace"] == "model-2"
    assert "namespace" not in stored(admin, index_name, "text")


def test_yield_keys_streams_every_key_by_prefix(
    store: ElasticsearchEmbeddingsCache, client: Elasticsearch
) -> None:
    assert collect(store) == []  # no index yet
    long_prefix = "x" * 300
    keys = [f"doc/{i}" for i in range(1200)] + [f"query/{i}" for i in range(30)]
    keys += [long_prefix + "a", long_prefix + "b", "", "ünï/😀"]
    store.mset([(key, b"v") for key in keys])
    other = ElasticsearchEmbeddingsCache(
        store._index_name, client=client, namespace="other"
    )
    other.mset([("doc/other", b"v")])
    streamed = collect(store)
    assert len(streamed) == len(keys)
    assert set(streamed) == set(keys)
    assert sorted(collect(store, prefix="query/")) == sorted(
        k for k in keys if k.startswith("query/")
    )
    assert len(collect(store, prefix="doc/")) == 1200
    assert collect(store, prefix=long_prefix + "a") == [long_prefix + "a"]
    assert collect(store, prefix="ünï") == ["ünï/😀"]
    assert collect(store, prefix="nothing") == []
    assert set(collect(store, prefix="")) == set(keys)
    assert collect(other) == ["doc/other"]
    # A consumer may stop early.
    for first in store.yield_keys(prefix="doc/"):
        assert first.startswith("doc/")
        break


def test_store_input_off_stores_no_text(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    store = ElasticsearchEmbeddingsCache(
        index_name, client=client, store_input=False, metadata={"m": 1}
    )
    secret = "secret-text-7f3a"
    store.mset([(secret, b"vector")])
    source = stored(admin, index_name, secret)
    assert set(source) == {"vector_dump", "timestamp", "metadata"}
    assert secret not in json.dumps(source)
    assert store.mget([secret]) == [b"vector"]
    with pytest.raises(ValueError, match="store_input=False"):
        collect(store)


def test_stored_document_holds_the_given_key(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    store = ElasticsearchEmbeddingsCache(
        index_name, client=client, metadata={"project": "demo"}, namespace="m"
    )
    store.mset([("the key", b"\x01\x02")])
    source = stored(admin, index_name, "the key", "m")
    assert source["text_input"] == "the key"
    assert store.decode_vector(source["vector_dump"]) == b"\x01\x02"
    assert source["vector_dump"] == store.encode_vector(b"\x01\x02")
    assert source["metadata"] == {"project": "demo"}
    written = datetime.fromisoformat(source["timestamp"])
    assert abs(datetime.now(timezone.utc) - written) < timedelta(minutes=5)
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    for name, spec in store.mapping["mappings"]["properties"].items():
        if spec["type"] != "object":
            assert mapping["properties"][name] == spec, name


def test_partial_bulk_failure_names_the_failed_keys(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    # An indexed copy of text_input fails for keys over Lucene's 32 KB term limit.
    admin.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "text_input": {
                    "type": "text",
                    "index": False,
                    "fields": {"raw": {"type": "keyword"}},
                }
            }
        },
    )
    store = ElasticsearchEmbeddingsCache(index_name, client=client)
    huge = "h" * 40_000
    with pytest.raises(StoreWriteError) as failed:
        store.mset([("ok", b"1"), (huge, b"2"), ("ok too", b"3")])
    assert [key for key, _ in failed.value.failures] == [huge]
    assert "1 key(s)" in str(failed.value)
    assert "'hhhh" in str(failed.value) and "40000 chars" in str(failed.value)
    assert "immense" in failed.value.failures[0][1]
    assert store.mget(["ok", huge, "ok too"]) == [b"1", None, b"3"]


def test_through_cache_backed_embeddings(
    store: ElasticsearchEmbeddingsCache,
) -> None:
    model = CountingEmbeddings()
    # langchain 0.3's CacheBackedEmbeddings predates key_encoder (SHA-1 only).
    supported = inspect.signature(CacheBackedEmbeddings.from_bytes_store).parameters
    encoder: dict[str, Any] = (
        {"key_encoder": "sha256"} if "key_encoder" in supported else {}
    )
    embedder = CacheBackedEmbeddings.from_bytes_store(
        model, store, namespace="counting-1", **encoder
    )
    # LangChain embeds each missing text of a batch, duplicates included: the
    # first batch has none, the second repeats every text and adds one.
    texts = ["alpha", "beta", "gamma", "", "😀"]
    first = embedder.embed_documents(texts)
    assert sorted(model.embedded) == sorted(texts)
    second = embedder.embed_documents([*texts, "delta", *texts])
    assert sorted(model.embedded) == sorted([*texts, "delta"])
    assert second[len(texts) + 1 :] == second[: len(texts)]
    expected = [model.vector(text) for text in texts]
    for got in (first, second[: len(texts)]):
        assert [[x.hex() for x in v] for v in got] == [
            [x.hex() for x in v] for v in expected
        ]


@pytest.mark.parametrize("auth", ["api_key", "basic"])
def test_own_client_with_credentials(
    request: pytest.FixtureRequest, index_name: str, auth: str
) -> None:
    settings = request.getfixturevalue(f"{auth}_settings")
    with ElasticsearchEmbeddingsCache(index_name, **settings) as store:
        store.mset([("k", b"v")])
        assert store.mget(["k"]) == [b"v"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"namespace": ""}, ValueError, "namespace must not be empty"),
        ({"maximum_duplicates_allowed": 0}, ValueError, "at least 1"),
        ({"maximum_duplicates_allowed": True}, TypeError, "must be an int"),
        ({"store_input": "yes"}, TypeError, "store_input must be a bool"),
        ({"metadata": {"x": object()}}, ValueError, "JSON-serializable"),
    ],
)
def test_invalid_settings(
    client: Elasticsearch,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        ElasticsearchEmbeddingsCache("cache", client=client, **kwargs)


def test_invalid_arguments(
    store: ElasticsearchEmbeddingsCache,
) -> None:
    with pytest.raises(TypeError, match="values must be bytes"):
        store.mset([("k", "not bytes")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="keys must be str"):
        store.mget([1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="keys must be valid Unicode"):
        store.mset([("k", b"v"), ("lone \ud800", b"v")])
    assert store.mget(["k", "lone \ud800"]) == [None, None]
