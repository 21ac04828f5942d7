"""Price history as bars, not ticks: the ticks of one instrument in one interval
(``seconds`` long, aligned on the epoch) become one open/high/low/close/volume row.

The aggregator keeps the bars of the ticks it saw since it was last drained; a
drained bar may be merged into a stored one of the same interval (the writer keeps
the stored open, the higher high, the lower low, the later close, the sum of
volumes and ticks): two processes may feed the same bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .base import Quote


@dataclass(slots=True)
class Bar:
    symbol: str
    start: datetime
    seconds: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    ticks: int
    first_at: datetime
    last_at: datetime

    def add(self, price: float, size: float, at: datetime) -> None:
        if at < self.first_at:
            self.open, self.first_at = price, at
        if at >= self.last_at:
            self.close, self.last_at = price, at
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += size
        self.ticks += 1

    def merge(self, other: Bar) -> None:
        """Fold a bar of the same instrument and interval into this one."""
        if other.first_at < self.first_at:
            self.open, self.first_at = other.open, other.first_at
        if other.last_at >= self.last_at:
            self.close, self.last_at = other.close, other.last_at
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.volume += other.volume
        self.ticks += other.ticks


def bar_start(at: datetime, seconds: int) -> datetime:
    stamp = int(at.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, tz=UTC)


class BarAggregator:
    def __init__(self, seconds: int = 60) -> None:
        if seconds <= 0:
            raise ValueError("a bar lasts at least one second")
        self.seconds = seconds
        self._bars: dict[tuple[str, int], Bar] = {}
        self._starts: dict[int, datetime] = {}  # interval number -> its start

    def add(self, quote: Quote, stamp: float | None = None) -> None:
        """Add a quote's reference price to its bar (``stamp``: ``quote.at`` in epoch
        seconds, when the caller has it already)."""
        price = quote.reference
        if price is None:
            return
        at = quote.at
        number = int(at.timestamp() if stamp is None else stamp) // self.seconds
        key = (quote.symbol, number)
        bar = self._bars.get(key)
        if bar is None:
            start = self._starts.get(number)
            if start is None:
                start = self._starts[number] = datetime.fromtimestamp(number * self.seconds, tz=UTC)
            self._bars[key] = Bar(
                quote.symbol, start, self.seconds, price, price, price, price,
                quote.size, 1, at, at,
            )  # fmt: skip
        else:
            bar.add(price, quote.size, at)

    def __len__(self) -> int:
        return len(self._bars)

    def drain(self) -> list[Bar]:
        bars = list(self._bars.values())
        self._bars.clear()
        if len(self._starts) > 64:
            self._starts.clear()
        return bars
