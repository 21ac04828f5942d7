"""Raise cash (sell what drifts most first, tax-aware), short/long-term gains, and the
what-if of edited trades: pure engine, no Django."""

import datetime as dt

import pandas as pd
import pytest

from portfolios.rebalance import BookError, Options, raise_cash, rebalance, what_if

from .helpers import make_book

AS_OF = dt.date(2026, 6, 1)


def book(need=5_000.0, cash=1_000.0, floor=500.0, lots=None, restrictions=None):
    # value 100k: AAA 50% (target 30%: overweight 20 points), BBB 30% (target 30%),
    # CCC 19% (target 35%: underweight), cash 1%
    return make_book(
        securities=[
            {"security": "AAA", "price": 100.0, "lot": 1},
            {"security": "BBB", "price": 50.0, "lot": 10},
            {"security": "CCC", "price": 19.0, "lot": 1},
        ],
        accounts=[
            {"account": "A", "model": "M", "cash": cash, "cash_floor": floor, "cash_need": need}
        ],
        holdings={"A": {"AAA": 500, "BBB": 600, "CCC": 1000}},
        models={"M": {"AAA": 0.30, "BBB": 0.30, "CCC": 0.35}},
        model_cash={"M": 0.05},
        lots=lots,
        restrictions=restrictions,
        as_of=AS_OF,
    )


def test_raise_cash_sells_the_most_overweight_first_and_only_what_is_needed():
    result = raise_cash(book(need=5_000.0))
    trades = result.trades.set_index("security")
    # need 5000 + floor 500 - cash 1000 = 4500 to raise: 45 AAA, nothing else
    assert list(trades.index) == ["AAA"]
    assert trades.loc["AAA", "quantity"] == -45
    acc = result.accounts.set_index("account").loc["A"]
    assert acc["cash_after"] == pytest.approx(500.0)
    assert acc["status"] == "rebalanced"
    assert (result.trades["side"] == "sell").all()


def test_raise_cash_goes_past_the_targets_only_when_the_overweights_are_not_enough():
    # the value after the 40k withdrawal is 60k: AAA's excess over its target is
    # 50,000 - 0.30 * 60,000 = 32,000; 39,500 is to raise (need + floor - cash)
    result = raise_cash(book(need=40_000.0))
    q = result.trades.set_index("security")["quantity"].to_dict()
    assert q["AAA"] == -320  # the most overweight, down to its target first
    # then BBB (30,000 against 18,000 of target): the 7,500 left, in lots of 10
    assert q["BBB"] == -150
    assert "CCC" not in q  # underweight: untouched
    acc = result.accounts.set_index("account").loc["A"]
    assert acc["cash_after"] >= 500.0 - 1e-6


def test_raise_cash_nothing_to_do_when_the_cash_is_there():
    result = raise_cash(book(need=100.0, cash=5_000.0))
    assert result.trades.empty
    assert result.accounts.set_index("account").loc["A", "status"] != "rebalanced"


def test_raise_cash_that_cannot_be_met_skips_the_account_with_the_shortfall():
    result = raise_cash(book(need=99_800.0))  # 99,300 to raise from 99,000 held
    assert result.trades.empty
    reason = result.skipped_reasons()["A"]
    assert "cannot raise" in reason and "short by" in reason


def test_raise_cash_respects_do_not_sell():
    restrictions = pd.DataFrame([{"account": "A", "security": "AAA", "restriction": "do_not_sell"}])
    result = raise_cash(book(need=5_000.0, restrictions=restrictions))
    assert "AAA" not in set(result.trades["security"])
    assert not result.trades.empty


def lots_frame():
    return pd.DataFrame(
        [
            # AAA: an old cheap lot and a recent expensive one
            {
                "account": "A",
                "security": "AAA",
                "lot": "old",
                "quantity": 250,
                "cost": 250 * 40.0,
                "acquired": AS_OF - dt.timedelta(days=800),
            },
            {
                "account": "A",
                "security": "AAA",
                "lot": "new",
                "quantity": 250,
                "cost": 250 * 90.0,
                "acquired": AS_OF - dt.timedelta(days=100),
            },
        ]
    )


def test_raise_cash_takes_the_lots_the_run_chose_and_splits_gains_by_holding_period():
    fifo = raise_cash(book(need=5_000.0, lots=lots_frame()), Options(lot_selection="fifo"))
    hifo = raise_cash(book(need=5_000.0, lots=lots_frame()), Options(lot_selection="hifo"))
    f = fifo.accounts.set_index("account").loc["A"]
    h = hifo.accounts.set_index("account").loc["A"]
    # 45 AAA at 100: FIFO takes the old lot (gain 60 each, long term)
    assert f["long_term_gain"] == pytest.approx(45 * 60.0)
    assert f["short_term_gain"] == pytest.approx(0.0)
    # HIFO takes the recent lot (gain 10 each, short term)
    assert h["short_term_gain"] == pytest.approx(45 * 10.0)
    assert h["long_term_gain"] == pytest.approx(0.0)
    assert h["realised_gain"] == pytest.approx(h["short_term_gain"] + h["long_term_gain"])
    trade = hifo.trades.set_index("security").loc["AAA"]
    assert trade["short_term_gain"] == pytest.approx(450.0)
    assert list(hifo.lots["long_term"]) == [False]


