"""Clock interface: the session reads time only through one of these."""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta


class Clock:
    """Monotonic seconds for timers, and UTC wall time for SendingTime."""

    def monotonic(self) -> float:
        raise NotImplementedError

    def utcnow(self) -> datetime:
        raise NotImplementedError

    def time(self) -> float:
        """UTC wall time as seconds since the epoch (``utcnow()`` as a number)."""
        return self.utcnow().timestamp()


class SystemClock(Clock):
    def monotonic(self) -> float:
        return _time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return _time.time()


class FakeClock(Clock):
    """A clock that only moves when told to (for tests)."""

    def __init__(self, start: datetime | None = None):
        self._mono = 1000.0
        self._wall = start or datetime(2026, 1, 5, 14, 30, tzinfo=UTC)

    def monotonic(self) -> float:
        return self._mono

    def utcnow(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)
