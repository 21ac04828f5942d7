"""Check a book of orders against a rule book, every account and order in one pass.

``check(book, rules, restricted_lists)`` values every account before and after its
orders, measures every rule on every account in its scope (and every order it applies
to) and decides each order's status. See :class:`CheckResult` for what comes back and
``docs/compliance.md`` for the semantics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .book import Book, CheckError
from .measures import FAIL, MEASURES, WARN, Outcome, grouping, weights
from .prepare import Prepared, prepare
from .rule import GROUP_BY, RestrictedList, Rule, RuleError

__all__ = ["ORDER_STATUSES", "CheckResult", "check", "exposures"]

ORDER_STATUSES = ("approved", "needs_override", "rejected", "unchecked")
RESULT_STATUSES = np.array(["pass", "warn", "fail"], dtype=object)
_SEVERITY_RANK = {"warning": 1, "soft": 2, "hard": 3}
_BY_RANK = np.array(["approved", "approved", "needs_override", "rejected"], dtype=object)


@dataclass
class CheckResult:
    """What a check found, as pandas frames.

    ``orders`` -- one row per order under check, in the input order: ``order``,
        ``account``, ``status`` (``approved``, ``needs_override``, ``rejected``, or
        ``unchecked`` when its account could not be valued), ``failed`` (tuple of the ids
        of the hard and soft rules it failed, in rule order), ``warned`` (the warning
        rules it failed).
    ``order_results`` -- one row per (order, rule) the rule measured (order-level rules)
        or laid an active breach on (account-level rules): ``order``, ``account``,
        ``rule``, ``version``, ``kind``, ``severity``, ``status`` (``pass``, ``warn``:
        failed a warning rule, ``fail``), ``value`` (the order's own measure, or the value
        after of the group it was blamed for), ``limit``, ``group``.
    ``account_results`` -- one row per (account, rule in whose scope it is): ``account``,
        ``rule``, ``version``, ``kind``, ``severity``, ``status`` (``pass``, ``warn``: a
        passive breach or a failed warning rule, ``fail``: an active breach of a hard or
        soft rule), ``value`` and ``value_before`` (the measure after and before the
        orders; for order-level rules the worst order's value, and no value before),
        ``limit``, ``group`` (the worst group after, where the rule has groups),
        ``passive``, ``orders_failed`` (how many of the account's orders the rule failed
        or warned), ``max_issuer`` and ``max_issuer_before`` (``ucits_5_10_40`` only).
    ``accounts`` -- one row per account: ``account``, ``nav_before``, ``nav_after``,
        ``cash_before``, ``cash_after`` (all cash, in base currency).
    ``skipped`` -- ``account``, ``reason``: accounts that could not be valued (a missing
        price or FX rate); they have no result and their orders are ``unchecked``.
    """

    orders: pd.DataFrame
    order_results: pd.DataFrame
    account_results: pd.DataFrame
    accounts: pd.DataFrame
    skipped: pd.DataFrame


@dataclass
class _Context:
    restricted_lists: Mapping[str, RestrictedList]


def _lists(restricted_lists) -> dict[str, RestrictedList]:
    if restricted_lists is None:
        return {}
    if isinstance(restricted_lists, Mapping):
        return dict(restricted_lists)
    return {r.name: r for r in restricted_lists}


def _scope_mask(prep: Prepared, rule: Rule, valued: np.ndarray) -> np.ndarray:
    if rule.scope is None:
        return valued
    return valued & prep.acc_index.isin(list(rule.scope))


def check(
    book: Book | Prepared,
    rules: Iterable[Rule],
    restricted_lists: Mapping[str, RestrictedList] | Iterable[RestrictedList] | None = None,
) -> CheckResult:
    """Check every order of ``book`` against ``rules`` (a sequence of :class:`Rule`).

    ``restricted_lists`` -- the lists the ``restricted`` rules name, as a mapping by name
    or an iterable of :class:`RestrictedList`. Raises :class:`CheckError` on a malformed
    book and :class:`RuleError` when a rule names a list that is not given.
    """
    rules = list(rules)
    lists = _lists(restricted_lists)
    for rule in rules:
        if not isinstance(rule, Rule):
            raise RuleError(f"not a Rule: {rule!r}")
        if rule.kind == "restricted":
            for name in rule.params["list"]:
                if name not in lists:
                    raise RuleError(
                        f"rule {rule.id}: unknown restricted list {name!r}",
                        rule=rule.id,
                        field="list",
                    )
    prep = book if isinstance(book, Prepared) else prepare(book)
    A = prep.n_accounts
    valued = np.ones(A, dtype=bool)
    if prep.unvalued:
        valued[list(prep.unvalued)] = False
    ctx = _Context(lists)
    outcomes: list[tuple[Rule, Outcome]] = []
    for rule in rules:
        outcomes.append(
            (rule, MEASURES[rule.kind](prep, rule, _scope_mask(prep, rule, valued), ctx))
        )
    return _result(prep, outcomes, valued)


def _repeat(values: list, counts: list[int]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return np.repeat(out, counts)


def _result(prep: Prepared, outcomes: list[tuple[Rule, Outcome]], valued) -> CheckResult:
    n_orders = len(prep.ord_ids)
    acc_ids = prep.acc_ids
    rules = [r for r, _ in outcomes]
    rule_ids = [r.id for r in rules]
    n_acc = [len(o.acct) for _, o in outcomes]
    n_ord = [len(o.order) for _, o in outcomes]

    def cat(name, dtype=None):
        parts = [getattr(o, name) for _, o in outcomes]
        if not parts:
            return np.zeros(0, dtype=dtype or float)
        return np.concatenate(parts)

    # orders: the worst severity of what each failed
    o_idx = cat("order", np.int64).astype(np.int64)
    o_status = cat("order_status", np.int8).astype(np.int8)
    o_rank = np.repeat(np.array([_SEVERITY_RANK[r.severity] for r in rules], dtype=np.int8), n_ord)
    worst = np.zeros(n_orders, dtype=np.int8)
    hit = o_status > 0
    np.maximum.at(worst, o_idx[hit], o_rank[hit])
    status = _BY_RANK[worst]
    unchecked = ~valued[prep.ord_acct]
    status[unchecked] = "unchecked"
    o_rule = _repeat(rule_ids, n_ord)
    failed = _tuples(n_orders, o_idx, o_rule, o_status == FAIL)
    warned = _tuples(n_orders, o_idx, o_rule, o_status == WARN)
    orders = pd.DataFrame(
        {
            "order": _ids(prep.ord_ids),
            "account": _ids(acc_ids[prep.ord_acct]),
            "status": status,
            "failed": failed,
            "warned": warned,
        }
    )

    order_results = pd.DataFrame(
        {
            "order": _ids(prep.ord_ids[o_idx]),
            "account": _ids(acc_ids[prep.ord_acct[o_idx]]),
            "rule": _ids(o_rule),
            "version": np.repeat(np.array([r.version for r in rules], dtype=np.int64), n_ord),
            "kind": _repeat([r.kind for r in rules], n_ord),
            "severity": _repeat([r.severity for r in rules], n_ord),
            "status": RESULT_STATUSES[o_status],
            "value": cat("order_value"),
            "limit": np.repeat(np.array([r.limit for r in rules], dtype=float), n_ord),
            "group": _ids(cat("order_group", object)),
        }
    )

    a_idx = cat("acct", np.int64).astype(np.int64)
    a_status = cat("status", np.int8).astype(np.int8)
    # how many of the account's orders each rule failed or warned
    counts = np.zeros(len(a_idx), dtype=np.int64)
    if len(o_idx) and len(a_idx):
        R = len(rules)
        o_rule_pos = np.repeat(np.arange(R), n_ord)
        a_rule_pos = np.repeat(np.arange(R), n_acc)
        per = np.bincount(
            (o_rule_pos * len(acc_ids) + prep.ord_acct[o_idx])[hit], minlength=R * len(acc_ids)
        )
        counts = per[a_rule_pos * len(acc_ids) + a_idx]
    max_issuer = np.full(len(a_idx), np.nan)
    max_issuer_before = np.full(len(a_idx), np.nan)
    start = 0
    for (_, o), n in zip(outcomes, n_acc, strict=True):
        if "max_issuer" in o.extra:
            max_issuer[start : start + n] = o.extra["max_issuer"]
            max_issuer_before[start : start + n] = o.extra["max_issuer_before"]
        start += n
    account_results = pd.DataFrame(
        {
            "account": _ids(acc_ids[a_idx]),
            "rule": _ids(_repeat(rule_ids, n_acc)),
            "version": np.repeat(np.array([r.version for r in rules], dtype=np.int64), n_acc),
            "kind": _repeat([r.kind for r in rules], n_acc),
            "severity": _repeat([r.severity for r in rules], n_acc),
            "status": RESULT_STATUSES[a_status],
            "value": cat("value"),
            "value_before": cat("value_before"),
            "limit": np.repeat(np.array([r.limit for r in rules], dtype=float), n_acc),
            "group": _ids(cat("group", object)),
            "passive": cat("passive", bool).astype(bool),
            "orders_failed": counts,
            "max_issuer": max_issuer,
            "max_issuer_before": max_issuer_before,
        }
    )
    keep = valued
    accounts = pd.DataFrame(
        {
            "account": _ids(acc_ids[keep]),
            "nav_before": prep.nav_before[keep],
            "nav_after": prep.nav_after[keep],
            "cash_before": prep.cash_total_before[keep],
            "cash_after": prep.cash_total_after[keep],
        }
    )
    bad = sorted(prep.unvalued)
    skipped = pd.DataFrame(
        {
            "account": _ids(acc_ids[bad] if bad else np.zeros(0, dtype=object)),
            "reason": [prep.unvalued[a] for a in bad],
        }
    )
    return CheckResult(
        orders=orders,
        order_results=order_results,
        account_results=account_results,
        accounts=accounts,
        skipped=skipped,
    )


def _ids(values: np.ndarray) -> pd.Series:
    # ids and labels keep their Python type (a database key stays an int) and None stays
    # None: pandas would otherwise infer a string column with NaN for missing values
    return pd.Series(values, dtype=object, copy=False)


def _tuples(n: int, idx: np.ndarray, rule: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each of ``n`` orders, the tuple of rule ids of its rows in ``mask``, in rule
    order. Only orders with such rows are visited; the rest share the empty tuple."""
    out = np.empty(n, dtype=object)
    out[:] = [()] * n
    rows = np.flatnonzero(mask)
    if len(rows):
        order = rows[np.argsort(idx[rows], kind="stable")]
        who = idx[order]
        cut = np.flatnonzero(np.r_[True, who[1:] != who[:-1], True])
        ids = rule[order]
        for a, b in zip(cut[:-1], cut[1:], strict=True):
            out[who[a]] = tuple(ids[a:b])
    return out


def exposures(book: Book | Prepared, group_by: str) -> pd.DataFrame:
    """Each account's exposure to each group of ``group_by`` (one of ``security``,
    ``issuer``, ``sector``, ``country``, ``asset_class``, ``currency``) before and after
    the orders: ``account``, ``group``, ``value_before``, ``value_after`` (base currency),
    ``weight_before``, ``weight_after`` (over NAV; a currency group counts its cash).
    These are the numbers ``max_weight`` compares with its limit."""
    if group_by not in GROUP_BY:
        raise CheckError(f"group_by must be one of {', '.join(GROUP_BY)}, not {group_by!r}")
    prep = book if isinstance(book, Prepared) else prepare(book)
    g = grouping(prep, group_by)
    keep = np.ones(len(g.acct), dtype=bool)
    if prep.unvalued:
        keep = ~np.isin(g.acct, list(prep.unvalued))
    return pd.DataFrame(
        {
            "account": _ids(prep.acc_ids[g.acct[keep]]),
            "group": _ids(g.labels[g.code[keep]]),
            "value_before": g.before[keep],
            "value_after": g.after[keep],
            "weight_before": weights(g.before, prep.nav_before[g.acct])[keep],
            "weight_after": weights(g.after, prep.nav_after[g.acct])[keep],
        }
    )
