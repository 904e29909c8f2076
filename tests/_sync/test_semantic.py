# Generated from tests/_async/test_semantic.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The semantic cache against the real node, with a table of known embeddings."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.globals import set_llm_cache
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation

from langchain_es_cache import (
    CacheError,
    CacheStats,
    ElasticsearchSemanticCache,
)
from langchain_es_cache._common.keys import llm_key
from tests.clock import FakeClock
from tests.models import CountingChatModel, TableEmbeddings
from tests.twins import burst_size, gather
from utils import es_server

FRANCE = "What is the capital of France?"
PARAPHRASE = "Tell me France's capital city."  # cosine 12/13 = 0.923 to FRANCE
SPAIN = "What is the capital of Spain?"  # cosine 0.6 to FRANCE
SHOUTED = "WHAT IS THE CAPITAL OF FRANCE?"  # cosine 1 to FRANCE (twice as long)
BREAD = "How do I bake bread?"  # cosine 0 to FRANCE
OPPOSITE = "What is not the capital of France?"  # cosine -1 to FRANCE

VECTORS = {
    FRANCE: [1.0, 0.0, 0.0],
    PARAPHRASE: [12.0, 5.0, 0.0],
    SPAIN: [3.0, 4.0, 0.0],
    SHOUTED: [2.0, 0.0, 0.0],
    BREAD: [0.0, 0.0, 1.0],
    OPPOSITE: [-1.0, 0.0, 0.0],
}

LLM_A = "model=a temperature=0"
LLM_B = "model=b temperature=0"


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


def count(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])


def refreshes(admin: Elasticsearch, index: str) -> int:
    """How many refreshes were asked of `index` through the refresh API."""
    stats = admin.indices.stats(index=index, metric="refresh")
    return int(stats["_all"]["primaries"]["refresh"]["external_total"])


@pytest.fixture
def embedding() -> TableEmbeddings:
    return TableEmbeddings(VECTORS)


@pytest.fixture
def semantic(
    client: Elasticsearch, index_name: str, embedding: TableEmbeddings
) -> Iterator[ElasticsearchSemanticCache]:
    yield ElasticsearchSemanticCache(index_name, embedding, client=client)


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield None
    set_llm_cache(None)


# --- hits and misses ---------------------------------------------------------


def test_paraphrase_hits_and_other_questions_miss(
    semantic: ElasticsearchSemanticCache,
) -> None:
    assert semantic.similarity_threshold == 0.8
    assert semantic.lookup(FRANCE, LLM_A) is None  # no index yet: a miss
    semantic.update(FRANCE, LLM_A, answer("Paris"))
    assert semantic.lookup(FRANCE, LLM_A) == answer("Paris")
    assert semantic.lookup(PARAPHRASE, LLM_A) == answer("Paris")
    assert semantic.lookup(SPAIN, LLM_A) is None  # 0.6 < 0.8
    assert semantic.lookup(BREAD, LLM_A) is None
    assert semantic.stats() == CacheStats(hits=2, misses=3, writes=1, errors=0)


def test_nearest_entry_wins(semantic: ElasticsearchSemanticCache) -> None:
    semantic.update(PARAPHRASE, LLM_A, answer("paraphrase"))
    semantic.update(SPAIN, LLM_A, answer("Madrid"))
    # FRANCE: 0.923 to PARAPHRASE, 0.6 to SPAIN; SPAIN itself is nearest to SPAIN.
    assert semantic.lookup(FRANCE, LLM_A) == answer("paraphrase")
    assert semantic.lookup(SPAIN, LLM_A) == answer("Madrid")


@pytest.mark.parametrize(
    ("threshold", "prompt", "hit"),
    [
        (1.0, SHOUTED, True),  # cosine exactly 1: at the threshold
        (1.0, PARAPHRASE, False),
        (0.59, SPAIN, True),  # cosine 0.6
        (0.61, SPAIN, False),
        (0.0, BREAD, True),  # cosine exactly 0: at the threshold
        (0.001, BREAD, False),
        (-1.0, OPPOSITE, True),  # cosine -1: only the lowest threshold
        (-0.999, OPPOSITE, False),
    ],
)
def test_threshold_is_a_cosine_similarity_and_inclusive(
    client: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
    threshold: float,
    prompt: str,
    hit: bool,
) -> None:
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, similarity_threshold=threshold
    )
    cache.update(FRANCE, LLM_A, answer("Paris"))
    found = cache.lookup(prompt, LLM_A)
    assert found == (answer("Paris") if hit else None)


