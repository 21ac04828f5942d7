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
    bid = ask = last = None
    bid_venue = ask_venue = last_venue = ""
    last_at = at = None
    for q in quotes:
        if at is None or q.at > at:
            at = q.at
        if q.bid is not None and (bid is None or q.bid > bid):
            bid, bid_venue = q.bid, q.venue
        if q.ask is not None and (ask is None or q.ask < ask):
            ask, ask_venue = q.ask, q.venue
        if q.last is not None and (last_at is None or q.at >= last_at):
            last, last_venue, last_at = q.last, q.venue, q.at
    if at is None:
        return None
    return Consolidated(symbol, at, bid, bid_venue, ask, ask_venue, last, last_venue)
