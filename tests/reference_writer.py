"""Writes cache entries with langchain-elasticsearch, as its users do.

Run by `tests/reference.py` in the reference environment (client 8,
langchain-elasticsearch), never in the tests' own. Reads one JSON request on
stdin, prints one JSON answer on stdout. The cluster comes from
REFERENCE_CONNECTION (JSON: ``url`` and ``api_key`` or ``user`` and
``password``). The caches get a client of ours: the one langchain-elasticsearch
builds from a URL first calls ``GET /``, which the test server lacks.

Request: ``{"kind": "llm", "index": ..., "caches": [{"store_input": ...,
"store_input_params": ..., "metadata": ..., "chat": [[prompt, answer], ...],
"completion": [prompt, ...]}]}`` or ``{"kind": "embeddings", "index": ...,
"stores": [{"namespace": ..., "store_input": ..., "texts": [...]}]}``.
Answer: ``{"before": ..., "after": ...}``, UTC ISO-8601 times around the writes.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

from elasticsearch import Elasticsearch
from langchain_elasticsearch import ElasticsearchCache, ElasticsearchEmbeddingsCache
from langchain_elasticsearch._sync import cache as reference_cache

from tests.models import CountingChatModel, CountingEmbeddings, CountingLLM

try:
    from langchain_classic.embeddings import CacheBackedEmbeddings
except ImportError:  # langchain-core 0.3: langchain-elasticsearch 0.3, langchain
    from langchain.embeddings import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        CacheBackedEmbeddings,
    )

EMBEDDINGS_NAMESPACE = "counting-8"
"""CacheBackedEmbeddings' namespace, which it puts in front of every key."""

# langchain 0.3's CacheBackedEmbeddings predates key_encoder (SHA-1 only).
KEY_ENCODER: dict[str, Any] = (
    {"key_encoder": "sha256"}
    if "key_encoder"
    in inspect.signature(CacheBackedEmbeddings.from_bytes_store).parameters
    else {}
)


def connection(cls: type, client: Elasticsearch) -> dict[str, Any]:
    """The constructor's arguments for using `client`.

    Before 1.0 the classes only build a client of their own from a URL, calling
    ``GET /`` first: their factory is pointed at `client` instead.
    """
    if "client" in inspect.signature(cls).parameters:
        return {"client": client}
    reference_cache.create_elasticsearch_client = lambda **_: client
    return {"es_url": "http://unused"}


def write_llm(index: str, caches: list[dict[str, Any]], client: Elasticsearch) -> None:
    for spec in caches:
        cache = ElasticsearchCache(
            index,
            store_input=spec.get("store_input", True),
            store_input_params=spec.get("store_input_params", True),
            metadata=spec.get("metadata"),
            **connection(ElasticsearchCache, client),
        )
        for prompt, answer in spec.get("chat", []):
            model = CountingChatModel(cache=cache, answer=answer)
            model.invoke(prompt)
            assert model.calls == 1, "the reference cache answered a new prompt"
        for prompt in spec.get("completion", []):
            llm = CountingLLM(cache=cache)
            llm.invoke(prompt)
            assert llm.calls == 1


def write_embeddings(
    index: str, stores: list[dict[str, Any]], client: Elasticsearch
) -> None:
    for spec in stores:
        store = ElasticsearchEmbeddingsCache(
            index,
            namespace=spec.get("namespace"),
            store_input=spec.get("store_input", True),
            metadata=spec.get("metadata"),
            **connection(ElasticsearchEmbeddingsCache, client),
        )
        model = CountingEmbeddings()
        embedder = CacheBackedEmbeddings.from_bytes_store(
            model, store, namespace=EMBEDDINGS_NAMESPACE, **KEY_ENCODER
        )
        embedder.embed_documents(spec["texts"])
        assert model.embedded == spec["texts"]


def main() -> None:
    request = json.loads(sys.stdin.read())
    connection = json.loads(os.environ["REFERENCE_CONNECTION"])
    auth: dict[str, Any] = (
        {"api_key": connection["api_key"]}
        if connection.get("api_key")
        else {"basic_auth": (connection["user"], connection["password"])}
    )
    client = Elasticsearch(connection["url"], **auth)
    before = datetime.now(timezone.utc)
    if request["kind"] == "llm":
        write_llm(request["index"], request["caches"], client)
    else:
        write_embeddings(request["index"], request["stores"], client)
    after = datetime.now(timezone.utc)
    client.close()
    print(json.dumps({"before": before.isoformat(), "after": after.isoformat()}))


if __name__ == "__main__":
    main()
