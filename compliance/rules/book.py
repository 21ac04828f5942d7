"""The input of a check: a :class:`Book` of pandas frames.

Every frame may hold many accounts at once: a single order, all the orders of a
rebalance run, or no order at all (the nightly post-trade check). Identifiers
(accounts, securities, orders) may be any hashable: database keys or codes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Book", "CheckError"]

# a table: a DataFrame, or a mapping of column name to a list or array
Table = pd.DataFrame | Mapping[str, Any]


class CheckError(ValueError):
    """The book is malformed: a frame lacks a column, an order names an unknown account
    or security, a quantity is not positive, ... The message names the row at fault."""


@dataclass
class Book:
    """Holdings, cash, market data and orders of the accounts under check.

    Each table is a DataFrame or a mapping of column name to a list or array (the lighter
    form: a service checking one order builds it from database rows without pandas).

    ``securities`` -- one row per security:
        ``security`` (id, required), ``price`` (per unit, in ``currency``; NaN: none, and
        an account that holds or orders it cannot be checked), ``currency`` (default
        ``base_currency``), ``issuer``, ``sector``, ``country``, ``asset_class`` (strings;
        empty or missing: the security is a group of its own), ``government`` (bool,
        default False), ``investment_company`` (bool, default ``asset_class == "fund"``),
        ``adv`` (average daily volume, units; NaN: unknown), ``shares_outstanding``
        (voting securities outstanding, units; NaN: not a voting security),
        ``multiplier`` (what a point of price is worth per unit: the contract
        multiplier, 0.01 for a bond quoted in % of par; default 1), ``accrued``
        (interest accrued per unit, a bond's per unit of face; default 0). A unit is
        worth ``price x multiplier + accrued`` (portfolios.terms.unit_value).
        ``currency_trade`` (bool, default False): an FX spot or forward, whose quantity is
        an amount of its ``base_currency`` (required then) at a rate in ``currency``: an
        order in it moves two cash legs (+/- quantity of the base currency, -/+ quantity x
        price of ``currency``) and no position of any worth; selling one is not a short
        sale (``no_short`` leaves it out), and the base leg it pays counts for
        ``no_overdraft``.

    ``accounts`` -- one row per account under check: ``account`` (id, required),
        ``base_currency`` (default ``base_currency``), ``long_only`` (default True).

    ``holdings`` -- ``account``, ``security``, ``quantity`` (signed; duplicates summed).

    ``cash`` -- optional: ``account``, ``currency``, ``amount`` (signed, in ``currency``;
        duplicates summed). A currency an account holds no cash in starts at zero.

    ``fx`` -- optional: a frame ``currency``, ``base``, ``rate`` (one unit of
        ``currency`` is worth ``rate`` units of ``base``), or a mapping
        ``{currency: rate}`` into ``base_currency``. An inverse pair or a path through
        other currencies is used when the direct rate is not given.

    ``orders`` -- optional, the orders under check: ``order`` (id), ``account``,
        ``security``, ``side`` (``buy``, ``sell``, ``sell_short``, ``buy_to_cover``),
        ``quantity`` (> 0), ``limit_price`` (NaN/None: a market order), ``created_at``
        (for ``duplicate_order``; default ``as_of``).

    ``live_orders`` -- optional, the accounts' other live orders (already approved,
        released, working; for a working order, the quantity not yet filled), with the
        columns of ``orders``. They are part of the portfolio both before and after. A
        live order whose id is also in ``orders`` is dropped from here: the order under
        check is counted once.

    ``sales`` -- optional realised sales, for ``wash_sale``: ``account``, ``security``,
        ``date``, ``gain`` (realised gain in base currency, < 0 for a loss). Sales in an
        account or a security outside the book are ignored.

    ``as_of`` -- when the check runs (timezone-aware, or naive UTC); the wash-sale window
        ends on its date; default: now.
    """

    securities: Table
    accounts: Table
    holdings: Table | None = None
    cash: Table | None = None
    fx: Table | Mapping[str, float] | None = None
    orders: Table | None = None
    live_orders: Table | None = None
    sales: Table | None = None
    as_of: dt.datetime | None = None
    base_currency: str = "USD"