# --- models, namespaces ------------------------------------------------------


def test_a_nearer_entry_of_another_model_never_hides_this_models(
    semantic: ElasticsearchSemanticCache,
) -> None:
    semantic.update(PARAPHRASE, LLM_A, answer("for model a"))
    # Entries of model b exactly where the lookup points, more than any k.
    for prompt in (FRANCE, SHOUTED):
        semantic.update(prompt, LLM_B, answer("for model b"))
    for i in range(30):
        semantic.update(FRANCE, f"model=b{i}", answer("for another model"))
    assert semantic.lookup(FRANCE, LLM_A) == answer("for model a")
    assert semantic.lookup(FRANCE, LLM_B) == answer("for model b")
    assert semantic.lookup(FRANCE, "model=c") is None


def test_same_prompt_under_two_models_is_two_entries(
    semantic: ElasticsearchSemanticCache, admin: Elasticsearch, index_name: str
) -> None:
    semantic.update(FRANCE, LLM_A, answer("a"))
    semantic.update(FRANCE, LLM_B, answer("b"))
    assert count(admin, index_name) == 2
    assert semantic.lookup(PARAPHRASE, LLM_A) == answer("a")
    assert semantic.lookup(PARAPHRASE, LLM_B) == answer("b")
    # An update of the same prompt and model overwrites its entry.
    semantic.update(FRANCE, LLM_A, answer("a, again"))
    assert semantic.lookup(PARAPHRASE, LLM_A) == answer("a, again")
    assert count(admin, index_name) == 2
    assert admin.exists(index=index_name, id=llm_key(FRANCE, LLM_A))


