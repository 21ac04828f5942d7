import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
