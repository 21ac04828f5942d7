import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from portfolios.rebalance import (
    BookError,
    DriftResult,
    Options,
    RebalanceResult,
    compute_drift,
    rebalance,
)

from .helpers import make_book, trades_of

ROOT = Path(__file__).resolve().parents[3]


def test_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import portfolios.rebalance; import sys; assert 'django' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def simple_book(**kw):
    return make_book(
        securities=[
            {"security": "AAA", "price": 41.5, "lot": 1},
            {"security": "BBB", "price": 20.0, "lot": 100},
            {"security": "CCC", "price": 12.0, "fractional": True, "increment": 0.001},
        ],
        accounts=[
            {"account": "A1", "model": "G", "cash": 1500.0, "cash_floor": 250.0},
            {"account": "A2", "model": "G", "cash": 100_000.0},
        ],
        holdings={"A1": {"AAA": 100, "BBB": 200}},
        models={"G": {"AAA": 0.58, "CCC": 0.4}},
        model_cash={"G": 0.02},
        **kw,
    )


def test_drift_frames():
    res = compute_drift(simple_book())
    assert isinstance(res, DriftResult)
    pos = res.positions.set_index(["account", "security"])
    assert pos.loc[("A1", "AAA"), "weight"] == pytest.approx(4150 / 9650)
    assert pos.loc[("A1", "BBB"), "target"] == 0
    assert pos.loc[("A1", "BBB"), "out_of_band"]
    acc = res.accounts.set_index("account")
    expected = abs(4150 / 9650 - 0.58) + 4000 / 9650 + 0.4 + abs(1500 / 9650 - 0.02)
    assert acc.loc["A1", "drift"] == pytest.approx(expected)
    assert acc.loc["A2", "drift"] == pytest.approx(0.58 + 0.4 + 0.98)
    assert acc.loc["A2", "value"] == 100_000


def test_rebalance_respects_floor_and_lots():
    res = rebalance(simple_book())
    assert isinstance(res, RebalanceResult)
    a1 = trades_of(res, "A1")
    assert a1["BBB"] == -200
    assert a1["AAA"] == 34
    acc = res.accounts.set_index("account")
    assert acc.loc["A1", "cash_after"] >= 250 - 1e-9
    assert acc.loc["A1", "drift_after"] < 0.02
    a2 = trades_of(res, "A2")
    assert a2["AAA"] == 1398
    assert a2["CCC"] == pytest.approx(3333.333)
    assert res.skipped.empty


def test_integer_ids_are_supported():
    book = make_book(
        securities=[{"security": 7, "price": 10.0}, {"security": 9, "price": 5.0}],
        accounts=[{"account": 101, "model": 1, "cash": 1000.0}],
        models={1: {7: 0.5, 9: 0.5}},
    )
    res = rebalance(book)
    assert trades_of(res, 101) == {7: 50, 9: 100}
    # database keys come back as integers, not objects
    assert res.trades["account"].dtype.kind == "i"
    assert res.trades["security"].dtype.kind == "i"
    assert res.accounts["account"].dtype.kind == "i"


def test_skip_reasons():
    book = make_book(
        securities=[
            {"security": "AAA", "price": 10.0},
            {"security": "BBB", "price": np.nan},
        ],
        accounts=[
            {"account": "NOMODEL", "model": None, "cash": 100.0},
            {"account": "BADSUM", "model": "Half", "cash": 100.0},
            {"account": "NOPRICE", "model": "Both", "cash": 100.0},
            {"account": "OK", "model": "One", "cash": 100.0},
        ],
        models={"Half": {"AAA": 0.5}, "Both": {"AAA": 0.5, "BBB": 0.5}, "One": {"AAA": 1.0}},
    )
    res = rebalance(book)
    reasons = res.skipped_reasons()
    assert reasons["NOMODEL"] == "no model"
    assert "sum to 50.00%" in reasons["BADSUM"]
    assert reasons["NOPRICE"] == "no price for BBB"
    assert "OK" not in reasons
    assert set(res.trades["account"]) == {"OK"}


def test_bad_book_raises():
    book = make_book(
        securities=[{"security": "AAA", "price": -1.0}],
        accounts=[{"account": "X", "model": "M", "cash": 1.0}],
        models={"M": {"AAA": 1.0}},
    )
    with pytest.raises(BookError, match="AAA"):
        rebalance(book)
    with pytest.raises(BookError):
        Options(trade_to="nowhere")


def test_fx_converts_to_the_base_currency():
    # E costs 10 EUR = 11 USD; 1100 USD of cash buys 100
    book = make_book(
        securities=[{"security": "E", "price": 10.0, "currency": "EUR"}],
        accounts=[{"account": "U", "model": "M", "cash": 1100.0, "base_currency": "USD"}],
        models={"M": {"E": 1.0}},
        fx=pd.DataFrame([{"currency": "EUR", "base": "USD", "rate": 1.1}]),
    )
    res = rebalance(book)
    assert trades_of(res, "U") == {"E": 100}
    t = res.trades.iloc[0]
    assert (t["price"], t["fx"], t["value"]) == (10.0, 1.1, pytest.approx(1100.0))
    # the inverse pair is used when only it is given
    book.fx = pd.DataFrame([{"currency": "USD", "base": "EUR", "rate": 1 / 1.1}])
    assert trades_of(rebalance(book), "U") == {"E": 100}
    book.fx = None
    assert rebalance(book).skipped_reasons() == {"U": "no FX rate EUR->USD"}


