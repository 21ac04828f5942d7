"""What each rule kind measures, for every account and order of a check in one pass.

Each ``measure_<kind>`` takes the prepared book, the rule and the mask of the accounts
the rule binds, and returns an :class:`Outcome`: for an account-level rule, arrays over
all the accounts (the value after and before, the worst group, whether it breaches and
whether actively); for every rule, the rows of the orders it measured or blamed. The
engine keeps the accounts in scope and decides the statuses (0 pass, 1 warn, 2 fail).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .prepared import (
    NS_PER_MINUTE,
    SIDE_SIGN,
    Grouping,
    Prepared,
    as_of_day,
    total,
    unique_inverse,
)
from .rule import (
    DIVERSIFIED_ISSUER,
    DIVERSIFIED_MIN,
    DIVERSIFIED_VOTING,
    SIDES,
    UCITS_AGGREGATE,
    UCITS_ISSUER,
    UCITS_THRESHOLD,
    RestrictedList,
    Rule,
)

__all__ = [
    "MEASURES",
    "RELATIVE_TOLERANCE",
    "Outcome",
    "build_groupings",
    "grouping",
    "groupings_of",
    "weights",
]

RELATIVE_TOLERANCE = 1e-9
PASS, WARN, FAIL = 0, 1, 2
BUY, SELL, SELL_SHORT, BUY_TO_COVER = 0, 1, 2, 3


@dataclass
class Outcome:
    """What one rule measured. An account-level rule gives arrays over all the accounts
    of the check (``value``, ``value_before``, ``group``, ``breach``, ``active``, and
    ``extra`` ones); an order-level rule leaves them None and the engine takes each
    account's worst order (``worst``: ``"max"`` or ``"min"``). Both give order rows:
    ``order`` (indices into the check's orders), ``order_status`` (0 pass, 1 warn,
    2 fail), ``order_value``, ``order_group``. ``scope`` is the mask of the accounts the
    rule binds."""

    scope: np.ndarray
    order: np.ndarray
    order_status: np.ndarray
    order_value: np.ndarray
    order_group: np.ndarray
    value: np.ndarray | None = None
    value_before: np.ndarray | None = None
    group: np.ndarray | None = None
    breach: np.ndarray | None = None
    active: np.ndarray | None = None
    worst: str = "max"
    extra: dict = field(default_factory=dict)


def _none(n: int) -> np.ndarray:
    return np.full(n, None, dtype=object)


def weights(mv: np.ndarray, nav: np.ndarray) -> np.ndarray:
    """Market value over NAV; infinite where NAV is not positive, so that every limit on
    the weights of such an account breaches."""
    ok = nav > 0
    return np.where(ok, mv / np.where(ok, nav, 1.0), np.inf)


def _spec(prep: Prepared, name: str):
    """Labels, group code per position row, and the position rows a grouping counts."""
    ps = prep.pos_sec
    if name == "currency":
        return prep.currencies, prep.sec_currency[ps], None
    attr = "issuer" if name.startswith("issuer") else name
    codes, labels, _ = prep.attr_codes[attr]
    if name == "issuer_ucits":
        idx = np.flatnonzero(~prep.government[ps])
    elif name == "issuer_1940":
        idx = np.flatnonzero(~(prep.government[ps] | prep.fund[ps]))
    else:
        idx = None
    return labels, codes[ps], idx


def build_groupings(prep: Prepared, names) -> None:
    """Build the (account, group) rows of every grouping in ``names`` in one pass: one
    sort (or one dense count) and one set of sums for all of them, so that a rule book
    with many groupings pays the per-call cost of numpy once, not once per grouping.

    A name is a ``group_by`` value, ``issuer_ucits`` (issuers without government
    securities) or ``issuer_1940`` (issuers without government securities and
    investment companies). A currency group counts the cash in that currency."""
    names = [n for n in dict.fromkeys(names) if n not in prep.groupings]
    if not names:
        return
    A = prep.n_accounts
    P = len(prep.pos_sec)
    keys, vb, va, specs = [], [], [], []
    base = 0
    for name in names:
        labels, pos_code, idx = _spec(prep, name)
        G = max(len(labels), 1)
        if idx is None:
            k = base + prep.pos_acct * G + pos_code
            b, a = prep.mv_before, prep.mv_after
        else:
            k = base + prep.pos_acct[idx] * G + pos_code[idx]
            b, a = prep.mv_before[idx], prep.mv_after[idx]
        keys.append(k)
        vb.append(b)
        va.append(a)
        n_pos = len(k)
        if name == "currency":
            keys.append(base + prep.cash_acct * G + prep.cash_cur)
            vb.append(prep.cash_before)
            va.append(prep.cash_after)
        specs.append((name, labels, G, base, idx, n_pos))
        base += A * G
    key = np.concatenate(keys)
    uniq, inv = unique_inverse(key, base)
    n = len(uniq)
    before = total(inv, np.concatenate(vb), n)
    after = total(inv, np.concatenate(va), n)
    K = len(specs)
    bounds = np.searchsorted(uniq, [spec[3] for spec in specs] + [base])
    sizes = np.diff(bounds)
    # decode every row at once: which grouping, which account, which group
    kind_all = np.repeat(np.arange(K), sizes)
    local = uniq - np.repeat([spec[3] for spec in specs], sizes)
    G_all = np.repeat([spec[2] for spec in specs], sizes)
    acct_all = local // G_all
    code_all = local - acct_all * G_all
    wb = weights(before, prep.nav_before[acct_all])
    wa = weights(after, prep.nav_after[acct_all])
    seg = _Segments(kind_all * A + acct_all, K * A)
    max_after = seg.reduce(np.fmax, wa, 0.0)
    max_before = seg.reduce(np.fmax, wb, 0.0)
    # the name of each account's largest group, for every grouping at once
    label_start = np.cumsum([0] + [len(spec[1]) for spec in specs])
    all_labels = np.concatenate([np.asarray(spec[1], dtype=object) for spec in specs])
    first_a, first_row = seg.first(wa == max_after[seg.acct])
    worst = np.empty(K * A, dtype=object)
    worst[first_a] = all_labels[label_start[kind_all[first_row]] + code_all[first_row]]
    offset = 0
    for j, (name, labels, _, _, idx, n_pos) in enumerate(specs):
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        rows = inv[offset : offset + n_pos] - lo
        if idx is None:
            of_position = rows
        else:
            of_position = np.full(P, -1, dtype=np.int64)
            of_position[idx] = rows
        offset += n_pos + (len(prep.cash_acct) if name == "currency" else 0)
        g = Grouping(
            acct=acct_all[lo:hi],
            code=code_all[lo:hi],
            labels=labels,
            before=before[lo:hi],
            after=after[lo:hi],
            of_position=of_position,
        )
        if name == "issuer_1940":
            _voting(prep, g, idx)
        prep.groupings[name] = g
        prep.groupings[("view", name)] = _View(
            g,
            _Segments(g.acct, A),
            wb[lo:hi],
            wa[lo:hi],
            max_after[j * A : (j + 1) * A],
            max_before[j * A : (j + 1) * A],
            worst[j * A : (j + 1) * A],
        )


def _voting(prep: Prepared, g: Grouping, idx) -> None:
    """For the 1940 Act test: each issuer row's voting securities held, and outstanding."""
    codes = prep.attr_codes["issuer"][0]
    so = prep.shares_outstanding
    voting = so > 0
    sel = voting & ~(prep.government | prep.fund)
    outstanding = total(codes[sel], so[sel], len(g.labels))
    pos = idx if idx is not None else np.arange(len(prep.pos_sec))
    vote = np.where(voting[prep.pos_sec[pos]], 1.0, 0.0)
    rows = g.of_position[pos]
    n = len(g.acct)
    g.extra["vote_before"] = total(rows, prep.qty_before[pos] * vote, n)
    g.extra["vote_after"] = total(rows, prep.qty_after[pos] * vote, n)
    g.extra["outstanding"] = outstanding[g.code]


