"""The input of the engine: a :class:`Book` of pandas frames and the run :class:`Options`.

Every frame holds all the accounts of a run at once. Identifiers (accounts, securities,
models, lots) may be any hashable: database primary keys or codes such as tickers.

Quantities are in units of the security; prices are per unit in the security's own
currency; money on an account (cash, floor, cash need, minimum trade value, gains cap,
lot cost) is in the account's base currency. Weights are fractions (0.02 is 2%).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import pandas as pd

__all__ = ["Book", "BookError", "Options"]


class BookError(ValueError):
    """The book is malformed: a frame lacks a column, a value is impossible (a negative
    price, a duplicated security, ...). The message names the offending row."""


@dataclass
class Book:
    """All the data of a rebalance run, as pandas frames.

    ``securities`` -- one row per security:
        ``security`` (id, required), ``price`` (float per unit in ``currency``; NaN when
        there is none), ``currency`` (default: the account's base currency, i.e. no FX),
        ``lot`` (round lot: trades are whole multiples of it, default 1),
        ``min_qty`` (minimum quantity of a trade, default 0), ``fractional`` (bool,
        default False: when True trades are multiples of ``increment`` instead of ``lot``),
        ``increment`` (quantity step of a fractional security, default 1e-6),
        ``stale`` (bool, default False) and/or ``price_date`` (date; stale when older
        than ``Options.max_price_age_days`` before ``as_of``).

    ``accounts`` -- one row per account:
        ``account`` (id, required), ``model`` (model id or None/NaN: no model),
        ``cash`` (cash in base currency, default 0), ``base_currency`` (default
        ``Options.base_currency``), ``cash_floor`` (default 0), ``cash_need`` (cash to
        raise: a withdrawal > 0, a deposit < 0; default 0), ``min_trade_value`` (base
        currency, default 0), ``min_trade_pct`` (fraction of the account value, default
        0), ``long_only`` (bool, default True), ``gains_cap`` (maximum net realised gain
        of the run in base currency, default ``Options.gains_cap``; NaN = no cap).

    ``holdings`` -- ``account``, ``security``, ``quantity`` (duplicates are summed).

    ``models`` -- ``model``, ``security``, ``weight`` (target weight of the security),
        optional ``band_abs`` / ``band_rel`` per target (override the model's bands).

    ``model_cash`` -- optional, one row per model: ``model``, ``cash`` (target cash weight,
        default 0), ``band_abs``, ``band_rel`` (the model's tolerance bands, default
        ``Options.band_abs`` / ``Options.band_rel``). A model's security weights plus its
        cash weight must sum to 1 (within ``Options.weight_tolerance``), else its accounts
        are skipped.

    ``fx`` -- optional: ``currency``, ``base``, ``rate`` (1 unit of ``currency`` is worth
        ``rate`` units of ``base``). The inverse pair is used when only it is given.

    ``lots`` -- optional tax lots: ``account``, ``security``, ``quantity``, ``cost`` (total
        cost basis of the lot in base currency), ``acquired`` (date), optional ``lot``
        (lot id; default: the row position). Held quantity not covered by lots is sold
        last, at a realised gain of zero (unknown basis).

    ``restrictions`` -- optional: ``account`` (None/NaN for firm-wide), ``security``,
        ``restriction`` (``"do_not_buy"``, ``"do_not_sell"`` or ``"do_not_trade"``).

    ``sales`` -- optional recent realised sales, for the wash-sale rule: ``account``,
        ``security``, ``date``, ``gain`` (realised gain, < 0 for a loss).

    ``as_of`` -- the date of the book (wash-sale window, holding periods, stale prices);
        default: today (UTC).
    """

    securities: pd.DataFrame
    accounts: pd.DataFrame
    holdings: pd.DataFrame
    models: pd.DataFrame
    model_cash: pd.DataFrame | None = None
    fx: pd.DataFrame | None = None
    lots: pd.DataFrame | None = None
    restrictions: pd.DataFrame | None = None
    sales: pd.DataFrame | None = None
    as_of: dt.date | None = None


#: What a run trades an out-of-band position to, and how each choice is named.
TRADE_TO = {"target": "Target weights", "band_edge": "Edge of the tolerance band"}
#: Which tax lots a sell takes first, and how each choice is named.
LOT_SELECTION = {
    "fifo": "First in, first out",
    "hifo": "Highest cost first",
    "min_tax": "Least tax",
}


@dataclass(frozen=True)
class Options:
    """Parameters of a run.

    ``trade_to``: ``"target"`` trades an out-of-band position to its target weight,
    ``"band_edge"`` only to the nearest edge of its band.
    ``band_abs`` / ``band_rel``: default tolerance band of every position and of cash, as an
    absolute weight (0.02 = two points) and as a fraction of the target weight (0.25 = 25%
    of the target). The band is the wider of the two; None or 0 turns a band off. With
    both off every position that is not exactly on target is out of band.
    ``lot_selection``: which tax lots a sell takes first: ``"fifo"`` (oldest),
    ``"hifo"`` (highest unit cost) or ``"min_tax"`` (lowest estimated tax per unit, using
    ``short_term_rate`` / ``long_term_rate`` and the holding period).
    ``long_term_days``: None (default), a lot is long term once held more than one
    calendar year (the US rule: one sold on the anniversary of its purchase is still
    short term); a number, once held more than that many days.
    ``gains_cap``: default cap on the net realised gain of an account in the run
    (base currency, >= 0); None means no cap.
    ``wash_sale_days``: the wash-sale window; 0 turns the rule off.
    ``max_price_age_days``: a price older than this (vs ``Book.as_of``) is stale;
    None: only the ``stale`` column counts. ``allow_stale``: trade on stale prices anyway.
    ``base_currency``: base currency of accounts that do not name one.
    ``weight_tolerance``: how far from 1 a model's weights may sum.
    ``local_search_rounds``: improvement rounds of the optimiser (0 = greedy only);
    ``pair_candidates``: how many moves per account the pair search combines;
    ``subset_moves``: every subset of this many of an account's largest moves is tried
    (2**n subsets; 0 turns it off). Larger is slower and closer to the exact optimum.
    """

    trade_to: Literal["target", "band_edge"] = "target"
    band_abs: float | None = None
    band_rel: float | None = None
    lot_selection: Literal["fifo", "hifo", "min_tax"] = "fifo"
    gains_cap: float | None = None
    wash_sale_days: int = 30
    long_term_days: int | None = None
    short_term_rate: float = 0.37
    long_term_rate: float = 0.20
    max_price_age_days: int | None = None
    allow_stale: bool = False
    base_currency: str = "USD"
    weight_tolerance: float = 1e-4
    local_search_rounds: int = 4
    pair_candidates: int = 6
    subset_moves: int = 6

    def __post_init__(self) -> None:
        if self.trade_to not in TRADE_TO:
            raise BookError(
                f"Options.trade_to must be 'target' or 'band_edge', not {self.trade_to!r}"
            )
        if self.lot_selection not in LOT_SELECTION:
            raise BookError(
                f"Options.lot_selection must be 'fifo', 'hifo' or 'min_tax', "
                f"not {self.lot_selection!r}"
            )
        for name in ("band_abs", "band_rel", "gains_cap"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise BookError(f"Options.{name} must be >= 0, not {value!r}")
        if self.wash_sale_days < 0:
            raise BookError("Options.wash_sale_days must be >= 0")
