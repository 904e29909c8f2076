"""The semantic LLM cache: prompts worded differently share an entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import NotFoundError
from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.embeddings import Embeddings
from typing_extensions import Unpack

from langchain_es_cache._async.llm import AsyncLLMCacheIndex, AsyncLLMOptions
from langchain_es_cache._common.documents import (
    parse_generations,
)
from langchain_es_cache._common.failures import ES_ERRORS
from langchain_es_cache._common.keys import llm_key
from langchain_es_cache._common.lifecycle import KNN_COPIES, newest_copy
from langchain_es_cache._common.mappings import (
    LOOKUP_FIELDS,
    SEMANTIC_VECTOR_FIELD,
    semantic_mapping,
)
from langchain_es_cache._common.nearest import (
    NEAREST_FIELDS,
    nearest_entry,
)
from langchain_es_cache._common.prompts import prompt_text
from langchain_es_cache._common.queries import (
    DEFAULT_SIMILARITY_THRESHOLD,
    semantic_knn,
)
from langchain_es_cache._common.state import RefreshTracker
from langchain_es_cache._common.usage import tokens_of
from langchain_es_cache._common.validation import (
    require_str,
    validate_dimensions,
    validate_embedding,
    validate_similarity_threshold,
)
from langchain_es_cache._twins import AsyncBaseCache
from langchain_es_cache.types import NearestEntry


class AsyncElasticsearchSemanticCache(AsyncLLMCacheIndex, AsyncBaseCache):
    """LangChain LLM cache that also answers prompts worded differently.

    Each entry stores the prompt's embedding in a cosine ``dense_vector``; a
    lookup embeds the prompt and runs one kNN search for the nearest entry of
    the same model (``llm_string``) and namespace, filtered inside the search,
    whose cosine similarity is at least `similarity_threshold`. Entries have
    the exact cache's ids (`langchain_es_cache._common.keys.llm_key`), so the same
    prompt under two models is two entries, and an update overwrites its own.
    Behind an alias, where an entry may have a copy in each index, the newest
    copy of the nearest entry wins.

    kNN search reads refreshed data only: a lookup first refreshes the index if
    this object wrote since its last refresh, so its own writes are found at
    once; writes by other processes are found after the index's refresh
    interval (one second by default).
    """

    MAPPING = semantic_mapping(None)

    def __init__(
        self,
        index_name: str,
        embedding: Embeddings,
        *,
        similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD,
        dimensions: int | None = None,
        **options: Unpack[AsyncLLMOptions],
    ) -> None:
        """Validate the settings; no request is sent until first use.

        Args:
            index_name: Index or alias holding the cache; created on first write.
            embedding: Any LangChain `Embeddings`; prompts go to its
                ``aembed_query`` (``embed_query`` in the sync class).
            similarity_threshold: Least cosine similarity, from -1 to 1, between
                a prompt and a cached prompt for a hit (1: same direction).
            dimensions: Length of the embeddings; by default, taken from the
                first one. Every embedding is checked against it.
            **options: What to store, `single_flight` (on the exact key), the
                connection and the options every class takes: see
                `AsyncLLMOptions`.
        """
        if not isinstance(embedding, Embeddings):
            raise TypeError(
                "embedding must be a langchain_core.embeddings.Embeddings, "
                f"not {type(embedding).__name__}"
            )
        super().__init__(index_name, options)
        self._embedding = embedding
        self._threshold = validate_similarity_threshold(similarity_threshold)
        self._dimensions = validate_dimensions(dimensions)
        self._refreshes = RefreshTracker()

    @property
    def similarity_threshold(self) -> float:
        """The least cosine similarity, in [-1, 1], of a hit."""
        return self._threshold

    @property
    def dimensions(self) -> int | None:
        """The length of the embeddings: given, or learnt from the first one."""
        return self._dimensions

    def _mappings(self, mappings: dict[str, Any]) -> dict[str, Any]:
        """The semantic mapping, with ``dims`` once `dimensions` are known, and
        the LLM caches' additions."""
        return super()._mappings(semantic_mapping(self._dimensions))

    async def _embed(self, prompt: str) -> list[float]:
        """The embedding of the prompt's text (`prompt_text`), checked;
        the first one fixes `dimensions`."""
        vector = validate_embedding(
            await self._embedding.aembed_query(prompt_text(prompt)),
            self._dimensions,
        )
        if self._dimensions is None:
            self._dimensions = len(vector)
        return vector

    def build_document(
        self,
        prompt: str,
        llm_string: str,
        return_val: RETURN_VAL_TYPE,
        vector: list[float],
    ) -> dict[str, Any]:
        """Return the document that `aupdate` stores: the exact cache's, plus
        the prompt's embedding `vector` in ``llm_input_vector``."""
        document = self._llm_document(prompt, llm_string, return_val)
        document[SEMANTIC_VECTOR_FIELD] = vector
        return document

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Return the generations cached for the nearest prompt of this model
        at or above the threshold, or `None`.

        The embedding model's errors are raised as they are; `on_error`
        applies to Elasticsearch's. While the circuit breaker is open, the
        prompt is not even embedded.
        """
        require_str("prompt", prompt)
        require_str("llm_string", llm_string)
        try:
            with self._gate("lookup", timed=True) as stopwatch:
                vector = await self._embed(prompt)
                knn = self._knn(vector, llm_string, threshold=self._threshold)
                if self._flights is not None and self._is_alias is None:
                    # A miss claims the key, which needs the index prepared:
                    # prepared first, the claim follows the search at once,
                    # leaving an answer written meanwhile little time to
                    # come between them.
                    await self.is_alias()
                stopwatch.restart()  # the model's time is not the cluster's
                hit = await self._search(knn)
        except ES_ERRORS as exc:
            self._outcomes.failed("lookup", exc)
            return None
        found = None
        if hit is not None:
            found = parse_generations(
                hit.get("_source"), index=self._index_name, key=str(hit.get("_id"))
            )
        if found is None and self._flights is not None:
            # Callers of the same exact key wait for one claimer's answer.
            key = llm_key(prompt, llm_string, self._namespace)
            return await self._coalesce(key)
        self._outcomes.count("misses" if found is None else "hits")
        if found is not None:
            self._outcomes.count("tokens_saved", tokens_of(found))
        return found

    async def anearest(self, prompt: str, llm_string: str) -> NearestEntry | None:
        """The entry nearest to `prompt` that a lookup could return, whatever
        its similarity: for measuring paraphrases and near misses.

        Every condition of a hit but the threshold applies: the same
        `llm_string`, the namespace, younger than `ttl`. Returns its cosine
        similarity to `prompt` and its stored prompt, or `None` when no entry
        qualifies; a lookup of `prompt` is a hit when that similarity is at
        least `similarity_threshold`. Not counted in `stats`.
        """
        require_str("prompt", prompt)
        require_str("llm_string", llm_string)
        try:
            with self._gate("nearest"):
                vector = await self._embed(prompt)
                knn = self._knn(vector, llm_string, threshold=None)
                hit = await self._search(knn, NEAREST_FIELDS)
        except ES_ERRORS as exc:
            self._outcomes.failed("nearest", exc)
            return None
        return None if hit is None else nearest_entry(hit)

    def _knn(
        self, vector: list[float], llm_string: str, *, threshold: float | None
    ) -> dict[str, Any]:
        """The kNN search for this model's nearest live entry of the namespace,
        at least `threshold` similar to `vector` (any, with `None`)."""
        return semantic_knn(
            vector,
            llm_string,
            namespace=self._namespace,
            threshold=threshold,
            ttl=self._ttl,
            now=self._clock(),
        )

    async def _search(
        self, knn: dict[str, Any], fields: list[str] = LOOKUP_FIELDS
    ) -> Mapping[str, Any] | None:
        """The newest copy of the nearest matching entry, with `fields` of its
        source, after making this object's writes visible.

        Behind an alias an entry may have a copy in each index, with equal
        vectors: the search asks for a few hits and keeps the newest copy of
        the nearest entry, as the exact cache's lookups do. A shard that is
        starting is waited for (`_search_started`).
        """
        try:
            if not await self._refresh_for_search(self._refreshes):
                return None
            response = await self._search_started(
                index=self._index_name,
                knn={**knn, "k": KNN_COPIES},
                source_includes=fields,
                size=KNN_COPIES,
            )
        except NotFoundError:
            # No index yet (nothing was ever written), or it was deleted during
            # the search (its search context is gone): nothing is found.
            return None
        hit, more = newest_copy(response["hits"]["hits"])
        if hit is None or not more:
            return hit
        # Every hit is a copy of the entry: read them all, keep the newest.
        key = str(hit.get("_id"))
        source = (await self._realtime_read([key], fields)).get(key)
        if source is None:
            return hit
        return {"_id": key, "_score": hit.get("_score"), "_source": source}

    async def aupdate(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> None:
        """Store `return_val` as the answer for `prompt` and `llm_string`.

        The embedding model's errors are raised as they are; `on_error`
        applies to Elasticsearch's. While the circuit breaker is open, the
        prompt is not even embedded.
        """
        # Checks the arguments before anything is embedded or sent.
        document = self._llm_document(prompt, llm_string, return_val)
        if self._skipped("update"):
            return
        document[SEMANTIC_VECTOR_FIELD] = await self._embed(prompt)
        doc_id = llm_key(prompt, llm_string, self._namespace)
        if await self._store_answer(doc_id, document):
            self._refreshes.wrote()

    def _deleted(self) -> None:
        # The deletes must be invisible to the next kNN search too.
        self._refreshes.wrote()
