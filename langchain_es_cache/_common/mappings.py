"""The index mappings of the caches and the fields their lookups read."""

from __future__ import annotations

from typing import Any

METADATA_STRINGS_AS_KEYWORDS = {
    "metadata_strings": {
        "path_match": "metadata.*",
        "match_mapping_type": "string",
        "mapping": {"type": "keyword"},
    }
}
"""Strings in `metadata` are exact values, so that ``clear(metadata=...)`` can match."""


METADATA_RULES: dict[str, Any] = {
    # A string is never guessed to be a date: a date-like first value would make
    # its field a date, refusing every later string of the field.
    "date_detection": False,
    "dynamic_templates": [METADATA_STRINGS_AS_KEYWORDS],
}
"""How a cache index maps the fields of `metadata` it has not seen before."""


ENTRY_FIELDS: dict[str, Any] = {
    "metadata": {"type": "object"},
    "timestamp": {"type": "date"},
}
"""The fields of every cache's entries: the cache's `metadata` and the write time."""


LLM_CACHE_MAPPING: dict[str, Any] = {
    **METADATA_RULES,
    "properties": {
        "llm_output": {"type": "text", "index": False},
        "llm_params": {"type": "text", "index": False},
        "llm_input": {"type": "text", "index": False},
        **ENTRY_FIELDS,
        "namespace": {"type": "keyword"},
        "llm_string_hash": {"type": "keyword"},
    },
}
"""The reference's fields and types, plus what namespaces and filtered clear need."""


LOOKUP_FIELDS = ["llm_output", "timestamp"]
"""The only fields a lookup fetches: the answer, and its age to pick the newest."""


EMBEDDINGS_CACHE_MAPPING: dict[str, Any] = {
    "date_detection": False,  # as in LLM_CACHE_MAPPING
    "properties": {
        "text_input": {"type": "text", "index": False},
        "key_prefix": {"type": "keyword"},
        "vector_dump": {"type": "binary"},  # no doc_values: the default
        **ENTRY_FIELDS,
        "namespace": {"type": "keyword"},
    },
}
"""The reference's fields, plus ``key_prefix`` so ``yield_keys(prefix=)`` filters
in the cluster (the key's first `KEY_PREFIX_CHARS` characters: a keyword term
must stay under Lucene's 32 KB limit whatever the key's length)."""


EMBEDDING_LOOKUP_FIELDS = ["vector_dump", "timestamp"]
"""The only fields an embeddings lookup fetches."""


KEY_PREFIX_CHARS = 256
"""Indexed length of a key: at most 1 KB in UTF-8, far below the term limit."""


SEMANTIC_VECTOR_FIELD = "llm_input_vector"
"""The ``dense_vector`` field holding the prompt's embedding."""


MAX_DIMENSIONS = 4096
"""The most dimensions Elasticsearch indexes in a ``dense_vector``."""


def semantic_mapping(dimensions: int | None) -> dict[str, Any]:
    """The semantic cache's mapping: the LLM cache's fields plus the prompt's vector.

    Cosine similarity over unquantized HNSW (``index_options`` ``hnsw``): the
    scores are those of the float vectors, so the threshold means what it says
    (the default ``int8_hnsw``/``bbq_hnsw`` quantize and shift scores). Without
    `dimensions`, Elasticsearch takes them from the first stored vector.
    """
    vector: dict[str, Any] = {
        "type": "dense_vector",
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": "hnsw"},
    }
    if dimensions is not None:
        vector["dims"] = dimensions
    return {
        **LLM_CACHE_MAPPING,
        "properties": {
            **LLM_CACHE_MAPPING["properties"],
            SEMANTIC_VECTOR_FIELD: vector,
        },
    }
