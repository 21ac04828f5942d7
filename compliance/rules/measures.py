"""What each rule kind measures, for every account and order of a check in one pass.

Each ``measure_<kind>`` takes the prepared book, the rule and the mask of accounts the
rule binds, and returns an :class:`Outcome`: one row per account in scope (the value
before and after, the worst group, whether a breach is passive) and one row per order
the rule measured or blamed. Status codes: 0 pass, 1 warn, 2 fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .prepare import NS_PER_MINUTE, SIDE_SIGN, Grouping, Prepared, as_of_day
from .rule import (
    DIVERSIFIED_ISSUER,
    DIVERSIFIED_MIN,
    DIVERSIFIED_VOTING,
    UCITS_AGGREGATE,
    UCITS_ISSUER,
    UCITS_THRESHOLD,
    RestrictedList,
    Rule,
)

__all__ = ["MEASURES", "RELATIVE_TOLERANCE", "Outcome", "grouping", "weights"]

RELATIVE_TOLERANCE = 1e-9
PASS, WARN, FAIL = 0, 1, 2
BUY, SELL, SELL_SHORT, BUY_TO_COVER = 0, 1, 2, 3


@dataclass
class Outcome:
    """The result of one rule: account rows (``acct`` codes) and order rows (``order``
    indices into the check's orders). ``group`` arrays hold labels or None."""

    acct: np.ndarray
    status: np.ndarray
    value: np.ndarray
    value_before: np.ndarray
    group: np.ndarray
    passive: np.ndarray
    order: np.ndarray
    order_status: np.ndarray
    order_value: np.ndarray
    order_group: np.ndarray
    extra: dict = field(default_factory=dict)


def _none(n: int) -> np.ndarray:
    return np.full(n, None, dtype=object)


def weights(mv: np.ndarray, nav: np.ndarray) -> np.ndarray:
    """Market value over NAV; infinite where NAV is not positive, so that every limit on
    the weights of such an account breaches."""
    ok = nav > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, mv / np.where(ok, nav, 1.0), np.inf)


def grouping(prep: Prepared, name: str) -> Grouping:
    """The (account, group) rows of ``name`` (a ``group_by`` value, or ``issuer_ucits``:
    issuers without government securities, ``issuer_1940``: issuers without government
    securities and investment companies), built once per check."""
    cached = prep.groupings.get(name)
    if cached is not None:
        return cached
    ps = prep.pos_sec
    P = len(ps)
    if name == "currency":
        labels = prep.currencies
        pos_code = prep.sec_currency[ps]
        include = np.ones(P, dtype=bool)
    else:
        attr = "issuer" if name.startswith("issuer") else name
        codes, labels, _ = prep.attr_codes[attr]
        pos_code = codes[ps]
        if name == "issuer_ucits":
            include = ~prep.government[ps]
        elif name == "issuer_1940":
            include = ~(prep.government[ps] | prep.fund[ps])
        else:
            include = np.ones(P, dtype=bool)
    G = len(labels)
    idx = np.flatnonzero(include)
    keys = prep.pos_acct[idx] * G + pos_code[idx]
    before_parts = [prep.mv_before[idx]]
    after_parts = [prep.mv_after[idx]]
    if name == "currency":
        keys = np.concatenate([keys, prep.cash_acct * G + prep.cash_cur])
        before_parts.append(prep.cash_before)
        after_parts.append(prep.cash_after)
    uniq, inv = np.unique(keys, return_inverse=True)
    n = len(uniq)
    before = np.bincount(inv, np.concatenate(before_parts), n)
    after = np.bincount(inv, np.concatenate(after_parts), n)
    of_position = np.full(P, -1, dtype=np.int64)
    of_position[idx] = inv[: len(idx)]
    g = Grouping(
        acct=uniq // G if G else uniq,
        code=uniq % G if G else uniq,
        labels=labels,
        before=before,
        after=after,
        of_position=of_position,
    )
    if name == "issuer_1940":
        so = prep.shares_outstanding
        voting = so > 0
        sec_code = codes
        sel = voting & ~(prep.government | prep.fund)
        outstanding = np.bincount(sec_code[sel], so[sel], G)
        vote_pos = np.where(voting[ps[idx]], 1.0, 0.0)
        g.extra["vote_before"] = np.bincount(inv[: len(idx)], prep.qty_before[idx] * vote_pos, n)
        g.extra["vote_after"] = np.bincount(inv[: len(idx)], prep.qty_after[idx] * vote_pos, n)
        g.extra["outstanding"] = outstanding[g.code]
    prep.groupings[name] = g
    return g


