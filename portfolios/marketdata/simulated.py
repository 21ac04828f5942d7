"""The simulated streaming feed (the demo's default source): a random walk per
instrument, quoted with a bid, an ask and a last trade on two or more venues.

- ``volatility`` is annualised (0.3 = 30% a year); each tick moves an instrument's
  price by a normal step scaled to the time between two of its ticks, on a year of
  252 days of 6.5 hours (the price's log follows a Brownian motion).
- ``tick_rate`` is ticks per second across all instruments; each tick picks an
  instrument and a venue at random. A venue's quote sits around the walk's price
  (its own small offset), ``spread_bps`` wide, rounded to the instrument's tick.
- ``seed`` makes a run repeatable; ``clock`` and ``sleep`` are replaceable in tests.
"""

from __future__ import annotations

import math
import random
import time as _time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .base import Batch, MarketDataAdapter, Quote

TRADING_SECONDS_A_YEAR = 252 * 6.5 * 3600


@dataclass
class Walk:
    symbol: str
    price: float
    tick: float


def _now() -> datetime:
    return datetime.now(UTC)


class SimulatedFeed(MarketDataAdapter):
    source = "simulated"

    def __init__(
        self,
        instruments: Mapping[str, float | tuple[float, float]],
        *,
        venues: tuple[str, ...] = ("XNAS", "ARCX"),
        volatility: float = 0.3,
        tick_rate: float = 50.0,
        spread_bps: float = 5.0,
        interval: float = 0.2,
        seed: int | None = None,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        if len(venues) < 2:
            raise ValueError("the simulated feed quotes on two venues or more")
        if volatility < 0 or tick_rate <= 0 or interval <= 0 or spread_bps < 0:
            raise ValueError("volatility and spread cannot be negative, rates must be positive")
        self.walks = []
        for symbol, spec in instruments.items():
            price, tick = (
                spec if isinstance(spec, tuple) else (spec, 0.0001 if "/" in symbol else 0.01)
            )
            if not price or price <= 0:
                continue  # nothing to walk from
            self.walks.append(Walk(symbol, float(price), float(tick)))
        if not self.walks:
            raise ValueError("no instrument with a positive starting price")
        self.venues = venues
        self.volatility = volatility
        self.tick_rate = tick_rate
        self.spread = spread_bps / 10_000
        self.interval = interval
        self.random = random.Random(seed)
        self.clock = clock
        self.sleep = sleep
        self.running = True
        # the step of one tick: the time between two ticks of one instrument
        seconds_between = len(self.walks) / tick_rate
        self.step = volatility * math.sqrt(seconds_between / TRADING_SECONDS_A_YEAR)

    def _round(self, price: float, tick: float) -> float:
        return max(tick, round(round(price / tick) * tick, 10))

    def ticks(self, count: int, at: datetime | None = None) -> list[Quote]:
        """``count`` ticks at once, all stamped ``at`` (now by default)."""
        at = at or self.clock()
        rnd = self.random
        quotes = []
        for _ in range(count):
            walk = rnd.choice(self.walks)
            walk.price *= math.exp(rnd.gauss(0.0, self.step) - self.step * self.step / 2)
            venue = rnd.choice(self.venues)
            centre = walk.price * (1 + rnd.uniform(-0.25, 0.25) * self.spread)
            half = max(walk.tick, centre * self.spread / 2)
            bid = self._round(centre - half, walk.tick)
            ask = max(bid + walk.tick, self._round(centre + half, walk.tick))
            last = bid if rnd.random() < 0.5 else ask
            size = float(rnd.choice((100, 200, 300, 500, 1000)))
            quotes.append(Quote(walk.symbol, venue, at, bid, ask, round(last, 10), size))
        return quotes

    def batches(self) -> Iterator[Batch]:
        """A batch every ``interval`` seconds, ``tick_rate * interval`` ticks each
        (a fraction carried to the next), until ``stop``."""
        owed = 0.0
        while self.running:
            owed += self.tick_rate * self.interval
            count = int(owed)
            owed -= count
            if count:
                yield Batch(self.ticks(count))
            self.sleep(self.interval)

    def stop(self) -> None:
        self.running = False

    close = stop
