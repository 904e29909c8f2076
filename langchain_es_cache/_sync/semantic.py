# Generated from langchain_es_cache/_async/semantic.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The semantic LLM cache, written once as async code; the sync twin is generated."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.embeddings import Embeddings

from langchain_es_cache import _common
from langchain_es_cache._breaker import DEFAULT_BREAKER, BreakerSettings
from langchain_es_cache._common import Clock, OnError
from langchain_es_cache._sync.index import CacheIndex
from langchain_es_cache._twins import BaseCache


class ElasticsearchSemanticCache(CacheIndex, BaseCache):
    """LangChain LLM cache that also answers prompts worded differently.

    Each entry stores the prompt's embedding in a cosine ``dense_vector``; a
    lookup embeds the prompt and runs one kNN search for the nearest entry of
    the same model (``llm_string``) and namespace, filtered inside the search,
    whose cosine similarity is at least `similarity_threshold`. Entries have
    the exact cache's ids (`langchain_es_cache._common.llm_key`), so the same
    prompt under two models is two entries, and an update overwrites its own.

    kNN search reads refreshed data only: a lookup first refreshes the index if
    this object wrote since its last refresh, so its own writes are found at
    once; writes by other processes are found after the index's refresh
    interval (one second by default).
    """

    MAPPING = _common.semantic_mapping(None)

    def __init__(
        self,
        index_name: str,
        embedding: Embeddings,
        *,
        similarity_threshold: float = _common.DEFAULT_SIMILARITY_THRESHOLD,
        dimensions: int | None = None,
        store_input: bool = True,
        store_input_params: bool = True,
        metadata: dict[str, Any] | None = None,
        client: Elasticsearch | None = None,
        es_url: str | None = None,
        es_cloud_id: str | None = None,
        es_user: str | None = None,
        es_api_key: str | None = None,
        es_password: str | None = None,
        namespace: str | None = None,
        ttl: float | timedelta | None = None,
        on_error: OnError = "raise",
        clock: Clock = _common.utc_now,
        breaker: BreakerSettings | None = DEFAULT_BREAKER,
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
            store_input: Store the prompt in ``llm_input``.
            store_input_params: Store the model's parameters in ``llm_params``.
            metadata: JSON-serializable dict stored with every entry.
            client: A client of your own; never closed or changed by the cache.
            es_url: URL of the cluster, when the cache creates its own client.
            es_cloud_id: Elastic Cloud id, instead of `es_url`.
            es_user: User for basic authentication, with `es_password`.
            es_api_key: Encoded API key, instead of user and password.
            es_password: Password for `es_user`.
            namespace: Keeps this cache's entries apart from other caches' in
                the same index: part of the key, a filter of every lookup, and
                the scope of `clear`.
            ttl: Entries older than this (seconds or `timedelta`) are misses.
            on_error: ``"raise"`` a `CacheError` when Elasticsearch fails, or
                ``"warn"``: log it and go on as on a miss.
            clock: Returns the current aware datetime; for tests.
            breaker: The circuit breaker's settings (`BreakerSettings`), or
                `None` for none: after consecutive transport failures the cache
                sends nothing for a cool-down (see the README).
        """
        if not isinstance(embedding, Embeddings):
            raise TypeError(
                "embedding must be a langchain_core.embeddings.Embeddings, "
                f"not {type(embedding).__name__}"
            )
        super().__init__(
            index_name,
            client=client,
            es_url=es_url,
            es_cloud_id=es_cloud_id,
            es_user=es_user,
            es_api_key=es_api_key,
            es_password=es_password,
            store_input=store_input,
            metadata=metadata,
            namespace=namespace,
            ttl=ttl,
            on_error=on_error,
            clock=clock,
            breaker=breaker,
        )
        self._embedding = embedding
        self._threshold = _common.validate_similarity_threshold(similarity_threshold)
        self._dimensions = _common.validate_dimensions(dimensions)
        self._store_input_params = _common.validate_flag(
            "store_input_params", store_input_params
        )
        self._refreshes = _common.RefreshTracker()

    @property
    def similarity_threshold(self) -> float:
        """The least cosine similarity, in [-1, 1], of a hit."""
        return self._threshold

    @property
    def dimensions(self) -> int | None:
        """The length of the embeddings: given, or learnt from the first one."""
        return self._dimensions

    @property
    def mapping(self) -> dict[str, Any]:
        """The index mapping, with ``dims`` once `dimensions` are known."""
        return {"mappings": _common.semantic_mapping(self._dimensions)}

    def _embed(self, prompt: str) -> list[float]:
        """The embedding of the prompt's text (`_common.prompt_text`), checked;
        the first one fixes `dimensions`."""
        vector = _common.validate_embedding(
            self._embedding.embed_query(_common.prompt_text(prompt)),
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
        document[_common.SEMANTIC_VECTOR_FIELD] = vector
        return document

    def _llm_document(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> dict[str, Any]:
        return _common.build_llm_document(
            prompt,
            llm_string,
            return_val,
            store_input=self._store_input,
            store_input_params=self._store_input_params,
            metadata=self._metadata,
            now=self._clock(),
            namespace=self._namespace,
        )

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Return the generations cached for the nearest prompt of this model
        at or above the threshold, or `None`.

        The embedding model's errors are raised as they are; `on_error`
        applies to Elasticsearch's. While the circuit breaker is open, the
        prompt is not even embedded.
        """
        _common.require_str("prompt", prompt)
        _common.require_str("llm_string", llm_string)
        try:
            with self._gate("lookup", timed=True) as stopwatch:
                vector = self._embed(prompt)
                stopwatch.restart()  # the model's time is not the cluster's
                knn = _common.semantic_knn(
                    vector,
                    llm_string,
                    namespace=self._namespace,
                    threshold=self._threshold,
                    ttl=self._ttl,
                    now=self._clock(),
                )
                hit = self._search(knn)
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("lookup", exc)
            return None
        found = None
        if hit is not None:
            found = _common.parse_generations(
                hit.get("_source"), index=self._index_name, key=str(hit.get("_id"))
            )
        self._outcomes.count("misses" if found is None else "hits")
        return found

    def _search(self, knn: dict[str, Any]) -> dict[str, Any] | None:
        """The nearest matching hit, after making this object's writes visible."""
        generation = self._refreshes.pending()
        try:
            if generation is not None:
                self._batch_client.indices.refresh(index=self._index_name)
                self._refreshes.refreshed(generation)
            response = self._client.search(
                index=self._index_name,
                knn=knn,
                source_includes=_common.LOOKUP_FIELDS,
                size=1,
            )
        except NotFoundError as exc:
            # No index yet: nothing was ever written, so nothing is found.
            if _common.is_error_type(exc, "index_not_found_exception"):
                return None
            raise
        hits = response["hits"]["hits"]
        return dict(hits[0]) if hits else None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store `return_val` as the answer for `prompt` and `llm_string`.

        The embedding model's errors are raised as they are; `on_error`
        applies to Elasticsearch's. While the circuit breaker is open, the
        prompt is not even embedded.
        """
        doc_id = _common.llm_key(prompt, llm_string, self._namespace)
        # Checks the arguments before anything is embedded or sent.
        document = self._llm_document(prompt, llm_string, return_val)
        try:
            with self._gate("update", timed=True) as stopwatch:
                document[_common.SEMANTIC_VECTOR_FIELD] = self._embed(prompt)
                stopwatch.restart()  # the model's time is not the cluster's
                self._write(doc_id, document)
        except _common.ES_ERRORS as exc:
            self._outcomes.failed("update", exc)
            return
        self._outcomes.count("writes")
        self._refreshes.wrote()

    def clear(self, **kwargs: Any) -> None:
        """Delete the cache's entries (in its namespace), or those matching filters.

        Filters, combined with AND: ``llm_string=``, ``older_than=`` (seconds or
        `timedelta`), ``metadata=`` (a dict of stored metadata values). Logs how
        many entries were deleted.
        """
        if self._clear(kwargs):
            # The deletes must be invisible to the next kNN search too.
            self._refreshes.wrote()