def test_raise_cash_keeps_the_gains_cap():
    """Raise cash ignored the run's gains cap: 45 AAA from the old lot realised 2,700
    against a cap of 1,000. Now AAA sells only what the cap allows (16 at a gain of 60)
    and the rest comes from positions that realise nothing (BBB, CCC: no lots, no gain)."""
    uncapped = raise_cash(book(need=5_000.0, lots=lots_frame()), Options(lot_selection="fifo"))
    assert uncapped.accounts.set_index("account").loc["A", "realised_gain"] == pytest.approx(2700)
    result = raise_cash(
        book(need=5_000.0, lots=lots_frame()), Options(lot_selection="fifo", gains_cap=1_000.0)
    )
    acc = result.accounts.set_index("account").loc["A"]
    assert acc["status"] == "rebalanced"
    assert acc["realised_gain"] <= 1_000.0 + 1e-6
    assert acc["cash_after"] >= 500.0 - 1e-6
    q = result.trades.set_index("security")["quantity"].to_dict()
    assert q["AAA"] == -16  # 16 x 60 = 960 of gain; a 17th would pass the cap
    assert (result.trades["side"] == "sell").all()
    # an account's own cap counts too, and HIFO's cheaper gains need no cut
    hifo = raise_cash(
        book(need=5_000.0, lots=lots_frame()), Options(lot_selection="hifo", gains_cap=1_000.0)
    )
    assert hifo.trades.set_index("security")["quantity"].to_dict() == {"AAA": -45}


def test_raise_cash_that_the_gains_cap_keeps_from_raising_says_so():
    # 59,500 to raise; BBB and CCC free 49,000 without gains, AAA's lots all gain
    result = raise_cash(
        book(need=60_000.0, lots=lots_frame()), Options(lot_selection="fifo", gains_cap=0.0)
    )
    assert result.trades.empty
    reason = result.skipped_reasons()["A"]
    assert "within the gains cap of 0.00" in reason and "short by" in reason


def test_rebalance_reports_short_and_long_term_gains_too():
    result = rebalance(book(need=0.0, lots=lots_frame()), Options(lot_selection="fifo"))
    acc = result.accounts.set_index("account").loc["A"]
    assert acc["realised_gain"] == pytest.approx(acc["short_term_gain"] + acc["long_term_gain"])
    assert acc["long_term_gain"] > 0


def test_what_if_measures_edited_trades_and_names_the_rules_they_break():
    b = book(need=0.0)
    trades = pd.DataFrame(
        [
            {"account": "A", "security": "AAA", "quantity": -200.0},
            {"account": "A", "security": "CCC", "quantity": 800.0},
        ]
    )
    result = what_if(b, trades)
    acc = result.accounts.set_index("account").loc["A"]
    assert acc["cash_after"] == pytest.approx(1_000 + 20_000 - 800 * 19)
    assert acc["drift_after"] < acc["drift_before"]
    assert result.breaches.empty
    after = result.trades.set_index("security")
    assert after.loc["AAA", "weight_after"] == pytest.approx(30_000 / 100_000)


@pytest.mark.parametrize(
    ("security", "quantity", "rule"),
    [
        ("BBB", -15.0, "lot"),  # BBB trades in lots of 10
        ("AAA", -600.0, "short sale"),  # holds 500
        ("CCC", 2_000.0, "cash floor"),  # 38,000 of buys on 1,000 of cash
    ],
)
def test_what_if_breaches(security, quantity, rule):
    trades = pd.DataFrame([{"account": "A", "security": security, "quantity": quantity}])
    breaches = what_if(book(need=0.0), trades).breaches
    assert rule in set(breaches["rule"]), breaches


def test_what_if_refuses_a_security_neither_held_nor_targeted():
    trades = pd.DataFrame([{"account": "A", "security": "ZZZ", "quantity": 1.0}])
    with pytest.raises(BookError, match="ZZZ"):
        what_if(book(need=0.0), trades)


@pytest.mark.parametrize(
    "acquired, sold, long_term",
    [
        # held more than one year is long term: the anniversary itself is not
        (dt.date(2025, 6, 1), dt.date(2026, 6, 1), False),
        (dt.date(2025, 6, 1), dt.date(2026, 6, 2), True),
        # a year over a 29 February is 366 days
        (dt.date(2024, 1, 15), dt.date(2025, 1, 15), False),
        (dt.date(2024, 1, 15), dt.date(2025, 1, 16), True),
        (dt.date(2023, 3, 1), dt.date(2024, 2, 29), False),
    ],
)
def test_a_lot_is_long_term_only_when_held_more_than_a_year(acquired, sold, long_term):
    lot = pd.DataFrame(
        [
            {
                "account": "A",
                "security": "AAA",
                "lot": "one",
                "quantity": 500,
                "cost": 500 * 40.0,
                "acquired": acquired,
            }
        ]
    )
    b = book(need=5_000.0, lots=lot)
    b.as_of = sold
    result = raise_cash(b, Options(lot_selection="fifo", wash_sale_days=0))
    acc = result.accounts.set_index("account").loc["A"]
    gain = 45 * 60.0  # 45 AAA at 100 bought at 40
    assert acc["realised_gain"] == pytest.approx(gain)
    assert acc["long_term_gain"] == pytest.approx(gain if long_term else 0.0)
    assert acc["short_term_gain"] == pytest.approx(0.0 if long_term else gain)
    assert list(result.lots["long_term"]) == [long_term]
