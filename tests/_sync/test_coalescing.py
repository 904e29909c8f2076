# Generated from tests/_async/test_coalescing.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""Concurrent calls on one cache share requests (async), and each caller still
gets its own answer, error and statistics."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from elasticsearch import Elasticsearch
from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.outputs import Generation

from langchain_es_cache import (
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
)
from langchain_es_cache.errors import CacheError
from tests.twins import coalesces, gather
from utils import es_server

LLM = "model=coalesce temperature=0"
POISON = "poison"


class RecordingClient(Elasticsearch):
    """The real client, recording the method and path of every request."""

    sent: ClassVar[list[tuple[str, str]]] = []

    def perform_request(self, method: str, path: str, **kwargs: Any) -> Any:
        RecordingClient.sent.append((method, path))
        return super().perform_request(method, path, **kwargs)


class PoisonedCache(ElasticsearchCache):
    """Builds, for the prompt `POISON`, a document the index refuses (an
    object where the mapping has a keyword)."""

    def build_document(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> dict[str, Any]:
        document = super().build_document(prompt, llm_string, return_val)
        if prompt.startswith(POISON):
            document["llm_string_hash"] = {"not": "a keyword"}
        return document


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


def ops(n: int) -> list[tuple[str, str, str | None]]:
    """`n` lookups and updates that no order can change: lookups of stored
    prompts (some twice), of absent prompts, and updates of fresh prompts."""
    out: list[tuple[str, str, str | None]] = []
    for i in range(n):
        kind = i % 4
        if kind in (0, 1):
            out.append(("lookup", f"stored {i % 96}", None))
        elif kind == 2:
            out.append(("update", f"fresh {i}", f"answer {i}"))
        else:
            out.append(("lookup", f"absent {i}", None))
    return out


def run_op(cache: ElasticsearchCache, op: tuple[str, str, str | None]) -> Any:
    kind, prompt, text = op
    if kind == "lookup":
        return cache.lookup(prompt, LLM)
    assert text is not None
    cache.update(prompt, LLM, answer(text))
    return "updated"


def test_concurrent_mixed_calls_return_what_a_sequential_run_returns(
    es_conn: es_server.Connection, index_name: str
) -> None:
    client = RecordingClient(es_conn.url, **es_conn.client_auth())
    together = ElasticsearchCache(index_name, client=client, namespace="c")
    in_turn = ElasticsearchCache(index_name, client=client, namespace="s")
    for cache in (together, in_turn):
        for i in range(96):
            cache.update(f"stored {i}", LLM, answer(f"stored answer {i}"))
    work = ops(256)
    expected = [run_op(in_turn, op) for op in work]
    RecordingClient.sent.clear()
    got = gather([partial(run_op, together, op) for op in work])
    sent = len(RecordingClient.sent)
    assert got == expected
    assert together.stats() == in_turn.stats()
    # What the updates wrote is read back the same way by both.
    written = [(prompt, text) for kind, prompt, text in work if kind == "update"]
    for cache in (together, in_turn):
        found = gather([partial(cache.lookup, p, LLM) for p, _ in written])
        assert found == [answer(text or "") for _, text in written]
    if coalesces():
        assert sent < len(work) // 4
    else:
        assert sent <= len(work)
    client.close()


def test_one_failing_item_fails_only_its_caller(
    es_conn: es_server.Connection, index_name: str
) -> None:
    client = RecordingClient(es_conn.url, **es_conn.client_auth())
    cache = PoisonedCache(index_name, client=client)
    cache.is_alias()
    prompts = [f"p{i}" for i in range(32)]
    prompts[12] = POISON

    def update(prompt: str) -> str:
        try:
            cache.update(prompt, LLM, answer(prompt))
        except CacheError as exc:
            return str(exc)
        return "ok"

    RecordingClient.sent.clear()
    results = gather([partial(update, p) for p in prompts])
    # Coalesced, the poisoned document shares its bulk request with others.
    assert len(RecordingClient.sent) < (8 if coalesces() else 32) + 1
    assert results[12].startswith(f"cache update on index {index_name!r} failed")
    assert results[:12] + results[13:] == ["ok"] * 31
    assert cache.lookup(POISON, LLM) is None
    for prompt in prompts[:12] + prompts[13:]:
        assert cache.lookup(prompt, LLM) == answer(prompt)
    assert cache.stats().writes == 31
    assert cache.stats().errors == 1

    # With on_error="warn", only the failing caller falls open.
    warn = PoisonedCache(index_name, client=client, on_error="warn")
    warned = gather([partial(warn.update, p + " w", LLM, answer(p)) for p in prompts])
    assert warned == [None] * 32
    assert warn.stats().writes == 31
    assert warn.stats().errors == 1
    client.close()


def test_lookups_share_requests_and_a_lone_lookup_is_one_request(
    es_conn: es_server.Connection, index_name: str
) -> None:
    client = RecordingClient(es_conn.url, **es_conn.client_auth())
    cache = ElasticsearchCache(index_name, client=client)
    for i in range(64):
        cache.update(f"q{i}", LLM, answer(f"a{i}"))
    RecordingClient.sent.clear()
    assert cache.lookup("q1", LLM) == answer("a1")
    assert len(RecordingClient.sent) == 1
    assert RecordingClient.sent[0][0] == "GET"
    RecordingClient.sent.clear()
    found = gather([partial(cache.lookup, f"q{i}", LLM) for i in range(64)])
    assert found == [answer(f"a{i}") for i in range(64)]
    if coalesces():
        # The first goes alone; the rest wait for it and go out together.
        assert len(RecordingClient.sent) <= 8
        assert ("POST", "/_mget") in RecordingClient.sent or any(
            path.endswith("/_mget") for _, path in RecordingClient.sent
        )
    else:
        assert len(RecordingClient.sent) <= 64
    assert cache.stats().hits == 65
    client.close()


def test_embeddings_lookups_share_requests(
    es_conn: es_server.Connection, index_name: str
) -> None:
    client = RecordingClient(es_conn.url, **es_conn.client_auth())
    store = ElasticsearchEmbeddingsCache(index_name, client=client)
    store.mset([(f"k{i}", f"v{i}".encode()) for i in range(40)])
    RecordingClient.sent.clear()
    found = gather(
        [partial(store.mget, [f"k{i}", f"k{i + 1}", "none"]) for i in range(39)]
    )
    assert found == [[f"v{i}".encode(), f"v{i + 1}".encode(), None] for i in range(39)]
    if coalesces():
        assert len(RecordingClient.sent) <= 8
    else:
        assert len(RecordingClient.sent) <= 39
    client.close()
