"""The types in the caches' public signatures, and their statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

Refresh = bool | Literal["wait_for"]


Clock = Callable[[], datetime]


OnError = Literal["raise", "warn"]


@dataclass(frozen=True)
class CacheStats:
    """Counts since the cache was constructed."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: int = 0
    coalesced: int = 0
    """Hits answered by waiting for another caller's answer (`single_flight`)."""
    tokens_saved: int = 0
    """Tokens (``usage_metadata``) of the answers the LLM caches served, which
    the model did not spend again."""


@dataclass(frozen=True)
class NearestEntry:
    """The cached entry nearest to a prompt, with its cosine similarity to it.

    ``similarity`` is a cosine in [-1, 1], the quantity `similarity_threshold`
    is compared with; ``prompt`` is the entry's stored prompt and ``text`` what
    was embedded for it (both `None` when it was written with
    ``store_input=False``); ``written`` is when it was stored.
    """

    similarity: float
    prompt: str | None
    text: str | None
    written: datetime | None


@dataclass
class MigrationReport:
    """What a migration did (or, with ``dry_run``, would do), entry by entry.

    ``created``, ``updated`` and ``unchanged`` (DEST already had the entry, as
    new or newer) count re-keyed entries; ``no_input`` (stored without its
    key's input), ``mismatched`` (stored input does not give back the id),
    ``unreadable`` and ``other_kind`` count source documents not copied;
    ``failed`` counts writes Elasticsearch refused; ``without_timestamp``
    counts entries copied without a time. ``examples`` holds a few source ids
    (DEST ids for ``failed``) with the reason, per count.
    """

    EXAMPLES_KEPT: ClassVar[int] = 5

    source: str
    dest: str
    kind: Literal["llm", "embeddings"] | None
    dry_run: bool
    scanned: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    no_input: int = 0
    mismatched: int = 0
    unreadable: int = 0
    other_kind: int = 0
    failed: int = 0
    without_timestamp: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        """Source documents not copied (failed writes aside)."""
        return self.no_input + self.mismatched + self.unreadable + self.other_kind

    def note(self, reason: str, example: str) -> None:
        """Count one document under `reason`, keeping a few examples."""
        setattr(self, reason, getattr(self, reason) + 1)
        kept = self.examples.setdefault(reason, [])
        if len(kept) < self.EXAMPLES_KEPT:
            kept.append(example)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with ``skipped``."""
        return {**asdict(self), "skipped": self.skipped}
