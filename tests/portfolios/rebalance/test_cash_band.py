"""Cash out of its band while every position is inside its own: the positions move
toward their targets, in the direction that brings cash back."""

import pandas as pd

from portfolios.rebalance import Book, Options, check_trades, rebalance


def _book(cash: float, holdings: dict[str, float]) -> Book:
    return Book(
        securities=pd.DataFrame({"security": ["A", "B", "C"], "price": [10.0, 20.0, 50.0]}),
        accounts=pd.DataFrame({"account": ["X"], "model": ["M"], "cash": [cash]}),
        holdings=pd.DataFrame(
            {"account": "X", "security": list(holdings), "quantity": list(holdings.values())}
        ),
        models=pd.DataFrame(
            {"model": "M", "security": ["A", "B", "C"], "weight": [0.35, 0.3, 0.3]}
        ),
        model_cash=pd.DataFrame({"model": ["M"], "cash": [0.05]}),
    )


OPTIONS = Options(band_abs=0.02)


def test_excess_cash_is_invested_in_the_underweight_positions():
    # value 10,000: A 34%, B 29%, C 28% (all within ±2%), cash 9% against 5% (out).
    book = _book(900.0, {"A": 340, "B": 145, "C": 56})
    result = rebalance(book, OPTIONS)
    trades = result.trades.set_index("security")["quantity"]
    assert (trades > 0).all(), "only buys"
    assert set(trades.index) <= {"A", "B", "C"}
    account = result.accounts.iloc[0]
    assert account["status"] == "rebalanced"
    assert account["drift_after"] < account["drift_before"]
    assert account["cash_after"] < 900.0
    assert check_trades(book, result, OPTIONS).empty


def test_short_cash_is_raised_from_the_overweight_positions():
    # value 10,000: A 36%, B 31%, C 32% (all within ±2%), cash 1% against 5% (out).
    book = _book(100.0, {"A": 360, "B": 155, "C": 64})
    result = rebalance(book, OPTIONS)
    trades = result.trades.set_index("security")["quantity"]
    assert (trades < 0).all(), "only sells"
    account = result.accounts.iloc[0]
    assert account["drift_after"] < account["drift_before"]
    assert account["cash_after"] > 100.0
    assert check_trades(book, result, OPTIONS).empty


def test_cash_inside_its_band_leaves_positions_inside_theirs_alone():
    book = _book(600.0, {"A": 340, "B": 145, "C": 58})  # cash 6% against 5%: inside
    result = rebalance(book, OPTIONS)
    assert result.trades.empty
    assert result.accounts.iloc[0]["status"] == "in_band"
