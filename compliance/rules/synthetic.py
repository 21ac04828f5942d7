"""Seeded synthetic books and rule books for benchmarks and demos (no test relies on
their exact values)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .book import Book
from .rule import RestrictedList, Rule

__all__ = ["one_account", "synthetic_book", "synthetic_rules"]

SECTORS = (
    "Technology",
    "Health Care",
    "Financials",
    "Industrials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Utilities",
    "Materials",
    "Real Estate",
    "Communication Services",
)
COUNTRIES = ("US", "GB", "DE", "FR", "JP", "CH", "NL", "CA", "SE", "IE")
CURRENCIES = ("USD", "EUR", "GBP")
AS_OF = dt.datetime(2025, 3, 3, 15, 0, tzinfo=dt.UTC)


def synthetic_book(
    n_accounts: int = 10_000,
    positions: int = 50,
    n_orders: int = 100_000,
    n_securities: int = 2_000,
    seed: int = 11,
    *,
    live_per_account: float = 1.0,
    sales_per_account: float = 2.0,
    value_range: tuple[float, float] = (100_000.0, 5_000_000.0),
) -> Book:
    """A book of ``n_accounts`` accounts holding about ``positions`` securities each out
    of ``n_securities`` (USD, EUR and GBP; equities, bonds, government bonds, funds), cash
    in one to three currencies, ``n_orders`` orders under check spread over the accounts,
    some live orders and some realised sales at a loss."""
    rng = np.random.default_rng(seed)
    S = n_securities
    sec_ids = np.array([f"S{i:05d}" for i in range(S)], dtype=object)
    kind = rng.choice(4, S, p=[0.7, 0.15, 0.08, 0.07])  # equity, bond, government, fund
    n_issuers = max(1, int(S / 1.4))
    issuer_of = rng.integers(0, n_issuers, S)
    currency = np.asarray(CURRENCIES, dtype=object)[rng.choice(3, S, p=[0.6, 0.3, 0.1])]
    gov = kind == 2
    securities = pd.DataFrame(
        {
            "security": sec_ids,
            "price": np.round(np.exp(rng.normal(3.8, 0.9, S)), 2).clip(1.0, 2_000.0),
            "currency": currency,
            "issuer": np.where(
                gov,
                np.char.add("Treasury ", currency.astype(str)).astype(object),
                np.char.add("Issuer ", issuer_of.astype(str)).astype(object),
            ),
            "sector": np.asarray(SECTORS, dtype=object)[rng.integers(0, len(SECTORS), S)],
            "country": np.asarray(COUNTRIES, dtype=object)[rng.integers(0, len(COUNTRIES), S)],
            "asset_class": np.asarray(
                ["equity", "fixed_income", "fixed_income", "fund"], dtype=object
            )[kind],
            "government": gov,
            "adv": np.round(np.exp(rng.normal(np.where(kind == 0, 13.0, 10.0), 1.2, S))),
            "shares_outstanding": np.where(
                kind == 0, np.round(np.exp(rng.normal(18, 1.2, S))), np.nan
            ),
        }
    )

    A = n_accounts
    acct_ids = np.array([f"A{i:06d}" for i in range(A)], dtype=object)
    base = np.where(rng.random(A) < 0.85, "USD", "EUR").astype(object)
    value = np.exp(rng.uniform(np.log(value_range[0]), np.log(value_range[1]), A))
    accounts = pd.DataFrame(
        {"account": acct_ids, "base_currency": base, "long_only": rng.random(A) < 0.9}
    )
    fx_to_usd = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
    fx = pd.DataFrame({"currency": ["EUR", "GBP"], "base": "USD", "rate": [1.08, 1.27]})

    k = min(positions, S)
    # each account holds k distinct securities: a random offset walk over a permutation
    perm = rng.permutation(S)
    start = rng.integers(0, S, A)
    h_acc = np.repeat(np.arange(A), k)
    h_sec = perm[(start[:, None] + np.arange(k)[None, :]) % S].ravel()
    w = rng.dirichlet(np.full(k, 1.5), A).ravel() * 0.95
    usd = np.array([fx_to_usd[c] for c in CURRENCIES])
    sec_usd = securities["price"].to_numpy() * usd[pd.Index(CURRENCIES).get_indexer(currency)]
    acct_usd_per_base = np.where(base == "EUR", 1.08, 1.0)
    qty = np.floor(w * value[h_acc] * acct_usd_per_base[h_acc] / sec_usd[h_sec])
    keep = qty > 0
    holdings = pd.DataFrame(
        {"account": acct_ids[h_acc[keep]], "security": sec_ids[h_sec[keep]], "quantity": qty[keep]}
    )
    # cash: about 6% of the account in its base currency, and most accounts hold some of
    # the other two currencies (a few are overdrawn in one)
    cash_rows = [
        pd.DataFrame({"account": acct_ids, "currency": base, "amount": np.round(value * 0.06, 2)})
    ]
    for cur in CURRENCIES:
        has = (base != cur) & (rng.random(A) < 0.8)
        cash_rows.append(
            pd.DataFrame(
                {
                    "account": acct_ids[has],
                    "currency": cur,
                    "amount": np.round(value[has] * rng.uniform(-0.001, 0.04, has.sum()), 2),
                }
            )
        )
    cash = pd.concat(cash_rows, ignore_index=True)

    held_qty = dict(zip(zip(h_acc[keep], h_sec[keep], strict=True), qty[keep], strict=True))

    def orders(n: int, prefix: str) -> pd.DataFrame:
        o_acc = rng.integers(0, A, n)
        held = rng.random(n) < 0.7
        o_sec = np.where(
            held, perm[(start[o_acc] + rng.integers(0, k, n)) % S], rng.integers(0, S, n)
        )
        side = np.where(
            held & (rng.random(n) < 0.5),
            "sell",
            np.where(rng.random(n) < 0.03, "sell_short", "buy"),
        ).astype(object)
        # about half a percent of the account per order, some much larger
        notional = value[o_acc] * np.exp(rng.normal(np.log(0.004), 0.7, n))
        qty = np.maximum(1.0, np.floor(notional * acct_usd_per_base[o_acc] / sec_usd[o_sec]))
        # a sale rarely exceeds what is held
        have = np.array([held_qty.get((a, s), 0.0) for a, s in zip(o_acc, o_sec, strict=True)])
        qty = np.where((side == "sell") & (have > 0), np.minimum(qty, np.ceil(have / 2)), qty)
        px = securities["price"].to_numpy()[o_sec]
        off = np.where(
            rng.random(n) < 0.9, rng.uniform(-0.03, 0.03, n), rng.uniform(-0.08, 0.08, n)
        )
        limit = np.where(rng.random(n) < 0.3, np.round(px * (1 + off), 2), np.nan)
        created = AS_OF - pd.to_timedelta(rng.integers(0, 600, n), unit="min")
        return pd.DataFrame(
            {
                "order": np.char.add(prefix, np.arange(n).astype(str)).astype(object),
                "account": acct_ids[o_acc],
                "security": sec_ids[o_sec],
                "side": side,
                "quantity": qty,
                "limit_price": limit,
                "created_at": created,
            }
        )

    order_frame = orders(n_orders, "O")
    live = orders(int(A * live_per_account), "L")
    n_sales = int(A * sales_per_account)
    s_acc = rng.integers(0, A, n_sales)
    sales = pd.DataFrame(
        {
            "account": acct_ids[s_acc],
            "security": sec_ids[perm[(start[s_acc] + rng.integers(0, k, n_sales)) % S]],
            "date": pd.Timestamp(AS_OF.date()) - pd.to_timedelta(rng.integers(0, 90, n_sales), "D"),
            "gain": np.round(rng.normal(0, 2_000, n_sales), 2),
        }
    )
    return Book(
        securities=securities,
        accounts=accounts,
        holdings=holdings,
        cash=cash,
        fx=fx,
        orders=order_frame,
        live_orders=live,
        sales=sales,
        as_of=AS_OF,
    )


def one_account(book: Book, account, orders: pd.DataFrame | None = None) -> Book:
    """The part of ``book`` that one account's check needs: its holdings, cash, live
    orders and sales, the securities it holds or trades, and ``orders`` (default: its
    orders in ``book``)."""
    if orders is None:
        orders = book.orders[book.orders["account"] == account]
    holdings = book.holdings[book.holdings["account"] == account]
    live = book.live_orders[book.live_orders["account"] == account]
    used = pd.unique(
        pd.concat([holdings["security"], orders["security"], live["security"]], ignore_index=True)
    )
    return Book(
        securities=book.securities[book.securities["security"].isin(used)].reset_index(drop=True),
        accounts=book.accounts[book.accounts["account"] == account].reset_index(drop=True),
        holdings=holdings.reset_index(drop=True),
        cash=book.cash[book.cash["account"] == account].reset_index(drop=True),
        fx=book.fx,
        orders=orders.reset_index(drop=True),
        live_orders=live.reset_index(drop=True),
        sales=book.sales[book.sales["account"] == account].reset_index(drop=True),
        as_of=book.as_of,
        base_currency=book.base_currency,
    )


def synthetic_rules(book: Book, seed: int = 3) -> tuple[list[Rule], list[RestrictedList]]:
    """A rule book of 25 rules using all twelve kinds, some of them scoped to a tenth of
    the accounts, and the three restricted lists they name."""
    rng = np.random.default_rng(seed)
    accounts = book.accounts["account"].to_numpy()
    some = frozenset(accounts[rng.random(len(accounts)) < 0.1])
    secs = book.securities["security"].to_numpy()
    issuers = pd.unique(book.securities["issuer"])
    lists = [
        RestrictedList("firm", rng.choice(secs, 20, replace=False), rng.choice(issuers, 5)),
        RestrictedList("no_sell", rng.choice(secs, 20, replace=False)),
        RestrictedList("sanctions", (), rng.choice(issuers, 10)),
    ]

    def r(i, kind, severity, scope=None, **params):
        return Rule(f"R{i:02d}", kind, params, severity=severity, scope=scope)

    rules = [
        r(1, "max_weight", "hard", group_by="security", limit=0.10),
        r(2, "max_weight", "soft", group_by="issuer", limit=0.10),
        r(3, "max_weight", "soft", group_by="sector", limit=0.30),
        r(4, "max_weight", "warning", group_by="country", limit=0.60),
        r(5, "max_weight", "soft", group_by="asset_class", limit=0.90),
        r(6, "max_weight", "warning", group_by="currency", limit=0.80),
        r(7, "max_weight", "warning", some, group_by="issuer", limit=0.05),
        r(8, "max_weight", "hard", some, group_by="sector", limit=0.25),
        r(9, "min_cash", "soft", limit=0.01),
        r(10, "min_cash", "hard", some, limit=0.005),
        r(11, "no_overdraft", "hard"),
        r(12, "no_short", "hard"),
        r(13, "max_order_notional", "hard", limit=1_000_000.0),
        r(14, "max_order_notional", "soft", limit=250_000.0),
        r(15, "max_adv_pct", "soft", limit=0.10),
        r(16, "max_adv_pct", "hard", limit=0.25),
        r(17, "price_collar", "soft", limit=0.05),
        r(18, "price_collar", "hard", limit=0.10),
        r(19, "ucits_5_10_40", "hard", some),
        r(20, "diversified_fund", "hard"),
        r(21, "wash_sale", "warning", days=30),
        r(22, "duplicate_order", "soft", minutes=5),
        r(23, "restricted", "hard", list="firm"),
        r(24, "restricted", "soft", list="no_sell", sides=["sell", "sell_short"]),
        r(25, "restricted", "hard", list=["sanctions", "firm"], sides=["buy", "sell_short"]),
    ]
    return rules, lists
