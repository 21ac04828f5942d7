"""From the frames of a :class:`Book` to the integer-coded numpy arrays the rules run on.

Securities, accounts and currencies become integer codes; every position an account
holds or trades becomes one row of a table sorted by (account, security), every cash
balance one row of a table sorted by (account, currency). The rules then work in whole-
array passes (``bincount`` over those codes), whatever the number of accounts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .book import Book, CheckError
from .rule import SIDES

__all__ = ["ATTRIBUTES", "SIDE_SIGN", "Grouping", "Prepared", "prepare", "total", "unique_inverse"]

ATTRIBUTES = ("issuer", "sector", "country", "asset_class")
_SIDE_CODE = {side: i for i, side in enumerate(SIDES)}
_SIDE_INDEX = pd.Index(SIDES)
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
    currency_trade: np.ndarray  # FX spot or forward: the position is a currency amount
    adv: np.ndarray
    shares_outstanding: np.ndarray
    attr_codes: dict  # attribute -> (code per security, label per code, number of real labels)
    # currencies (C) and FX into each other (C x C)
    currencies: np.ndarray
    fx: np.ndarray
    # accounts (A)
    acc_ids: np.ndarray
    accounts: _Lookup
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
    ord_base_cash: np.ndarray  # a currency trade's base-currency cash row (else ord_cash)
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


class _Frame:
    """One input table, given as a DataFrame or as a mapping of column -> array-like (the
    lighter form, for a single order: no pandas overhead per column)."""

    def __init__(self, data, what: str):
        self.data = data
        self.what = what
        self._cache: dict = {}
        if data is None:
            self.columns: frozenset = frozenset()
            self.n = 0
        elif isinstance(data, pd.DataFrame):
            self.columns = frozenset(data.columns)
            self.n = len(data)
        elif isinstance(data, Mapping):
            self.columns = frozenset(data)
            lengths = {len(v) for v in data.values()}
            if len(lengths) > 1:
                raise CheckError(f"{what}: the columns have different lengths")
            self.n = lengths.pop() if lengths else 0
        else:
            raise CheckError(f"{what} must be a DataFrame or a mapping of columns")

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def get(self, name: str) -> np.ndarray:
        values = self._cache.get(name)
        if values is not None:
            return values
        if name not in self.columns:
            raise CheckError(f"{self.what} has no column {name!r}")
        col = self.data[name]
        if isinstance(col, pd.Series | pd.Index):
            values = col.to_numpy()
        else:
            values = col if isinstance(col, np.ndarray) else np.asarray(col)
        self._cache[name] = values
        return values

    def objects(self, name: str) -> np.ndarray:
        values = self.get(name)
        return values if values.dtype == object else values.astype(object)

    def floats(self, name: str, default: float | None = None) -> np.ndarray:
        if default is not None and name not in self.columns:
            return np.full(self.n, default)
        values = self.get(name)
        if values.dtype.kind == "f":
            return values.astype(float, copy=False)
        try:
            out = pd.to_numeric(pd.Series(values, dtype=object), errors="raise")
            return out.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise CheckError(f"{self.what}: {name} must be numbers") from None

    def bools(self, name: str, default: bool) -> np.ndarray:
        if name not in self.columns:
            return np.full(self.n, default)
        values = self.get(name)
        if values.dtype == bool:
            return values
        return np.where(pd.isna(values), default, values).astype(bool)

    def strings(self, name: str, default: str) -> np.ndarray:
        if name not in self.columns:
            return np.full(self.n, default, dtype=object)
        values = self.objects(name)
        missing = pd.isna(values)
        return np.where(missing, default, values) if missing.any() else values

    def times(self, name: str, default: pd.Timestamp) -> np.ndarray:
        """UTC nanoseconds; a naive time is UTC, a missing one ``default``."""
        if name not in self.columns:
            return np.full(self.n, default.value, dtype=np.int64)
        col = self.data[name]
        dtype = getattr(col, "dtype", None)
        if (dtype is None or dtype.kind == "O") and self.n <= 64:
            return np.array([_nanoseconds(x, default) for x in list(col)], dtype=np.int64)
        try:
            if isinstance(dtype, pd.DatetimeTZDtype):
                out = col.array.as_unit("ns").asi8.copy()
            elif dtype is not None and np.dtype(dtype).kind == "M":
                out = np.asarray(col).astype("datetime64[ns]").view(np.int64).copy()
            else:
                out = pd.DatetimeIndex(pd.to_datetime(col, utc=True)).as_unit("ns").asi8.copy()
        except (TypeError, ValueError):
            raise CheckError(f"{self.what}: {name} must be date-times") from None
        out[out == np.iinfo(np.int64).min] = default.value
        return out


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NS = dt.timedelta(microseconds=1)


def _nanoseconds(value, default: pd.Timestamp) -> int:
    """UTC nanoseconds of one date-time (a few orders: cheaper than pandas' parser)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return default.value
    if isinstance(value, pd.Timestamp):
        return (value.tz_localize("UTC") if value.tzinfo is None else value).value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return (value - _EPOCH) // _NS * 1000
    if isinstance(value, dt.date):
        return (
            (dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC) - _EPOCH) // _NS * 1000
        )
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise CheckError(f"not a date-time: {value!r}") from None
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts).value


