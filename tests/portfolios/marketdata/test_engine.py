"""The pure market data library: adapters, checks, consolidation, bars, crosses."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portfolios.marketdata import (
    BarAggregator,
    CsvFileError,
    CsvPrices,
    Freshness,
    Limits,
    PostedQuotes,
    Quote,
    SimulatedFeed,
    consolidate,
    cross_legs,
    cross_rate,
    freshness,
    quote_problem,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


def q(last=None, *, bid=None, ask=None, symbol="AAA", venue="XNAS", at=NOW, size=0.0):
    return Quote(symbol, venue, at, bid, ask, last, size)


def test_the_library_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    code = (
        "import sys, portfolios.marketdata as m; "
        "m.SimulatedFeed({'A': 1.0}, seed=1).ticks(3); "
        "assert not [x for x in ('django', 'rest_framework', 'celery') if x in sys.modules]"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


# --- the simulated feed ----------------------------------------------------------------


def test_simulated_feed_quotes_every_venue_with_bid_below_ask_on_the_tick():
    feed = SimulatedFeed(
        {"AAA": 100.0, "BBB": (20.0, 0.05), "EUR/USD": 1.085},
        venues=("XNAS", "ARCX", "BATS"),
        seed=7,
    )
    ticks = feed.ticks(3000, at=NOW)
    assert {t.venue for t in ticks} == {"XNAS", "ARCX", "BATS"}
    assert {t.symbol for t in ticks} == {"AAA", "BBB", "EUR/USD"}
    for t in ticks:
        assert t.bid < t.ask and t.last in (t.bid, t.ask) and t.size > 0
    for t in ticks:
        if t.symbol == "BBB":
            assert round(t.bid / 0.05, 6) == round(t.bid / 0.05)  # on BBB's tick


def test_simulated_feed_is_repeatable_and_its_volatility_scales_the_walk():
    def spread_of_moves(volatility):
        feed = SimulatedFeed({"AAA": 100.0}, volatility=volatility, tick_rate=1.0, seed=3)
        lasts = [t.last for t in feed.ticks(2000, at=NOW)]
        return max(lasts) - min(lasts)

    a = SimulatedFeed({"AAA": 100.0}, seed=1).ticks(50, at=NOW)
    b = SimulatedFeed({"AAA": 100.0}, seed=1).ticks(50, at=NOW)
    assert a == b
    assert spread_of_moves(0.6) > 2 * spread_of_moves(0.1)


def test_simulated_feed_paces_batches_at_its_tick_rate():
    slept = []
    feed = SimulatedFeed(
        {"AAA": 100.0, "BBB": 50.0}, tick_rate=25, interval=0.2, seed=1, sleep=slept.append
    )
    batches = []
    for batch in feed.batches():
        batches.append(len(batch.quotes))
        if len(batches) == 5:
            feed.stop()
    assert batches == [5, 5, 5, 5, 5] and slept == [0.2] * 5


def test_simulated_feed_refuses_one_venue():
    with pytest.raises(ValueError, match="two venues"):
        SimulatedFeed({"AAA": 1.0}, venues=("XNAS",))


# --- the file and the API --------------------------------------------------------------


def test_csv_reads_end_of_day_and_intraday_prices_and_fx_and_names_each_bad_row():
    text = (
        "Symbol,as_of,price,venue\n"
        "AAA,2026-02-27,101.25,\n"  # end of day: the end of that day
        "EUR/USD,2026-03-02T14:59:00Z,1.0850,EBS\n"  # intraday FX
        ",2026-02-27,5\n"  # no symbol
        "BBB,2026-02-27,lots\n"  # not a number
        "CCC,27/02/2026,4\n"  # not a date
        "EURUSD/X,2026-02-27,1\n"  # not a pair
        "DDD,2026-02-27,\n"  # no price
        "AAA,2026-02-27,101.25,\n"  # repeats line 2
        "EEE,2026-03-02T10:00:00,3\n"  # no zone
        "\n"
    )
    batch = CsvPrices(text, now=NOW).read()
    assert [(x.symbol, x.last, x.venue) for x in batch.quotes] == [
        ("AAA", 101.25, "FILE"),
        ("EUR/USD", 1.085, "EBS"),
    ]
    assert batch.quotes[0].at == datetime(2026, 2, 27, 23, 59, 59, 999999, tzinfo=UTC)
    assert batch.lines == [2, 3]
    assert [str(e) for e in batch.errors] == [
        "Row 4: no symbol",
        "Row 5 (BBB): last must be a number, not 'lots'",
        "Row 6 (CCC): time '27/02/2026' is not a date (YYYY-MM-DD) or a moment (ISO 8601)",
        "Row 7 (EURUSD/X): FX pair 'EURUSD/X' must read like EUR/USD",
        "Row 8 (DDD): no price (give last, price, bid or ask)",
        "Row 9 (AAA): repeats line 2",
        "Row 10 (EEE): time needs a zone (e.g. 2026-01-02T15:30:00Z)",
    ]


def test_csv_refuses_a_file_without_the_columns():
    with pytest.raises(CsvFileError, match="no symbol column"):
        CsvPrices("ticker,price\nAAA,1\n", now=NOW).read()
    with pytest.raises(CsvFileError, match="no price column"):
        CsvPrices("symbol,as_of\nAAA,2026-01-02\n", now=NOW).read()
    with pytest.raises(CsvFileError, match="empty"):
        CsvPrices("", now=NOW).read()
    with pytest.raises(CsvFileError, match="NUL characters"):
        CsvPrices("\x89PNG\r\n\x1a\n\x00\x00", now=NOW).read()


def test_posted_quotes_name_each_bad_item():
    batch = PostedQuotes(
        [
            {
                "symbol": "aaa",
                "bid": "99.5",
                "ask": 99.6,
                "venue": "xnas",
                "at": "2026-03-02T14:59:59Z",
            },
            "AAA",
            {"symbol": "BBB", "last": True},
            {"symbol": "CCC", "last": "1e12"},
            {"symbol": "DDD", "last": 1, "size": -5},
        ],
        now=NOW,
    ).read()
    assert batch.quotes == [q(bid=99.5, ask=99.6, at=datetime(2026, 3, 2, 14, 59, 59, tzinfo=UTC))]
    assert [str(e) for e in batch.errors] == [
        "Row 1: each quote is an object with a symbol",
        "Row 2 (BBB): last must be a number, not True",
        "Row 3 (CCC): last 1e12 is too large (at most 1,000,000,000)",
        "Row 4 (DDD): size cannot be negative",
    ]


# --- the checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "previous", "zero_allowed", "reason"),
    [
        (q(-1.0), None, False, "negative last -1"),
        (q(bid=-0.5, ask=1.0), None, True, "negative bid -0.5"),
        (q(0.0), None, False, "last of zero, and AAA cannot trade at zero"),
        (q(bid=10.1, ask=10.0), None, False, "bid 10.1 above ask 10 on XNAS"),
        (
            q(1.0, at=datetime(9999, 12, 31, tzinfo=UTC)),
            None,
            False,
            "dated 9999-12-31T00:00:00+00:00, in the future (now 2026-03-02T15:00:00+00:00)",
        ),
        (q(130.0), 100.0, False, "130 is 30% from the last accepted 100 (the limit is 25%)"),
        (q(float("nan")), None, False, "a price that is not a finite number"),
    ],
)
def test_a_quote_that_cannot_be_believed_is_named_with_its_reason(
    quote, previous, zero_allowed, reason
):
    assert (
        quote_problem(quote, previous=previous, zero_allowed=zero_allowed, now=NOW, limits=Limits())
        == reason
    )


@pytest.mark.parametrize(
    ("quote", "previous", "zero_allowed"),
    [
        (q(124.0), 100.0, False),  # within the limit
        (q(0.0), None, True),  # an option may be worth nothing
        (q(1.0, at=NOW + timedelta(seconds=4)), None, False),  # clocks differ a little
        (q(bid=10.0, ask=10.0), None, False),  # locked, not crossed
    ],
)
def test_a_believable_quote_passes(quote, previous, zero_allowed):
    assert (
        quote_problem(quote, previous=previous, zero_allowed=zero_allowed, now=NOW, limits=Limits())
        is None
    )


def test_the_jump_limit_is_configurable():
    assert quote_problem(
        q(110.0), previous=100.0, zero_allowed=False, now=NOW, limits=Limits(jump_limit=0.05)
    )


# --- consolidation, bars, crosses, freshness --------------------------------------------


def test_best_bid_and_offer_across_venues_and_the_newest_last():
    best = consolidate(
        "AAA",
        [
            q(10.02, bid=10.00, ask=10.03, venue="XNAS", at=NOW),
            q(10.01, bid=10.01, ask=10.04, venue="ARCX", at=NOW - timedelta(seconds=1)),
            q(None, bid=9.99, ask=10.02, venue="BATS", at=NOW - timedelta(seconds=2)),
        ],
    )
    assert (best.bid, best.bid_venue, best.ask, best.ask_venue) == (10.01, "ARCX", 10.02, "BATS")
    assert (best.last, best.last_venue, best.at, best.price) == (10.02, "XNAS", NOW, 10.02)
    assert consolidate("AAA", [q(bid=1.0, ask=3.0)]).price == 2.0


def test_ticks_become_bars_and_bars_merge():
    bars = BarAggregator(60)
    t0 = datetime(2026, 3, 2, 15, 0, 10, tzinfo=UTC)
    for seconds, price, size in (
        (0, 10.0, 100),
        (20, 12.0, 200),
        (5, 9.0, 50),
        (40, 11.0, 10),
        (55, 13.0, 1),
    ):
        bars.add(q(price, at=t0 + timedelta(seconds=seconds), size=size))
    first, second = sorted(bars.drain(), key=lambda b: b.start)
    assert (first.start, first.open, first.high, first.low, first.close, first.volume, first.ticks) == (
        datetime(2026, 3, 2, 15, 0, tzinfo=UTC), 10.0, 12.0, 9.0, 11.0, 360, 4,
    )  # fmt: skip
    assert (second.start, second.open, second.close, second.ticks) == (
        datetime(2026, 3, 2, 15, 1, tzinfo=UTC), 13.0, 13.0, 1,
    )  # fmt: skip
    assert len(bars) == 0
    earlier = BarAggregator(60)
    earlier.add(q(8.0, at=t0 - timedelta(seconds=5), size=1))
    (other,) = earlier.drain()
    first.merge(other)
    assert (first.open, first.low, first.close, first.volume, first.ticks) == (
        8.0,
        8.0,
        11.0,
        361,
        5,
    )


def test_fx_crosses_direct_inverse_and_through_a_vehicle():
    rates = {("EUR", "USD"): 1.10, ("USD", "JPY"): 150.0, ("GBP", "EUR"): 1.20}
    assert cross_rate(rates, "EUR", "USD") == 1.10
    assert cross_rate(rates, "USD", "EUR") == pytest.approx(1 / 1.10)
    assert cross_rate(rates, "EUR", "JPY") == pytest.approx(165.0)
    assert cross_rate(rates, "GBP", "JPY") == pytest.approx(1.2 * 1.1 * 150)  # two crosses
    assert cross_rate(rates, "CHF", "USD") is None
    assert cross_legs(rates, "JPY", "EUR") == [(("USD", "JPY"), True), (("EUR", "USD"), True)]


def test_freshness():
    age = timedelta(minutes=15)
    assert freshness(None, now=NOW, max_age=age) == Freshness.MISSING
    assert freshness(NOW - age, now=NOW, max_age=age) == Freshness.FRESH
    assert freshness(NOW - age - timedelta(seconds=1), now=NOW, max_age=age) == Freshness.STALE
