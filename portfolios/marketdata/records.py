"""Quotes from records of text or JSON (one CSV row, one posted object): the reading
rules the file import and the REST API share, with a message in words for each bad
field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from .base import FX_SEPARATOR, Quote

PRICE_FIELDS = ("bid", "ask", "last")
#: A figure this large is a typing slip, not a price (the database holds 10^9).
MAX_FIGURE = 10**9
SYMBOL_MAX = 32
VENUE_MAX = 16


class RecordError(ValueError):
    pass


def _figure(name: str, value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RecordError(f"{name} must be a number, not {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError(f"{name} must be a number, not {value!r}") from None
    if not number.is_finite():
        raise RecordError(f"{name} must be a finite number")
    if abs(number) >= MAX_FIGURE:
        raise RecordError(f"{name} {value} is too large (at most {MAX_FIGURE:,})")
    return float(number)


def _moment(value, now: datetime) -> datetime:
    """A moment or a date: a date is the end of that day (an end-of-day price),
    or now for today's."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return now
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return _end_of(value, now)
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return _end_of(date.fromisoformat(text), now)
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(
                f"time {text!r} is not a date (YYYY-MM-DD) or a moment (ISO 8601)"
            ) from None
    if moment.tzinfo is None:
        raise RecordError("time needs a zone (e.g. 2026-01-02T15:30:00Z)")
    return moment


def _end_of(day: date, now: datetime) -> datetime:
    end = datetime.combine(day, time.max, tzinfo=UTC)
    return now if day == now.astimezone(UTC).date() else end


def quote_from_record(
    record: Mapping, *, now: datetime, default_venue: str, aliases: Mapping[str, str] = {}
) -> Quote:
    """One quote from a mapping with ``symbol`` (a ticker, or ``EUR/USD`` for an FX
    rate), any of ``bid``/``ask``/``last`` (``price`` and ``rate`` mean ``last``),
    optional ``venue``, ``size`` and ``at`` (or ``as_of``: a date for an end-of-day
    price, an ISO moment for an intraday one). Raises RecordError in words."""
    data = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    for name, target in (("price", "last"), ("rate", "last"), ("as_of", "at"), ("time", "at")):
        if name in data and target not in data:
            data[target] = data.pop(name)
    for name, target in aliases.items():
        if name in data and target not in data:
            data[target] = data.pop(name)
    symbol = str(data.get("symbol") or "").strip().upper()
    if not symbol:
        raise RecordError("no symbol")
    if len(symbol) > SYMBOL_MAX:
        raise RecordError(f"symbol {symbol[:40]!r} is longer than {SYMBOL_MAX} characters")
    if FX_SEPARATOR in symbol:
        parts = symbol.split(FX_SEPARATOR)
        if len(parts) != 2 or not all(len(p) == 3 and p.isalpha() for p in parts):
            raise RecordError(f"FX pair {symbol!r} must read like EUR/USD")
        if parts[0] == parts[1]:
            raise RecordError(f"FX pair {symbol!r} names one currency twice")
    venue = str(data.get("venue") or default_venue).strip().upper()[: VENUE_MAX + 1]
    if len(venue) > VENUE_MAX:
        raise RecordError(f"venue is longer than {VENUE_MAX} characters")
    prices = {name: _figure(name, data.get(name)) for name in PRICE_FIELDS}
    if all(p is None for p in prices.values()):
        raise RecordError("no price (give last, price, bid or ask)")
    size = _figure("size", data.get("size")) or 0.0
    if size < 0 or not math.isfinite(size):
        raise RecordError("size cannot be negative")
    return Quote(symbol=symbol, venue=venue, at=_moment(data.get("at"), now), size=size, **prices)
