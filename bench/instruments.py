"""Benchmark: how fast the instrument engine values positions and books fills.

    python bench/instruments.py [--positions 500000] [--bonds 200] [--fills 50000]

Values a mix of positions (60% shares, 20% bonds with accrued interest, 10% futures,
5% options with their underlying notional, 5% FX forwards) one `Instrument.value` call
each, as the live revaluation of issue 12 would (10,000 accounts x 50 positions is the
default 500,000), then books fills of the same mix with `Instrument.book_fill`. Each
figure is the best of three runs in one process on one core. Ends with one line of JSON.
Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portfolios.instruments import (  # noqa: E402
    LISTED_DERIVATIVES_US,
    US_SECURITIES,
    CurrencyPair,
    Equity,
    Fill,
    Future,
    FxForward,
    HolidayCalendar,
    Option,
    us_treasury,
)

TODAY = dt.date(2025, 3, 4)
CALENDARS = {
    code: HolidayCalendar.weekends_only(code) for code in ("US", "USD", "EUR", "GBP", "JPY")
}


def instruments(bonds: int, rng: random.Random):
    shares = [
        Equity(symbol=f"S{i}", currency="USD", settlement=US_SECURITIES, settlement_calendar="US")
        for i in range(100)
    ]
    treasuries = []
    for i in range(bonds):
        issue = dt.date(2016 + i % 9, 1 + i % 12, 15)
        treasuries.append(
            us_treasury(
                f"T{i}",
                coupon_rate=Decimal(rng.randint(50, 600)) / 10_000,
                issue_date=issue,
                maturity=issue.replace(year=issue.year + 10 + i % 20),
            )
        )
    futures = [
        Future(
            symbol=f"F{i}",
            currency="USD",
            underlying="X",
            multiplier=Decimal(1000),
            expiry=dt.date(2025, 12, 19),
            settlement=LISTED_DERIVATIVES_US,
            settlement_calendar="US",
        )
        for i in range(20)
    ]
    options = [
        Option(
            symbol=f"O{i}",
            currency="USD",
            underlying="X",
            underlying_kind="equity",
            right="call",
            strike=Decimal(100 + i),
            expiry=dt.date(2025, 12, 19),
            multiplier=Decimal(100),
            settlement=LISTED_DERIVATIVES_US,
            settlement_calendar="US",
        )
        for i in range(20)
    ]
    forwards = [
        FxForward(
            symbol=f"X{i}",
            pair=CurrencyPair(*rng.choice([("EUR", "USD"), ("GBP", "USD"), ("USD", "JPY")])),
            value_date=dt.date(2025, 6, 16),
        )
        for i in range(20)
    ]
    return shares, treasuries, futures, options, forwards


def positions(count: int, kinds, rng: random.Random):
    shares, bonds, futures, options, forwards = kinds
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.60:
            out.append((rng.choice(shares), Decimal(rng.randint(1, 5000)), Decimal("123.45"), {}))
        elif roll < 0.80:
            out.append(
                (
                    rng.choice(bonds),
                    Decimal(rng.randint(1, 500) * 1000),
                    Decimal("99.5"),
                    {"on": TODAY},
                )
            )
        elif roll < 0.90:
            out.append(
                (
                    rng.choice(futures),
                    Decimal(rng.randint(1, 50)),
                    Decimal("75.10"),
                    {"cost": Decimal(75_000)},
                )
            )
        elif roll < 0.95:
            out.append(
                (
                    rng.choice(options),
                    Decimal(rng.randint(1, 50)),
                    Decimal("4.20"),
                    {"underlying_price": Decimal("101.5")},
                )
            )
        else:
            out.append(
                (
                    rng.choice(forwards),
                    Decimal(rng.randint(1, 1000) * 1000),
                    Decimal("1.0850"),
                    {"cost": Decimal(1_000_000)},
                )
            )
    return out


def best_of(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=500_000)
    parser.add_argument("--bonds", type=int, default=200)
    parser.add_argument("--fills", type=int, default=50_000)
    args = parser.parse_args()
    rng = random.Random(12)
    kinds = instruments(args.bonds, rng)
    book = positions(args.positions, kinds, rng)
    # Warm the bonds' coupon schedules (cached per bond) as a long-running process would.
    for bond in kinds[1]:
        bond.accrued_per_100(TODAY)

    def value_all():
        for instrument, quantity, price, extra in book:
            instrument.value(quantity, price, **extra)

    value_seconds = best_of(3, value_all)
    fills = [
        (instrument, Fill(side="buy", quantity=quantity, price=price, trade_date=TODAY))
        for instrument, quantity, price, _ in book[: args.fills]
    ]

    def book_all():
        for instrument, fill in fills:
            instrument.book_fill(fill, CALENDARS)

    book_seconds = best_of(3, book_all)
    result = {
        "positions": args.positions,
        "value_seconds": round(value_seconds, 3),
        "valuations_per_second": round(args.positions / value_seconds),
        "fills": len(fills),
        "book_seconds": round(book_seconds, 3),
        "bookings_per_second": round(len(fills) / book_seconds),
    }
    print(
        f"valued {args.positions:,} positions in {value_seconds:.3f} s "
        f"({result['valuations_per_second']:,}/s); booked {len(fills):,} fills in "
        f"{book_seconds:.3f} s ({result['bookings_per_second']:,}/s)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
