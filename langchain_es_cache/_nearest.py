"""The semantic cache's nearest entry, for tuning its threshold: pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from langchain_es_cache import _common

NEAREST_FIELDS = ["llm_input", "timestamp"]
"""What `nearest` fetches of the entry it finds."""


@dataclass(frozen=True)
class NearestEntry:
    """The cached entry nearest to a prompt, with its cosine similarity to it.

    ``similarity`` is a cosine in [-1, 1], the quantity `similarity_threshold`
    is compared with; ``prompt`` is the entry's stored prompt (`None` when it
    was written with ``store_input=False``); ``written`` is when it was stored.
    """

    similarity: float
    prompt: str | None
    written: datetime | None

    @property
    def text(self) -> str | None:
        """The text that was embedded for ``prompt`` (a chat prompt's messages)."""
        return None if self.prompt is None else _common.prompt_text(self.prompt)


def nearest_knn(
    vector: list[float],
    llm_string: str,
    *,
    namespace: str | None,
    ttl: timedelta | None,
    now: datetime,
) -> dict[str, Any]:
    """The lookup's kNN search (`_common.semantic_knn`) without the threshold."""
    knn = _common.semantic_knn(
        vector, llm_string, namespace=namespace, threshold=-1.0, ttl=ttl, now=now
    )
    del knn["similarity"]
    return knn


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
    return NearestEntry(
        similarity=cosine_from_score(float(hit["_score"])),
        prompt=prompt if isinstance(prompt, str) else None,
        written=_common.parse_timestamp(source),
    )
