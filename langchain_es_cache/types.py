"""The types in the caches' public signatures, and their statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

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
