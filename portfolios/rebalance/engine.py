"""The rebalance of every account of a book at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .book import Book, Options
from .drift import drift_arrays
from .lots import LotTable, build_lots, cap_limits, take_lots
from .prepare import Prepared, prepare
from .solver import solve

__all__ = ["RebalanceResult", "rebalance"]


@dataclass
class RebalanceResult:
    """``trades`` -- one row per proposed trade:
        ``account``, ``security``, ``side`` (``"buy"``/``"sell"``, categorical), ``quantity`` (signed:
        > 0 buys, < 0 sells), ``price`` (per unit, security currency), ``currency`` (of
        the security; None when not given), ``fx`` (base units per unit of it),
        ``value`` (estimated absolute value in the account's base currency),
        ``base_currency``, ``weight_before``, ``weight_after``, ``target``,
        ``realised_gain`` (estimated, base currency; NaN for buys), ``short_term_gain`` and
        ``long_term_gain`` (its split by holding period; NaN for buys), ``lots`` (tuple of
        ``(lot, quantity)`` a sell takes, in order; empty without tax lots).

    ``accounts`` -- the what-if, one row per account that was not skipped:
        ``account``, ``base_currency``, ``model``, ``value`` (after the cash need),
        ``cash_before`` (cash after the cash need, before trades), ``cash_after``,
        ``cash_floor``, ``cash_need``, ``drift_before``, ``drift_after`` (sum over
        securities and cash of |weight - target|), ``max_drift_before``,
        ``max_drift_after``, ``turnover`` ((buys + sells) / value), ``trades``,
        ``buy_value``, ``sell_value``, ``realised_gain`` (= ``short_term_gain`` +
        ``long_term_gain``: lots held under / at least ``Options.long_term_days``),
        ``out_of_band`` (before),
        ``status`` (``"rebalanced"``, ``"in_band"``: nothing to do, ``"no_trade"``: out of
        band but no allowed trade improves it).

    ``skipped`` -- ``account``, ``reason``: accounts that get no trade at all (no model,
        a model whose weights do not sum to 100%, a missing, zero or stale price, a
        missing FX rate, a cash floor or cash need that cannot be met, ...).

    ``lots`` -- the tax lots the sells take: ``account``, ``security``, ``lot``,
        ``quantity``, ``unit_cost``, ``proceeds``, ``realised_gain`` (base currency),
        ``long_term`` (held at least ``Options.long_term_days``).
    """

    trades: pd.DataFrame
    accounts: pd.DataFrame
    skipped: pd.DataFrame
    lots: pd.DataFrame

    def skipped_reasons(self) -> dict:
        """``{account: reason}`` for the skipped accounts."""
        return dict(zip(self.skipped["account"], self.skipped["reason"], strict=True))


def rebalance(book: Book, options: Options | None = None) -> RebalanceResult:
    """Propose trades that bring every account of ``book`` as close to its model as
    the rules allow. See ``docs/rebalancing.md``."""
    options = options or Options()
    prep = prepare(book, options)
    lots = build_lots(book, prep, options)
    return _run(prep, lots, options)


def _bounds(prep: Prepared, lots: LotTable | None, active_row: np.ndarray):
    R = len(prep.h)
    long_only = prep.long_only[prep.r_acct]
    qmin = np.where(long_only, -np.maximum(prep.h, 0.0), -np.inf)
    qmax = np.full(R, np.inf)
    qmax = np.where(prep.dnb, 0.0, qmax)
    qmin = np.where(prep.dns, 0.0, qmin)
    if lots is not None:
        blocked_rows = np.zeros(R, dtype=bool)
        blocked_rows[lots.row[lots.blocked]] = True
        qmin = np.where(blocked_rows, np.maximum(qmin, -lots.sellable(R)), qmin)
    qmin = np.where(active_row, qmin, 0.0)
    qmax = np.where(active_row, qmax, 0.0)
    return qmin, qmax


def cash_moves_row(prep: Prepared, w: np.ndarray, out: np.ndarray, cw: np.ndarray) -> np.ndarray:
    """Rows inside their band that may move because their account's cash is the only
    thing out of its band, and only in the direction that brings both toward target:
    an underweight position where cash is too high, an overweight one where too low."""
    A = prep.n_accounts
    rows_out = np.bincount(prep.r_acct, weights=out, minlength=A) > 0
    cdw = cw - prep.cash_target
    cash_only = (np.abs(cdw) > prep.cash_tol + 1e-12) & ~rows_out
    acc = prep.r_acct
    toward = np.where(cdw[acc] > 0, w < prep.t, w > prep.t)
    return cash_only[acc] & toward & ~out


def _run(prep: Prepared, lots: LotTable | None, options: Options) -> RebalanceResult:
    A = prep.n_accounts
    R = len(prep.h)
    ok = np.array([r is None for r in prep.reason], dtype=bool)
    w, out, cw, drift_before, max_before, acc_out = drift_arrays(prep)
    triggered = ok & acc_out
    active = triggered[prep.r_acct]
    qmin_hard, qmax = _bounds(prep, lots, active)
    # A position inside its band is left alone (unless cash must be raised for the
    # floor), except where cash is the only thing out of its band: then the positions
    # may move toward their targets to bring it back, buys where cash is above its
    # target and sells where it is below.
    movable = out | cash_moves_row(prep, w, out, cw)
    qmin = np.where(movable, qmin_hard, 0.0)
    qmax = np.where(movable, qmax, 0.0)

    V = prep.value[prep.r_acct]
    if options.trade_to == "band_edge":
        edge = np.where(w > prep.t, prep.t + prep.tol, np.maximum(prep.t - prep.tol, 0.0))
        target = np.where(out, edge * V, np.where(movable, prep.t * V, prep.h * prep.p))
    else:
        target = prep.t * V
    target = np.where(active, target, 0.0)
    minq = np.maximum(prep.min_qty, prep.min_trade_value[prep.r_acct] / prep.p)
    minq = np.where(np.isfinite(minq), minq, 0.0)
    cap = prep.gains_cap

    q = np.zeros(R)
    short = np.zeros(A)
    rows = np.flatnonzero(active)
    accs = np.flatnonzero(triggered)

    def run_solver(row_sel: np.ndarray, acc_sel: np.ndarray, lo: np.ndarray, lo_hard: np.ndarray):
        if not len(row_sel):
            return
        sub = np.searchsorted(acc_sel, prep.r_acct[row_sel])
        tsum = np.bincount(sub, weights=target[row_sel], minlength=len(acc_sel))
        slack = prep.value[acc_sel] - tsum - prep.floor[acc_sel]
        qq, sh = solve(
            sub,
            len(acc_sel),
            prep.p[row_sel],
            prep.h[row_sel],
            target[row_sel],
            lo[row_sel],
            qmax[row_sel],
            prep.step[row_sel],
            minq[row_sel],
            slack,
            prep.value[acc_sel],
            rounds=options.local_search_rounds,
            pair_candidates=options.pair_candidates,
            coarse=options.subset_moves,
            qmin_hard=lo_hard[row_sel],
        )
        q[row_sel] = qq
        short[acc_sel] = sh

    run_solver(rows, accs, qmin, qmin_hard)

    # the gains cap: sell less where an account's net realised gain would exceed it
    row_gain = np.zeros(R)
    if lots is not None:
        row_gain = take_lots(lots, np.maximum(-q, 0.0), prep.p)[3]
        has_cap = ~np.isnan(cap)
        limited_qmin = qmin.copy()
        limited_hard = qmin_hard.copy()
        for attempt in range(4):
            acc_gain = np.bincount(prep.r_acct, weights=row_gain, minlength=A)
            over = has_cap & triggered & (acc_gain > np.where(has_cap, cap, 0.0) + 1e-6)
            if not over.any():
                break
            over_rows = over[prep.r_acct]
            if attempt < 3:
                limit = cap_limits(
                    lots, np.maximum(-q, 0.0), prep.p, prep.r_acct, np.nan_to_num(cap)
                )
            else:  # last resort: sell nothing at a gain
                limit = cap_limits(lots, np.maximum(-q, 0.0), prep.p, prep.r_acct, np.zeros(A))
            limited_qmin = np.where(over_rows, np.maximum(limited_qmin, -limit), limited_qmin)
            limited_hard = np.where(over_rows, np.maximum(limited_hard, -limit), limited_hard)
            sel_rows = np.flatnonzero(over_rows & active)
            run_solver(sel_rows, np.flatnonzero(over), limited_qmin, limited_hard)
            row_gain = take_lots(lots, np.maximum(-q, 0.0), prep.p)[3]

    # accounts whose floor and cash need cannot be met are skipped
    reason = prep.reason.copy()
    for a in np.flatnonzero(short > 0):
        reason[a] = (
            f"cannot raise the cash for the floor and cash need: short by {short[a]:,.2f} "
            f"{prep.base_ccy[a]}"
        )
    ok = np.array([r is None for r in reason], dtype=bool)
    q = np.where(ok[prep.r_acct], q, 0.0)
    q = np.round(q, 9)
    q[np.abs(q) < 1e-12] = 0.0
    # never leave an account further from its model than trading nothing would, when
    # trading nothing breaks no rule
    worse = _drift_after(prep, q) > drift_before + 1e-12
    worse &= prep.cash >= prep.floor - 1e-9
    q[worse[prep.r_acct]] = 0.0
    return _results(prep, lots, q, reason, ok, w, cw, drift_before, max_before, acc_out)


def _categories(values: np.ndarray, idx: np.ndarray) -> pd.Categorical:
    """``values[idx]`` as a categorical (cheap for long columns of few distinct values)."""
    codes, cats = pd.factorize(pd.Series(values, dtype=object))
    return pd.Categorical.from_codes(codes[idx], cats)


def _drift_after(prep: Prepared, q: np.ndarray) -> np.ndarray:
    A = prep.n_accounts
    cash_after = prep.cash - np.bincount(prep.r_acct, weights=q * prep.p, minlength=A)
    with np.errstate(divide="ignore", invalid="ignore"):
        w_after = (prep.h + q) * prep.p / prep.value[prep.r_acct]
        cw_after = cash_after / prep.value
    dev = np.abs(w_after - prep.t)
    return np.bincount(prep.r_acct, weights=dev, minlength=A) + np.abs(cw_after - prep.cash_target)


def _results(prep, lots, q, reason, ok, w, cw, drift_before, max_before, acc_out):
    A = prep.n_accounts
    V = prep.value
    ra = prep.r_acct
    tv = q * prep.p
    cash_after = prep.cash - np.bincount(ra, weights=tv, minlength=A)
    with np.errstate(divide="ignore", invalid="ignore"):
        w_after = (prep.h + q) * prep.p / V[ra]
        cw_after = cash_after / V
    dev = np.abs(w_after - prep.t)
    drift_after = np.bincount(ra, weights=dev, minlength=A) + np.abs(cw_after - prep.cash_target)
    max_after = np.abs(cw_after - prep.cash_target)
    np.fmax.at(max_after, ra, dev)
    traded = q != 0
    n_trades = np.bincount(ra, weights=traded, minlength=A).astype(int)
    buy_value = np.bincount(ra, weights=np.maximum(tv, 0), minlength=A)
    sell_value = np.bincount(ra, weights=np.maximum(-tv, 0), minlength=A)

    sell = np.maximum(-q, 0.0)
    lot_frame = pd.DataFrame(
        {
            "account": pd.Series([], dtype=object),
            "security": pd.Series([], dtype=object),
            "lot": pd.Series([], dtype=object),
            "quantity": pd.Series([], dtype=float),
            "unit_cost": pd.Series([], dtype=float),
            "proceeds": pd.Series([], dtype=float),
            "realised_gain": pd.Series([], dtype=float),
            "long_term": pd.Series([], dtype=bool),
        }
    )
    row_gain = np.zeros(len(q))
    row_long = np.zeros(len(q))
    row_lots = None
    if lots is not None:
        take, gain, _, row_gain = take_lots(lots, sell, prep.p)
        t_sel = take > 0
        lr = lots.row[t_sel]
        lot_frame = pd.DataFrame(
            {
                "account": prep.accounts_at(ra[lr]),
                "security": prep.securities_at(prep.r_sec[lr]),
                "lot": lots.lot_id[t_sel],
                "quantity": take[t_sel],
                "unit_cost": lots.unit_cost[t_sel],
                "proceeds": take[t_sel] * prep.p[lr],
                "realised_gain": gain[t_sel],
                "long_term": lots.long_term[t_sel],
            }
        )
        row_long = np.bincount(lots.row, weights=gain * lots.long_term, minlength=len(q))
        row_lots = (lr, lots.lot_id[t_sel], take[t_sel])
    realised = np.bincount(ra, weights=row_gain, minlength=A)
    long_gain = np.bincount(ra, weights=row_long, minlength=A)

    ti = np.flatnonzero(traded)
    lots_col = np.empty(len(ti), dtype=object)
    lots_col.fill(())
    if row_lots is not None and len(row_lots[0]):
        lr, ids, qty = row_lots
        pos = np.searchsorted(ti, lr)
        bounds = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1], True])
        for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True):
            lots_col[pos[b0]] = tuple(zip(ids[b0:b1].tolist(), qty[b0:b1].tolist(), strict=True))
    trades = pd.DataFrame(
        {
            "account": prep.accounts_at(ra[ti]),
            "security": prep.securities_at(prep.r_sec[ti]),
            "side": pd.Categorical.from_codes((q[ti] < 0).astype(np.int8), ["buy", "sell"]),
            "quantity": q[ti],
            "price": prep.price[ti],
            "currency": _categories(prep.sec_ccy, prep.r_sec[ti]),
            "fx": prep.fx[ti],
            "value": np.abs(tv[ti]),
            "base_currency": _categories(prep.base_ccy, ra[ti]),
            "weight_before": w[ti],
            "weight_after": w_after[ti],
            "target": prep.t[ti],
            "realised_gain": np.where(q[ti] < 0, row_gain[ti], np.nan),
            "short_term_gain": np.where(q[ti] < 0, row_gain[ti] - row_long[ti], np.nan),
            "long_term_gain": np.where(q[ti] < 0, row_long[ti], np.nan),
            "lots": lots_col,
        }
    )
    status = np.where(n_trades > 0, "rebalanced", np.where(acc_out, "no_trade", "in_band"))
    keep = np.flatnonzero(ok)
    accounts = pd.DataFrame(
        {
            "account": prep.accounts_at(keep),
            "base_currency": prep.base_ccy[keep],
            "model": prep.model_ids[keep],
            "value": V[keep],
            "cash_before": prep.cash[keep],
            "cash_after": cash_after[keep],
            "cash_floor": prep.floor[keep],
            "cash_need": prep.need[keep],
            "drift_before": drift_before[keep],
            "drift_after": drift_after[keep],
            "max_drift_before": max_before[keep],
            "max_drift_after": max_after[keep],
            "turnover": (buy_value + sell_value)[keep] / V[keep],
            "trades": n_trades[keep],
            "buy_value": buy_value[keep],
            "sell_value": sell_value[keep],
            "realised_gain": realised[keep],
            "short_term_gain": (realised - long_gain)[keep],
            "long_term_gain": long_gain[keep],
            "out_of_band": acc_out[keep],
            "status": status[keep],
        }
    )
    sk = np.flatnonzero(~ok)
    skipped = pd.DataFrame({"account": prep.accounts_at(sk), "reason": reason[sk].astype(object)})
    return RebalanceResult(trades=trades, accounts=accounts, skipped=skipped, lots=lot_frame)
