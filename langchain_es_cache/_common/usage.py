"""Token usage of cached answers, for ``CacheStats.tokens_saved``: pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from langchain_core.outputs import Generation


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def tokens_of(generations: Iterable[Generation]) -> int:
    """The tokens the model spent on these generations, from ``usage_metadata``.

    A chat generation's message carries its usage (``total_tokens``, else input
    plus output); a plain text generation carries none and counts 0.
    """
    total = 0
    for generation in generations:
        usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
        if not isinstance(usage, dict):
            continue
        spent = _count(usage.get("total_tokens"))
        if not spent:
            spent = _count(usage.get("input_tokens")) + _count(
                usage.get("output_tokens")
            )
        total += spent
    return total
