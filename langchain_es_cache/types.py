"""The types in the caches' public signatures, and their statistics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
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
    """Lookups answered from the cache (each key of a batch counts)."""
    misses: int = 0
    """Lookups the cache could not answer."""
    writes: int = 0
    """Entries stored."""
    errors: int = 0
    """Operations Elasticsearch failed, raised or (``on_error="warn"``) logged."""
    coalesced: int = 0
    """Hits answered by waiting for another caller's answer (`single_flight`)."""
    tokens_saved: int = 0
    """Tokens (``usage_metadata``) of the answers the LLM caches served, which
    the model did not spend again."""

    skipped: int = 0
    """Operations not sent because the circuit breaker was open."""


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
    """What a migration did (or, with ``dry_run``, would do), entry by entry."""

    EXAMPLES_KEPT: ClassVar[int] = 5

    source: str
    dest: str
    kind: Literal["llm", "embeddings"] | None
    dry_run: bool
    scanned: int = 0
    """Source documents read."""
    created: int = 0
    """Re-keyed entries new to DEST."""
    updated: int = 0
    """Re-keyed entries that replaced an older copy in DEST."""
    unchanged: int = 0
    """Re-keyed entries not written: DEST, or a newer copy in SOURCE, had them
    as new or newer."""
    failed: int = 0
    """Writes Elasticsearch refused."""

    SKIP_REASONS: ClassVar[Mapping[str, str]] = {
        "no_input": "stored without its key's input (cannot be re-keyed)",
        "mismatched": "stored input does not give back the document's id",
        "unreadable": "answer, value or metadata unreadable",
        "other_kind": "not an entry of the migrated kind",
    }
    """Why a source document is not copied: the counts below, and their text."""

    no_input: int = 0
    """Source documents stored without their key's input: never guessed."""
    mismatched: int = 0
    """Source documents whose stored input does not give back their id."""
    unreadable: int = 0
    """Source documents whose answer, vector or metadata cannot be read."""
    other_kind: int = 0
    """Source documents of the other cache's kind."""
    without_timestamp: int = 0
    """Entries copied without a time (a lookup with a ttl treats them as
    expired)."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """A few source ids (DEST ids for ``failed``) with the reason, per count."""

    @property
    def skipped(self) -> int:
        """Source documents not copied (failed writes aside)."""
        return sum(getattr(self, reason) for reason in self.SKIP_REASONS)

    def note(self, reason: str, example: str) -> None:
        """Count one document under `reason`, keeping a few examples."""
        setattr(self, reason, getattr(self, reason) + 1)
        kept = self.examples.setdefault(reason, [])
        if len(kept) < self.EXAMPLES_KEPT:
            kept.append(example)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with ``skipped``."""
        return {**asdict(self), "skipped": self.skipped}


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(
            f"{name} must be a positive, finite number of seconds, not {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class BreakerSettings:
    """When a cache stops sending requests to a failing cluster, and for how long.

    Pass it as ``breaker=`` to any cache class (``breaker=None`` turns the breaker
    off). Each cache object keeps a breaker of its own, built from these settings.

    Attributes:
        failures: Consecutive transport failures (refused, reset or timed-out
            connections, 429/502/503/504 answers) that open the breaker.
        cooldown: Seconds an open breaker sends nothing before one call probes.
        max_cooldown: Longest cool-down: each failed probe doubles it up to this.
        clock: Monotonic seconds (`time.monotonic`); for tests.
    """

    failures: int = 5
    cooldown: float = 2.0
    max_cooldown: float = 30.0
    clock: Callable[[], float] = field(
        default=time.monotonic, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if isinstance(self.failures, bool) or not isinstance(self.failures, int):
            raise TypeError(
                f"failures must be an int, not {type(self.failures).__name__}"
            )
        if self.failures < 1:
            raise ValueError(f"failures must be at least 1, not {self.failures}")
        cooldown = _seconds("cooldown", self.cooldown)
        maximum = _seconds("max_cooldown", self.max_cooldown)
        if maximum < cooldown:
            raise ValueError(
                f"max_cooldown ({maximum:g} s) must not be less than cooldown "
                f"({cooldown:g} s)"
            )
        if not callable(self.clock):
            raise TypeError(f"clock must be callable, not {type(self.clock).__name__}")


@dataclass(frozen=True)
class CheckReport:
    """What ``check()`` found: the cache can work with these credentials.

    Attributes:
        index: The cache's index or alias name.
        user: The user the credentials authenticate as (for an API key, its
            owner); `None` on a cluster without security.
        index_exists: Whether the index (or alias) exists already.
        privileges: Each privilege ``check()`` asks about (``read``, ``write``,
            ``create_index``, ``manage``, ``maintenance``,
            ``view_index_metadata``) on the index, held or not.
    """

    index: str
    user: str | None
    index_exists: bool
    privileges: Mapping[str, bool]

    @property
    def can_create(self) -> bool:
        """Whether the credentials may create the index with the cache's mapping."""
        return self.privileges.get("create_index", False) or self.privileges.get(
            "manage", False
        )