class _Segments:
    """Per-account reductions over rows sorted by account."""

    def __init__(self, acct: np.ndarray, A: int):
        self.acct = acct
        self.A = A
        if len(acct):
            self.starts = np.flatnonzero(np.r_[True, acct[1:] != acct[:-1]])
        else:
            self.starts = np.zeros(0, dtype=np.int64)
        self.seg_acct = acct[self.starts]

    def reduce(self, ufunc, values: np.ndarray, empty: float) -> np.ndarray:
        out = np.full(self.A, empty)
        if len(self.starts):
            out[self.seg_acct] = ufunc.reduceat(values, self.starts)
        return out

    def first(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each account with a row in ``mask``, the account and its first such row."""
        rows = np.flatnonzero(mask)
        if not len(rows):
            return rows, rows
        a = self.acct[rows]
        keep = np.r_[True, a[1:] != a[:-1]]
        return a[keep], rows[keep]

    def any(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.acct[mask], minlength=self.A) > 0


def _segments(prep: Prepared, key: str, acct: np.ndarray) -> _Segments:
    seg = prep.groupings.get(("seg", key))
    if seg is None:
        seg = _Segments(acct, prep.n_accounts)
        prep.groupings[("seg", key)] = seg
    return seg


def _fail_code(rule: Rule) -> int:
    return WARN if rule.severity == "warning" else FAIL


def _account_status(rule: Rule, breach: np.ndarray, active: np.ndarray) -> np.ndarray:
    status = np.where(breach, WARN, PASS)
    return np.where(active, _fail_code(rule), status).astype(np.int8)


def _labels_of(labels: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = _none(len(codes))
    ok = codes >= 0
    out[ok] = labels[codes[ok]]
    return out


def _worst_label(seg: _Segments, values: np.ndarray, per_acct: np.ndarray, codes, labels):
    """Label of the first row of each account whose value equals the account's worst."""
    group_code = np.full(seg.A, -1, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        a, rows = seg.first(values == per_acct[seg.acct])
    group_code[a] = codes[rows]
    return _labels_of(labels, group_code)


def _account_rows(scope: np.ndarray, **arrays) -> tuple[np.ndarray, dict]:
    acct = np.flatnonzero(scope)
    return acct, {k: v[acct] for k, v in arrays.items()}


def _empty_orders() -> dict:
    e = np.zeros(0, dtype=np.int64)
    return {
        "order": e,
        "order_status": np.zeros(0, dtype=np.int8),
        "order_value": np.zeros(0),
        "order_group": _none(0),
    }


def _grouped_max(
    prep: Prepared,
    rule: Rule,
    scope: np.ndarray,
    g: Grouping,
    wb: np.ndarray,
    wa: np.ndarray,
    limit: float,
    seg_key: str,
) -> Outcome:
    """A limit on the largest group weight: passive per group (a group that breached
    before and did not grow), laid on the buys of actively breaching groups."""
    tol = RELATIVE_TOLERANCE * max(abs(limit), 1.0)
    seg = _segments(prep, seg_key, g.acct)
    breach_g = wa > limit + tol
    active_g = breach_g & ~((wb > limit + tol) & ~(wa > wb + tol))
    value = seg.reduce(np.fmax, wa, 0.0)
    before = seg.reduce(np.fmax, wb, 0.0)
    group = _worst_label(seg, wa, value, g.code, g.labels)
    breach = seg.any(breach_g)
    active = seg.any(active_g)
    acct, rows = _account_rows(
        scope, value=value, value_before=before, group=group, breach=breach, active=active
    )
    orders = _blame(prep, scope, SIDE_SIGN[prep.ord_side] > 0, g, active_g, wa, rule)
    return Outcome(
        acct=acct,
        status=_account_status(rule, rows["breach"], rows["active"]),
        value=rows["value"],
        value_before=rows["value_before"],
        group=rows["group"],
        passive=rows["breach"] & ~rows["active"],
        **orders,
    )


def _blame(prep, scope, side_ok, g: Grouping, active_g, wa, rule) -> dict:
    """Order rows for the orders of the right side in an actively breaching group."""
    grow = g.of_position[prep.ord_pos]
    hit = scope[prep.ord_acct] & side_ok & (grow >= 0)
    hit[hit] = active_g[grow[hit]]
    o = np.flatnonzero(hit)
    return {
        "order": o,
        "order_status": np.full(len(o), _fail_code(rule), dtype=np.int8),
        "order_value": wa[grow[o]],
        "order_group": g.labels[g.code[grow[o]]],
    }


def measure_max_weight(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    name = rule.params["group_by"]
    g = grouping(prep, name)
    wb = weights(g.before, prep.nav_before[g.acct])
    wa = weights(g.after, prep.nav_after[g.acct])
    return _grouped_max(prep, rule, scope, g, wb, wa, rule.params["limit"], name)


def measure_min_cash(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    limit = rule.params["limit"]
    tol = RELATIVE_TOLERANCE * max(limit, 1.0)
    cb = -weights(-prep.cash_total_before, prep.nav_before)
    ca = -weights(-prep.cash_total_after, prep.nav_after)
    breach = ca < limit - tol
    active = breach & ~((cb < limit - tol) & ~(ca < cb - tol))
    acct, rows = _account_rows(scope, value=ca, value_before=cb, breach=breach, active=active)
    o = np.flatnonzero(
        scope[prep.ord_acct] & (SIDE_SIGN[prep.ord_side] > 0) & active[prep.ord_acct]
    )
    return Outcome(
        acct=acct,
        status=_account_status(rule, rows["breach"], rows["active"]),
        value=rows["value"],
        value_before=rows["value_before"],
        group=_none(len(acct)),
        passive=rows["breach"] & ~rows["active"],
        order=o,
        order_status=np.full(len(o), _fail_code(rule), dtype=np.int8),
        order_value=ca[prep.ord_acct[o]],
        order_group=_none(len(o)),
    )


def _grouped_min(prep, rule, scope, acct_rows, code, labels, vb, va, tol, seg_key, order_rows):
    """A floor on the lowest row value (cash balance, position): passive per row."""
    seg = _segments(prep, seg_key, acct_rows)
    breach_r = va < -tol
    active_r = breach_r & ~((vb < -tol) & ~(va < vb - tol))
    value = seg.reduce(np.fmin, va, np.nan)
    before = seg.reduce(np.fmin, vb, np.nan)
    group = _worst_label(seg, va, value, code, labels)
    breach = seg.any(breach_r)
    active = seg.any(active_r)
    acct, rows = _account_rows(
        scope, value=value, value_before=before, group=group, breach=breach, active=active
    )
    return (
        Outcome(
            acct=acct,
            status=_account_status(rule, rows["breach"], rows["active"]),
            value=rows["value"],
            value_before=rows["value_before"],
            group=rows["group"],
            passive=rows["breach"] & ~rows["active"],
            **_empty_orders(),
        ),
        active_r,
    )


def measure_no_overdraft(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    tol = RELATIVE_TOLERANCE * prep.gross[prep.cash_acct]
    out, active_r = _grouped_min(
        prep,
        rule,
        scope,
        prep.cash_acct,
        prep.cash_cur,
        prep.currencies,
        prep.cash_before,
        prep.cash_after,
        tol,
        "cash",
        None,
    )
    o = np.flatnonzero(
        scope[prep.ord_acct] & (SIDE_SIGN[prep.ord_side] > 0) & active_r[prep.ord_cash]
    )
    out.order = o
    out.order_status = np.full(len(o), _fail_code(rule), dtype=np.int8)
    out.order_value = prep.cash_after[prep.ord_cash[o]]
    out.order_group = prep.currencies[prep.cash_cur[prep.ord_cash[o]]]
    return out


def measure_no_short(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    # binds the long-only accounts of its scope only
    scope = scope & prep.long_only
    tol = RELATIVE_TOLERANCE * prep.qty_gross
    out, active_r = _grouped_min(
        prep,
        rule,
        scope,
        prep.pos_acct,
        prep.pos_sec,
        prep.sec_ids,
        prep.qty_before,
        prep.qty_after,
        tol,
        "positions",
        None,
    )
    o = np.flatnonzero(scope[prep.ord_acct] & (SIDE_SIGN[prep.ord_side] < 0))
    pos = prep.ord_pos[o]
    out.order = o
    out.order_status = np.where(active_r[pos], _fail_code(rule), PASS).astype(np.int8)
    out.order_value = prep.qty_after[pos]
    out.order_group = prep.sec_ids[prep.ord_sec[o]]
    return out


def measure_ucits_5_10_40(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    g = grouping(prep, "issuer_ucits")
    seg = _segments(prep, "issuer_ucits", g.acct)
    A = prep.n_accounts
    wb = weights(g.before, prep.nav_before[g.acct])
    wa = weights(g.after, prep.nav_after[g.acct])
    tol = RELATIVE_TOLERANCE
    over5_b = wb > UCITS_THRESHOLD + tol
    over5_a = wa > UCITS_THRESHOLD + tol
    with np.errstate(invalid="ignore"):
        sum_b = np.bincount(g.acct, np.where(over5_b, wb, 0.0), A)
        sum_a = np.bincount(g.acct, np.where(over5_a, wa, 0.0), A)
    max_b = seg.reduce(np.fmax, wb, 0.0)
    max_a = seg.reduce(np.fmax, wa, 0.0)
    group = _worst_label(seg, wa, max_a, g.code, g.labels)
    # the 10% limit, issuer by issuer
    breach10_g = wa > UCITS_ISSUER + tol
    active10_g = breach10_g & ~((wb > UCITS_ISSUER + tol) & ~(wa > wb + tol))
    # the 40% limit on the issuers above 5%, account by account
    breach40 = sum_a > UCITS_AGGREGATE + tol
    active40 = breach40 & ~((sum_b > UCITS_AGGREGATE + tol) & ~(sum_a > sum_b + tol))
    breach = breach40 | seg.any(breach10_g)
    active = active40 | seg.any(active10_g)
    blamed_g = active10_g | (over5_a & active40[g.acct])
    acct, rows = _account_rows(
        scope,
        value=sum_a,
        value_before=sum_b,
        group=group,
        breach=breach,
        active=active,
        max_a=max_a,
        max_b=max_b,
    )
    orders = _blame(prep, scope, SIDE_SIGN[prep.ord_side] > 0, g, blamed_g, wa, rule)
    return Outcome(
        acct=acct,
        status=_account_status(rule, rows["breach"], rows["active"]),
        value=rows["value"],
        value_before=rows["value_before"],
        group=rows["group"],
        passive=rows["breach"] & ~rows["active"],
        extra={"max_issuer": rows["max_a"], "max_issuer_before": rows["max_b"]},
        **orders,
    )


def measure_diversified_fund(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Investment Company Act of 1940, section 5(b)(1) (15 U.S.C. 80a-5(b)(1)): at least
    75% of the value of the fund in cash and cash items, Government securities,
    securities of other investment companies, and other securities limited, for any one
    issuer, to at most 5% of the fund's value and at most 10% of the issuer's outstanding
    voting securities. A position over either limit does not count at all."""
    g = grouping(prep, "issuer_1940")
    seg = _segments(prep, "issuer_1940", g.acct)
    A = prep.n_accounts
    tol = RELATIVE_TOLERANCE
    out_ = g.extra["outstanding"]

    def share(mv_issuer, vote, mv_pos, cash, nav):
        w = weights(mv_issuer, nav[g.acct])
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(out_ > 0, vote / np.where(out_ > 0, out_, 1.0), 0.0)
        qualifies = (w <= DIVERSIFIED_ISSUER + tol) & (v <= DIVERSIFIED_VOTING + tol)
        exempt = prep.government[prep.pos_sec] | prep.fund[prep.pos_sec]
        basket = (
            cash
            + np.bincount(prep.pos_acct, np.where(exempt, mv_pos, 0.0), A)
            + np.bincount(g.acct, np.where(qualifies, mv_issuer, 0.0), A)
        )
        return -weights(-basket, nav), w, qualifies

    vb, _, _ = share(
        g.before, g.extra["vote_before"], prep.mv_before, prep.cash_total_before, prep.nav_before
    )
    va, wa, qual_a = share(
        g.after, g.extra["vote_after"], prep.mv_after, prep.cash_total_after, prep.nav_after
    )
    breach = va < DIVERSIFIED_MIN - tol
    active = breach & ~((vb < DIVERSIFIED_MIN - tol) & ~(va < vb - tol))
    # the worst group: the largest issuer that does not qualify after
    masked = np.where(qual_a, -np.inf, wa)
    worst = seg.reduce(np.fmax, masked, -np.inf)
    group_code = np.full(A, -1, dtype=np.int64)
    a, r = seg.first((masked == worst[g.acct]) & ~qual_a)
    group_code[a] = g.code[r]
    group = _labels_of(g.labels, group_code)
    acct, rows = _account_rows(
        scope, value=va, value_before=vb, group=group, breach=breach, active=active
    )
    orders = _blame(
        prep, scope, SIDE_SIGN[prep.ord_side] > 0, g, ~qual_a & active[g.acct], wa, rule
    )
    return Outcome(
        acct=acct,
        status=_account_status(rule, rows["breach"], rows["active"]),
        value=rows["value"],
        value_before=rows["value_before"],
        group=rows["group"],
        passive=rows["breach"] & ~rows["active"],
        **orders,
    )


def _per_order(
    prep: Prepared,
    rule: Rule,
    scope: np.ndarray,
    o: np.ndarray,
    value: np.ndarray,
    failed: np.ndarray,
    group: np.ndarray | None = None,
    worst: str = "max",
) -> Outcome:
    """An order-level rule: one row per measured order; the account's value is the worst
    of its orders' (NaN when it has none) and it fails when one of its orders fails."""
    A = prep.n_accounts
    code = _fail_code(rule)
    status = np.where(failed, code, PASS).astype(np.int8)
    oa = prep.ord_acct[o]
    acct_status = np.zeros(A, dtype=np.int8)
    np.maximum.at(acct_status, oa, status)
    acct_value = np.full(A, np.nan)
    if worst == "max":
        np.fmax.at(acct_value, oa, value)
    else:
        np.fmin.at(acct_value, oa, value)
    acct = np.flatnonzero(scope)
    return Outcome(
        acct=acct,
        status=acct_status[acct],
        value=acct_value[acct],
        value_before=np.full(len(acct), np.nan),
        group=_none(len(acct)),
        passive=np.zeros(len(acct), dtype=bool),
        order=o,
        order_status=status,
        order_value=value,
        order_group=_none(len(o)) if group is None else group,
    )


def _exceeds(value: np.ndarray, limit: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ~(value <= limit + RELATIVE_TOLERANCE * abs(limit))


def measure_restricted(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    lists: list[RestrictedList] = [ctx.restricted_lists[name] for name in rule.params["list"]]
    tickers = set().union(*(r.securities for r in lists))
    issuers = set().union(*(r.issuers for r in lists))
    sides = [("buy", "sell", "sell_short", "buy_to_cover").index(s) for s in rule.params["sides"]]
    o = np.flatnonzero(scope[prep.ord_acct] & np.isin(prep.ord_side, sides))
    sec = prep.ord_sec[o]
    by_ticker = pd.Index(prep.sec_ids).isin(list(tickers))
    codes, labels, real = prep.attr_codes["issuer"]
    label_hit = pd.Index(labels[:real]).isin(list(issuers))
    by_issuer = np.zeros(len(prep.sec_ids), dtype=bool)
    named = codes < real
    by_issuer[named] = label_hit[codes[named]]
    hit_t = by_ticker[sec]
    hit_i = by_issuer[sec]
    group = _none(len(o))
    group[hit_i] = labels[codes[sec[hit_i]]]
    group[hit_t] = prep.sec_ids[sec[hit_t]]
    hit = hit_t | hit_i
    return _per_order(prep, rule, scope, o, hit.astype(float), hit, group)


def measure_max_order_notional(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    o = np.flatnonzero(scope[prep.ord_acct])
    value = prep.ord_qty[o] * np.abs(prep.unit_value[prep.ord_pos[o]])
    return _per_order(prep, rule, scope, o, value, _exceeds(value, rule.params["limit"]))


def measure_max_adv_pct(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    o = np.flatnonzero(scope[prep.ord_acct])
    adv = prep.adv[prep.ord_sec[o]]
    known = adv > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # an unknown volume cannot show an order to be small enough: it fails
        value = np.where(known, prep.ord_qty[o] / np.where(known, adv, 1.0), np.inf)
    return _per_order(prep, rule, scope, o, value, _exceeds(value, rule.params["limit"]))


def measure_price_collar(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    o = np.flatnonzero(scope[prep.ord_acct] & np.isfinite(prep.ord_limit))
    price = prep.price[prep.ord_sec[o]]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(price > 0, np.abs(prep.ord_limit[o] / price - 1.0), np.inf)
    return _per_order(prep, rule, scope, o, value, _exceeds(value, rule.params["limit"]))


def measure_wash_sale(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    days = rule.params["days"]
    today = as_of_day(prep)
    o = np.flatnonzero(scope[prep.ord_acct] & (prep.ord_side == BUY))
    S = len(prep.sec_ids)
    inside = (prep.loss_day <= today) & (prep.loss_day >= today - np.timedelta64(days, "D"))
    keys = prep.loss_acct[inside] * S + prep.loss_sec[inside]
    day = prep.loss_day[inside].astype(np.int64)
    value = np.full(len(o), np.nan)
    if len(keys) and len(o):
        # the latest loss per (account, security): sort by key then day, keep the last
        order = np.lexsort((day, keys))
        keys, day = keys[order], day[order]
        last = np.r_[keys[1:] != keys[:-1], True]
        keys, day = keys[last], day[last]
        want = prep.ord_acct[o] * S + prep.ord_sec[o]
        at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        found = keys[at] == want
        value[found] = today.astype(np.int64) - day[at[found]]
    return _per_order(prep, rule, scope, o, value, np.isfinite(value), worst="min")


def measure_duplicate_order(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    minutes = rule.params["minutes"]
    S = len(prep.sec_ids)
    n_orders = len(prep.ord_acct)
    key = np.concatenate(
        [
            (prep.ord_acct * S + prep.ord_sec) * 4 + prep.ord_side,
            (prep.live_acct * S + prep.live_sec) * 4 + prep.live_side,
        ]
    )
    t = np.concatenate([prep.ord_created, prep.live_created])
    gap = np.full(len(key), np.inf)
    if len(key) > 1:
        order = np.lexsort((t, key))
        k, ts = key[order], t[order]
        same = k[1:] == k[:-1]
        d = (ts[1:] - ts[:-1]).astype(float)
        prev = np.r_[np.inf, np.where(same, d, np.inf)]
        nxt = np.r_[np.where(same, d, np.inf), np.inf]
        gap[order] = np.minimum(prev, nxt)
    o = np.flatnonzero(scope[prep.ord_acct])
    value = gap[:n_orders][o] / NS_PER_MINUTE
    value[~np.isfinite(value)] = np.nan
    with np.errstate(invalid="ignore"):
        failed = value <= minutes + RELATIVE_TOLERANCE * minutes
    return _per_order(prep, rule, scope, o, value, failed, worst="min")


MEASURES = {
    "restricted": measure_restricted,
    "max_weight": measure_max_weight,
    "min_cash": measure_min_cash,
    "no_overdraft": measure_no_overdraft,
    "no_short": measure_no_short,
    "max_order_notional": measure_max_order_notional,
    "max_adv_pct": measure_max_adv_pct,
    "price_collar": measure_price_collar,
    "ucits_5_10_40": measure_ucits_5_10_40,
    "diversified_fund": measure_diversified_fund,
    "wash_sale": measure_wash_sale,
    "duplicate_order": measure_duplicate_order,
}