def test_namespaces_see_only_their_own_entries(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    caches = {
        name: ElasticsearchSemanticCache(
            index_name, embedding, client=client, namespace=name
        )
        for name in ("one", "two", None)
    }
    for name, cache in caches.items():
        cache.update(FRANCE, LLM_A, answer(f"from {name}"))
    admin.indices.refresh(index=index_name)  # other objects' writes, for the test
    for name, cache in caches.items():
        assert cache.lookup(PARAPHRASE, LLM_A) == answer(f"from {name}")
    caches["one"].clear()
    assert caches["one"].lookup(PARAPHRASE, LLM_A) is None
    assert caches["two"].lookup(PARAPHRASE, LLM_A) == answer("from two")
    assert caches[None].lookup(PARAPHRASE, LLM_A) == answer("from None")
    assert count(admin, index_name) == 2


# --- realtime ----------------------------------------------------------------


def test_own_write_is_found_at_once_without_background_refresh(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    writer = ElasticsearchSemanticCache(index_name, embedding, client=client)
    reader = ElasticsearchSemanticCache(index_name, embedding, client=client)
    writer.update(BREAD, LLM_A, answer("bake it"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    assert writer.lookup(BREAD, LLM_A) == answer("bake it")
    before = refreshes(admin, index_name)
    for prompt in (FRANCE, SPAIN, OPPOSITE):
        writer.update(prompt, LLM_A, answer(prompt))
    # No refresh happened in the background: an object that did not write
    # does not see the new entries yet...
    assert reader.lookup(PARAPHRASE, LLM_A) is None
    # ...and the writer does, at the cost of one refresh for the three writes.
    assert writer.lookup(PARAPHRASE, LLM_A) == answer(FRANCE)
    assert writer.lookup(SPAIN, LLM_A) == answer(SPAIN)
    assert refreshes(admin, index_name) == before + 1
    assert reader.lookup(PARAPHRASE, LLM_A) == answer(FRANCE)


def test_concurrent_lookups_after_a_write_share_one_refresh(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    """A burst of lookups after one write: one refresh serves them all (those
    that came while it was in flight waited for it), and each finds the entry."""
    cache = ElasticsearchSemanticCache(index_name, embedding, client=client)
    cache.update(BREAD, LLM_A, answer("bake it"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    assert cache.lookup(BREAD, LLM_A) == answer("bake it")
    for round_ in range(3):
        cache.update(FRANCE, LLM_A, answer(f"Paris {round_}"))
        before = refreshes(admin, index_name)
        found = gather([lambda: cache.lookup(PARAPHRASE, LLM_A)] * burst_size())
        assert found == [answer(f"Paris {round_}")] * burst_size()
        assert refreshes(admin, index_name) == before + 1


def test_each_lookup_sees_its_own_write_among_concurrent_ones(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Callers that each write then look up at once, on one object: however
    their writes and the shared refreshes interleave, every lookup finds the
    write its own caller made before it."""
    size = burst_size()
    prompts = [f"prompt {i}" for i in range(size)]
    # One axis each: no prompt is near another's entry.
    vectors = {p: [float(i == j) for j in range(size)] for i, p in enumerate(prompts)}
    cache = ElasticsearchSemanticCache(
        index_name, TableEmbeddings(vectors), client=client
    )
    cache.update(prompts[0], LLM_A, answer("first"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    assert cache.lookup(prompts[0], LLM_A) == answer("first")
    for round_ in range(3):
        before = refreshes(admin, index_name)

        def write_then_read(prompt: str, text: str) -> RETURN_VAL_TYPE | None:
            cache.update(prompt, LLM_A, answer(text))
            return cache.lookup(prompt, LLM_A)

        texts = {prompt: f"{prompt} {round_}" for prompt in prompts}
        found = gather(
            [functools.partial(write_then_read, p, t) for p, t in texts.items()]
        )
        assert found == [answer(text) for text in texts.values()]
        assert 1 <= refreshes(admin, index_name) - before <= size


def test_clear_is_seen_by_the_next_lookup(
    semantic: ElasticsearchSemanticCache, admin: Elasticsearch, index_name: str
) -> None:
    semantic.update(FRANCE, LLM_A, answer("a"))
    semantic.update(FRANCE, LLM_B, answer("b"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    semantic.clear(llm_string=LLM_A)
    assert semantic.lookup(PARAPHRASE, LLM_A) is None
    assert semantic.lookup(PARAPHRASE, LLM_B) == answer("b")
    semantic.clear()
    assert semantic.lookup(PARAPHRASE, LLM_B) is None
    assert count(admin, index_name) == 0


# --- expiry ------------------------------------------------------------------


def test_ttl_is_a_filter_inside_the_search(
    client: Elasticsearch, index_name: str, embedding: TableEmbeddings
) -> None:
    clock = FakeClock()
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, ttl=60, clock=clock
    )
    cache.update(FRANCE, LLM_A, answer("old"))
    clock.advance(seconds=30)
    cache.update(PARAPHRASE, LLM_A, answer("newer"))
    clock.advance(seconds=30)
    assert cache.lookup(FRANCE, LLM_A) == answer("old")  # exactly ttl old
    clock.advance(milliseconds=1)
    # The nearest entry expired; the next nearest, still fresh, is the hit.
    assert cache.lookup(FRANCE, LLM_A) == answer("newer")
    clock.advance(seconds=30)
    assert cache.lookup(FRANCE, LLM_A) is None
    assert cache.purge_expired() == 2


# --- through LangChain -------------------------------------------------------


def test_chat_model_answers_a_paraphrase_from_the_cache(
    semantic: ElasticsearchSemanticCache,
    embedding: TableEmbeddings,
    global_cache: None,
) -> None:
    model = CountingChatModel(cache=semantic)
    first = model.invoke(FRANCE)
    second = model.invoke(PARAPHRASE)
    assert model.calls == 1
    assert second.content == first.content == model.answer
    assert second.response_metadata == first.response_metadata
    # The messages' text is embedded, not LangChain's serialization of them.
    assert set(embedding.embedded) == {FRANCE, PARAPHRASE}
    set_llm_cache(semantic)
    other = CountingChatModel(temperature=0.5)  # another llm_string
    other.invoke(PARAPHRASE)
    assert other.calls == 1
    assert (CountingChatModel().invoke(SHOUTED)).content == model.answer


# --- the nearest entry, for tuning the threshold -----------------------------


def test_nearest_reports_the_cosine_whatever_the_threshold(
    semantic: ElasticsearchSemanticCache,
) -> None:
    assert semantic.nearest(FRANCE, LLM_A) is None  # no index yet
    semantic.update(FRANCE, LLM_A, answer("Paris"))
    cases = [
        (FRANCE, 1.0, True),
        (SHOUTED, 1.0, True),
        (PARAPHRASE, 12 / 13, True),
        (SPAIN, 0.6, False),
        (BREAD, 0.0, False),
        (OPPOSITE, -1.0, False),
    ]
    for prompt, cosine, hit in cases:
        nearest = semantic.nearest(prompt, LLM_A)
        assert nearest is not None
        assert nearest.similarity == pytest.approx(cosine, abs=1e-6), prompt
        assert nearest.prompt == FRANCE and nearest.text == FRANCE
        assert nearest.written is not None
        # A lookup is a hit exactly when the similarity reaches the threshold.
        assert (semantic.lookup(prompt, LLM_A) is not None) is hit, prompt
    assert semantic.stats() == CacheStats(hits=3, misses=3, writes=1)


def test_nearest_honours_every_filter_but_the_threshold(
    client: Elasticsearch, index_name: str, embedding: TableEmbeddings
) -> None:
    clock = FakeClock()
    scoped = ElasticsearchSemanticCache(
        index_name, embedding, client=client, namespace="a", ttl=60, clock=clock
    )
    other = ElasticsearchSemanticCache(
        index_name, embedding, client=client, namespace="b"
    )
    other.update(FRANCE, LLM_A, answer("other namespace"))
    scoped.update(SPAIN, LLM_A, answer("Madrid"))
    scoped.update(FRANCE, LLM_B, answer("other model"))
    nearest = scoped.nearest(FRANCE, LLM_A)
    assert nearest is not None
    assert nearest.prompt == SPAIN  # not the nearer entries of b or of LLM_B
    assert nearest.similarity == pytest.approx(0.6, abs=1e-6)
    clock.advance(seconds=61)
    assert scoped.nearest(FRANCE, LLM_A) is None  # expired
    assert scoped.nearest(FRANCE, "model=c") is None


def test_nearest_without_a_stored_prompt(
    client: Elasticsearch, index_name: str, embedding: TableEmbeddings
) -> None:
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, store_input=False
    )
    cache.update(FRANCE, LLM_A, answer("Paris"))
    nearest = cache.nearest(PARAPHRASE, LLM_A)
    assert nearest is not None
    assert nearest.prompt is None and nearest.text is None
    assert nearest.similarity == pytest.approx(12 / 13, abs=1e-6)


def test_nearest_of_a_chat_prompt(
    semantic: ElasticsearchSemanticCache,
) -> None:
    model = CountingChatModel(cache=semantic)
    model.invoke(FRANCE)
    # The prompt and llm_string as LangChain hands them to a cache.
    prompt = dumps([HumanMessage(content=PARAPHRASE)])
    nearest = semantic.nearest(prompt, model._get_llm_string())
    assert nearest is not None
    assert nearest.text == FRANCE  # the embedded text, not the JSON prompt
    assert nearest.prompt == dumps([HumanMessage(content=FRANCE)])
    assert nearest.similarity == pytest.approx(12 / 13, abs=1e-6)


def test_nearest_errors_follow_on_error(
    es_conn: es_server.Connection, index_name: str, embedding: TableEmbeddings
) -> None:
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": "wrong",
    }
    with ElasticsearchSemanticCache(
        index_name, embedding, on_error="warn", **settings
    ) as warn:
        assert warn.nearest(FRANCE, LLM_A) is None
        assert warn.stats() == CacheStats(errors=1)
    with ElasticsearchSemanticCache(index_name, embedding, **settings) as strict:
        with pytest.raises(CacheError, match="cache nearest on index"):
            strict.nearest(FRANCE, LLM_A)
        with pytest.raises(TypeError, match="prompt must be a str"):
            strict.nearest(None, LLM_A)  # type: ignore[arg-type]


def test_tokens_saved_by_semantic_hits(
    semantic: ElasticsearchSemanticCache,
) -> None:
    model = CountingChatModel(cache=semantic)
    model.invoke(FRANCE)
    model.invoke(PARAPHRASE)
    model.invoke(SHOUTED)
    assert model.calls == 1
    # CountingChatModel reports 13 tokens an answer.
    assert semantic.stats() == CacheStats(hits=2, misses=1, writes=1, tokens_saved=26)


# --- index, documents, errors -----------------------------------------------


def test_mapping_and_document(
    client: Elasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    cache = ElasticsearchSemanticCache(
        index_name, embedding, client=client, metadata={"team": "search"}
    )
    assert cache.dimensions is None
    cache.update(FRANCE, LLM_A, answer("Paris"))
    assert cache.dimensions == 3
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    vector = mapping["properties"]["llm_input_vector"]
    assert vector["type"] == "dense_vector"
    assert vector["dims"] == 3
    assert vector["similarity"] == "cosine"
    assert vector["index_options"]["type"] == "hnsw"
    source = admin.get(index=index_name, id=llm_key(FRANCE, LLM_A))["_source"]
    assert source["llm_input"] == FRANCE
    assert source["llm_params"] == LLM_A
    assert source["metadata"] == {"team": "search"}
    document = cache.build_document(FRANCE, LLM_A, answer("Paris"), [1.0, 0.0, 0.0])
    assert document["llm_input_vector"] == [1.0, 0.0, 0.0]
    assert document["llm_output"] == source["llm_output"]


def test_given_dimensions_prepare_the_index_before_any_write(
    client: Elasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchSemanticCache(
        index_name,
        TableEmbeddings({"two": [1.0, 2.0]}),
        client=client,
        dimensions=3,
    )
    assert cache.is_alias() is False
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"]["llm_input_vector"]["dims"] == 3
    with pytest.raises(ValueError, match=r"returned 2 dimensions.*have 3"):
        cache.update("two", LLM_A, answer("x"))
    with pytest.raises(ValueError, match=r"returned 2 dimensions.*have 3"):
        cache.lookup("two", LLM_A)
    assert count(admin, index_name) == 0


def test_a_model_of_other_dimensions_fails_open_with_warn(
    semantic: ElasticsearchSemanticCache,
    client: Elasticsearch,
    index_name: str,
) -> None:
    semantic.update(FRANCE, LLM_A, answer("Paris"))
    other_model = TableEmbeddings({FRANCE: [1.0, 0.0]})
    warn = ElasticsearchSemanticCache(
        index_name, other_model, client=client, on_error="warn"
    )
    assert warn.lookup(FRANCE, LLM_A) is None
    assert warn.stats() == CacheStats(errors=1)
    strict = ElasticsearchSemanticCache(index_name, other_model, client=client)
    with pytest.raises(CacheError, match="cache lookup on index"):
        strict.lookup(FRANCE, LLM_A)


def test_wrong_password_fails_open(
    es_conn: es_server.Connection, index_name: str, embedding: TableEmbeddings
) -> None:
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": "definitely-wrong-password",
    }
    with ElasticsearchSemanticCache(
        index_name, embedding, on_error="warn", **settings
    ) as cache:
        cache.update(FRANCE, LLM_A, answer("lost"))
        assert cache.lookup(FRANCE, LLM_A) is None
        assert cache.stats() == CacheStats(errors=2)


def test_own_client_from_api_key(
    api_key_settings: dict[str, Any], index_name: str, embedding: TableEmbeddings
) -> None:
    with ElasticsearchSemanticCache(index_name, embedding, **api_key_settings) as cache:
        cache.update(FRANCE, LLM_A, answer("Paris"))
        assert cache.lookup(PARAPHRASE, LLM_A) == answer("Paris")


def test_zero_vector_is_refused_before_any_request(
    semantic: ElasticsearchSemanticCache,
) -> None:
    semantic._embedding = TableEmbeddings({"nothing": [0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match="zero vector"):
        semantic.update("nothing", LLM_A, answer("x"))
    assert semantic.stats() == CacheStats()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"similarity_threshold": 1.5}, ValueError, "between -1 and 1"),
        ({"similarity_threshold": -1.01}, ValueError, "between -1 and 1"),
        ({"similarity_threshold": math.nan}, ValueError, "between -1 and 1"),
        ({"similarity_threshold": "0.9"}, TypeError, "must be a number"),
        ({"similarity_threshold": True}, TypeError, "must be a number"),
        ({"dimensions": 0}, ValueError, "between 1 and 4096"),
        ({"dimensions": 4097}, ValueError, "between 1 and 4096"),
        ({"dimensions": 3.0}, TypeError, "must be an int"),
        ({"ttl": 0}, ValueError, "positive"),
        ({"namespace": ""}, ValueError, "must not be empty"),
        ({"on_error": "ignore"}, ValueError, "on_error"),
        ({"store_input_params": "yes"}, TypeError, "store_input_params"),
    ],
)
def test_validation_at_construction(
    client: Elasticsearch,
    embedding: TableEmbeddings,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        ElasticsearchSemanticCache("semantic", embedding, client=client, **kwargs)


def test_embedding_must_be_an_embeddings(
    client: Elasticsearch,
) -> None:
    with pytest.raises(TypeError, match="embedding must be a langchain_core"):
        ElasticsearchSemanticCache(
            "semantic",
            lambda text: [1.0],  # type: ignore[arg-type]
            client=client,
        )
