"""The market data adapter interface and the one record every source produces.

A source of prices (the simulated feed, a CSV file, quotes posted to the API, or a
vendor's feed) is one class: a :class:`MarketDataAdapter` whose ``batches()`` yields
:class:`Batch` es of :class:`Quote` s as they arrive. It parses and shapes; it never
decides whether a price is believable (``checks.py`` does, for every source alike) and
never writes anywhere (``portfolios.services.quotes.quotes_apply`` does)::

    class VendorFeed(MarketDataAdapter):
        source = "vendor"

        def __init__(self, connection):
            self.connection = connection

        def batches(self):
            for message in self.connection:  # whatever the vendor sends
                yield Batch([Quote(symbol=message.ticker, venue=message.mic,
                                   at=message.time, bid=message.bid, ask=message.ask,
                                   last=message.trade, size=message.trade_size)])

``manage.py run_price_feed`` (or any loop of yours) applies each batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

#: FX pairs are quoted under a symbol "BASE/QUOTE" (one BASE is worth `last` QUOTE).
FX_SEPARATOR = "/"


def is_fx(symbol: str) -> bool:
    return FX_SEPARATOR in symbol


def fx_pair(symbol: str) -> tuple[str, str]:
    base, quote = symbol.split(FX_SEPARATOR)
    return base, quote


@dataclass(frozen=True, slots=True)
class Quote:
    """What one venue says about one instrument at one moment (prices in the
    instrument's currency; for an FX pair, units of the quote currency). Any of
    bid, ask and last may be missing, not all of them."""

    symbol: str
    venue: str
    at: datetime  # timezone-aware
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    size: float = 0.0  # the size traded at `last` (volume for the bars)

    @property
    def reference(self) -> float | None:
        """The price a value is computed from: the last trade, else the mid."""
        if self.last is not None:
            return self.last
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.bid if self.bid is not None else self.ask

    def figures(self) -> list[float]:
        return [p for p in (self.bid, self.ask, self.last) if p is not None]

    def finite(self) -> bool:
        return all(math.isfinite(p) for p in self.figures()) and math.isfinite(self.size)


@dataclass(frozen=True, slots=True)
class RowError:
    """A row of an import (or an item of a posted list) that could not be read, and why."""

    row: int  # 1-based line of a file (the header is line 1), 0-based index of a list
    symbol: str
    message: str

    def __str__(self) -> str:
        name = f" ({self.symbol})" if self.symbol else ""
        return f"Row {self.row}{name}: {self.message}"


@dataclass
class Batch:
    quotes: list[Quote]
    errors: list[RowError] = field(default_factory=list)  # rows the adapter could not read
    lines: list[int] = field(default_factory=list)  # each quote's row, where it has one


class MarketDataAdapter:
    """A source of quotes. Subclasses set ``source`` (recorded with every quote and
    quarantined price) and implement ``batches``; ``close`` releases what they hold."""

    source: str = "adapter"

    def batches(self) -> Iterator[Batch]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections or files (nothing by default)."""
