"""From the frames of a :class:`Book` to the integer-coded numpy arrays the rules run on.

Securities, accounts and currencies become integer codes; every position an account
holds or trades becomes one row of a table sorted by (account, security), every cash
balance one row of a table sorted by (account, currency). The rules then work in whole-
array passes (``bincount`` over those codes), whatever the number of accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .book import Book, CheckError
from .rule import SIDES

__all__ = ["ATTRIBUTES", "SIDE_SIGN", "Grouping", "Prepared", "prepare"]

ATTRIBUTES = ("issuer", "sector", "country", "asset_class")
SIDE_INDEX = pd.Index(SIDES)
# buy and buy_to_cover add quantity and take cash; sell and sell_short the opposite
SIDE_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
NS_PER_MINUTE = 60_000_000_000


@dataclass
class Grouping:
    """Rows of (account, group) built once per check and shared by the rules using them.

    ``acct``/``code`` -- the account and group code of each group row (sorted by account);
    ``labels`` -- group code -> name; ``before``/``after`` -- the market value of each group
    row in base currency; ``of_position`` -- for each position row, its group row (-1: in
    no group), ``quantity`` -- optional per-group quantity used by a rule.
    """

    acct: np.ndarray
    code: np.ndarray
    labels: np.ndarray
    before: np.ndarray
    after: np.ndarray
    of_position: np.ndarray
    extra: dict = field(default_factory=dict)


@dataclass
class Prepared:
    """A book as integer-coded arrays (see the module docstring). Built by :func:`prepare`."""

    # securities (S)
    sec_ids: np.ndarray
    price: np.ndarray
    multiplier: np.ndarray
    sec_currency: np.ndarray
    government: np.ndarray
    fund: np.ndarray
    adv: np.ndarray
    shares_outstanding: np.ndarray
    attr_codes: dict  # attribute -> (code per security, label per code, number of real labels)
    # currencies (C) and FX into each other (C x C)
    currencies: np.ndarray
    fx: np.ndarray
    # accounts (A)
    acc_ids: np.ndarray
    acc_index: pd.Index
    base: np.ndarray
    long_only: np.ndarray
    # positions (P), sorted by account then security
    pos_acct: np.ndarray
    pos_sec: np.ndarray
    qty_before: np.ndarray
    qty_after: np.ndarray
    qty_gross: np.ndarray
    unit_value: np.ndarray  # base-currency value of one unit
    mv_before: np.ndarray
    mv_after: np.ndarray
    # cash (K), sorted by account then currency
    cash_acct: np.ndarray
    cash_cur: np.ndarray
    cash_before: np.ndarray  # in base currency
    cash_after: np.ndarray
    # per account
    nav_before: np.ndarray
    nav_after: np.ndarray
    cash_total_before: np.ndarray
    cash_total_after: np.ndarray
    gross: np.ndarray  # the account's gross value, the scale of its money tolerances
    # orders under check (O)
    ord_ids: np.ndarray
    ord_acct: np.ndarray
    ord_sec: np.ndarray
    ord_side: np.ndarray
    ord_qty: np.ndarray
    ord_limit: np.ndarray
    ord_created: np.ndarray  # int64 ns UTC
    ord_pos: np.ndarray  # position row of the order
    ord_cash: np.ndarray  # cash row of the order's currency
    # other live orders (L), for duplicate_order
    live_acct: np.ndarray
    live_sec: np.ndarray
    live_side: np.ndarray
    live_created: np.ndarray
    # realised losses, for wash_sale
    loss_acct: np.ndarray
    loss_sec: np.ndarray
    loss_day: np.ndarray  # datetime64[D]
    as_of: pd.Timestamp
    # accounts that cannot be valued: account code -> reason
    unvalued: dict
    groupings: dict = field(default_factory=dict)

    @property
    def n_accounts(self) -> int:
        return len(self.acc_ids)


def _column(df: pd.DataFrame, name: str, what: str) -> pd.Series:
    if name not in df.columns:
        raise CheckError(f"{what} has no column {name!r}")
    return df[name]


def _floats(series: pd.Series, what: str) -> np.ndarray:
    try:
        return series.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise CheckError(f"{what} must be numbers") from None


def _optional(df: pd.DataFrame, name: str, default, n: int) -> np.ndarray | None:
    if name in df.columns:
        return df[name].to_numpy()
    return None if default is None else np.full(n, default)


def _labels(values: np.ndarray | None, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Group codes of an attribute, their labels, and how many labels are real values: a
    security without a value is a group of its own, named by its id, so that unclassified
    securities are never lumped together."""
    n = len(ids)
    if values is None:
        return np.arange(n), ids.copy(), 0
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = np.asarray(uniques, dtype=object)
    empty = np.flatnonzero(labels == "")
    if len(empty):
        codes = np.where(np.isin(codes, empty), -1, codes)
    real = len(labels)
    missing = codes < 0
    if missing.any():
        codes = np.where(missing, real + np.arange(n), codes)
        labels = np.concatenate([labels, ids])
    return codes, labels, real


