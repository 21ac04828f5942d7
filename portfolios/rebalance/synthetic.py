"""Seeded synthetic books for benchmarks and demos (no test relies on their exact values)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .book import Book


def synthetic_book(
    n_accounts: int = 10_000,
    positions: int = 50,
    n_models: int = 5,
    n_securities: int = 100,
    seed: int = 7,
    *,
    lot_100_share: float = 0.15,
    fractional_share: float = 0.15,
    cash_floor_share: float = 0.3,
    withdrawal_share: float = 0.1,
    restricted_share: float = 0.1,
    min_trade_value: float = 0.0,
    value_range: tuple[float, float] = (50_000.0, 2_000_000.0),
) -> Book:
    """A book of ``n_accounts`` accounts each holding about ``positions`` securities.

    ``n_models`` models each target ``positions`` securities of a universe of
    ``n_securities`` with a cash target of 0-5%. Accounts hold most of their model's
    securities at drifted weights, a few off-model ones, and 0-10% cash; some have a cash
    floor, a withdrawal, a do-not-buy or do-not-sell restriction, a minimum trade value.
    """
    rng = np.random.default_rng(seed)
    S = n_securities
    sec_ids = np.array([f"S{i:04d}" for i in range(S)], dtype=object)
    price = np.round(np.exp(rng.normal(3.8, 0.9, S)), 2).clip(1.0, 2000.0)
    kind = rng.random(S)
    lot = np.where(kind < lot_100_share, 100.0, 1.0)
    fractional = kind > 1 - fractional_share
    securities = pd.DataFrame(
        {
            "security": sec_ids,
            "price": price,
            "currency": "USD",
            "lot": lot,
            "fractional": fractional,
            "increment": np.where(fractional, 0.001, 1.0),
        }
    )
    k = min(positions, S)
    model_ids = np.array([f"M{m}" for m in range(n_models)], dtype=object)
    m_rows = []
    cash_rows = []
    for m in range(n_models):
        chosen = rng.choice(S, size=k, replace=False)
        cash = float(np.round(rng.uniform(0.0, 0.05), 4))
        w = rng.dirichlet(np.full(k, 2.0)) * (1 - cash)
        w = np.round(w, 6)
        w[0] += 1 - cash - w.sum()
        m_rows.append(
            pd.DataFrame({"model": model_ids[m], "security": sec_ids[chosen], "weight": w})
        )
        cash_rows.append({"model": model_ids[m], "cash": cash})
    models = pd.concat(m_rows, ignore_index=True)
    model_cash = pd.DataFrame(cash_rows)

    A = n_accounts
    acct_ids = np.array([f"A{i:06d}" for i in range(A)], dtype=object)
    acct_model = rng.integers(0, n_models, A)
    value = np.exp(rng.uniform(np.log(value_range[0]), np.log(value_range[1]), A))
    cash_w = rng.uniform(0.0, 0.10, A)
    # holdings: the model's securities at drifted weights, a few of them dropped, and a
    # couple of off-model ones
    mw = models.groupby("model", sort=False)
    per_model = {model_ids[m]: mw.get_group(model_ids[m]) for m in range(n_models)}
    sec_pos = pd.Index(sec_ids)
    acc_rep = np.repeat(np.arange(A), k)
    tsec = np.empty(A * k, dtype=np.int64)
    tw = np.empty(A * k)
    for m in range(n_models):
        sel = np.flatnonzero(acct_model == m)
        g = per_model[model_ids[m]]
        si = sec_pos.get_indexer(g["security"])
        idx = sel[:, None] * k + np.arange(k)
        tsec[idx] = si[None, :]
        tw[idx] = g["weight"].to_numpy()[None, :]
    drift = tw * np.exp(rng.normal(0, 0.25, A * k))
    drift[rng.random(A * k) < 0.06] = 0.0  # not held yet
    n_off = 2
    off_acc = np.repeat(np.arange(A), n_off)
    off_sec = rng.integers(0, S, A * n_off)
    off_w = rng.uniform(0.0, 0.01, A * n_off)
    h_acc = np.concatenate([acc_rep, off_acc])
    h_sec = np.concatenate([tsec, off_sec])
    h_w = np.concatenate([drift, off_w])
    tot = np.bincount(h_acc, weights=h_w, minlength=A)
    h_w = h_w / tot[h_acc] * (1 - cash_w[h_acc])
    qty = h_w * value[h_acc] / price[h_sec]
    qty = np.where(fractional[h_sec], np.round(qty, 3), np.floor(qty / lot[h_sec]) * lot[h_sec])
    keep = qty > 0
    holdings = pd.DataFrame(
        {"account": acct_ids[h_acc[keep]], "security": sec_ids[h_sec[keep]], "quantity": qty[keep]}
    )
    invested = np.bincount(h_acc[keep], weights=(qty * price[h_sec])[keep], minlength=A)
    cash = np.round(value - invested, 2)
    floor = np.where(
        rng.random(A) < cash_floor_share, np.round(value * rng.uniform(0, 0.03, A), 2), 0
    )
    need = np.where(
        rng.random(A) < withdrawal_share, np.round(value * rng.uniform(0.01, 0.08, A), 2), 0.0
    )
    accounts = pd.DataFrame(
        {
            "account": acct_ids,
            "model": model_ids[acct_model],
            "base_currency": "USD",
            "cash": cash,
            "cash_floor": floor,
            "cash_need": need,
            "min_trade_value": min_trade_value,
            "long_only": True,
        }
    )
    r_acc = np.flatnonzero(rng.random(A) < restricted_share)
    r_sec = tsec[r_acc * k + rng.integers(0, k, len(r_acc))]
    r_kind = rng.choice(np.array(["do_not_buy", "do_not_sell"], dtype=object), len(r_acc))
    restrictions = pd.DataFrame(
        {"account": acct_ids[r_acc], "security": sec_ids[r_sec], "restriction": r_kind}
    )
    return Book(
        securities=securities,
        accounts=accounts,
        holdings=holdings,
        models=models,
        model_cash=model_cash,
        restrictions=restrictions,
    )
