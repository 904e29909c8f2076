"""A clock the tests control, so expiry is tested without waiting for it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class FakeClock:
    """Returns `now` until moved; starts at a whole millisecond."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeMonotonic:
    """Monotonic seconds the tests move by hand, for the circuit breaker."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
