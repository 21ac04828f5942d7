"""The consolidated quote of one instrument from what each venue says: the best
bid (highest) and offer (lowest) across venues, each with its venue, and the most
recent last trade."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .base import Quote


@dataclass(frozen=True, slots=True)
class Consolidated:
    symbol: str
    at: datetime  # the newest quote's moment
    bid: float | None
    bid_venue: str
    ask: float | None
    ask_venue: str
    last: float | None
    last_venue: str

    @property
    def price(self) -> float | None:
        """What a position is valued at: the last trade, else the mid, else one side."""
        if self.last is not None:
            return self.last
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.bid if self.bid is not None else self.ask


def consolidate(symbol: str, quotes: Iterable[Quote]) -> Consolidated | None:
    return consolidate_rows(symbol, ((q.venue, q.bid, q.ask, q.last, q.at) for q in quotes))


#: One venue's quote as the hot path keeps it: venue, bid, ask, last, and its moment
#: (any ordered stamp: a datetime, or epoch seconds; ``moment`` makes it a datetime).
Row = tuple[str, float | None, float | None, float | None, object]


def consolidate_rows(symbol: str, rows: Iterable[Row], moment=None) -> Consolidated | None:
    """``consolidate`` over plain rows (the quote service's hot path keeps no Quote
    objects for what the store already holds); ``moment`` turns the newest row's stamp
    into the Consolidated's datetime when the stamps are not datetimes already."""
    bid = ask = last = None
    bid_venue = ask_venue = last_venue = ""
    last_at = at = None
    for venue, b, a, t, stamp in rows:
        if at is None or stamp > at:
            at = stamp
        if b is not None and (bid is None or b > bid):
            bid, bid_venue = b, venue
        if a is not None and (ask is None or a < ask):
            ask, ask_venue = a, venue
        if t is not None and (last_at is None or stamp >= last_at):
            last, last_venue, last_at = t, venue, stamp
    if at is None:
        return None
    if moment is not None:
        at = moment(at)
    return Consolidated(symbol, at, bid, bid_venue, ask, ask_venue, last, last_venue)
