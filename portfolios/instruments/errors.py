"""The one error the instrument engine raises."""

from __future__ import annotations

__all__ = ["InstrumentError"]


class InstrumentError(ValueError):
    """Bad input to the instrument engine: a quantity off the lot, a price off the tick,
    a date the rules do not cover, a calendar that is missing. The message says what is
    wrong in the trade's words and names the instrument; nothing has been booked."""
