"""Drift of every account against its model, in one vectorised pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .book import Book, Options
from .prepare import Prepared, prepare

__all__ = ["DriftResult", "compute_drift"]


@dataclass
class DriftResult:
    """``positions`` -- one row per (account, security) held or in the model:
        ``account``, ``security``, ``quantity``, ``price`` (base currency), ``price_local``
        (in the security's own currency), ``value`` (base
        currency), ``weight`` (current), ``target`` (target weight), ``drift``
        (weight - target), ``tolerance`` (band half-width), ``out_of_band`` (bool).

    ``accounts`` -- one row per account:
        ``account``, ``base_currency``, ``model``, ``value`` (positions + cash - cash need),
        ``cash`` (cash after the cash need), ``cash_weight``, ``cash_target``, ``drift``
        (sum over securities and cash of |weight - target|), ``max_abs_drift``,
        ``out_of_band`` (any position or cash out of its band, or cash below the floor),
        ``reason`` (why it cannot be rebalanced, None when it can).

    Weights are measured on the account as it stands after its cash need (a withdrawal
    leaves, a deposit arrives) and before any trade.
    """

    positions: pd.DataFrame
    accounts: pd.DataFrame


def _weights(prep: Prepared):
    value = prep.value[prep.r_acct]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(value > 0, prep.h * prep.p / value, np.nan)
        cw = np.where(prep.value > 0, prep.cash / prep.value, np.nan)
    return w, cw


def drift_arrays(prep: Prepared):
    """(row weights, row out-of-band, cash weight, account drift, account max |drift|,
    account out-of-band)."""
    A = prep.n_accounts
    w, cw = _weights(prep)
    dw = w - prep.t
    out = np.abs(dw) > prep.tol + 1e-12
    cdw = cw - prep.cash_target
    drift = np.bincount(prep.r_acct, weights=np.abs(dw), minlength=A) + np.abs(cdw)
    mx = np.abs(cdw)
    np.fmax.at(mx, prep.r_acct, np.abs(dw))
    acc_out = np.abs(cdw) > prep.cash_tol + 1e-12
    acc_out |= np.bincount(prep.r_acct, weights=out, minlength=A) > 0
    acc_out |= prep.cash < prep.floor - 1e-9
    return w, out, cw, drift, mx, acc_out


def compute_drift(book: Book, options: Options | None = None) -> DriftResult:
    """Current weights against targets for every account of ``book``."""
    options = options or Options()
    prep = prepare(book, options)
    return drift_from_prepared(prep)


def drift_from_prepared(prep: Prepared) -> DriftResult:
    w, out, cw, drift, mx, acc_out = drift_arrays(prep)
    ok = np.array([r is None for r in prep.reason], dtype=bool)
    positions = pd.DataFrame(
        {
            "account": prep.accounts_at(prep.r_acct),
            "security": prep.securities_at(prep.r_sec),
            "quantity": prep.h,
            "price": prep.p,
            "price_local": prep.price,
            "value": prep.h * prep.p,
            "weight": w,
            "target": prep.t,
            "drift": w - prep.t,
            "tolerance": prep.tol,
            "out_of_band": out & ok[prep.r_acct],
        }
    )
    accounts = pd.DataFrame(
        {
            "account": prep.acct_index,
            "base_currency": prep.base_ccy,
            "model": prep.model_ids,
            "value": prep.value,
            "cash": prep.cash,
            "cash_weight": cw,
            "cash_target": prep.cash_target,
            "drift": np.where(ok, drift, np.nan),
            "max_abs_drift": np.where(ok, mx, np.nan),
            "out_of_band": acc_out & ok,
            # object, so that None stays None: a column of strings and None would be
            # read as text with NaN for None (pandas' string inference), a NaN reason
            # that every account then seemed to have
            "reason": pd.Series(list(prep.reason), dtype=object),
        }
    )
    return DriftResult(positions=positions, accounts=accounts)