def grouping(prep: Prepared, name: str) -> Grouping:
    """The (account, group) rows of ``name`` (see :func:`build_groupings`)."""
    if name not in prep.groupings:
        build_groupings(prep, [name])
    return prep.groupings[name]


class _Segments:
    """Per-account reductions over rows sorted by account (the boundaries are found on
    first use: a rule that finds nothing to blame never needs them)."""

    def __init__(self, acct: np.ndarray, A: int):
        self.acct = acct
        self.A = A
        self._starts: np.ndarray | None = None

    @property
    def starts(self) -> np.ndarray:
        if self._starts is None:
            acct = self.acct
            if len(acct):
                change = np.empty(len(acct), dtype=bool)
                change[0] = True
                np.not_equal(acct[1:], acct[:-1], out=change[1:])
                self._starts = np.flatnonzero(change)
            else:
                self._starts = np.zeros(0, dtype=np.int64)
        return self._starts

    def reduce(self, ufunc, values: np.ndarray, empty: float) -> np.ndarray:
        out = np.full(self.A, empty)
        starts = self.starts
        if len(starts):
            out[self.acct[starts]] = ufunc.reduceat(values, starts)
        return out

    def first(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each account with a row in ``mask``, the account and its first such row."""
        rows = np.flatnonzero(mask)
        if len(rows) < 2:
            return self.acct[rows], rows
        a = self.acct[rows]
        keep = np.empty(len(rows), dtype=bool)
        keep[0] = True
        np.not_equal(a[1:], a[:-1], out=keep[1:])
        return a[keep], rows[keep]

    def any(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.acct[mask], minlength=self.A) > 0

    def worst_label(self, values, per_acct, codes, labels) -> np.ndarray:
        """Label of the first row of each account whose value is the account's worst."""
        out = _none(self.A)
        a, rows = self.first(values == per_acct[self.acct])
        ok = codes[rows] >= 0
        out[a[ok]] = labels[codes[rows[ok]]]
        return out


@dataclass
class _View:
    """A grouping with its weights, and what every max_weight rule on it reports: the
    largest group weight of each account after and before, and that group's name."""

    g: Grouping
    seg: _Segments
    wb: np.ndarray
    wa: np.ndarray
    max_after: np.ndarray
    max_before: np.ndarray
    worst: np.ndarray


def _view(prep: Prepared, name: str) -> _View:
    if name not in prep.groupings:
        build_groupings(prep, [name])
    return prep.groupings[("view", name)]


def _fail_code(rule: Rule) -> int:
    return WARN if rule.severity == "warning" else FAIL


def _outcome(rule, scope, value, before, group, breach, active, orders, extra=None) -> Outcome:
    return Outcome(
        scope=scope,
        value=value,
        value_before=before,
        group=group,
        breach=breach,
        active=active,
        extra=extra or {},
        **orders,
    )


def _empty_orders() -> dict:
    return {
        "order": np.zeros(0, dtype=np.int64),
        "order_status": np.zeros(0, dtype=np.int8),
        "order_value": np.zeros(0),
        "order_group": _none(0),
    }


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


def _buys(prep: Prepared) -> np.ndarray:
    return SIDE_SIGN[prep.ord_side] > 0


def measure_max_weight(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """The largest group weight after: passive per group (a group that breached before
    and did not grow), laid on the buys of actively breaching groups."""
    v = _view(prep, rule.params["group_by"])
    limit = rule.params["limit"]
    tol = RELATIVE_TOLERANCE * max(limit, 1.0)
    breach_g = v.wa > limit + tol
    if breach_g.any():
        active_g = breach_g & ~((v.wb > limit + tol) & (v.wa <= v.wb + tol))
        breach = v.seg.any(breach_g)
        active = v.seg.any(active_g)
        orders = (
            _blame(prep, scope, _buys(prep), v.g, active_g, v.wa, rule)
            if active.any()
            else _empty_orders()
        )
    else:
        breach = active = np.zeros(prep.n_accounts, dtype=bool)
        orders = _empty_orders()
    return _outcome(rule, scope, v.max_after, v.max_before, v.worst, breach, active, orders)


def measure_min_cash(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Cash in every currency over NAV after; laid on every buy of the account."""
    limit = rule.params["limit"]
    tol = RELATIVE_TOLERANCE * max(limit, 1.0)
    cb = -weights(-prep.cash_total_before, prep.nav_before)
    ca = -weights(-prep.cash_total_after, prep.nav_after)
    breach = ca < limit - tol
    active = breach & ~((cb < limit - tol) & (ca >= cb - tol))
    orders = _empty_orders()
    if active.any():
        o = np.flatnonzero(scope[prep.ord_acct] & _buys(prep) & active[prep.ord_acct])
        orders = {
            "order": o,
            "order_status": np.full(len(o), _fail_code(rule), dtype=np.int8),
            "order_value": ca[prep.ord_acct[o]],
            "order_group": _none(len(o)),
        }
    return _outcome(rule, scope, ca, cb, None, breach, active, orders)


def _floor(prep, key, acct_rows, code, labels, vb, va, tol):
    """A floor of zero on the lowest row value (a cash balance, a position), passive
    row by row; returns the per-account arrays and the actively breaching rows."""
    seg = prep.groupings.get(("seg", key))
    if seg is None:
        seg = prep.groupings[("seg", key)] = _Segments(acct_rows, prep.n_accounts)
    value = seg.reduce(np.fmin, va, np.nan)
    before = seg.reduce(np.fmin, vb, np.nan)
    group = seg.worst_label(va, value, code, labels)
    breach_r = va < -tol
    if breach_r.any():
        active_r = breach_r & ~((vb < -tol) & (va >= vb - tol))
        breach = seg.any(breach_r)
        active = seg.any(active_r)
    else:
        active_r = breach_r
        breach = active = np.zeros(prep.n_accounts, dtype=bool)
    return value, before, group, breach, active, active_r


def measure_no_overdraft(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """The lowest cash balance after, currency by currency in base currency; laid on the
    buys settling in a currency actively left negative, and on the currency trades
    (FX spot or forward) selling a base currency so left."""
    tol = RELATIVE_TOLERANCE * prep.gross[prep.cash_acct]
    value, before, group, breach, active, active_r = _floor(
        prep,
        "cash",
        prep.cash_acct,
        prep.cash_cur,
        prep.currencies,
        prep.cash_before,
        prep.cash_after,
        tol,
    )
    orders = _empty_orders()
    if active.any():
        # a buy pays its currency; a currency trade sold pays its base currency
        buys = _buys(prep)
        sold = ~buys & prep.currency_trade[prep.ord_sec]
        row = np.where(sold, prep.ord_base_cash, prep.ord_cash)
        o = np.flatnonzero(scope[prep.ord_acct] & (buys | sold) & active_r[row])
        k = row[o]
        orders = {
            "order": o,
            "order_status": np.full(len(o), _fail_code(rule), dtype=np.int8),
            "order_value": prep.cash_after[k],
            "order_group": prep.currencies[prep.cash_cur[k]],
        }
    return _outcome(rule, scope, value, before, group, breach, active, orders)


def measure_no_short(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """The lowest position after in a long-only account; every sell is measured by the
    position it leaves, and fails when that is actively short. A currency trade (FX spot
    or forward, ``currency_trade``) is no security sold short: selling a currency is a
    trade in cash, and is left out."""
    scope = scope & prep.long_only  # binds the long-only accounts of its scope only
    tol = RELATIVE_TOLERANCE * prep.qty_gross
    cash_like = prep.currency_trade[prep.pos_sec]
    value, before, group, breach, active, active_r = _floor(
        prep,
        "positions",
        prep.pos_acct,
        prep.pos_sec,
        prep.sec_ids,
        np.where(cash_like, 0.0, prep.qty_before),
        np.where(cash_like, 0.0, prep.qty_after),
        tol,
    )
    o = np.flatnonzero(scope[prep.ord_acct] & ~_buys(prep) & ~prep.currency_trade[prep.ord_sec])
    pos = prep.ord_pos[o]
    orders = {
        "order": o,
        "order_status": np.where(active_r[pos], _fail_code(rule), PASS).astype(np.int8),
        "order_value": prep.qty_after[pos],
        "order_group": prep.sec_ids[prep.ord_sec[o]],
    }
    return _outcome(rule, scope, value, before, group, breach, active, orders)


def measure_ucits_5_10_40(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """UCITS Directive 2009/65/EC, article 52(1)-(2): at most 5% of the fund in the
    securities of one issuer, a limit member states may raise to 10% provided the
    issuers above 5% together stay within 40%. Government securities have their own
    limit (52(3): 35%) and article 52(5) leaves them out of the 40% sum; here they are
    left out of both measures."""
    v = _view(prep, "issuer_ucits")
    g, seg = v.g, v.seg
    A = prep.n_accounts
    wb, wa = v.wb, v.wa
    tol = RELATIVE_TOLERANCE
    over5_b = wb > UCITS_THRESHOLD + tol
    over5_a = wa > UCITS_THRESHOLD + tol
    sum_b = total(g.acct, np.where(over5_b, wb, 0.0), A)
    sum_a = total(g.acct, np.where(over5_a, wa, 0.0), A)
    # the 10% limit, issuer by issuer
    breach10_g = wa > UCITS_ISSUER + tol
    active10_g = breach10_g & ~((wb > UCITS_ISSUER + tol) & (wa <= wb + tol))
    # the 40% limit on the issuers above 5%, account by account
    breach40 = sum_a > UCITS_AGGREGATE + tol
    active40 = breach40 & ~((sum_b > UCITS_AGGREGATE + tol) & (sum_a <= sum_b + tol))
    breach = breach40 | seg.any(breach10_g)
    active = active40 | seg.any(active10_g)
    orders = _empty_orders()
    if active.any():
        blamed_g = active10_g | (over5_a & active40[g.acct])
        orders = _blame(prep, scope, _buys(prep), g, blamed_g, wa, rule)
    return _outcome(
        rule,
        scope,
        sum_a,
        sum_b,
        v.worst,
        breach,
        active,
        orders,
        {"max_issuer": v.max_after, "max_issuer_before": v.max_before},
    )


def measure_diversified_fund(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Investment Company Act of 1940, section 5(b)(1) (15 U.S.C. 80a-5(b)(1)): at least
    75% of the value of the fund in cash and cash items, Government securities,
    securities of other investment companies, and other securities limited, for any one
    issuer, to at most 5% of the fund's value and at most 10% of the issuer's outstanding
    voting securities. A position over either limit does not count at all."""
    v = _view(prep, "issuer_1940")
    g, seg = v.g, v.seg
    A = prep.n_accounts
    tol = RELATIVE_TOLERANCE
    outstanding = g.extra["outstanding"]
    has_out = outstanding > 0
    safe_out = np.where(has_out, outstanding, 1.0)
    exempt = prep.government[prep.pos_sec] | prep.fund[prep.pos_sec]

    def share(w, vote, mv_issuer, mv_pos, cash, nav):
        voting = np.where(has_out, vote / safe_out, 0.0)
        qualifies = (w <= DIVERSIFIED_ISSUER + tol) & (voting <= DIVERSIFIED_VOTING + tol)
        basket = (
            cash
            + total(prep.pos_acct, np.where(exempt, mv_pos, 0.0), A)
            + total(g.acct, np.where(qualifies, mv_issuer, 0.0), A)
        )
        return -weights(-basket, nav), qualifies

    vb, _ = share(
        v.wb,
        g.extra["vote_before"],
        g.before,
        prep.mv_before,
        prep.cash_total_before,
        prep.nav_before,
    )
    va, qual_a = share(
        v.wa, g.extra["vote_after"], g.after, prep.mv_after, prep.cash_total_after, prep.nav_after
    )
    breach = va < DIVERSIFIED_MIN - tol
    active = breach & ~((vb < DIVERSIFIED_MIN - tol) & (va >= vb - tol))
    # the worst group: the largest issuer that does not qualify after
    masked = np.where(qual_a, -np.inf, v.wa)
    worst = seg.reduce(np.fmax, masked, -np.inf)
    group = seg.worst_label(np.where(qual_a, np.nan, masked), worst, g.code, g.labels)
    orders = _empty_orders()
    if active.any():
        orders = _blame(prep, scope, _buys(prep), g, ~qual_a & active[g.acct], v.wa, rule)
    return _outcome(rule, scope, va, vb, group, breach, active, orders)


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
    """An order-level rule: one row per measured order."""
    return Outcome(
        scope=scope,
        order=o,
        order_status=np.where(failed, _fail_code(rule), PASS).astype(np.int8),
        order_value=value,
        order_group=_none(len(o)) if group is None else group,
        worst=worst,
    )


def _exceeds(value: np.ndarray, limit: float) -> np.ndarray:
    return ~(value <= limit + RELATIVE_TOLERANCE * abs(limit))


def measure_restricted(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Orders of the listed sides in a security on the list, or of an issuer on it."""
    lists: list[RestrictedList] = [ctx.restricted_lists[name] for name in rule.params["list"]]
    tickers = frozenset().union(*(r.securities for r in lists))
    issuers = frozenset().union(*(r.issuers for r in lists))
    side_ok = np.zeros(len(SIDES), dtype=bool)
    side_ok[[SIDES.index(side) for side in rule.params["sides"]]] = True
    o = np.flatnonzero(scope[prep.ord_acct] & side_ok[prep.ord_side])
    sec = prep.ord_sec[o]
    S = len(prep.sec_ids)
    # look up only the securities traded (a few, or the universe of a rebalance run)
    codes, labels, real = prep.attr_codes["issuer"]
    match = _none(S)
    for s in np.flatnonzero(np.bincount(sec, minlength=S)).tolist():
        if prep.sec_ids[s] in tickers:
            match[s] = prep.sec_ids[s]
        elif codes[s] < real and labels[codes[s]] in issuers:
            match[s] = labels[codes[s]]
    group = match[sec]
    hit = group != None  # noqa: E711 (elementwise comparison with None)
    return _per_order(prep, rule, scope, o, hit.astype(float), hit, group)


def measure_max_order_notional(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Each order's quantity x price x multiplier x FX, in its account's base currency."""
    o = np.flatnonzero(scope[prep.ord_acct])
    value = prep.ord_qty[o] * np.abs(prep.unit_value[prep.ord_pos[o]])
    return _per_order(prep, rule, scope, o, value, _exceeds(value, rule.params["limit"]))


def measure_max_adv_pct(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Each order's quantity over its security's average daily volume."""
    o = np.flatnonzero(scope[prep.ord_acct])
    adv = prep.adv[prep.ord_sec[o]]
    known = adv > 0
    # an unknown volume cannot show an order to be small enough: it fails
    value = np.where(known, prep.ord_qty[o] / np.where(known, adv, 1.0), np.inf)
    return _per_order(prep, rule, scope, o, value, _exceeds(value, rule.params["limit"]))


def measure_price_collar(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Each limit order's distance from the security's price, |limit / price - 1|."""
    o = np.flatnonzero(scope[prep.ord_acct] & np.isfinite(prep.ord_limit))
    price = prep.price[prep.ord_sec[o]]
    value = np.where(
        price > 0, np.abs(prep.ord_limit[o] / np.where(price > 0, price, 1.0) - 1.0), np.inf
    )
    return _per_order(prep, rule, scope, o, value, _exceeds(value, rule.params["limit"]))


def measure_wash_sale(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Each buy: days since the latest sale at a loss of the same security in the same
    account, if it falls within ``days`` before the check's date (inclusive)."""
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
        last = np.empty(len(keys), dtype=bool)
        last[-1] = True
        np.not_equal(keys[1:], keys[:-1], out=last[:-1])
        keys, day = keys[last], day[last]
        want = prep.ord_acct[o] * S + prep.ord_sec[o]
        at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        found = keys[at] == want
        value[found] = today.astype(np.int64) - day[at[found]]
    return _per_order(prep, rule, scope, o, value, np.isfinite(value), worst="min")


def measure_duplicate_order(prep: Prepared, rule: Rule, scope: np.ndarray, ctx) -> Outcome:
    """Each order: minutes to the nearest other order (under check or live) of the same
    account, security and side; a duplicate when within ``minutes`` (inclusive)."""
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
        between = np.where(same, d, np.inf)
        prev = np.concatenate([[np.inf], between])
        nxt = np.concatenate([between, [np.inf]])
        gap[order] = np.minimum(prev, nxt)
    o = np.flatnonzero(scope[prep.ord_acct])
    value = gap[:n_orders][o] / NS_PER_MINUTE
    value[~np.isfinite(value)] = np.nan
    failed = value <= minutes + RELATIVE_TOLERANCE * minutes
    return _per_order(prep, rule, scope, o, value, failed, worst="min")


def groupings_of(rules) -> list[str]:
    """The groupings a rule book measures, to build them all in one pass."""
    names = []
    for rule in rules:
        if rule.kind == "max_weight":
            names.append(rule.params["group_by"])
        elif rule.kind == "ucits_5_10_40":
            names.append("issuer_ucits")
        elif rule.kind == "diversified_fund":
            names.append("issuer_1940")
    return names


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
