"""The queries the caches send: clear, purge, key listing and kNN lookups."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from langchain_es_cache._common.documents import format_time
from langchain_es_cache._common.keys import llm_string_hash
from langchain_es_cache._common.mappings import KEY_PREFIX_CHARS, SEMANTIC_VECTOR_FIELD
from langchain_es_cache._common.validation import (
    check_keywords,
    metadata_filter_terms,
    validate_ttl,
)


def namespace_filter(namespace: str | None) -> dict[str, Any]:
    """The query clause selecting a namespace's entries (or those without one)."""
    if namespace is None:
        return {"bool": {"must_not": {"exists": {"field": "namespace"}}}}
    return {"term": {"namespace": namespace}}


def older_than_filter(cutoff: datetime) -> dict[str, Any]:
    """The query clause selecting entries written before `cutoff`."""
    return {"range": {"timestamp": {"lt": format_time(cutoff)}}}


def purge_query(namespace: str | None, cutoff: datetime) -> dict[str, Any]:
    """The query selecting the namespace's entries written before `cutoff`."""
    return {
        "bool": {"filter": [namespace_filter(namespace), older_than_filter(cutoff)]}
    }


CLEAR_FILTERS = ("llm_string", "metadata", "older_than")


def clear_query(
    filters: Mapping[str, Any], *, namespace: str | None, now: datetime
) -> dict[str, Any]:
    """Return the query selecting what ``clear(**filters)`` deletes.

    Accepted filters, all optional and combined with AND:
    ``llm_string`` (entries of that model configuration), ``older_than``
    (seconds or `timedelta`: entries written longer ago), ``metadata`` (a dict:
    entries whose stored metadata has each of these values; never empty, see
    `metadata_filter_terms`). Always limited to the cache's own namespace.
    """
    check_keywords("clear", filters, CLEAR_FILTERS)
    # A filter given as None would silently widen the clear to everything.
    for name, value in filters.items():
        if value is None:
            raise TypeError(f"clear({name}=None): leave the filter out instead")
    clauses = [namespace_filter(namespace)]
    if "llm_string" in filters:
        llm_string = filters["llm_string"]
        if not isinstance(llm_string, str):
            raise TypeError("clear(llm_string=...) must be a str")
        clauses.append({"term": {"llm_string_hash": llm_string_hash(llm_string)}})
    if "older_than" in filters:
        age = validate_ttl(filters["older_than"], "older_than")
        assert age is not None
        clauses.append(older_than_filter(now - age))
    if "metadata" in filters:
        terms = metadata_filter_terms(filters["metadata"])
        clauses.extend({"term": {field: value}} for field, value in terms)
    return {"bool": {"filter": clauses}}


def fresh_filter(ttl: timedelta, now: datetime) -> dict[str, Any]:
    """The query clause selecting entries `is_expired` keeps: written at or after
    ``now - ttl``, rounded up to the millisecond that ``timestamp`` stores."""
    cutoff = now - ttl
    if cutoff.microsecond % 1000:
        cutoff += timedelta(microseconds=1000 - cutoff.microsecond % 1000)
    return {"range": {"timestamp": {"gte": format_time(cutoff)}}}


def stored_keys_query(
    prefix: str | None,
    namespace: str | None,
    *,
    ttl: timedelta | None,
    now: datetime,
) -> dict[str, Any]:
    """The query selecting a namespace's stored keys starting with `prefix`,
    of entries not expired under `ttl` at `now` (as `mget` sees them)."""
    clauses: list[dict[str, Any]] = [
        namespace_filter(namespace),
        {"exists": {"field": "key_prefix"}},
    ]
    if ttl is not None:
        clauses.append(fresh_filter(ttl, now))
    if prefix:
        clauses.append({"prefix": {"key_prefix": prefix[:KEY_PREFIX_CHARS]}})
    return {"bool": {"filter": clauses}}


DEFAULT_SIMILARITY_THRESHOLD = 0.8
"""Default minimum cosine similarity, in [-1, 1], between a prompt and a cached one."""


KNN_NUM_CANDIDATES = 100
"""Candidates the kNN search considers per shard before keeping the nearest."""


FLOAT32_ROUNDOFF = 2.0**-24
"""float32's unit roundoff: the largest relative error of one rounding."""


def knn_similarity(threshold: float, dimensions: int) -> float:
    """The kNN ``similarity`` for `threshold`, lowered by a bound on the rounding
    error of Elasticsearch's float32 cosine: ``(dimensions + 32) * 2**-24``.

    Elasticsearch normalizes both vectors and sums `dimensions` products in
    float32, so an identical vector can score a few units of roundoff below 1
    (measured: up to 4 units with 2 to 32 dimensions, 433 with 4096); the 32
    covers the normalization and the score's own rounding. Without it an
    identical prompt misses at a threshold of 1. Never below -1.
    """
    return max(-1.0, threshold - (dimensions + 32) * FLOAT32_ROUNDOFF)


def semantic_knn(
    vector: list[float],
    llm_string: str,
    *,
    namespace: str | None,
    threshold: float | None,
    ttl: timedelta | None,
    now: datetime,
) -> dict[str, Any]:
    """The kNN search finding the nearest entry of this model that counts as a hit.

    Every condition of a hit is a filter *inside* the kNN search: the model
    (``llm_string_hash``), the namespace, the age (`ttl`) and the threshold
    (``similarity`` is the raw cosine, not the score, less its rounding error:
    `knn_similarity`). A nearer entry of another model, namespace or age can
    never take the one place of a valid entry. With `threshold` `None`, every
    condition but the threshold (for `nearest`).
    """
    filters = [
        {"term": {"llm_string_hash": llm_string_hash(llm_string)}},
        namespace_filter(namespace),
    ]
    if ttl is not None:
        filters.append({"range": {"timestamp": {"gte": format_time(now - ttl)}}})
    knn: dict[str, Any] = {
        "field": SEMANTIC_VECTOR_FIELD,
        "query_vector": vector,
        "k": 1,
        "num_candidates": KNN_NUM_CANDIDATES,
        "filter": filters,
    }
    if threshold is not None:
        knn["similarity"] = knn_similarity(threshold, len(vector))
    return knn