def test_stale_prices_skip_unless_allowed():
    book = make_book(
        securities=[
            {"security": "A", "price": 10.0, "price_date": dt.date(2026, 11, 1)},
            {"security": "B", "price": 10.0, "price_date": dt.date(2026, 11, 23)},
        ],
        accounts=[{"account": "S", "model": "M", "cash": 1000.0}],
        models={"M": {"A": 0.5, "B": 0.5}},
        as_of=dt.date(2026, 11, 24),
    )
    assert rebalance(book, Options(max_price_age_days=5)).skipped_reasons() == {
        "S": "stale price for A"
    }
    assert rebalance(book, Options(max_price_age_days=5, allow_stale=True)).skipped.empty
    assert rebalance(book).skipped.empty  # no age limit
    book.securities["stale"] = [False, True]
    assert rebalance(book).skipped_reasons() == {"S": "stale price for B"}


def test_min_qty_and_min_trade_pct():
    book = make_book(
        securities=[
            {"security": "A", "price": 10.0, "min_qty": 50},
            {"security": "B", "price": 10.0},
        ],
        accounts=[{"account": "Q", "model": "M", "cash": 700.0}],
        holdings={"Q": {"B": 30}},
        models={"M": {"A": 0.3, "B": 0.7}},
    )
    # value 1000: A wants 30 shares, below its minimum quantity of 50: either none or at
    # least 50; B wants 70 (+40)
    res = rebalance(book)
    a = trades_of(res, "Q")
    assert a.get("A", 0) == 0 or abs(a["A"]) >= 50
    assert a["B"] == 40
    # a minimum trade of 50% of the account (500) forbids the 400 of B
    book.accounts["min_trade_pct"] = 0.5
    a = trades_of(rebalance(book), "Q")
    assert all(abs(q) * 10 >= 500 for q in a.values())


def test_do_not_trade_and_firm_wide_restrictions():
    book = make_book(
        securities=[{"security": "A", "price": 10.0}, {"security": "B", "price": 10.0}],
        accounts=[
            {"account": "R1", "model": "M", "cash": 0.0},
            {"account": "R2", "model": "M", "cash": 0.0},
        ],
        holdings={"R1": {"A": 100}, "R2": {"A": 100}},
        models={"M": {"A": 0.5, "B": 0.5}},
        restrictions=pd.DataFrame(
            [{"account": "R1", "security": "A", "restriction": "do_not_trade"}]
        ),
    )
    res = rebalance(book)
    assert trades_of(res, "R1") == {}
    assert trades_of(res, "R2") == {"A": -50, "B": 50}
    book.restrictions = pd.DataFrame([{"security": "B", "restriction": "do_not_buy"}])
    res = rebalance(book)
    assert trades_of(res, "R1") == {"A": -50} and trades_of(res, "R2") == {"A": -50}


def test_long_only_false_allows_selling_past_zero_only_when_needed():
    # not long-only: the engine still never goes short to reach a non-negative target
    book = make_book(
        securities=[{"security": "A", "price": 10.0}, {"security": "B", "price": 10.0}],
        accounts=[{"account": "L", "model": "M", "cash": 0.0, "long_only": False}],
        holdings={"L": {"A": 100}},
        models={"M": {"A": 0.5, "B": 0.5}},
    )
    assert trades_of(rebalance(book), "L") == {"A": -50, "B": 50}


def test_drift_bands_flag_out_of_band():
    book = make_book(
        securities=[{"security": "A", "price": 10.0}, {"security": "B", "price": 10.0}],
        accounts=[{"account": "D", "model": "M", "cash": 0.0}],
        holdings={"D": {"A": 53, "B": 47}},
        models={"M": {"A": 0.5, "B": 0.5}},
    )
    pos = compute_drift(book, Options(band_abs=0.05)).positions.set_index("security")
    assert not pos["out_of_band"].any()
    pos = compute_drift(book, Options(band_rel=0.05)).positions.set_index("security")
    assert pos["out_of_band"].all()  # 5% of 50% is 2.5 points < 3
    acc = compute_drift(book, Options(band_rel=0.05)).accounts.iloc[0]
    assert acc["drift"] == pytest.approx(0.06)
    assert acc["max_abs_drift"] == pytest.approx(0.03)


def test_weight_tolerance():
    book = make_book(
        securities=[{"security": "A", "price": 10.0}],
        accounts=[{"account": "W", "model": "M", "cash": 1000.0}],
        models={"M": {"A": 0.9995}},
    )
    assert "sum to 99.95%" in rebalance(book).skipped_reasons()["W"]
    assert rebalance(book, Options(weight_tolerance=1e-3)).skipped.empty


def test_optimiser_effort_only_improves():
    from portfolios.rebalance.checks import check_trades
    from portfolios.rebalance.synthetic import synthetic_book

    book = synthetic_book(60, 20, n_securities=40, seed=3, lot_100_share=0.4)
    greedy = Options(local_search_rounds=0, pair_candidates=0, subset_moves=0)
    full = Options(subset_moves=8)
    res_g, res_f = rebalance(book, greedy), rebalance(book, full)
    for opts, res in ((greedy, res_g), (full, res_f)):
        assert check_trades(book, res, opts).empty
    g = res_g.accounts.set_index("account")["drift_after"]
    f = res_f.accounts.set_index("account")["drift_after"]
    assert (f <= g + 1e-9).all()
    assert f.mean() < g.mean()
