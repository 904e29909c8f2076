"""The semantic cache against the real node, with a table of known embeddings."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.globals import set_llm_cache
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchSemanticCache,
    CacheError,
    CacheStats,
)
from langchain_es_cache._common.keys import llm_key
from tests.clock import FakeClock
from tests.models import CountingChatModel, TableEmbeddings
from tests.twins import async_burst_size, async_gather
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
async def semantic(
    async_client: AsyncElasticsearch, index_name: str, embedding: TableEmbeddings
) -> AsyncIterator[AsyncElasticsearchSemanticCache]:
    yield AsyncElasticsearchSemanticCache(index_name, embedding, client=async_client)


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield None
    set_llm_cache(None)


# --- hits and misses ---------------------------------------------------------


async def test_paraphrase_hits_and_other_questions_miss(
    semantic: AsyncElasticsearchSemanticCache,
) -> None:
    assert semantic.similarity_threshold == 0.8
    assert await semantic.alookup(FRANCE, LLM_A) is None  # no index yet: a miss
    await semantic.aupdate(FRANCE, LLM_A, answer("Paris"))
    assert await semantic.alookup(FRANCE, LLM_A) == answer("Paris")
    assert await semantic.alookup(PARAPHRASE, LLM_A) == answer("Paris")
    assert await semantic.alookup(SPAIN, LLM_A) is None  # 0.6 < 0.8
    assert await semantic.alookup(BREAD, LLM_A) is None
    assert semantic.stats() == CacheStats(hits=2, misses=3, writes=1, errors=0)


async def test_nearest_entry_wins(semantic: AsyncElasticsearchSemanticCache) -> None:
    await semantic.aupdate(PARAPHRASE, LLM_A, answer("paraphrase"))
    await semantic.aupdate(SPAIN, LLM_A, answer("Madrid"))
    # FRANCE: 0.923 to PARAPHRASE, 0.6 to SPAIN; SPAIN itself is nearest to SPAIN.
    assert await semantic.alookup(FRANCE, LLM_A) == answer("paraphrase")
    assert await semantic.alookup(SPAIN, LLM_A) == answer("Madrid")


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
async def test_threshold_is_a_cosine_similarity_and_inclusive(
    async_client: AsyncElasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
    threshold: float,
    prompt: str,
    hit: bool,
) -> None:
    cache = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, similarity_threshold=threshold
    )
    await cache.aupdate(FRANCE, LLM_A, answer("Paris"))
    found = await cache.alookup(prompt, LLM_A)
    assert found == (answer("Paris") if hit else None)


# --- models, namespaces ------------------------------------------------------


async def test_a_nearer_entry_of_another_model_never_hides_this_models(
    semantic: AsyncElasticsearchSemanticCache,
) -> None:
    await semantic.aupdate(PARAPHRASE, LLM_A, answer("for model a"))
    # Entries of model b exactly where the lookup points, more than any k.
    for prompt in (FRANCE, SHOUTED):
        await semantic.aupdate(prompt, LLM_B, answer("for model b"))
    for i in range(30):
        await semantic.aupdate(FRANCE, f"model=b{i}", answer("for another model"))
    assert await semantic.alookup(FRANCE, LLM_A) == answer("for model a")
    assert await semantic.alookup(FRANCE, LLM_B) == answer("for model b")
    assert await semantic.alookup(FRANCE, "model=c") is None


async def test_same_prompt_under_two_models_is_two_entries(
    semantic: AsyncElasticsearchSemanticCache, admin: Elasticsearch, index_name: str
) -> None:
    await semantic.aupdate(FRANCE, LLM_A, answer("a"))
    await semantic.aupdate(FRANCE, LLM_B, answer("b"))
    assert count(admin, index_name) == 2
    assert await semantic.alookup(PARAPHRASE, LLM_A) == answer("a")
    assert await semantic.alookup(PARAPHRASE, LLM_B) == answer("b")
    # An update of the same prompt and model overwrites its entry.
    await semantic.aupdate(FRANCE, LLM_A, answer("a, again"))
    assert await semantic.alookup(PARAPHRASE, LLM_A) == answer("a, again")
    assert count(admin, index_name) == 2
    assert admin.exists(index=index_name, id=llm_key(FRANCE, LLM_A))


async def test_namespaces_see_only_their_own_entries(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    caches = {
        name: AsyncElasticsearchSemanticCache(
            index_name, embedding, client=async_client, namespace=name
        )
        for name in ("one", "two", None)
    }
    for name, cache in caches.items():
        await cache.aupdate(FRANCE, LLM_A, answer(f"from {name}"))
    admin.indices.refresh(index=index_name)  # other objects' writes, for the test
    for name, cache in caches.items():
        assert await cache.alookup(PARAPHRASE, LLM_A) == answer(f"from {name}")
    await caches["one"].aclear()
    assert await caches["one"].alookup(PARAPHRASE, LLM_A) is None
    assert await caches["two"].alookup(PARAPHRASE, LLM_A) == answer("from two")
    assert await caches[None].alookup(PARAPHRASE, LLM_A) == answer("from None")
    assert count(admin, index_name) == 2


# --- realtime ----------------------------------------------------------------


async def test_own_write_is_found_at_once_without_background_refresh(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    writer = AsyncElasticsearchSemanticCache(index_name, embedding, client=async_client)
    reader = AsyncElasticsearchSemanticCache(index_name, embedding, client=async_client)
    await writer.aupdate(BREAD, LLM_A, answer("bake it"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    assert await writer.alookup(BREAD, LLM_A) == answer("bake it")
    before = refreshes(admin, index_name)
    for prompt in (FRANCE, SPAIN, OPPOSITE):
        await writer.aupdate(prompt, LLM_A, answer(prompt))
    # No refresh happened in the background: an object that did not write
    # does not see the new entries yet...
    assert await reader.alookup(PARAPHRASE, LLM_A) is None
    # ...and the writer does, at the cost of one refresh for the three writes.
    assert await writer.alookup(PARAPHRASE, LLM_A) == answer(FRANCE)
    assert await writer.alookup(SPAIN, LLM_A) == answer(SPAIN)
    assert refreshes(admin, index_name) == before + 1
    assert await reader.alookup(PARAPHRASE, LLM_A) == answer(FRANCE)


async def test_concurrent_lookups_after_a_write_share_one_refresh(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    """A burst of lookups after one write: one refresh serves them all (those
    that came while it was in flight waited for it), and each finds the entry."""
    cache = AsyncElasticsearchSemanticCache(index_name, embedding, client=async_client)
    await cache.aupdate(BREAD, LLM_A, answer("bake it"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    assert await cache.alookup(BREAD, LLM_A) == answer("bake it")
    for round_ in range(3):
        await cache.aupdate(FRANCE, LLM_A, answer(f"Paris {round_}"))
        before = refreshes(admin, index_name)
        found = await async_gather(
            [lambda: cache.alookup(PARAPHRASE, LLM_A)] * async_burst_size()
        )
        assert found == [answer(f"Paris {round_}")] * async_burst_size()
        assert refreshes(admin, index_name) == before + 1


async def test_each_lookup_sees_its_own_write_among_concurrent_ones(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    """Callers that each write then look up at once, on one object: however
    their writes and the shared refreshes interleave, every lookup finds the
    write its own caller made before it."""
    size = async_burst_size()
    prompts = [f"prompt {i}" for i in range(size)]
    # One axis each: no prompt is near another's entry.
    vectors = {p: [float(i == j) for j in range(size)] for i, p in enumerate(prompts)}
    cache = AsyncElasticsearchSemanticCache(
        index_name, TableEmbeddings(vectors), client=async_client
    )
    await cache.aupdate(prompts[0], LLM_A, answer("first"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    assert await cache.alookup(prompts[0], LLM_A) == answer("first")
    for round_ in range(3):
        before = refreshes(admin, index_name)

        async def write_then_read(prompt: str, text: str) -> RETURN_VAL_TYPE | None:
            await cache.aupdate(prompt, LLM_A, answer(text))
            return await cache.alookup(prompt, LLM_A)

        texts = {prompt: f"{prompt} {round_}" for prompt in prompts}
        found = await async_gather(
            [functools.partial(write_then_read, p, t) for p, t in texts.items()]
        )
        assert found == [answer(text) for text in texts.values()]
        assert 1 <= refreshes(admin, index_name) - before <= size


async def test_clear_is_seen_by_the_next_lookup(
    semantic: AsyncElasticsearchSemanticCache, admin: Elasticsearch, index_name: str
) -> None:
    await semantic.aupdate(FRANCE, LLM_A, answer("a"))
    await semantic.aupdate(FRANCE, LLM_B, answer("b"))
    admin.indices.put_settings(index=index_name, settings={"refresh_interval": "-1"})
    await semantic.aclear(llm_string=LLM_A)
    assert await semantic.alookup(PARAPHRASE, LLM_A) is None
    assert await semantic.alookup(PARAPHRASE, LLM_B) == answer("b")
    await semantic.aclear()
    assert await semantic.alookup(PARAPHRASE, LLM_B) is None
    assert count(admin, index_name) == 0


# --- expiry ------------------------------------------------------------------


async def test_ttl_is_a_filter_inside_the_search(
    async_client: AsyncElasticsearch, index_name: str, embedding: TableEmbeddings
) -> None:
    clock = FakeClock()
    cache = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, ttl=60, clock=clock
    )
    await cache.aupdate(FRANCE, LLM_A, answer("old"))
    clock.advance(seconds=30)
    await cache.aupdate(PARAPHRASE, LLM_A, answer("newer"))
    clock.advance(seconds=30)
    assert await cache.alookup(FRANCE, LLM_A) == answer("old")  # exactly ttl old
    clock.advance(milliseconds=1)
    # The nearest entry expired; the next nearest, still fresh, is the hit.
    assert await cache.alookup(FRANCE, LLM_A) == answer("newer")
    clock.advance(seconds=30)
    assert await cache.alookup(FRANCE, LLM_A) is None
    assert await cache.apurge_expired() == 2


# --- through LangChain -------------------------------------------------------


async def test_chat_model_answers_a_paraphrase_from_the_cache(
    semantic: AsyncElasticsearchSemanticCache,
    embedding: TableEmbeddings,
    global_cache: None,
) -> None:
    model = CountingChatModel(cache=semantic)
    first = await model.ainvoke(FRANCE)
    second = await model.ainvoke(PARAPHRASE)
    assert model.calls == 1
    assert second.content == first.content == model.answer
    assert second.response_metadata == first.response_metadata
    # The messages' text is embedded, not LangChain's serialization of them.
    assert set(embedding.embedded) == {FRANCE, PARAPHRASE}
    set_llm_cache(semantic)
    other = CountingChatModel(temperature=0.5)  # another llm_string
    await other.ainvoke(PARAPHRASE)
    assert other.calls == 1
    assert (await CountingChatModel().ainvoke(SHOUTED)).content == model.answer


# --- the nearest entry, for tuning the threshold -----------------------------


async def test_nearest_reports_the_cosine_whatever_the_threshold(
    semantic: AsyncElasticsearchSemanticCache,
) -> None:
    assert await semantic.anearest(FRANCE, LLM_A) is None  # no index yet
    await semantic.aupdate(FRANCE, LLM_A, answer("Paris"))
    cases = [
        (FRANCE, 1.0, True),
        (SHOUTED, 1.0, True),
        (PARAPHRASE, 12 / 13, True),
        (SPAIN, 0.6, False),
        (BREAD, 0.0, False),
        (OPPOSITE, -1.0, False),
    ]
    for prompt, cosine, hit in cases:
        nearest = await semantic.anearest(prompt, LLM_A)
        assert nearest is not None
        assert nearest.similarity == pytest.approx(cosine, abs=1e-6), prompt
        assert nearest.prompt == FRANCE and nearest.text == FRANCE
        assert nearest.written is not None
        # A lookup is a hit exactly when the similarity reaches the threshold.
        assert (await semantic.alookup(prompt, LLM_A) is not None) is hit, prompt
    assert semantic.stats() == CacheStats(hits=3, misses=3, writes=1)


async def test_nearest_honours_every_filter_but_the_threshold(
    async_client: AsyncElasticsearch, index_name: str, embedding: TableEmbeddings
) -> None:
    clock = FakeClock()
    scoped = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, namespace="a", ttl=60, clock=clock
    )
    other = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, namespace="b"
    )
    await other.aupdate(FRANCE, LLM_A, answer("other namespace"))
    await scoped.aupdate(SPAIN, LLM_A, answer("Madrid"))
    await scoped.aupdate(FRANCE, LLM_B, answer("other model"))
    nearest = await scoped.anearest(FRANCE, LLM_A)
    assert nearest is not None
    assert nearest.prompt == SPAIN  # not the nearer entries of b or of LLM_B
    assert nearest.similarity == pytest.approx(0.6, abs=1e-6)
    clock.advance(seconds=61)
    assert await scoped.anearest(FRANCE, LLM_A) is None  # expired
    assert await scoped.anearest(FRANCE, "model=c") is None


async def test_nearest_without_a_stored_prompt(
    async_client: AsyncElasticsearch, index_name: str, embedding: TableEmbeddings
) -> None:
    cache = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, store_input=False
    )
    await cache.aupdate(FRANCE, LLM_A, answer("Paris"))
    nearest = await cache.anearest(PARAPHRASE, LLM_A)
    assert nearest is not None
    assert nearest.prompt is None and nearest.text is None
    assert nearest.similarity == pytest.approx(12 / 13, abs=1e-6)


async def test_nearest_of_a_chat_prompt(
    semantic: AsyncElasticsearchSemanticCache,
) -> None:
    model = CountingChatModel(cache=semantic)
    await model.ainvoke(FRANCE)
    # The prompt and llm_string as LangChain hands them to a cache.
    prompt = dumps([HumanMessage(content=PARAPHRASE)])
    nearest = await semantic.anearest(prompt, model._get_llm_string())
    assert nearest is not None
    assert nearest.text == FRANCE  # the embedded text, not the JSON prompt
    assert nearest.prompt == dumps([HumanMessage(content=FRANCE)])
    assert nearest.similarity == pytest.approx(12 / 13, abs=1e-6)


async def test_nearest_errors_follow_on_error(
    es_conn: es_server.Connection, index_name: str, embedding: TableEmbeddings
) -> None:
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": "wrong",
    }
    async with AsyncElasticsearchSemanticCache(
        index_name, embedding, on_error="warn", **settings
    ) as warn:
        assert await warn.anearest(FRANCE, LLM_A) is None
        assert warn.stats() == CacheStats(errors=1)
    async with AsyncElasticsearchSemanticCache(
        index_name, embedding, **settings
    ) as strict:
        with pytest.raises(CacheError, match="cache nearest on index"):
            await strict.anearest(FRANCE, LLM_A)
        with pytest.raises(TypeError, match="prompt must be a str"):
            await strict.anearest(None, LLM_A)  # type: ignore[arg-type]


async def test_tokens_saved_by_semantic_hits(
    semantic: AsyncElasticsearchSemanticCache,
) -> None:
    model = CountingChatModel(cache=semantic)
    await model.ainvoke(FRANCE)
    await model.ainvoke(PARAPHRASE)
    await model.ainvoke(SHOUTED)
    assert model.calls == 1
    # CountingChatModel reports 13 tokens an answer.
    assert semantic.stats() == CacheStats(hits=2, misses=1, writes=1, tokens_saved=26)


# --- index, documents, errors -----------------------------------------------


async def test_mapping_and_document(
    async_client: AsyncElasticsearch,
    admin: Elasticsearch,
    index_name: str,
    embedding: TableEmbeddings,
) -> None:
    cache = AsyncElasticsearchSemanticCache(
        index_name, embedding, client=async_client, metadata={"team": "search"}
    )
    assert cache.dimensions is None
    await cache.aupdate(FRANCE, LLM_A, answer("Paris"))
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


async def test_given_dimensions_prepare_the_index_before_any_write(
    async_client: AsyncElasticsearch, admin: Elasticsearch, index_name: str
) -> None:
    cache = AsyncElasticsearchSemanticCache(
        index_name,
        TableEmbeddings({"two": [1.0, 2.0]}),
        client=async_client,
        dimensions=3,
    )
    assert await cache.is_alias() is False
    mapping = admin.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"]["llm_input_vector"]["dims"] == 3
    with pytest.raises(ValueError, match=r"returned 2 dimensions.*have 3"):
        await cache.aupdate("two", LLM_A, answer("x"))
    with pytest.raises(ValueError, match=r"returned 2 dimensions.*have 3"):
        await cache.alookup("two", LLM_A)
    assert count(admin, index_name) == 0


async def test_a_model_of_other_dimensions_fails_open_with_warn(
    semantic: AsyncElasticsearchSemanticCache,
    async_client: AsyncElasticsearch,
    index_name: str,
) -> None:
    await semantic.aupdate(FRANCE, LLM_A, answer("Paris"))
    other_model = TableEmbeddings({FRANCE: [1.0, 0.0]})
    warn = AsyncElasticsearchSemanticCache(
        index_name, other_model, client=async_client, on_error="warn"
    )
    assert await warn.alookup(FRANCE, LLM_A) is None
    assert warn.stats() == CacheStats(errors=1)
    strict = AsyncElasticsearchSemanticCache(
        index_name, other_model, client=async_client
    )
    with pytest.raises(CacheError, match="cache lookup on index"):
        await strict.alookup(FRANCE, LLM_A)


async def test_wrong_password_fails_open(
    es_conn: es_server.Connection, index_name: str, embedding: TableEmbeddings
) -> None:
    settings: dict[str, Any] = {
        "es_url": es_conn.url,
        "es_user": "elastic",
        "es_password": "definitely-wrong-password",
    }
    async with AsyncElasticsearchSemanticCache(
        index_name, embedding, on_error="warn", **settings
    ) as cache:
        await cache.aupdate(FRANCE, LLM_A, answer("lost"))
        assert await cache.alookup(FRANCE, LLM_A) is None
        assert cache.stats() == CacheStats(errors=2)


async def test_own_client_from_api_key(
    api_key_settings: dict[str, Any], index_name: str, embedding: TableEmbeddings
) -> None:
    async with AsyncElasticsearchSemanticCache(
        index_name, embedding, **api_key_settings
    ) as cache:
        await cache.aupdate(FRANCE, LLM_A, answer("Paris"))
        assert await cache.alookup(PARAPHRASE, LLM_A) == answer("Paris")


async def test_zero_vector_is_refused_before_any_request(
    semantic: AsyncElasticsearchSemanticCache,
) -> None:
    semantic._embedding = TableEmbeddings({"nothing": [0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match="zero vector"):
        await semantic.aupdate("nothing", LLM_A, answer("x"))
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
async def test_validation_at_construction(
    async_client: AsyncElasticsearch,
    embedding: TableEmbeddings,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        AsyncElasticsearchSemanticCache(
            "semantic", embedding, client=async_client, **kwargs
        )


async def test_embedding_must_be_an_embeddings(
    async_client: AsyncElasticsearch,
) -> None:
    with pytest.raises(TypeError, match="embedding must be a langchain_core"):
        AsyncElasticsearchSemanticCache(
            "semantic",
            lambda text: [1.0],  # type: ignore[arg-type]
            client=async_client,
        )
