"""Small builders of books for the tests."""

from __future__ import annotations

import pandas as pd

from portfolios.rebalance import Book


def make_book(
    securities: list[dict],
    accounts: list[dict],
    holdings: dict | None = None,
    models: dict | None = None,
    model_cash: dict | None = None,
    **extra,
) -> Book:
    """``holdings``: {account: {security: qty}}; ``models``: {model: {security: weight}};
    ``model_cash``: {model: cash weight or a dict of model_cash columns}."""
    hold_rows = [
        {"account": a, "security": s, "quantity": q}
        for a, pos in (holdings or {}).items()
        for s, q in pos.items()
    ]
    model_rows = [
        {"model": m, "security": s, "weight": w}
        for m, targets in (models or {}).items()
        for s, w in targets.items()
    ]
    cash_rows = []
    for m, c in (model_cash or {}).items():
        cash_rows.append({"model": m, **(c if isinstance(c, dict) else {"cash": c})})
    return Book(
        securities=pd.DataFrame(securities),
        accounts=pd.DataFrame(accounts),
        holdings=pd.DataFrame(hold_rows, columns=["account", "security", "quantity"]),
        models=pd.DataFrame(model_rows, columns=["model", "security", "weight"]),
        model_cash=pd.DataFrame(cash_rows) if cash_rows else None,
        **extra,
    )


def trades_of(result, account) -> dict:
    t = result.trades[result.trades["account"] == account]
    return dict(zip(t["security"], t["quantity"], strict=True))
