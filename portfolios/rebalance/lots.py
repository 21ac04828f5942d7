"""Tax lots: which lots a sell takes, the realised gain, the wash-sale limits on sells."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .book import LOT_SELECTION, Book, BookError, Options
from .prepare import Prepared, _col, _days_before
from .solver import EPS, seg_cumsum


@dataclass
class LotTable:
    """Lots matched to the prepared rows, sorted by row then by the order sells take them.

    The quantity of a row not covered by its lots is an extra, last "untracked" lot with
    an unknown basis (cost = price: no gain)."""

    row: np.ndarray
    lot_id: np.ndarray
    qty: np.ndarray
    unit_cost: np.ndarray  # base currency per unit
    blocked: np.ndarray  # loss lot of a security bought within the wash-sale window
    untracked: np.ndarray  # per row
    long_term: np.ndarray | None = None  # held long term (`held_over_a_year`)

    def sellable(self, n_rows: int) -> np.ndarray:
        """Quantity each row may sell (unblocked lots + untracked)."""
        ok = ~self.blocked
        return np.bincount(self.row[ok], weights=self.qty[ok], minlength=n_rows) + self.untracked


def build_lots(book: Book, prep: Prepared, options: Options) -> LotTable | None:
    if book.lots is None or len(book.lots) == 0:
        return None
    lots = book.lots
    for c in ("account", "security", "quantity", "cost"):
        if c not in lots.columns:
            raise BookError(f"book.lots lacks column {c}")
    S64 = np.int64(max(len(prep.sec_ids), 1))
    la = pd.Index(prep.acct_ids).get_indexer(lots["account"].to_numpy(dtype=object))
    ls = pd.Index(prep.sec_ids).get_indexer(lots["security"].to_numpy(dtype=object))
    qty = _col(lots, "quantity", np.nan)
    cost = _col(lots, "cost", np.nan)
    bad = np.flatnonzero(~(qty >= 0) | ~(cost >= 0))
    if len(bad):
        raise BookError(
            f"tax lot of {lots['security'].iloc[bad[0]]!r} in account "
            f"{lots['account'].iloc[bad[0]]!r} has a negative or missing quantity or cost"
        )
    keys = prep.r_acct.astype(np.int64) * S64 + prep.r_sec
    lk = la.astype(np.int64) * S64 + ls
    pos = np.searchsorted(keys, lk)
    pos = np.minimum(pos, max(len(keys) - 1, 0))
    found = (la >= 0) & (ls >= 0) & (len(keys) > 0)
    found &= keys[pos] == lk if len(keys) else found
    keep = found & (qty > 0)
    row = pos[keep]
    qty, cost = qty[keep], cost[keep]
    lot_id = (
        lots["lot"].to_numpy(dtype=object)[keep]
        if "lot" in lots.columns
        else np.flatnonzero(keep).astype(object)
    )
    unit_cost = cost / qty
    if "acquired" in lots.columns:
        acquired = lots["acquired"].reset_index(drop=True)
        age = _days_before(prep.as_of, acquired)[keep]
    else:
        acquired = None
        age = np.full(len(row), np.inf)
    age = np.where(np.isnan(age), np.inf, age)
    if options.long_term_days is not None or acquired is None:
        long_term = age > (options.long_term_days or 0)
    else:
        long_term = held_over_a_year(prep.as_of, acquired)[keep]
    gain_u = prep.p[row] - unit_cost
    if options.lot_selection == "fifo":
        key = -age
    elif options.lot_selection == "hifo":
        key = -unit_cost
    else:
        rate = np.where(long_term, options.long_term_rate, options.short_term_rate)
        key = gain_u * rate
    order = np.lexsort((key, row))
    row, lot_id, qty, unit_cost, age, long_term = (
        row[order],
        lot_id[order],
        qty[order],
        unit_cost[order],
        age[order],
        long_term[order],
    )
    gain_u = gain_u[order]
    blocked = np.zeros(len(row), dtype=bool)
    if options.wash_sale_days > 0:
        recent = age <= options.wash_sale_days
        recent_row = np.zeros(len(prep.h), dtype=bool)
        recent_row[row[recent]] = True
        blocked = recent_row[row] & (gain_u < -EPS)
    covered = np.bincount(row, weights=qty, minlength=len(prep.h))
    untracked = np.maximum(prep.h - covered, 0.0)
    return LotTable(row, lot_id, qty, unit_cost, blocked, untracked, long_term)


def held_over_a_year(as_of: dt.date, acquired) -> np.ndarray:
    """Whether a lot sold on `as_of` was held long term: more than one year, the US
    rule (IRS Publication 550): the holding period starts the day after the lot was
    bought, so one sold on the anniversary of its purchase is still short term, and a
    year is a calendar year (366 days over a 29 February). A lot without a date counts
    as long term."""
    ts = pd.to_datetime(pd.Series(acquired), errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    anniversary = ts.dt.normalize() + pd.DateOffset(years=1)
    return (ts.isna() | (pd.Timestamp(as_of) > anniversary)).to_numpy(dtype=bool)


def take_lots(table: LotTable, sell_qty: np.ndarray, p: np.ndarray):
    """Allocate each row's sell quantity to its lots in order.

    Returns (lot take per lot, gain per lot, untracked take per row, gain per row)."""
    ok = ~table.blocked
    q = np.where(ok, table.qty, 0.0)
    cum = seg_cumsum(q, table.row)
    want = sell_qty[table.row]
    before = np.maximum(cum - q, 0.0)  # sold from the earlier lots of the row
    take = np.where(want > 0, np.clip(want - before, 0.0, q), 0.0)
    take[take < 1e-12] = 0.0
    gain = take * (p[table.row] - table.unit_cost)
    row_gain = np.bincount(table.row, weights=gain, minlength=len(sell_qty))
    taken = np.bincount(table.row, weights=take, minlength=len(sell_qty))
    untracked_take = np.clip(sell_qty - taken, 0.0, None)
    return take, gain, untracked_take, row_gain


def cap_limits(
    table: LotTable, sell_qty: np.ndarray, p: np.ndarray, r_acct: np.ndarray, cap_room: np.ndarray
) -> np.ndarray:
    """Per row, the largest quantity it may sell so that the account's net realised gain
    stays within ``cap_room`` (per account), keeping the lowest-gain lots first."""
    take, gain, untracked_take, _ = take_lots(table, sell_qty, p)
    n = len(sell_qty)
    # chunks: every lot taken, plus the untracked take (gain 0)
    c_row = np.concatenate([table.row, np.arange(n)])
    c_qty = np.concatenate([take, untracked_take])
    c_gain = np.concatenate([gain, np.zeros(n)])
    # untracked comes after the lots of its row: give it an order after them
    c_seq = np.concatenate([np.arange(len(table.row)), np.full(n, len(table.row)) + np.arange(n)])
    sel = c_qty > 0
    c_row, c_qty, c_gain, c_seq = c_row[sel], c_qty[sel], c_gain[sel], c_seq[sel]
    o = np.lexsort((c_seq, c_row))
    c_row, c_qty, c_gain = c_row[o], c_qty[o], c_gain[o]
    rate = c_gain / (c_qty * p[c_row])
    # a row's lots must be sold in order: make the rate non-decreasing along the row
    rate = _seg_cummax(rate, c_row)
    acc = r_acct[c_row]
    o2 = np.lexsort((np.arange(len(c_row)), rate, acc))
    g, qy, rw, ac = c_gain[o2], c_qty[o2], c_row[o2], acc[o2]
    cum = seg_cumsum(g, ac)
    room = cap_room[ac]
    # keep the chunks while the running gain stays within the room; the first chunk that
    # would pass it is kept in part, and everything after it is dropped, so that what is
    # kept of each row is a prefix of its lots
    over = cum > room + 1e-9
    pos = np.arange(len(g))
    first = np.full(len(cap_room), len(g))
    if over.any():
        np.minimum.at(first, ac[over], pos[over])
    cut = first[ac]
    qty = np.where(pos < cut, qy, 0.0)
    at_cut = pos == cut
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.clip((room - (cum - g)) / (g / qy), 0.0, qy)
    qty = np.where(at_cut & (g > 0), part, qty)
    return np.bincount(rw, weights=qty, minlength=n)


def _seg_cummax(values: np.ndarray, seg: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    out = values.copy()
    # small loops over position within the segment: segments are a handful of lots
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    for k in range(1, int(counts.max())):
        idx = starts[counts > k] + k
        out[idx] = np.maximum(out[idx], out[idx - 1])
    return out


def long_term_on(acquired: dt.date | None, sold_on: dt.date) -> bool:
    """`held_over_a_year` for one lot: sold after the anniversary of its purchase (a
    29 February's anniversary is the 28th). A lot without a date counts as long term."""
    if acquired is None:
        return True
    try:
        anniversary = acquired.replace(year=acquired.year + 1)
    except ValueError:  # 29 February
        anniversary = acquired.replace(year=acquired.year + 1, day=28)
    return sold_on > anniversary


def closing_order(
    lots: list[tuple],
    *,
    method: str,
    price: float,
    sold_on: dt.date,
    short_term_rate: float | None = None,
    long_term_rate: float | None = None,
) -> list:
    """The order in which a sell closes an account's open lots of one security, the
    rule `build_lots` sizes a run's sells with, so that what is booked is what the run
    estimated: ``lots`` are ``(key, unit_cost, acquired)`` first in, first out (by
    acquisition, then booking order); ``method`` is ``fifo`` (that order), ``hifo``
    (highest unit cost first) or ``min_tax`` (least tax per unit first: the gain at
    ``price`` times the short- or long-term rate). Ties keep first in, first out.
    Returns the keys in closing order."""
    if method not in LOT_SELECTION:
        raise ValueError(f"lot method must be one of {', '.join(LOT_SELECTION)}, not {method!r}")
    if method == "fifo":
        return [lot[0] for lot in lots]
    if method == "hifo":
        ranked = sorted(range(len(lots)), key=lambda i: -float(lots[i][1]))
    else:
        defaults = Options()
        short = defaults.short_term_rate if short_term_rate is None else short_term_rate
        long_ = defaults.long_term_rate if long_term_rate is None else long_term_rate

        def tax(i: int) -> float:
            _, cost, acquired = lots[i]
            rate = long_ if long_term_on(acquired, sold_on) else short
            return (float(price) - float(cost)) * rate

        ranked = sorted(range(len(lots)), key=tax)
    return [lots[i][0] for i in ranked]
