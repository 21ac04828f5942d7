"""What-if of given trades: the figures an account would have after them, and the rules
of the account they would break. For a proposal a person edits: the engine does not
choose the trades here, it only measures them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .book import Book, BookError, Options
from .drift import drift_arrays
from .engine import RebalanceResult, _results
from .lots import build_lots
from .prepare import prepare

__all__ = ["WhatIf", "what_if"]

EPS = 1e-9


@dataclass
class WhatIf(RebalanceResult):
    """A :class:`RebalanceResult` of the given trades, plus ``breaches``: ``account``,
    ``security``, ``rule`` (``lot``, ``min quantity``, ``short sale``, ``do-not-buy``,
    ``do-not-sell``, ``cash floor``) and ``detail`` in words."""

    breaches: pd.DataFrame | None = None


def what_if(book: Book, trades: pd.DataFrame, options: Options | None = None) -> WhatIf:
    """Measure ``trades`` (``account``, ``security``, ``quantity``: signed, > 0 buys) on
    ``book``: weights, cash and drift after, realised gains, and the breaches.

    Every trade must be of a security the account holds or its model targets (a
    proposal's trades are); another raises :class:`BookError`."""
    options = options or Options()
    prep = prepare(book, options)
    lots = build_lots(book, prep, options)
    w, out, cw, drift_before, max_before, acc_out = drift_arrays(prep)
    R = len(prep.h)
    q = np.zeros(R)
    S = np.int64(max(len(prep.sec_ids), 1))
    keys = prep.r_acct.astype(np.int64) * S + prep.r_sec
    ta = prep.acct_index.get_indexer(trades["account"])
    ts = prep.sec_index.get_indexer(trades["security"])
    tk = ta.astype(np.int64) * S + ts
    pos = np.searchsorted(keys, tk)
    pos = np.minimum(pos, max(R - 1, 0))
    found = (ta >= 0) & (ts >= 0) & (R > 0)
    if R:
        found &= keys[pos] == tk
    if not found.all():
        bad = trades.iloc[int(np.flatnonzero(~found)[0])]
        raise BookError(
            f"account {bad['account']!r} neither holds nor targets security {bad['security']!r}"
        )
    np.add.at(q, pos, trades["quantity"].to_numpy(dtype=float))
    ok = np.array([r is None for r in prep.reason], dtype=bool)
    result = _results(prep, lots, q, prep.reason, ok, w, cw, drift_before, max_before, acc_out)
    breaches: list[dict] = []

    def breach(r: int, rule: str, detail: str) -> None:
        breaches.append(
            {
                "account": prep.acct_index[prep.r_acct[r]],
                "security": prep.sec_index[prep.r_sec[r]],
                "rule": rule,
                "detail": detail,
            }
        )

    for r in np.flatnonzero(q != 0):
        qty, step, held = q[r], prep.step[r], prep.h[r]
        closeout = abs(qty + held) < EPS
        k = abs(qty) / step
        if abs(k - round(k)) > 1e-6 and not closeout:
            breach(r, "lot", f"{abs(qty):g} is not a whole number of lots of {step:g}")
        if abs(qty) < prep.min_qty[r] - EPS:
            breach(r, "min quantity", f"{abs(qty):g} is below the minimum of {prep.min_qty[r]:g}")
        if qty < 0 and prep.long_only[prep.r_acct[r]] and held + qty < -EPS:
            breach(r, "short sale", f"sells {-qty:g} but the account holds {max(held, 0):g}")
        if qty > 0 and prep.dnb[r]:
            breach(r, "do-not-buy", "the security may not be bought in this account")
        if qty < 0 and prep.dns[r]:
            breach(r, "do-not-sell", "the security may not be sold in this account")
    accounts = result.accounts
    low = accounts[accounts["cash_after"] < accounts["cash_floor"] - 0.005]
    for row in low.itertuples(index=False):
        breaches.append(
            {
                "account": row.account,
                "security": None,
                "rule": "cash floor",
                "detail": (
                    f"cash after {row.cash_after:,.2f} {row.base_currency} would be below "
                    f"the floor of {row.cash_floor:,.2f}"
                ),
            }
        )
    return WhatIf(
        trades=result.trades,
        accounts=accounts,
        skipped=result.skipped,
        lots=result.lots,
        breaches=pd.DataFrame(breaches, columns=["account", "security", "rule", "detail"]),
    )
