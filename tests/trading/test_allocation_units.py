"""Allocation of a block's fill in each instrument's units (wrapping
trading.allocation.allocate_pro_rata), with a bond's minimum piece."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portfolios.instruments import (
    LISTED_DERIVATIVES_US,
    Bond,
    DayCount,
    Future,
    FxSpot,
    InstrumentError,
)
from portfolios.instruments.settlement import EU_SECURITIES
from tests.portfolios.instruments.helpers import D, day
from trading.allocation import allocate_fill


def eurobond(min_piece=100_000, increment=1_000):
    return Bond(
        symbol="XS 100K",
        currency="EUR",
        issuer_type="corporate",
        coupon_rate=D("0.03"),
        frequency=1,
        day_count=DayCount.THIRTY_E_360,
        issue_date=day("2024-03-15"),
        maturity=day("2031-03-15"),
        min_piece=D(min_piece),
        increment=D(increment),
        settlement=EU_SECURITIES,
        settlement_calendar="TARGET",
    )


def test_bond_fill_never_leaves_an_account_below_the_minimum_piece():
    # By hand: 250,000 filled of A 150,000, B 100,000, C 100,000 asked. Pro rata in
    # 1,000s: A 107,142.9 -> 107,000, B and C 71,428.6 -> 71,000 each, and the 1,000 left to
    # the largest remainder (a tie between B and C: the smaller request, then the key): B
    # 72,000. B and C are below the 100,000 piece: C, the smaller, leaves; 250,000 split
    # over A and B, who asked exactly 250,000: A 150,000, B 100,000.
    shares = allocate_fill(
        eurobond(), D(250_000), {"A": D(150_000), "B": D(100_000), "C": D(100_000)}
    )
    assert shares == {"A": D(150_000), "B": D(100_000), "C": D(0)}
    for q in shares.values():
        assert q == 0 or eurobond().check_quantity(q)


def test_bond_fill_that_cannot_be_placed_is_refused():
    # 150,000 over two accounts asking 100,000 each: 75,000 each, both below the piece;
    # without A (the lower key), B's 100,000 cannot take 150,000.
    with pytest.raises(InstrumentError, match="cannot be allocated in pieces of at least 100,000"):
        allocate_fill(eurobond(), D(150_000), {"A": D(100_000), "B": D(100_000)})


def test_futures_allocate_in_whole_contracts_and_fx_in_cents():
    future = Future(
        symbol="ESM5",
        currency="USD",
        underlying="S&P 500",
        multiplier=D(50),
        expiry=day("2025-06-20"),
        settlement=LISTED_DERIVATIVES_US,
        settlement_calendar="US",
    )
    # 7 of 10 asked (5, 3, 2): 3.5, 2.1, 1.4 -> 3, 2, 1 and the last to the largest
    # remainder (0.5): 4, 2, 1.
    assert allocate_fill(future, 7, {"a": 5, "b": 3, "c": 2}) == {"a": 4, "b": 2, "c": 1}
    spot = FxSpot(symbol="EUR/USD", pair="EUR/USD")
    shares = allocate_fill(spot, D("1000000.00"), {"x": D("600000"), "y": D("900000")})
    assert sum(shares.values()) == D("1000000.00")
    assert shares == {"x": D("400000.00"), "y": D("600000.00")}


def test_a_fill_larger_than_the_orders_is_refused():
    with pytest.raises(InstrumentError, match="exceeds"):
        allocate_fill(eurobond(), D(500_000), {"A": D(100_000)})


@given(
    st.lists(st.integers(100, 400), min_size=1, max_size=6),
    st.data(),
)
def test_bond_allocations_are_whole_pieces_or_refused(asks_thousands, data):
    bond = eurobond()
    asked = {f"acct{i}": D(a * 1000) for i, a in enumerate(asks_thousands)}
    total = sum(asked.values())
    filled = D(data.draw(st.integers(100, int(total / 1000)))) * 1000
    try:
        shares = allocate_fill(bond, filled, asked)
    except InstrumentError:
        return
    assert sum(shares.values()) == filled
    for key, q in shares.items():
        assert 0 <= q <= asked[key]
        assert q == 0 or bond.check_quantity(q) == q