def _times(series, default: pd.Timestamp, what: str) -> np.ndarray:
    try:
        t = pd.to_datetime(series, utc=True)
    except (TypeError, ValueError):
        raise CheckError(f"{what} must be date-times") from None
    out = t.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    nat = pd.isna(t)
    nat = nat.to_numpy() if hasattr(nat, "to_numpy") else np.asarray(nat)
    if nat.any():
        out[nat] = default.value
    return out


def _as_of(value) -> pd.Timestamp:
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _orders(
    df: pd.DataFrame | None,
    what: str,
    acc_index: pd.Index,
    sec_index: pd.Index,
    as_of: pd.Timestamp,
):
    if df is None or len(df) == 0:
        e = np.zeros(0, dtype=np.int64)
        return (np.zeros(0, dtype=object), e, e, e, np.zeros(0), np.zeros(0), e)
    n = len(df)
    ids = (
        _column(df, "order", what).to_numpy(dtype=object)
        if "order" in df.columns or what == "orders"
        else np.arange(n).astype(object)
    )
    acct = acc_index.get_indexer(_column(df, "account", what))
    if (acct < 0).any():
        i = int(np.flatnonzero(acct < 0)[0])
        raise CheckError(f"{what}: order {ids[i]} names unknown account {df['account'].iat[i]}")
    sec = sec_index.get_indexer(_column(df, "security", what))
    if (sec < 0).any():
        i = int(np.flatnonzero(sec < 0)[0])
        raise CheckError(f"{what}: order {ids[i]} names unknown security {df['security'].iat[i]}")
    side = SIDE_INDEX.get_indexer(_column(df, "side", what))
    if (side < 0).any():
        i = int(np.flatnonzero(side < 0)[0])
        raise CheckError(
            f"{what}: order {ids[i]}: side must be {', '.join(SIDES)}, not {df['side'].iat[i]!r}"
        )
    qty = _floats(_column(df, "quantity", what), f"{what}: quantity")
    bad = ~(qty > 0) | ~np.isfinite(qty)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CheckError(f"{what}: order {ids[i]}: quantity must be positive, not {qty[i]}")
    if "limit_price" in df.columns:
        limit = _floats(df["limit_price"], f"{what}: limit_price")
        bad = limit <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CheckError(f"{what}: order {ids[i]}: limit price must be positive")
    else:
        limit = np.full(n, np.nan)
    if "created_at" in df.columns:
        created = _times(df["created_at"], as_of, f"{what}: created_at")
    else:
        created = np.full(n, as_of.value, dtype=np.int64)
    return ids, acct, sec, side, qty, limit, created


def _fx_matrix(fx, currencies: pd.Index, base_currency: str) -> np.ndarray:
    C = len(currencies)
    m = np.full((C, C), np.nan)
    np.fill_diagonal(m, 1.0)
    if fx is None:
        return m
    if isinstance(fx, Mapping):
        frame = pd.DataFrame(
            {"currency": list(fx), "base": base_currency, "rate": list(fx.values())}
        )
    else:
        frame = fx
    if len(frame) == 0:
        return m
    src = currencies.get_indexer(_column(frame, "currency", "fx"))
    dst = currencies.get_indexer(
        frame["base"] if "base" in frame.columns else pd.Series([base_currency] * len(frame))
    )
    rate = _floats(_column(frame, "rate", "fx"), "fx: rate")
    bad = ~(rate > 0) | ~np.isfinite(rate)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CheckError(f"fx: the rate of {frame['currency'].iat[i]} must be positive")
    ok = (src >= 0) & (dst >= 0)
    src, dst, rate = src[ok], dst[ok], rate[ok]
    # inverse pairs first, then the given ones, so that a given rate always wins
    m[dst, src] = 1.0 / rate
    m[src, dst] = rate
    np.fill_diagonal(m, 1.0)
    if np.isnan(m).any():
        # cross rates through other currencies (a shortest-path closure; C is small)
        for k in range(C):
            via = m[:, k, None] * m[None, k, :]
            m = np.where(np.isnan(m), via, m)
    return m


