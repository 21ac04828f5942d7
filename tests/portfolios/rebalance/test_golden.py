"""A small golden book of hand-worked accounts; the exact trades are written out."""

import datetime as dt

import pandas as pd
import pytest

from portfolios.rebalance import Options, rebalance
from portfolios.rebalance.checks import check_trades

from .helpers import make_book, trades_of

AS_OF = dt.date(2026, 11, 24)

SECURITIES = [
    {"security": "A", "price": 10.0, "lot": 1},
    {"security": "B", "price": 50.0, "lot": 1},
    {"security": "X", "price": 20.0, "lot": 100},
    {"security": "Z", "price": 10.0, "lot": 100},
    {"security": "F", "price": 8.0, "fractional": True, "increment": 0.001},
]


def golden(accounts, holdings, models, model_cash=None, **kw):
    return make_book(SECURITIES, accounts, holdings, models, model_cash, as_of=AS_OF, **kw)


def run(book, **opts):
    options = Options(**opts)
    res = rebalance(book, options)
    assert check_trades(book, res, options).empty
    return res


def test_cash_into_one_security():
    # 1000 of cash, model 100% A at 10: buy 100
    res = run(golden([{"account": "G1", "model": "M", "cash": 1000.0}], {}, {"M": {"A": 1.0}}))
    assert trades_of(res, "G1") == {"A": 100}
    assert res.accounts.iloc[0]["drift_after"] == pytest.approx(0.0)


def test_round_lots_and_no_overdraft():
    # X (lot 100 at 20) wants 5000 = 250 shares: 200 leaves 1000 of cash, 300 would
    # overdraw by 1000; B wants 5000 = 100 shares exactly. Drift after: 0.1 + 0.1 cash
    res = run(
        golden([{"account": "G2", "model": "M", "cash": 10_000.0}], {}, {"M": {"X": 0.5, "B": 0.5}})
    )
    assert trades_of(res, "G2") == {"X": 200, "B": 100}
    acc = res.accounts.iloc[0]
    assert acc["cash_after"] == pytest.approx(1000.0)
    assert acc["drift_after"] == pytest.approx(0.2)


def test_round_up_when_cash_allows():
    # with a 2% cash target (200 of 10,000) and 1000 of spare cash the engine rounds X
    # (lot 100 at 20, wants 245 shares) up to 300 only if that beats 200: 300 -> +1100
    # over, 200 -> -900 under; B takes 98 shares (4900). Cash after 200 X: 10000-4000-4900
    # = 1100, deviation 900; after 300 X: -900 (below the floor 0): so 200
    res = run(
        golden(
            [{"account": "G3", "model": "M", "cash": 10_000.0}],
            {},
            {"M": {"X": 0.49, "B": 0.49}},
            {"M": 0.02},
        )
    )
    assert trades_of(res, "G3") == {"X": 200, "B": 98}


def test_withdrawal_raises_cash():
    # 100 A at 10 and no cash; a withdrawal of 200 leaves 800 to invest at 100% A: sell 20
    res = run(
        golden(
            [{"account": "G4", "model": "M", "cash": 0.0, "cash_need": 200.0}],
            {"G4": {"A": 100}},
            {"M": {"A": 1.0}},
        )
    )
    assert trades_of(res, "G4") == {"A": -20}
    assert res.accounts.iloc[0]["cash_after"] == pytest.approx(0.0)


def test_deposit_is_invested():
    res = run(
        golden(
            [{"account": "G5", "model": "M", "cash": 0.0, "cash_need": -500.0}],
            {"G5": {"A": 50}},
            {"M": {"A": 1.0}},
        )
    )
    assert trades_of(res, "G5") == {"A": 50}


def test_do_not_sell_blocks_funding():
    # everything is in A (not in the model) which may not be sold: nothing can be done
    res = run(
        golden(
            [{"account": "G6", "model": "M", "cash": 0.0}],
            {"G6": {"A": 100}},
            {"M": {"B": 1.0}},
            restrictions=pd.DataFrame(
                [{"account": "G6", "security": "A", "restriction": "do_not_sell"}]
            ),
        )
    )
    assert trades_of(res, "G6") == {}
    assert res.accounts.iloc[0]["status"] == "no_trade"


def test_min_trade_value():
    # A 52 and B... : 52 A at 10 vs 48 F-free: A wants 50 (sell 2 = 20), B wants 10 at 50
    book = golden(
        [{"account": "G7", "model": "M", "cash": 0.0, "min_trade_value": 50.0}],
        {"G7": {"A": 52, "B": 9.6}},
        {"M": {"A": 0.5, "B": 0.5}},
    )
    assert trades_of(run(book), "G7") == {}
    book.accounts["min_trade_value"] = 0.0
    # without the minimum: sell 2 A (20); B wants 10 shares, has 9.6: buying 1 would
    # overdraw (cash 20 < 50), so B stays
    assert trades_of(run(book), "G7") == {"A": -2}


def test_do_not_buy_leaves_cash():
    res = run(
        golden(
            [{"account": "G8", "model": "M", "cash": 1000.0}],
            {},
            {"M": {"A": 0.5, "B": 0.5}},
            restrictions=pd.DataFrame(
                [{"account": None, "security": "B", "restriction": "do_not_buy"}]
            ),
        )
    )
    assert trades_of(res, "G8") == {"A": 50}
    assert res.accounts.iloc[0]["cash_after"] == pytest.approx(500.0)


