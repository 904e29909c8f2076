"""The semantic cache's nearest entry, for tuning its threshold: pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_es_cache._common.documents import parse_timestamp
from langchain_es_cache._common.prompts import prompt_text
from langchain_es_cache.types import NearestEntry

NEAREST_FIELDS = ["llm_input", "timestamp"]
"""What `nearest` fetches of the entry it finds."""


def cosine_from_score(score: float) -> float:
    """The cosine similarity behind a kNN ``_score`` on a cosine vector field.

    Elasticsearch scores cosine as ``(1 + cosine) / 2``, to keep scores
    positive; this inverts it (clamped, as the score is a float32).
    """
    return max(-1.0, min(1.0, 2.0 * score - 1.0))


def nearest_entry(hit: Mapping[str, Any]) -> NearestEntry:
    """The `NearestEntry` of a kNN hit fetched with `NEAREST_FIELDS`."""
    source = hit.get("_source") or {}
    prompt = source.get("llm_input")
    prompt = prompt if isinstance(prompt, str) else None
    return NearestEntry(
        similarity=cosine_from_score(float(hit["_score"])),
        prompt=prompt,
        text=None if prompt is None else prompt_text(prompt),
        written=parse_timestamp(source),
    )