class _Lookup:
    """Ids -> integer codes: a dict for a few thousand ids (a single account), a pandas
    hash index beyond (a batch), where the per-call overhead no longer matters."""

    SMALL = 4096

    def __init__(self, ids: np.ndarray, what: str):
        self.ids = ids
        self.what = what
        self.small = len(ids) <= self.SMALL
        if self.small:
            self.map = {k: i for i, k in enumerate(ids.tolist())}
            unique = len(self.map) == len(ids)
        else:
            self.index = pd.Index(ids)
            unique = self.index.is_unique
        if not unique:
            seen: set = set()
            dup = next(k for k in ids if k in seen or seen.add(k))
            raise CheckError(f"{what}: {dup} is listed twice")

    def isin(self, wanted) -> np.ndarray:
        """A mask of the ids that are in the collection ``wanted``."""
        if self.small:
            return np.fromiter((k in wanted for k in self.ids.tolist()), bool, len(self.ids))
        return self.index.isin(list(wanted))

    def codes(self, values: np.ndarray) -> np.ndarray:
        if len(self.ids) == 1 and len(values) > 8:
            # one account's book: every row names it (or the book is wrong)
            hit = values == self.ids[0]
            if hit.all():
                return np.zeros(len(values), dtype=np.int64)
        if self.small and len(values) <= self.SMALL:
            get = self.map.get
            return np.fromiter((get(v, -1) for v in values.tolist()), np.int64, len(values))
        if self.small:
            self.index = pd.Index(self.ids)
            self.small = False
        return self.index.get_indexer(values)


def _codes(lookup: _Lookup, frame: _Frame, name: str, where: str) -> np.ndarray:
    values = frame.get(name)
    codes = lookup.codes(values)
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        raise CheckError(f"{where}: unknown {lookup.what} {values[i]}")
    return codes