def prepare(book: Book) -> Prepared:
    """Validate a :class:`Book` and encode it (see the module docstring)."""
    base_currency = book.base_currency
    as_of = _as_of(book.as_of)

    # securities
    sec = book.securities
    sec_ids = _column(sec, "security", "securities").to_numpy(dtype=object)
    S = len(sec_ids)
    sec_index = pd.Index(sec_ids)
    if not sec_index.is_unique:
        dup = sec_index[sec_index.duplicated()][0]
        raise CheckError(f"securities: security {dup} is listed twice")
    price = _floats(_column(sec, "price", "securities"), "securities: price")
    if (price < 0).any():
        i = int(np.flatnonzero(price < 0)[0])
        raise CheckError(f"securities: price of {sec_ids[i]} must not be negative")
    sec_cur_raw = _optional(sec, "currency", base_currency, S)
    sec_cur_raw = np.where(pd.isna(sec_cur_raw), base_currency, sec_cur_raw)
    multiplier = _optional(sec, "multiplier", None, S)
    multiplier = (
        np.ones(S) if multiplier is None else _floats(sec["multiplier"], "securities: multiplier")
    )
    attr_codes = {"security": (np.arange(S), sec_ids, S)}
    for attr in ATTRIBUTES:
        attr_codes[attr] = _labels(_optional(sec, attr, None, S), sec_ids)
    government = _optional(sec, "government", False, S)
    government = np.asarray(pd.Series(government).fillna(False), dtype=bool)
    if "investment_company" in sec.columns:
        fund = np.asarray(sec["investment_company"].fillna(False), dtype=bool)
    elif "asset_class" in sec.columns:
        fund = (sec["asset_class"] == "fund").to_numpy()
    else:
        fund = np.zeros(S, dtype=bool)
    adv = _floats(sec["adv"], "securities: adv") if "adv" in sec.columns else np.full(S, np.nan)
    so = (
        _floats(sec["shares_outstanding"], "securities: shares_outstanding")
        if "shares_outstanding" in sec.columns
        else np.full(S, np.nan)
    )

    # accounts
    acc = book.accounts
    acc_ids = _column(acc, "account", "accounts").to_numpy(dtype=object)
    A = len(acc_ids)
    acc_index = pd.Index(acc_ids)
    if not acc_index.is_unique:
        dup = acc_index[acc_index.duplicated()][0]
        raise CheckError(f"accounts: account {dup} is listed twice")
    base_raw = _optional(acc, "base_currency", base_currency, A)
    base_raw = np.where(pd.isna(base_raw), base_currency, base_raw)
    long_only = _optional(acc, "long_only", True, A)
    long_only = np.asarray(pd.Series(long_only).fillna(True), dtype=bool)

    # cash
    cash = book.cash
    if cash is not None and len(cash):
        c_acct = acc_index.get_indexer(_column(cash, "account", "cash"))
        if (c_acct < 0).any():
            i = int(np.flatnonzero(c_acct < 0)[0])
            raise CheckError(f"cash: unknown account {cash['account'].iat[i]}")
        c_cur_raw = _column(cash, "currency", "cash").to_numpy(dtype=object)
        c_amount = _floats(_column(cash, "amount", "cash"), "cash: amount")
        if not np.isfinite(c_amount).all():
            raise CheckError("cash: amount must be a finite number")
    else:
        c_acct = np.zeros(0, dtype=np.int64)
        c_cur_raw = np.zeros(0, dtype=object)
        c_amount = np.zeros(0)

    # currencies
    fx_names: list = []
    if isinstance(book.fx, Mapping):
        fx_names = list(book.fx)
    elif book.fx is not None and len(book.fx):
        fx_names = list(_column(book.fx, "currency", "fx"))
        if "base" in book.fx.columns:
            fx_names += list(book.fx["base"])
    currencies = pd.Index(
        pd.unique(
            np.concatenate(
                [
                    np.array([base_currency], dtype=object),
                    np.asarray(base_raw, dtype=object),
                    np.asarray(sec_cur_raw, dtype=object),
                    c_cur_raw,
                    np.asarray(fx_names, dtype=object),
                ]
            )
        )
    )
    sec_currency = currencies.get_indexer(sec_cur_raw)
    base = currencies.get_indexer(base_raw)
    c_cur = currencies.get_indexer(c_cur_raw)
    fx = _fx_matrix(book.fx, currencies, base_currency)

    # holdings
    h = book.holdings
    if h is not None and len(h):
        h_acct = acc_index.get_indexer(_column(h, "account", "holdings"))
        if (h_acct < 0).any():
            i = int(np.flatnonzero(h_acct < 0)[0])
            raise CheckError(f"holdings: unknown account {h['account'].iat[i]}")
        h_sec = sec_index.get_indexer(_column(h, "security", "holdings"))
        if (h_sec < 0).any():
            i = int(np.flatnonzero(h_sec < 0)[0])
            raise CheckError(
                f"holdings: account {h['account'].iat[i]} holds unknown security "
                f"{h['security'].iat[i]}"
            )
        h_qty = _floats(_column(h, "quantity", "holdings"), "holdings: quantity")
        if not np.isfinite(h_qty).all():
            raise CheckError("holdings: quantity must be a finite number")
    else:
        h_acct = h_sec = np.zeros(0, dtype=np.int64)
        h_qty = np.zeros(0)

    # orders under check, and the other live orders (minus those under check)
    o_ids, o_acct, o_sec, o_side, o_qty, o_limit, o_created = _orders(
        book.orders, "orders", acc_index, sec_index, as_of
    )
    if len(o_ids) and not pd.Index(o_ids).is_unique:
        dup = pd.Index(o_ids)
        raise CheckError(f"orders: order {dup[dup.duplicated()][0]} is listed twice")
    live = book.live_orders
    if live is not None and len(live) and len(o_ids) and "order" in live.columns:
        live = live[~live["order"].isin(o_ids)]
    l_ids, l_acct, l_sec, l_side, l_qty, _, l_created = _orders(
        live, "live_orders", acc_index, sec_index, as_of
    )

    # positions: every (account, security) held, on a live order or under check
    keys = np.concatenate([h_acct * S + h_sec, l_acct * S + l_sec, o_acct * S + o_sec])
    pos_keys, inv = np.unique(keys, return_inverse=True)
    P = len(pos_keys)
    nh, nl = len(h_acct), len(l_acct)
    inv_h, inv_l, inv_o = inv[:nh], inv[nh : nh + nl], inv[nh + nl :]
    pos_acct = pos_keys // S if S else pos_keys
    pos_sec = pos_keys % S if S else pos_keys
    l_signed = SIDE_SIGN[l_side] * l_qty
    o_signed = SIDE_SIGN[o_side] * o_qty
    qty_before = np.bincount(inv_h, h_qty, P) + np.bincount(inv_l, l_signed, P)
    qty_after = qty_before + np.bincount(inv_o, o_signed, P)
    qty_gross = (
        np.bincount(inv_h, np.abs(h_qty), P)
        + np.bincount(inv_l, l_qty, P)
        + np.bincount(inv_o, o_qty, P)
    )
    pos_fx = fx[sec_currency[pos_sec], base[pos_acct]]
    unit = price[pos_sec] * multiplier[pos_sec] * pos_fx
    with np.errstate(invalid="ignore"):
        mv_before = qty_before * unit
        mv_after = qty_after * unit

    # cash rows: every currency held, traded, and the base currency
    C = len(currencies)
    l_cur = sec_currency[l_sec]
    o_cur = sec_currency[o_sec]
    ckeys = np.concatenate(
        [c_acct * C + c_cur, np.arange(A) * C + base, l_acct * C + l_cur, o_acct * C + o_cur]
    )
    cash_keys, cinv = np.unique(ckeys, return_inverse=True)
    K = len(cash_keys)
    nc = len(c_acct)
    cinv_c, cinv_l, cinv_o = cinv[:nc], cinv[nc + A : nc + A + nl], cinv[nc + A + nl :]
    cash_acct = cash_keys // C
    cash_cur = cash_keys % C
    with np.errstate(invalid="ignore"):
        l_flow = -l_signed * price[l_sec] * multiplier[l_sec]
        o_flow = -o_signed * price[o_sec] * multiplier[o_sec]
    local_before = np.bincount(cinv_c, c_amount, K) + np.bincount(cinv_l, l_flow, K)
    local_after = local_before + np.bincount(cinv_o, o_flow, K)
    cash_fx = fx[cash_cur, base[cash_acct]]
    cash_before = local_before * cash_fx
    cash_after = local_after * cash_fx

    # accounts that cannot be valued are named and left out of every result
    unvalued: dict = {}
    bad_pos = ~np.isfinite(unit) & (qty_gross > 0)
    bad_cash = ~np.isfinite(cash_fx)
    if bad_pos.any() or bad_cash.any():
        for p in np.flatnonzero(bad_pos)[::-1]:
            s = pos_sec[p]
            a = pos_acct[p]
            if not np.isfinite(price[s]):
                unvalued[a] = f"no price for {sec_ids[s]}"
            else:
                unvalued[a] = (
                    f"no FX rate for {currencies[sec_currency[s]]} into {currencies[base[a]]}"
                )
        for k in np.flatnonzero(bad_cash)[::-1]:
            a = cash_acct[k]
            unvalued.setdefault(
                a, f"no FX rate for {currencies[cash_cur[k]]} into {currencies[base[a]]}"
            )
        unvalued = {int(a): r for a, r in unvalued.items()}
        # keep NaN out of the sums so that only the unvalued accounts carry it
        mv_before = np.where(bad_pos, 0.0, mv_before)
        mv_after = np.where(bad_pos, 0.0, mv_after)
        cash_before = np.where(bad_cash, 0.0, cash_before)
        cash_after = np.where(bad_cash, 0.0, cash_after)

    cash_total_before = np.bincount(cash_acct, cash_before, A)
    cash_total_after = np.bincount(cash_acct, cash_after, A)
    nav_before = np.bincount(pos_acct, mv_before, A) + cash_total_before
    nav_after = np.bincount(pos_acct, mv_after, A) + cash_total_after
    gross = (
        np.bincount(pos_acct, np.abs(mv_before) + np.abs(mv_after), A)
        + np.bincount(cash_acct, np.abs(cash_before) + np.abs(cash_after), A)
    ) / 2.0

    # realised losses in the wash-sale look-back (the window is cut per rule)
    sales = book.sales
    if sales is not None and len(sales):
        s_acct = acc_index.get_indexer(_column(sales, "account", "sales"))
        s_sec = sec_index.get_indexer(_column(sales, "security", "sales"))
        gain = _floats(_column(sales, "gain", "sales"), "sales: gain")
        try:
            day = pd.to_datetime(_column(sales, "date", "sales")).to_numpy(dtype="datetime64[D]")
        except (TypeError, ValueError):
            raise CheckError("sales: date must be dates") from None
        # a sale in an account or security outside the check cannot touch its orders
        keep = (s_acct >= 0) & (s_sec >= 0) & (gain < 0)
        loss_acct, loss_sec, loss_day = s_acct[keep], s_sec[keep], day[keep]
    else:
        loss_acct = loss_sec = np.zeros(0, dtype=np.int64)
        loss_day = np.zeros(0, dtype="datetime64[D]")

    return Prepared(
        sec_ids=sec_ids,
        price=price,
        multiplier=multiplier,
        sec_currency=sec_currency,
        government=government,
        fund=fund,
        adv=adv,
        shares_outstanding=so,
        attr_codes=attr_codes,
        currencies=np.asarray(currencies, dtype=object),
        fx=fx,
        acc_ids=acc_ids,
        acc_index=acc_index,
        base=base,
        long_only=long_only,
        pos_acct=pos_acct,
        pos_sec=pos_sec,
        qty_before=qty_before,
        qty_after=qty_after,
        qty_gross=qty_gross,
        unit_value=unit,
        mv_before=mv_before,
        mv_after=mv_after,
        cash_acct=cash_acct,
        cash_cur=cash_cur,
        cash_before=cash_before,
        cash_after=cash_after,
        nav_before=nav_before,
        nav_after=nav_after,
        cash_total_before=cash_total_before,
        cash_total_after=cash_total_after,
        gross=gross,
        ord_ids=o_ids,
        ord_acct=o_acct,
        ord_sec=o_sec,
        ord_side=o_side,
        ord_qty=o_qty,
        ord_limit=o_limit,
        ord_created=o_created,
        ord_pos=inv_o,
        ord_cash=cinv_o,
        live_acct=l_acct,
        live_sec=l_sec,
        live_side=l_side,
        live_created=l_created,
        loss_acct=loss_acct,
        loss_sec=loss_sec,
        loss_day=loss_day,
        as_of=as_of,
        unvalued=unvalued,
    )


def as_of_day(prep: Prepared) -> np.datetime64:
    """The date of the check (UTC), for day-counted windows."""
    return np.datetime64(prep.as_of.tz_convert("UTC").date(), "D")
