"""Turn a :class:`Book` into flat numpy arrays: one row per (account, security) pair that is
held or targeted, sorted by account then security, plus per-account arrays.

Everything here is vectorised; the only Python loops run over models, currencies or the
accounts that are skipped (to word their reason).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .book import Book, BookError, Options

RESTRICTIONS = ("do_not_buy", "do_not_sell", "do_not_trade")


@dataclass
class Prepared:
    as_of: dt.date
    # accounts, length A
    acct_ids: np.ndarray
    base_ccy: np.ndarray
    model_ids: np.ndarray
    cash: np.ndarray  # cash after the cash need (base ccy)
    cash_raw: np.ndarray
    need: np.ndarray
    floor: np.ndarray
    min_trade_value: np.ndarray  # max(min_trade_value, min_trade_pct * value)
    long_only: np.ndarray
    gains_cap: np.ndarray  # NaN = none
    value: np.ndarray  # positions + cash - need
    cash_target: np.ndarray
    cash_tol: np.ndarray
    reason: np.ndarray  # object: None when the account can be rebalanced
    # securities, length S
    sec_ids: np.ndarray
    sec_ccy: np.ndarray
    # rows, length R
    r_acct: np.ndarray
    r_sec: np.ndarray
    h: np.ndarray
    price: np.ndarray  # local currency
    fx: np.ndarray
    p: np.ndarray  # base currency
    t: np.ndarray
    tol: np.ndarray
    step: np.ndarray
    min_qty: np.ndarray
    dnb: np.ndarray
    dns: np.ndarray
    in_model: np.ndarray

    acct_index: pd.Index | None = None
    sec_index: pd.Index | None = None

    @property
    def n_accounts(self) -> int:
        return len(self.acct_ids)

    def accounts_at(self, idx: np.ndarray) -> pd.Index:
        """Account ids at these positions, in the dtype they came in."""
        return self.acct_index.take(idx)

    def securities_at(self, idx: np.ndarray) -> pd.Index:
        """Security ids at these positions, in the dtype they came in."""
        return self.sec_index.take(idx)


def _require(frame: pd.DataFrame | None, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    if frame is None:
        raise BookError(f"book.{name} is missing")
    if not isinstance(frame, pd.DataFrame):
        raise BookError(f"book.{name} must be a pandas DataFrame")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BookError(f"book.{name} lacks column(s) {', '.join(missing)}")
    return frame


def _col(frame: pd.DataFrame, name: str, default, dtype=float) -> np.ndarray:
    if name in frame.columns:
        values = frame[name]
        if dtype is float:
            out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            if default is not None and not (isinstance(default, float) and np.isnan(default)):
                out = np.where(np.isnan(out), default, out)
            return out
        if dtype is bool:
            return values.fillna(default).astype(bool).to_numpy()
        return values.to_numpy(dtype=object)
    return np.full(len(frame), default, dtype=dtype if dtype in (float, bool) else object)


def _isnull(values: np.ndarray) -> np.ndarray:
    return pd.isna(pd.Series(values, dtype=object)).to_numpy()


def _as_date(value) -> dt.date | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return pd.Timestamp(value).date()


def _days_before(as_of: dt.date, dates: pd.Series | np.ndarray) -> np.ndarray:
    """Days from each date to as_of (NaN for a missing date)."""
    ts = pd.to_datetime(pd.Series(dates), errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    delta = pd.Timestamp(as_of) - ts
    return (delta.dt.total_seconds() / 86400.0).to_numpy(dtype=float)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def prepare(book: Book, options: Options) -> Prepared:
    as_of = _as_date(book.as_of) or today()

    # ---------------------------------------------------------------- securities
    secs = _require(book.securities, "securities", ("security",))
    sec_ids = secs["security"].to_numpy(dtype=object)
    sec_index = pd.Index(secs["security"])
    if not sec_index.is_unique:
        dup = sec_index[sec_index.duplicated()][0]
        raise BookError(f"security {dup!r} appears more than once in book.securities")
    price = _col(secs, "price", np.nan)
    bad = np.flatnonzero(price < 0)
    if len(bad):
        raise BookError(f"security {sec_ids[bad[0]]!r} has a negative price {price[bad[0]]}")
    lot = _col(secs, "lot", 1.0)
    fractional = _col(secs, "fractional", False, bool)
    increment = _col(secs, "increment", 1e-6)
    min_qty = _col(secs, "min_qty", 0.0)
    for arr, name in ((lot, "lot"), (increment, "increment")):
        bad = np.flatnonzero(~(arr > 0))
        if len(bad):
            raise BookError(f"security {sec_ids[bad[0]]!r} has a {name} that is not positive")
    bad = np.flatnonzero(~(min_qty >= 0))
    if len(bad):
        raise BookError(f"security {sec_ids[bad[0]]!r} has a negative min_qty")
    step = np.where(fractional, increment, lot)
    stale = _col(secs, "stale", False, bool)
    if "price_date" in secs.columns and options.max_price_age_days is not None:
        age = _days_before(as_of, secs["price_date"])
        stale = stale | (age > options.max_price_age_days)
    sec_ccy = _col(secs, "currency", None, object)

    # ---------------------------------------------------------------- accounts
    accts = _require(book.accounts, "accounts", ("account",))
    acct_ids = accts["account"].to_numpy(dtype=object)
    acct_index = pd.Index(accts["account"])
    if not acct_index.is_unique:
        dup = acct_index[acct_index.duplicated()][0]
        raise BookError(f"account {dup!r} appears more than once in book.accounts")
    A = len(acct_ids)
    base_ccy = _col(accts, "base_currency", options.base_currency, object)
    base_ccy = np.where(_isnull(base_ccy), options.base_currency, base_ccy)
    model_ids = _col(accts, "model", None, object)
    cash_raw = _col(accts, "cash", 0.0)
    floor = _col(accts, "cash_floor", 0.0)
    need = _col(accts, "cash_need", 0.0)
    mtv = _col(accts, "min_trade_value", 0.0)
    mtpct = _col(accts, "min_trade_pct", 0.0)
    long_only = _col(accts, "long_only", True, bool)
    default_cap = np.nan if options.gains_cap is None else float(options.gains_cap)
    gains_cap = _col(accts, "gains_cap", default_cap)
    for arr, name in ((floor, "cash_floor"), (mtv, "min_trade_value"), (mtpct, "min_trade_pct")):
        bad = np.flatnonzero(arr < 0)
        if len(bad):
            raise BookError(f"account {acct_ids[bad[0]]!r} has a negative {name}")
    bad = np.flatnonzero(gains_cap < 0)
    if len(bad):
        raise BookError(f"account {acct_ids[bad[0]]!r} has a negative gains_cap")

    # ---------------------------------------------------------------- models
    mods = _require(book.models, "models", ("model", "security", "weight"))
    mc = book.model_cash
    if mc is not None:
        mc = _require(mc, "model_cash", ("model",))
    model_universe = pd.unique(
        np.concatenate(
            [
                mods["model"].to_numpy(dtype=object),
                mc["model"].to_numpy(dtype=object) if mc is not None else np.array([], object),
            ]
        )
    )
    model_index = pd.Index(model_universe)
    M = len(model_index)
    m_cash = np.zeros(M)
    m_babs = np.full(M, np.nan)
    m_brel = np.full(M, np.nan)
    if mc is not None:
        mi = model_index.get_indexer(mc["model"].to_numpy(dtype=object))
        m_cash[mi] = _col(mc, "cash", 0.0)
        m_babs[mi] = _col(mc, "band_abs", np.nan)
        m_brel[mi] = _col(mc, "band_rel", np.nan)
    m_babs = np.where(np.isnan(m_babs), options.band_abs or 0.0, m_babs)
    m_brel = np.where(np.isnan(m_brel), options.band_rel or 0.0, m_brel)

    mod_sec_raw = mods["security"].to_numpy(dtype=object)
    mod_m = model_index.get_indexer(mods["model"].to_numpy(dtype=object))
    mod_w = _col(mods, "weight", np.nan)
    bad = np.flatnonzero(~(mod_w >= 0))
    if len(bad):
        raise BookError(
            f"model {mods['model'].iloc[bad[0]]!r} has an invalid weight for {mod_sec_raw[bad[0]]!r}"
        )
    mod_babs = _col(mods, "band_abs", np.nan)
    mod_brel = _col(mods, "band_rel", np.nan)

    # holdings
    hold = _require(book.holdings, "holdings", ("account", "security", "quantity"))
    hold_acct = acct_index.get_indexer(hold["account"].to_numpy(dtype=object))
    hold_sec_raw = hold["security"].to_numpy(dtype=object)
    hold_q = _col(hold, "quantity", np.nan)
    bad = np.flatnonzero(np.isnan(hold_q))
    if len(bad):
        raise BookError(f"holding of {hold_sec_raw[bad[0]]!r} has no quantity")
    keep = hold_acct >= 0  # holdings of accounts not in the run are ignored
    hold_acct, hold_sec_raw, hold_q = hold_acct[keep], hold_sec_raw[keep], hold_q[keep]

    # unknown securities (in a model or a holding): appended without a price
    mod_s = sec_index.get_indexer(mod_sec_raw)
    hold_s = sec_index.get_indexer(hold_sec_raw)
    unknown = np.concatenate([mod_sec_raw[mod_s < 0], hold_sec_raw[hold_s < 0]])
    extra = pd.Index(unknown).unique() if len(unknown) else pd.Index([])
    if len(extra):
        sec_ids = np.concatenate([sec_ids, extra.to_numpy(dtype=object)])
        sec_index = pd.Index(sec_ids)
        n = len(extra)
        price = np.concatenate([price, np.full(n, np.nan)])
        step = np.concatenate([step, np.ones(n)])
        min_qty = np.concatenate([min_qty, np.zeros(n)])
        stale = np.concatenate([stale, np.zeros(n, bool)])
        sec_ccy = np.concatenate([sec_ccy, np.full(n, None, dtype=object)])
        mod_s = sec_index.get_indexer(mod_sec_raw)
        hold_s = sec_index.get_indexer(hold_sec_raw)
    S = len(sec_ids)

    m_sum = np.bincount(mod_m, weights=mod_w, minlength=M) + m_cash

    # ---------------------------------------------------------------- rows
    acct_m = model_index.get_indexer(model_ids)  # -1: none / unknown
    # model targets expanded to accounts
    order = np.argsort(mod_m, kind="stable")
    mod_m_s, mod_s_s, mod_w_s = mod_m[order], mod_s[order], mod_w[order]
    mod_babs_s, mod_brel_s = mod_babs[order], mod_brel[order]
    m_count = np.bincount(mod_m_s, minlength=M)
    m_start = np.concatenate([[0], np.cumsum(m_count)[:-1]]) if M else np.zeros(0, int)
    has_m = acct_m >= 0
    cnt = np.where(has_m, m_count[np.where(has_m, acct_m, 0)] if M else 0, 0)
    tgt_acct = np.repeat(np.arange(A), cnt)
    offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    tgt_row = np.repeat(m_start[np.where(has_m, acct_m, 0)] if M else np.zeros(A, int), cnt) + offs
    tgt_sec = mod_s_s[tgt_row]
    S64 = np.int64(max(S, 1))
    tgt_key = tgt_acct.astype(np.int64) * S64 + tgt_sec
    hold_key = hold_acct.astype(np.int64) * S64 + hold_s
    keys = np.sort(np.concatenate([tgt_key, hold_key]))
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    R = len(keys)
    r_acct = (keys // S64).astype(np.int64)
    r_sec = (keys % S64).astype(np.int64)
    # holdings (duplicates summed)
    h = np.zeros(R)
    np.add.at(h, np.searchsorted(keys, hold_key), hold_q)
    # targets (a security listed twice in a model: weights summed)
    t = np.zeros(R)
    pos = np.searchsorted(keys, tgt_key)
    np.add.at(t, pos, mod_w_s[tgt_row])
    in_model = np.zeros(R, bool)
    in_model[pos] = True
    r_m = np.where(has_m, acct_m, 0)[r_acct]
    babs = np.full(R, np.nan)
    brel = np.full(R, np.nan)
    babs[pos] = mod_babs_s[tgt_row]
    brel[pos] = mod_brel_s[tgt_row]
    if M:
        babs = np.where(np.isnan(babs), m_babs[r_m], babs)
        brel = np.where(np.isnan(brel), m_brel[r_m], brel)
    else:
        babs = np.where(np.isnan(babs), options.band_abs or 0.0, babs)
        brel = np.where(np.isnan(brel), options.band_rel or 0.0, brel)
    tol = np.maximum(babs, brel * t)

    # prices and FX
    ccys = pd.Index(
        pd.unique(
            np.concatenate([base_ccy.astype(object), sec_ccy[~_isnull(sec_ccy)].astype(object)])
        )
    )
    C = len(ccys)
    rates = np.full((C, C), np.nan)
    np.fill_diagonal(rates, 1.0)
    if book.fx is not None:
        fx = _require(book.fx, "fx", ("currency", "base", "rate"))
        fc = ccys.get_indexer(fx["currency"].to_numpy(dtype=object))
        fb = ccys.get_indexer(fx["base"].to_numpy(dtype=object))
        fr = _col(fx, "rate", np.nan)
        bad = np.flatnonzero(~(fr > 0))
        if len(bad):
            raise BookError(
                f"FX rate {fx['currency'].iloc[bad[0]]}->{fx['base'].iloc[bad[0]]} is not positive"
            )
        ok = (fc >= 0) & (fb >= 0)
        inv = np.isnan(rates[fb[ok], fc[ok]])
        rates[fb[ok][inv], fc[ok][inv]] = 1.0 / fr[ok][inv]
        rates[fc[ok], fb[ok]] = fr[ok]
    acct_c = ccys.get_indexer(base_ccy)
    sec_c = np.where(
        _isnull(sec_ccy), -1, ccys.get_indexer(np.where(_isnull(sec_ccy), "", sec_ccy))
    )
    r_sc = sec_c[r_sec]
    r_ac = acct_c[r_acct]
    r_fx = np.where(r_sc < 0, 1.0, rates[np.where(r_sc < 0, 0, r_sc), r_ac])
    r_price = price[r_sec]
    p = r_price * r_fx

    # restrictions
    dnb = np.zeros(R, bool)
    dns = np.zeros(R, bool)
    if book.restrictions is not None and len(book.restrictions):
        rs = _require(book.restrictions, "restrictions", ("security", "restriction"))
        kinds = rs["restriction"].astype(str).str.lower().str.replace("-", "_").str.strip()
        unknown = ~kinds.isin(RESTRICTIONS)
        if unknown.any():
            raise BookError(f"unknown restriction {rs['restriction'][unknown].iloc[0]!r}")
        rs_s = sec_index.get_indexer(rs["security"].to_numpy(dtype=object))
        if "account" in rs.columns:
            rs_acct_raw = rs["account"].to_numpy(dtype=object)
            firm = _isnull(rs_acct_raw)
            rs_a = np.where(firm, -1, acct_index.get_indexer(np.where(firm, None, rs_acct_raw)))
        else:
            firm = np.ones(len(rs), bool)
            rs_a = np.full(len(rs), -1)
        kinds = kinds.to_numpy()
        for flag, names in (
            (dnb, ("do_not_buy", "do_not_trade")),
            (dns, ("do_not_sell", "do_not_trade")),
        ):
            sel = np.isin(kinds, names) & (rs_s >= 0)
            firm_secs = np.zeros(S, bool)
            firm_secs[rs_s[sel & firm]] = True
            flag |= firm_secs[r_sec]
            acc_sel = sel & ~firm & (rs_a >= 0)
            k = rs_a[acc_sel].astype(np.int64) * S64 + rs_s[acc_sel]
            flag |= np.isin(keys, k)

    # wash sale: a loss sale within the window -> no buy
    if book.sales is not None and len(book.sales) and options.wash_sale_days > 0:
        sl = _require(book.sales, "sales", ("account", "security", "date", "gain"))
        sa = acct_index.get_indexer(sl["account"].to_numpy(dtype=object))
        ss = sec_index.get_indexer(sl["security"].to_numpy(dtype=object))
        age = _days_before(as_of, sl["date"])
        loss = _col(sl, "gain", 0.0) < 0
        sel = (sa >= 0) & (ss >= 0) & loss & (age >= 0) & (age <= options.wash_sale_days)
        dnb |= np.isin(keys, sa[sel].astype(np.int64) * S64 + ss[sel])

    # ---------------------------------------------------------------- accounts
    pos_value = np.bincount(r_acct, weights=np.nan_to_num(h * p), minlength=A)
    cash = cash_raw - need
    value = pos_value + cash
    cash_target = np.where(has_m, m_cash[np.where(has_m, acct_m, 0)] if M else 0.0, 0.0)
    if M:
        c_babs = np.where(has_m, m_babs[np.where(has_m, acct_m, 0)], options.band_abs or 0.0)
        c_brel = np.where(has_m, m_brel[np.where(has_m, acct_m, 0)], options.band_rel or 0.0)
    else:
        c_babs = np.full(A, options.band_abs or 0.0)
        c_brel = np.full(A, options.band_rel or 0.0)
    cash_tol = np.maximum(c_babs, c_brel * cash_target)
    min_trade_value = np.maximum(mtv, mtpct * np.maximum(value, 0))

    reason = np.full(A, None, dtype=object)
    reason = _reasons(
        reason,
        model_ids=model_ids,
        acct_m=acct_m,
        m_sum=m_sum,
        model_index=model_index,
        options=options,
        r_acct=r_acct,
        r_sec=r_sec,
        sec_ids=sec_ids,
        r_price=r_price,
        r_fx=r_fx,
        stale=stale[r_sec],
        h=h,
        long_only=long_only,
        value=value,
        sec_ccy=sec_ccy,
        base_ccy=base_ccy,
        cash=cash_raw,
    )

    return Prepared(
        as_of=as_of,
        acct_ids=acct_ids,
        base_ccy=base_ccy,
        model_ids=model_ids,
        cash=cash,
        cash_raw=cash_raw,
        need=need,
        floor=floor,
        min_trade_value=min_trade_value,
        long_only=long_only,
        gains_cap=gains_cap,
        value=value,
        cash_target=cash_target,
        cash_tol=cash_tol,
        reason=reason,
        sec_ids=sec_ids,
        sec_ccy=sec_ccy,
        r_acct=r_acct,
        r_sec=r_sec,
        h=h,
        price=r_price,
        fx=r_fx,
        p=p,
        t=t,
        tol=tol,
        step=step[r_sec],
        min_qty=min_qty[r_sec],
        dnb=dnb,
        dns=dns,
        in_model=in_model,
        acct_index=acct_index,
        sec_index=sec_index,
    )


def _first_per_account(mask: np.ndarray, r_acct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(mask)
    accs, first = np.unique(r_acct[rows], return_index=True)
    return accs, rows[first]


def _reasons(
    reason,
    *,
    model_ids,
    acct_m,
    m_sum,
    model_index,
    options,
    r_acct,
    r_sec,
    sec_ids,
    r_price,
    r_fx,
    stale,
    h,
    long_only,
    value,
    sec_ccy,
    base_ccy,
    cash,
):
    """Word the reason each unusable account is skipped; the first reason found wins."""
    # in reverse order of priority: later assignments overwrite earlier ones
    bad_cash = np.flatnonzero(np.isnan(cash))
    for a in bad_cash:
        reason[a] = "no cash balance"
    bad_value = np.flatnonzero(~(value > 0))
    for a in bad_value:
        reason[a] = "account value after the cash need is not positive"
    short = (h < 0) & long_only[r_acct]
    accs, rows = _first_per_account(short, r_acct)
    for a, r in zip(accs, rows, strict=True):
        reason[a] = f"short position in {sec_ids[r_sec[r]]} in a long-only account"
    if not options.allow_stale:
        accs, rows = _first_per_account(stale, r_acct)
        for a, r in zip(accs, rows, strict=True):
            reason[a] = f"stale price for {sec_ids[r_sec[r]]}"
    accs, rows = _first_per_account(np.isnan(r_fx) & ~np.isnan(r_price), r_acct)
    for a, r in zip(accs, rows, strict=True):
        reason[a] = f"no FX rate {sec_ccy[r_sec[r]]}->{base_ccy[a]}"
    accs, rows = _first_per_account(~(r_price > 0), r_acct)
    for a, r in zip(accs, rows, strict=True):
        reason[a] = f"no price for {sec_ids[r_sec[r]]}"
    has = acct_m >= 0
    if len(m_sum):
        off = has & (np.abs(m_sum[np.where(has, acct_m, 0)] - 1.0) > options.weight_tolerance)
        for a in np.flatnonzero(off):
            reason[a] = (
                f"model {model_ids[a]} weights sum to {m_sum[acct_m[a]] * 100:.2f}%, not 100%"
            )
    null = _isnull(model_ids)
    for a in np.flatnonzero(~has):
        reason[a] = "no model" if null[a] else f"unknown model {model_ids[a]}"
    return reason