def total(index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """The sum of ``weights`` per ``index`` value, as floats (``np.bincount`` gives
    integers when there is nothing to count)."""
    return np.bincount(index, weights, n).astype(float, copy=False)


def unique_inverse(keys: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique keys and, for each key, the position of its unique value (what
    ``np.unique(return_inverse=True)`` gives). Keys below a small ``size`` (one
    account's) are counted into a dense table; others are sorted once."""
    if size is not None and size <= 4 * len(keys) + 4096:
        present = np.flatnonzero(np.bincount(keys, minlength=size))
        where = np.empty(size, dtype=np.int64)
        where[present] = np.arange(len(present))
        return present, where[keys]
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.empty(len(keys), dtype=bool)
    if len(keys):
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


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


def _as_of(value) -> pd.Timestamp:
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _orders(data, what: str, accounts: _Lookup, securities: _Lookup, as_of: pd.Timestamp):
    frame = _Frame(data, what)
    n = frame.n
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        return (np.zeros(0, dtype=object), e, e, e, np.zeros(0), np.zeros(0), e)
    if "order" in frame or what == "orders":
        ids = frame.objects("order")
    else:
        ids = np.arange(n).astype(object)
    acct = accounts.codes(frame.get("account"))
    if (acct < 0).any():
        i = int(np.flatnonzero(acct < 0)[0])
        raise CheckError(f"{what}: order {ids[i]} names unknown account {frame.get('account')[i]}")
    sec = securities.codes(frame.get("security"))
    if (sec < 0).any():
        i = int(np.flatnonzero(sec < 0)[0])
        raise CheckError(
            f"{what}: order {ids[i]} names unknown security {frame.get('security')[i]}"
        )
    side_raw = frame.get("side")
    if n <= 64:
        side = np.fromiter((_SIDE_CODE.get(x, -1) for x in side_raw.tolist()), np.int64, n)
    else:
        side = _SIDE_INDEX.get_indexer(side_raw)
    if (side < 0).any():
        i = int(np.flatnonzero(side < 0)[0])
        raise CheckError(
            f"{what}: order {ids[i]}: side must be {', '.join(SIDES)}, not {side_raw[i]!r}"
        )
    qty = frame.floats("quantity")
    bad = ~(qty > 0) | ~np.isfinite(qty)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CheckError(f"{what}: order {ids[i]}: quantity must be positive, not {qty[i]}")
    limit = frame.floats("limit_price", np.nan) if "limit_price" in frame else np.full(n, np.nan)
    bad = limit <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CheckError(f"{what}: order {ids[i]}: limit price must be positive")
    created = frame.times("created_at", as_of)
    return ids, acct, sec, side, qty, limit, created


def _fx_matrix(fx, currencies: dict, base_currency: str) -> np.ndarray:
    C = len(currencies)
    m = np.full((C, C), np.nan)
    np.fill_diagonal(m, 1.0)
    if fx is None:
        return m
    if isinstance(fx, Mapping) and not isinstance(fx, pd.DataFrame) and "rate" not in fx:
        src_raw, dst_raw = list(fx), [base_currency] * len(fx)
        rate = np.array([_fx_rate(v, c) for c, v in fx.items()], dtype=float)
    else:
        frame = _Frame(fx, "fx")
        if frame.n == 0:
            return m
        src_raw = frame.get("currency").tolist()
        dst_raw = frame.strings("base", base_currency).tolist()
        rate = frame.floats("rate")
    bad = ~(rate > 0) | ~np.isfinite(rate)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CheckError(f"fx: the rate of {src_raw[i]} must be positive")
    src = np.array([currencies[c] for c in src_raw], dtype=np.int64)
    dst = np.array([currencies[c] for c in dst_raw], dtype=np.int64)
    # inverse pairs first, then the given ones, so that a given rate always wins
    m[dst, src] = 1.0 / rate
    m[src, dst] = rate
    np.fill_diagonal(m, 1.0)
    return m


def _cross_rates(m: np.ndarray) -> np.ndarray:
    """Fill the missing rates through other currencies (a path closure; C is small)."""
    for k in range(len(m)):
        m = np.where(np.isnan(m), m[:, k, None] * m[None, k, :], m)
    return m


def _fx_rate(value, currency) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise CheckError(f"fx: the rate of {currency} must be a number, not {value!r}")
    return float(value)


def _currency_codes(currencies: dict, values: np.ndarray) -> np.ndarray:
    """Codes of currency names, adding the names not seen yet to ``currencies``."""
    if len(values) <= 64:
        return np.array(
            [currencies.setdefault(c, len(currencies)) for c in values.tolist()], dtype=np.int64
        )
    codes, uniques = pd.factorize(values)
    mapped = np.array([currencies.setdefault(c, len(currencies)) for c in uniques], np.int64)
    return mapped[codes]


def prepare(book: Book) -> Prepared:
    """Validate a :class:`Book` and encode it (see the module docstring)."""
    base_currency = book.base_currency
    as_of = _as_of(book.as_of)
    currencies: dict = {base_currency: 0}

    # securities
    sec = _Frame(book.securities, "securities")
    sec_ids = sec.objects("security")
    # what a message calls a security: its `name` (a ticker) when the book gives one
    sec_names = sec.objects("name") if "name" in sec else sec_ids
    S = len(sec_ids)
    securities = _Lookup(sec_ids, "security")
    price = sec.floats("price")
    if (price < 0).any():
        i = int(np.flatnonzero(price < 0)[0])
        raise CheckError(f"securities: price of {sec_ids[i]} must not be negative")
    sec_currency = _currency_codes(currencies, sec.strings("currency", base_currency))
    multiplier = sec.floats("multiplier", 1.0)
    if not (multiplier > 0).all():
        i = int(np.flatnonzero(~(multiplier > 0))[0])
        raise CheckError(f"securities: multiplier of {sec_ids[i]} must be positive")
    # Interest accrued per unit of quantity (a bond's, per unit of face; 0 for the rest):
    # a unit is worth price x multiplier + accrued (portfolios.terms.unit_value).
    accrued = sec.floats("accrued", 0.0)
    if not (accrued >= 0).all():
        i = int(np.flatnonzero(~(accrued >= 0))[0])
        raise CheckError(f"securities: accrued interest of {sec_ids[i]} must not be negative")
    local_unit = price * multiplier + accrued
    attr_codes = {"security": (np.arange(S), sec_ids, S)}
    for attr in ATTRIBUTES:
        attr_codes[attr] = _labels(sec.get(attr) if attr in sec else None, sec_ids)
    government = sec.bools("government", False)
    if "investment_company" in sec:
        fund = sec.bools("investment_company", False)
    elif "asset_class" in sec:
        fund = sec.get("asset_class") == "fund"
    else:
        fund = np.zeros(S, dtype=bool)
    currency_trade = sec.bools("currency_trade", False)
    # A currency trade's quantity is an amount of its base currency: a buy receives it in
    # cash (and pays quantity x price of `currency`); it is no security held (decision 41).
    base_raw = sec.strings("base_currency", "")
    lacking = currency_trade & ((base_raw == "") | pd.isna(base_raw))
    if lacking.any():
        i = int(np.flatnonzero(lacking)[0])
        raise CheckError(f"securities: {sec_ids[i]} is a currency trade without a base_currency")
    sec_base = np.where(
        currency_trade,
        _currency_codes(currencies, np.where(currency_trade, base_raw, base_currency)),
        sec_currency,
    )
    adv = sec.floats("adv", np.nan)
    so = sec.floats("shares_outstanding", np.nan)

    # accounts
    acc = _Frame(book.accounts, "accounts")
    acc_ids = acc.objects("account")
    A = len(acc_ids)
    accounts = _Lookup(acc_ids, "account")
    base = _currency_codes(currencies, acc.strings("base_currency", base_currency))
    long_only = acc.bools("long_only", True)

    # cash
    cash = _Frame(book.cash, "cash")
    if cash.n:
        c_acct = _codes(accounts, cash, "account", "cash")
        c_cur = _currency_codes(currencies, cash.objects("currency"))
        c_amount = cash.floats("amount")
        if not np.isfinite(c_amount).all():
            raise CheckError("cash: amount must be a finite number")
    else:
        c_acct = c_cur = np.zeros(0, dtype=np.int64)
        c_amount = np.zeros(0)

    # FX, once every currency has a code
    if isinstance(book.fx, Mapping) and not isinstance(book.fx, pd.DataFrame):
        names = list(book.fx) if "rate" not in book.fx else []
    else:
        names = []
    if not names and book.fx is not None:
        fx_frame = _Frame(book.fx, "fx")
        if fx_frame.n:
            names = fx_frame.get("currency").tolist()
            if "base" in fx_frame:
                names += fx_frame.strings("base", base_currency).tolist()
    for c in names:
        currencies.setdefault(c, len(currencies))
    fx = _fx_matrix(book.fx, currencies, base_currency)
    currency_names = np.empty(len(currencies), dtype=object)
    for c, i in currencies.items():
        currency_names[i] = c

    # holdings
    h = _Frame(book.holdings, "holdings")
    if h.n:
        h_acct = _codes(accounts, h, "account", "holdings")
        h_sec = _codes(securities, h, "security", "holdings")
        h_qty = h.floats("quantity")
        if not np.isfinite(h_qty).all():
            raise CheckError("holdings: quantity must be a finite number")
    else:
        h_acct = h_sec = np.zeros(0, dtype=np.int64)
        h_qty = np.zeros(0)

    # orders under check, and the other live orders (minus those under check)
    o_ids, o_acct, o_sec, o_side, o_qty, o_limit, o_created = _orders(
        book.orders, "orders", accounts, securities, as_of
    )
    if len(o_ids) > 1 and len(set(o_ids.tolist())) < len(o_ids):
        seen: set = set()
        dup = next(k for k in o_ids if k in seen or seen.add(k))
        raise CheckError(f"orders: order {dup} is listed twice")
    live = book.live_orders
    live_frame = _Frame(live, "live_orders")
    if live_frame.n and len(o_ids) and "order" in live_frame:
        keep = ~pd.Index(live_frame.get("order")).isin(o_ids)
        if not keep.all():
            live = {c: live_frame.get(c)[keep] for c in live_frame.columns}
    _, l_acct, l_sec, l_side, l_qty, _, l_created = _orders(
        live, "live_orders", accounts, securities, as_of
    )

    # positions: every (account, security) held, on a live order or under check
    keys = np.concatenate([h_acct * S + h_sec, l_acct * S + l_sec, o_acct * S + o_sec])
    pos_keys, inv = unique_inverse(keys, A * S)
    P = len(pos_keys)
    nh, nl = len(h_acct), len(l_acct)
    inv_h, inv_l, inv_o = inv[:nh], inv[nh : nh + nl], inv[nh + nl :]
    pos_acct = pos_keys // S if S else pos_keys
    pos_sec = pos_keys % S if S else pos_keys
    l_cur = sec_currency[l_sec]
    o_cur = sec_currency[o_sec]
    l_signed = SIDE_SIGN[l_side] * l_qty
    o_signed = SIDE_SIGN[o_side] * o_qty
    qty_before = total(inv_h, h_qty, P)
    if nl:
        qty_before += total(inv_l, l_signed, P)
    qty_after = qty_before + total(inv_o, o_signed, P)
    qty_gross = total(inv_h, np.abs(h_qty), P) + total(inv_o, o_qty, P)
    if nl:
        qty_gross += total(inv_l, l_qty, P)
    if (
        np.isnan(fx[sec_currency[pos_sec], base[pos_acct]]).any()
        or np.isnan(
            fx[
                np.concatenate([c_cur, l_cur, o_cur, sec_base[l_sec], sec_base[o_sec]]),
                base[np.concatenate([c_acct, l_acct, o_acct, l_acct, o_acct])],
            ]
        ).any()
    ):
        fx = _cross_rates(fx)
    pos_fx = fx[sec_currency[pos_sec], base[pos_acct]]
    # a currency trade's "position" is worth nothing: its legs are the cash rows below
    unit = np.where(currency_trade[pos_sec], 0.0, local_unit[pos_sec] * pos_fx)
    with np.errstate(invalid="ignore"):
        mv_before = qty_before * unit
        mv_after = qty_after * unit

    # cash rows: every currency held, traded, and the base currency
    C = len(currencies)
    l_base, o_base = sec_base[l_sec], sec_base[o_sec]
    ckeys = np.concatenate(
        [
            c_acct * C + c_cur,
            np.arange(A) * C + base,
            l_acct * C + l_cur,
            o_acct * C + o_cur,
            l_acct * C + l_base,
            o_acct * C + o_base,
        ]
    )
    cash_keys, cinv = unique_inverse(ckeys, A * C)
    K = len(cash_keys)
    nc, no = len(c_acct), len(o_acct)
    cinv_c = cinv[:nc]
    cinv_l = cinv[nc + A : nc + A + nl]
    cinv_o = cinv[nc + A + nl : nc + A + nl + no]
    cinv_lb = cinv[nc + A + nl + no : nc + A + nl + no + nl]
    cinv_ob = cinv[nc + A + nl + no + nl :]
    cash_acct = cash_keys // C
    cash_cur = cash_keys % C
    with np.errstate(invalid="ignore"):
        l_flow = -l_signed * local_unit[l_sec]
        o_flow = -o_signed * local_unit[o_sec]
    l_base_flow = np.where(currency_trade[l_sec], l_signed, 0.0)
    o_base_flow = np.where(currency_trade[o_sec], o_signed, 0.0)
    local_before = total(cinv_c, c_amount, K)
    if nl:
        local_before += total(cinv_l, l_flow, K) + total(cinv_lb, l_base_flow, K)
    local_after = local_before + total(cinv_o, o_flow, K) + total(cinv_ob, o_base_flow, K)
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
                unvalued[a] = f"no price for {sec_names[s]}"
            else:
                unvalued[a] = (
                    f"no FX rate for {currency_names[sec_currency[s]]} "
                    f"into {currency_names[base[a]]}"
                )
        for k in np.flatnonzero(bad_cash)[::-1]:
            a = cash_acct[k]
            unvalued.setdefault(
                a,
                f"no FX rate for {currency_names[cash_cur[k]]} into {currency_names[base[a]]}",
            )
        unvalued = {int(a): r for a, r in unvalued.items()}
        # keep NaN out of the sums so that only the unvalued accounts carry it
        mv_before = np.where(bad_pos, 0.0, mv_before)
        mv_after = np.where(bad_pos, 0.0, mv_after)
        cash_before = np.where(bad_cash, 0.0, cash_before)
        cash_after = np.where(bad_cash, 0.0, cash_after)

    cash_total_before = total(cash_acct, cash_before, A)
    cash_total_after = total(cash_acct, cash_after, A)
    gross = (
        total(pos_acct, np.abs(mv_before) + np.abs(mv_after), A)
        + total(cash_acct, np.abs(cash_before) + np.abs(cash_after), A)
    ) / 2.0
    nav_before = total(pos_acct, mv_before, A) + cash_total_before
    # a NAV that is zero but for rounding (positions and overdrafts that cancel) is zero:
    # its weights are meaningless, not huge
    nav_before[np.abs(nav_before) <= 1e-9 * gross] = 0.0
    # orders at the security's price move value between a position and the cash of its
    # currency: the NAV after is the NAV before, and one denominator serves both
    nav_after = nav_before

    # realised losses in the wash-sale look-back (the window is cut per rule)
    sales = _Frame(book.sales, "sales")
    if sales.n:
        s_acct = accounts.codes(sales.get("account"))
        s_sec = securities.codes(sales.get("security"))
        gain = sales.floats("gain")
        day = (sales.times("date", as_of) // 86_400_000_000_000).astype("datetime64[D]")
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
        currency_trade=currency_trade,
        adv=adv,
        shares_outstanding=so,
        attr_codes=attr_codes,
        currencies=currency_names,
        fx=fx,
        acc_ids=acc_ids,
        accounts=accounts,
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
        ord_base_cash=cinv_ob,
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
