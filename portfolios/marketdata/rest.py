"""Quotes an integrator posts to the REST API (``POST /api/v1/quotes/``): a list of
objects read by the same rules as a file's rows (``records.py``); the API answers
a list with any unreadable item with a 400 naming each."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from .base import Batch, MarketDataAdapter, Quote, RowError
from .records import RecordError, quote_from_record

MAX_QUOTES_PER_POST = 5_000


class PostedQuotes(MarketDataAdapter):
    source = "api"

    def __init__(self, items: Sequence, *, now: datetime, venue: str = "API"):
        self.items = items
        self.now = now
        self.venue = venue

    def batches(self) -> Iterator[Batch]:
        yield self.read()

    def read(self) -> Batch:
        quotes: list[Quote] = []
        errors: list[RowError] = []
        for index, item in enumerate(self.items):
            if not isinstance(item, Mapping):
                errors.append(RowError(index, "", "each quote is an object with a symbol"))
                continue
            try:
                quotes.append(quote_from_record(item, now=self.now, default_venue=self.venue))
            except RecordError as error:
                errors.append(RowError(index, str(item.get("symbol") or "")[:32], str(error)))
        return Batch(quotes, errors)
