"""Raise cash: sell just enough of an account to meet its cash need (a withdrawal) and
its cash floor, selling what drifts most first.

The order of the sells: first every position above its target, most overweight first,
each down to its target (a position the model does not hold is all overweight); then,
when that is not enough, the positions in the same order beyond their targets (the
least underweight first, as the sells go on). Each sell is whole lots (or increments
for a fractional security), at least its minimum quantity, never more than the account
holds (long-only), never a do-not-sell security, and never the loss lots that the
wash-sale window blocks. The tax lots a sell takes are the run's choice
(``Options.lot_selection``); the realised gain is reported, split short and long term,
as for a rebalance. An account's gains cap holds: when the sells would realise more,
each position sells no further than the cap allows (its lowest-gain lots first, taken
in the run's lot order) and, if the cash cannot be raised within it, the account is
skipped saying so.
"""

from __future__ import annotations

import numpy as np

from .book import Book, Options
from .drift import drift_arrays
from .engine import RebalanceResult, _results
from .lots import build_lots, cap_limits, take_lots
from .prepare import prepare

__all__ = ["raise_cash"]

EPS = 1e-9
#: Passes of the gains cap at most (each cuts a sold position of every account over it).
_CAP_PASSES = 50


def raise_cash(book: Book, options: Options | None = None) -> RebalanceResult:
    """Sells that free each account's ``cash_need`` (and keep its ``cash_floor``), the
    most drifting positions first. An account that already has the cash gets no trade;
    one that cannot raise it (not enough it may sell) is skipped, with by how much it
    falls short. The result has the shape of :func:`rebalance`'s."""
    options = options or Options()
    prep = prepare(book, options)
    lots = build_lots(book, prep, options)
    w, out, cw, drift_before, max_before, acc_out = drift_arrays(prep)
    R = len(prep.h)
    q = np.zeros(R)
    reason = prep.reason.copy()

    sellable = np.where(prep.long_only[prep.r_acct], np.maximum(prep.h, 0.0), np.inf)
    if lots is not None:
        sellable = np.minimum(sellable, lots.sellable(R))
    sellable = np.where(prep.dns | ~(prep.p > 0), 0.0, sellable)
    # whole steps only (a close-out of the whole position is always allowed)
    with np.errstate(invalid="ignore"):
        whole = np.floor(sellable / prep.step + EPS) * prep.step
    closeable = np.isfinite(sellable) & (np.abs(sellable - np.maximum(prep.h, 0.0)) < EPS)
    limit = np.where(closeable, sellable, whole)
    limit = np.where(np.isfinite(limit), limit, 0.0)  # no shorts to raise cash
    excess = np.maximum((w - prep.t) * prep.value[prep.r_acct], 0.0)
    excess = np.where(np.isfinite(excess), excess, 0.0)

    short_by = np.maximum(prep.floor - prep.cash, 0.0)
    todo = [a for a in np.flatnonzero(short_by > EPS) if reason[a] is None]
    left = _sell_most_drifting_first(prep, todo, limit, excess, w, short_by, q)

    # The gains cap: an account whose sells realise more than its cap sells again, each
    # position it sold cut to what the cap allows of those sells (its lowest-gain lots
    # kept, in the run's lot order), the others as before, the most drifting first;
    # until its sells fit the cap (each pass cuts at least one sold position, so it
    # ends) or it cannot raise the cash within it.
    cap = prep.gains_cap
    if lots is not None and not np.isnan(cap).all():
        capped = [a for a in todo if not np.isnan(cap[a])]
        room = np.nan_to_num(cap)
        limit_now = limit.copy()
        for _ in range(_CAP_PASSES):
            sold = np.maximum(-q, 0.0)
            gain = np.bincount(
                prep.r_acct, weights=take_lots(lots, sold, prep.p)[3], minlength=len(cap)
            )
            over = [a for a in capped if gain[a] > cap[a] + 1e-6]
            if not over:
                break
            allowed = cap_limits(lots, sold, prep.p, prep.r_acct, room)
            with np.errstate(invalid="ignore"):
                allowed = np.floor(allowed / prep.step + EPS) * prep.step
            rows = np.isin(prep.r_acct, over)
            cut = rows & (sold > 0)
            limit_now = np.where(cut, np.minimum(limit_now, allowed), limit_now)
            q[rows] = 0.0
            left.update(_sell_most_drifting_first(prep, over, limit_now, excess, w, short_by, q))
        sold = np.maximum(-q, 0.0)
        gain = np.bincount(
            prep.r_acct, weights=take_lots(lots, sold, prep.p)[3], minlength=len(cap)
        )
        for a in capped:
            if left[a] > 0.005 or gain[a] > cap[a] + 1e-6:
                short = max(left[a], 0.0)
                reason[a] = (
                    f"cannot raise the cash for the floor and cash need within the gains "
                    f"cap of {cap[a]:,.2f} {prep.base_ccy[a]}"
                    + (f": short by {short:,.2f} {prep.base_ccy[a]}" if short > 0.005 else "")
                )
    for a in todo:
        if left[a] > 0.005 and reason[a] is None:
            reason[a] = (
                f"cannot raise the cash for the floor and cash need: short by {left[a]:,.2f} "
                f"{prep.base_ccy[a]}"
            )
    ok = np.array([r is None for r in reason], dtype=bool)
    q = np.where(ok[prep.r_acct], q, 0.0)
    q = np.round(q, 9)
    q[np.abs(q) < 1e-12] = 0.0
    return _results(prep, lots, q, reason, ok, w, cw, drift_before, max_before, acc_out)


def _sell_most_drifting_first(prep, accounts, limit, excess, w, short_by, q) -> dict:
    """The sells (into ``q``, negative) that raise each account's ``short_by``: the most
    overweight positions first, each down to its target, then further in the same order,
    each row at most ``limit``, in whole steps and at least its minimum. Returns what is
    still missing per account (0 when raised)."""
    left = {}
    for a in accounts:
        rows = np.flatnonzero((prep.r_acct == a) & (limit > 0))
        # most overweight first; ties: the larger position first
        order = rows[np.lexsort((-prep.h[rows] * prep.p[rows], -(w[rows] - prep.t[rows])))]
        need = short_by[a]
        for capped in (True, False):
            for r in order:
                if need <= EPS:
                    break
                step = prep.step[r]
                room = limit[r] + q[r]  # what is left to sell of the row
                if capped:  # down to the target (within one step)
                    to_target = np.ceil((excess[r] / prep.p[r] + q[r]) / step - EPS) * step
                    room = min(room, max(to_target, 0.0))
                if room <= EPS:
                    continue
                sell = min(np.ceil(need / prep.p[r] / step - EPS) * step, room)
                if -q[r] + sell < prep.min_qty[r] - EPS:
                    if prep.min_qty[r] > limit[r] + EPS:
                        continue
                    sell = prep.min_qty[r] + q[r]
                if sell <= EPS:
                    continue
                q[r] -= sell
                need -= sell * prep.p[r]
        left[a] = max(need, 0.0)
    return left
