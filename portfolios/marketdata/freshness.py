"""Whether a price may be used: fresh (younger than its asset class's allowed age),
stale (older: shown as such, and never used silently), or missing."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class Freshness(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    MISSING = "missing"


def freshness(at: datetime | None, *, now: datetime, max_age: timedelta) -> Freshness:
    if at is None:
        return Freshness.MISSING
    return Freshness.FRESH if now - at <= max_age else Freshness.STALE