def test_odd_lot_is_closed_out():
    # 150 Z (lot 100) is not in the model: all 150 are sold, and 150 A bought
    res = run(
        golden(
            [{"account": "G9", "model": "M", "cash": 0.0}], {"G9": {"Z": 150}}, {"M": {"A": 1.0}}
        )
    )
    assert trades_of(res, "G9") == {"Z": -150, "A": 150}


def test_cash_floor_holds_back_buys():
    # 1000 cash, floor 300, model 100% F (fractional at 8): invest 700 -> 87.5 shares
    res = run(
        golden(
            [{"account": "G10", "model": "M", "cash": 1000.0, "cash_floor": 300.0}],
            {},
            {"M": {"F": 1.0}},
        )
    )
    assert trades_of(res, "G10") == {"F": pytest.approx(87.5)}
    assert res.accounts.iloc[0]["cash_after"] == pytest.approx(300.0)


def lots_book(**acct):
    # 100 A at 10: an old lot of 50 at 8 (gain 2 each) and a newer one of 50 at 12 (loss 2)
    lots = pd.DataFrame(
        [
            {
                "account": "T",
                "security": "A",
                "lot": "old",
                "quantity": 50,
                "cost": 400.0,
                "acquired": dt.date(2020, 1, 2),
            },
            {
                "account": "T",
                "security": "A",
                "lot": "new",
                "quantity": 50,
                "cost": 600.0,
                "acquired": dt.date(2026, 6, 1),
            },
        ]
    )
    return golden(
        [{"account": "T", "model": "M", "cash": 0.0, **acct}],
        {"T": {"A": 100}},
        {"M": {"A": 0.5, "B": 0.5}},
        lots=lots,
    )


def test_fifo_takes_the_oldest_lot():
    res = run(lots_book(), lot_selection="fifo")
    assert trades_of(res, "T") == {"A": -50, "B": 10}
    sell = res.trades[res.trades["security"] == "A"].iloc[0]
    assert sell["lots"] == (("old", 50.0),)
    assert sell["realised_gain"] == pytest.approx(100.0)


def test_hifo_takes_the_dearest_lot():
    res = run(lots_book(), lot_selection="hifo")
    sell = res.trades[res.trades["security"] == "A"].iloc[0]
    assert sell["lots"] == (("new", 50.0),)
    assert sell["realised_gain"] == pytest.approx(-100.0)
    assert res.accounts.iloc[0]["realised_gain"] == pytest.approx(-100.0)


def test_min_tax_takes_the_loss_first():
    res = run(lots_book(), lot_selection="min_tax")
    sell = res.trades[res.trades["security"] == "A"].iloc[0]
    assert sell["lots"] == (("new", 50.0),)


def test_gains_cap_limits_the_sell():
    # FIFO sells the old lot at a gain of 2 a share; a cap of 50 allows 25 shares, which
    # fund 5 B (250)
    res = run(lots_book(gains_cap=50.0), lot_selection="fifo")
    assert trades_of(res, "T") == {"A": -25, "B": 5}
    assert res.accounts.iloc[0]["realised_gain"] == pytest.approx(50.0)


def test_wash_sale_no_loss_sale_of_a_recent_buy():
    # the new lot was bought 30 days ago... move it inside the window: its loss cannot be
    # realised, so HIFO falls back to the old lot
    book = lots_book()
    book.lots.loc[book.lots["lot"] == "new", "acquired"] = AS_OF - dt.timedelta(days=10)
    res = run(book, lot_selection="hifo", wash_sale_days=30)
    sell = res.trades[res.trades["security"] == "A"].iloc[0]
    assert sell["lots"] == (("old", 50.0),)


def test_wash_sale_no_buy_after_a_loss_sale():
    sales = pd.DataFrame(
        [{"account": "W", "security": "B", "date": AS_OF - dt.timedelta(days=5), "gain": -30.0}]
    )
    book = golden(
        [{"account": "W", "model": "M", "cash": 1000.0}],
        {},
        {"M": {"A": 0.5, "B": 0.5}},
        sales=sales,
    )
    assert trades_of(run(book), "W") == {"A": 50}
    # outside the window the buy is allowed again
    assert trades_of(run(book, wash_sale_days=3), "W") == {"A": 50, "B": 10}


def test_bands_leave_a_position_alone():
    # 270 A (2700) and 6 B (300) and 1600 of cash: value 4600, A at 58.7% and B at 6.5% of
    # 50% each. With a 10-point band A is left alone; B wants 2300 = 46 shares, and the 1600
    # of cash buys 32 of them (A may not be sold to fund more)
    book = golden(
        [{"account": "BND", "model": "M", "cash": 1600.0}],
        {"BND": {"A": 270, "B": 6}},
        {"M": {"A": 0.5, "B": 0.5}},
    )
    res = run(book, band_abs=0.10)
    assert trades_of(res, "BND") == {"B": 32}
    assert res.accounts.iloc[0]["cash_after"] == pytest.approx(0.0)
    # a band of 50 points holds everything: no trade at all
    res = run(book, band_abs=0.5, band_rel=0.0)
    assert trades_of(res, "BND") == {}
    assert res.accounts.iloc[0]["status"] == "in_band"


def test_trade_to_band_edge():
    # B at 6.5% vs 50% with a 10-point band: to the edge (40% of 4600 = 1840 = 36.8 shares)
    book = golden(
        [{"account": "E", "model": "M", "cash": 1600.0}],
        {"E": {"A": 270, "B": 6}},
        {"M": {"A": 0.5, "B": 0.5}},
    )
    res = run(book, band_abs=0.10, trade_to="band_edge")
    assert trades_of(res, "E") == {"B": 31}
