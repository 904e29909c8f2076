"""The semantic cache with a real embedding model, offline: ``nox -s semantic_model``.

WordLlama ships its small model (``l2_supercat``, 256 dimensions, NumPy only)
inside the wheel; it runs here with no network. Skipped where the package is not
installed (the ``semantic-model`` extra).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from langchain_core.embeddings import Embeddings
from langchain_core.outputs import Generation

from langchain_es_cache import (
    AsyncElasticsearchSemanticCache,
    ElasticsearchSemanticCache,
)
from tests.models import CountingChatModel
from utils import es_server

wordllama = pytest.importorskip(
    "wordllama", reason="needs the semantic-model extra: nox -s semantic_model"
)

FRANCE = "What is the capital of France?"
PARAPHRASE = "Tell me France's capital city."
SPAIN = "What is the capital of Spain?"
LLM = "model=counting-1"


class WordLlamaEmbeddings(Embeddings):
    """LangChain embeddings from the model inside the wordllama wheel, offline."""

    def __init__(self) -> None:
        package = Path(wordllama.__file__).parent
        # cache_dir: the wheel keeps the tokenizer under <package>/tokenizers,
        # where load() looks only in a cache directory; never download.
        self.model = wordllama.WordLlama.load(cache_dir=package, disable_download=True)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.model.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


@pytest.fixture(scope="module")
def model() -> WordLlamaEmbeddings:
    return WordLlamaEmbeddings()


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_model_similarities(model: WordLlamaEmbeddings) -> None:
    france, paraphrase, spain = (
        model.embed_query(t) for t in (FRANCE, PARAPHRASE, SPAIN)
    )
    assert len(france) == 256
    similar, different = cosine(france, paraphrase), cosine(france, spain)
    print(f"\ncosine({FRANCE!r}, {PARAPHRASE!r}) = {similar:.4f}")
    print(f"cosine({FRANCE!r}, {SPAIN!r}) = {different:.4f}")
    defaults = ElasticsearchSemanticCache.__init__.__kwdefaults__ or {}
    default = defaults["similarity_threshold"]
    assert similar >= default > different


def test_paraphrase_hits_and_another_question_misses(
    model: WordLlamaEmbeddings, admin: Elasticsearch, index_name: str
) -> None:
    cache = ElasticsearchSemanticCache(index_name, model, client=admin)
    cache.update(FRANCE, LLM, [Generation(text="Paris")])
    assert cache.lookup(PARAPHRASE, LLM) == [Generation(text="Paris")]
    assert cache.lookup(SPAIN, LLM) is None
    assert cache.lookup(FRANCE, "model=other") is None


def test_chat_model_answers_a_paraphrase_from_the_cache(
    model: WordLlamaEmbeddings, admin: Elasticsearch, index_name: str
) -> None:
    chat = CountingChatModel(
        cache=ElasticsearchSemanticCache(index_name, model, client=admin)
    )
    first = chat.invoke(FRANCE)
    second = chat.invoke(PARAPHRASE)
    assert chat.calls == 1
    assert second.content == first.content
    chat.invoke(SPAIN)
    assert chat.calls == 2


async def test_async_class(
    model: WordLlamaEmbeddings, es_conn: es_server.Connection, index_name: str
) -> None:
    async with AsyncElasticsearch(es_conn.url, **es_conn.client_auth()) as client:
        cache = AsyncElasticsearchSemanticCache(index_name, model, client=client)
        chat = CountingChatModel(cache=cache)
        await chat.ainvoke(FRANCE)
        await chat.ainvoke(PARAPHRASE)
        await chat.ainvoke(SPAIN)
        assert chat.calls == 2


def test_nearest_measures_the_models_similarity(
    model: WordLlamaEmbeddings, admin: Elasticsearch, index_name: str
) -> None:
    """`nearest` gives the model's own cosine, hit or not (the README's figures)."""
    cache = ElasticsearchSemanticCache(index_name, model, client=admin)
    cache.update(FRANCE, LLM, [Generation(text="Paris")])
    france = model.embed_query(FRANCE)
    for prompt in (PARAPHRASE, SPAIN):
        nearest = cache.nearest(prompt, LLM)
        assert nearest is not None and nearest.prompt == FRANCE
        print(f"\nnearest({prompt!r}).similarity = {nearest.similarity:.4f}")
        # float32 vectors and score in the cluster: equal to about 1e-6.
        expected = cosine(france, model.embed_query(prompt))
        assert nearest.similarity == pytest.approx(expected, abs=1e-5)
        hit = cache.lookup(prompt, LLM) is not None
        assert hit is (nearest.similarity >= cache.similarity_threshold)
