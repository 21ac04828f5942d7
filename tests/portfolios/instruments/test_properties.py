"""Properties every kind keeps: round trips book no cash, rounding lands on the grid,
notional is linear, allocation books the whole fill."""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP

from hypothesis import given
from hypothesis import strategies as st

from portfolios.instruments import (
    LISTED_DERIVATIVES_US,
    MONEY_MARKET_SAME_DAY,
    US_SECURITIES,
    Closing,
    CurrencyPair,
    Equity,
    Etf,
    Fill,
    Future,
    FxForward,
    FxSpot,
    InstrumentError,
    MoneyMarketFund,
    Option,
    us_treasury,
)
from trading.allocation import allocate_fill

from .helpers import CALENDARS, D, day

TRADE = day("2025-03-04")

KINDS = {
    "equity": Equity(
        symbol="LOT100",
        currency="USD",
        round_lot=D(100),
        settlement=US_SECURITIES,
        settlement_calendar="US",
    ),
    "etf": Etf(
        symbol="FRAC",
        currency="USD",
        fractional=True,
        increment=D("0.001"),
        settlement=US_SECURITIES,
        settlement_calendar="US",
    ),
    "money_market_fund": MoneyMarketFund(
        symbol="MMF", currency="USD", settlement=MONEY_MARKET_SAME_DAY, settlement_calendar="US"
    ),
    "bond": us_treasury(
        "T 4 02/15/35", coupon_rate="0.04", issue_date=day("2025-02-15"), maturity=day("2035-02-15")
    ),
    "option": Option(
        symbol="OPT",
        currency="USD",
        underlying="X",
        underlying_kind="equity",
        right="put",
        strike=D(50),
        expiry=day("2025-12-19"),
        multiplier=D(100),
        settlement=LISTED_DERIVATIVES_US,
        settlement_calendar="US",
    ),
    "future": Future(
        symbol="FUT",
        currency="USD",
        underlying="X",
        multiplier=D(25000),
        expiry=day("2025-12-19"),
        settlement=LISTED_DERIVATIVES_US,
        settlement_calendar="US",
    ),
    "fx_spot": FxSpot(symbol="EUR/USD", pair="EUR/USD"),
    "fx_forward": FxForward(
        symbol="USD/JPY SEP", pair=CurrencyPair("USD", "JPY"), value_date=day("2025-09-17")
    ),
}


def grid_quantity(instrument, draw):
    rule = instrument.quantity_rule()
    return rule.anchor + rule.step * draw(st.integers(0, 5000)) + (0 if rule.anchor else rule.step)


prices = st.integers(1, 10_000_000).map(lambda n: D(n) / 10_000)


@given(st.sampled_from(sorted(KINDS)), st.data(), prices)
def test_buy_then_sell_the_same_quantity_at_the_same_price_leaves_cash_unchanged(kind, data, price):
    instrument = KINDS[kind]
    quantity = grid_quantity(instrument, data.draw)
    buy = instrument.book_fill(
        Fill(side="buy", quantity=quantity, price=price, trade_date=TRADE), CALENDARS
    )
    closes = None
    if kind not in ("fx_spot", "fx_forward"):
        closes = Closing(quantity=quantity, cost=buy.cost_change)
    sell = instrument.book_fill(
        Fill(side="sell", quantity=quantity, price=price, trade_date=TRADE),
        CALENDARS,
        closes=closes,
    )
    assert buy.position_change + sell.position_change == 0
    totals: dict[str, D] = {}
    for booking in (buy, sell):
        for currency, amount in booking.cash_by_currency().items():
            totals[currency] = totals.get(currency, D(0)) + amount
    assert all(amount == 0 for amount in totals.values()), totals
    if closes is not None:
        assert sell.realised == 0
    assert buy.settlement_date == sell.settlement_date >= TRADE
    for movement in buy.cash + sell.cash:
        assert movement.value_date == buy.settlement_date


@given(
    st.sampled_from(sorted(KINDS)),
    st.integers(-10_000_000_000, 10_000_000_000).map(lambda n: D(n) / 1000),
    st.sampled_from([ROUND_DOWN, ROUND_UP, ROUND_HALF_EVEN]),
)
def test_rounded_quantities_are_tradeable(kind, quantity, rounding):
    instrument = KINDS[kind]
    rounded = instrument.round_quantity(quantity, rounding)
    if rounded:
        assert instrument.check_quantity(abs(rounded)) == abs(rounded)
        assert (rounded > 0) == (quantity > 0)
    if rounding == ROUND_DOWN:
        assert abs(rounded) <= abs(quantity)
    if rounding == ROUND_UP:
        assert abs(rounded) >= abs(quantity)
    # rounding a tradeable quantity changes nothing
    if rounded:
        assert instrument.round_quantity(rounded, rounding) == rounded


@given(
    st.sampled_from(["equity", "etf", "option", "future", "fx_spot", "bond"]),
    st.integers(-1_000_000, 1_000_000),
    st.integers(-1_000_000, 1_000_000),
    prices,
)
def test_notional_is_linear_in_quantity(kind, a, b, price):
    instrument = KINDS[kind]
    assert instrument.notional(a + b, price) == instrument.notional(a, price) + instrument.notional(
        b, price
    )


@given(
    st.sampled_from(["equity", "future", "option", "fx_spot"]),
    st.lists(st.integers(1, 50), min_size=1, max_size=6),
    st.data(),
)
def test_allocation_books_the_whole_fill_in_tradeable_pieces(kind, lots, data):
    instrument = KINDS[kind]
    step = instrument.quantity_rule().step
    asked = {f"o{i}": step * n for i, n in enumerate(lots)}
    filled = step * data.draw(st.integers(0, sum(lots)))
    shares = allocate_fill(instrument, filled, asked)
    assert sum(shares.values()) == filled
    for key, q in shares.items():
        assert 0 <= q <= asked[key]
        assert q == 0 or instrument.check_quantity(q) == q


@given(st.sampled_from(sorted(KINDS)), st.data(), prices)
def test_a_price_of_zero_or_less_is_refused_for_a_fill(kind, data, price):
    instrument = KINDS[kind]
    quantity = grid_quantity(instrument, data.draw)
    for bad in (D(0), -price):
        try:
            instrument.book_fill(
                Fill(side="buy", quantity=quantity, price=bad, trade_date=TRADE), CALENDARS
            )
        except InstrumentError:
            continue
        raise AssertionError(f"{kind} booked a fill at {bad}")
