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
from .measures import (
    FAIL,
    MEASURES,
    PASS,
    WARN,
    Outcome,
    build_groupings,
    grouping,
    groupings_of,
    weights,
)
from .prepared import Prepared, prepare
from .rule import GROUP_BY, RestrictedList, Rule, RuleError

__all__ = ["ORDER_STATUSES", "CheckResult", "check", "exposures"]

ORDER_STATUSES = ("approved", "needs_override", "rejected", "unchecked")
RESULT_STATUSES = np.array(["pass", "warn", "fail"], dtype=object)
_SEVERITY_RANK = {"warning": 1, "soft": 2, "hard": 3}
_BY_RANK = np.array(["approved", "approved", "needs_override", "rejected"], dtype=object)


class Table:
    """Columns of equal length as numpy arrays; a frame or records are made on demand."""

    def __init__(self, columns: dict, ids: tuple[str, ...] = ()):
        # a column may be a function that makes it: built only when asked for
        self._columns = columns
        self.ids = ids
        self._frame: pd.DataFrame | None = None

    @property
    def columns(self) -> dict[str, np.ndarray]:
        for name, value in self._columns.items():
            if callable(value):
                self._columns[name] = value()
        return self._columns

    def __len__(self) -> int:
        first = next(iter(self._columns.values()), None)
        return 0 if first is None else len(first() if callable(first) else first)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (id and label columns keep their Python objects)."""
        if self._frame is None:
            self._frame = pd.DataFrame(
                {k: (_ids(v) if v.dtype == object else v) for k, v in self.columns.items()}
            )
        return self._frame

    def records(self) -> list[dict]:
        """The table as a list of dicts of Python values; NaN and infinity are None."""
        names = list(self.columns)
        cols = []
        for v in self.columns.values():
            values = v.tolist()
            if v.dtype.kind == "f":
                values = [x if x - x == 0 else None for x in values]
            cols.append(values)
        return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


class CheckResult:
    """What a check found: five tables, each a pandas frame on first access (attributes
    below) or plain records (:meth:`records`), built from the same numpy columns.

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

    TABLES = ("orders", "order_results", "account_results", "accounts", "skipped")

    def __init__(self, tables: dict[str, Table]):
        self.tables = tables

    def records(self, table: str) -> list[dict]:
        """One of :attr:`TABLES` as a list of dicts (no pandas: the fast way to store the
        results of a single order)."""
        return self.tables[table].records()

    @property
    def orders(self) -> pd.DataFrame:
        return self.tables["orders"].to_frame()

    @property
    def order_results(self) -> pd.DataFrame:
        return self.tables["order_results"].to_frame()

    @property
    def account_results(self) -> pd.DataFrame:
        return self.tables["account_results"].to_frame()

    @property
    def accounts(self) -> pd.DataFrame:
        return self.tables["accounts"].to_frame()

    @property
    def skipped(self) -> pd.DataFrame:
        return self.tables["skipped"].to_frame()


@dataclass
class _Context:
    restricted_lists: Mapping[str, RestrictedList]


def _lists(restricted_lists) -> dict[str, RestrictedList]:
    if restricted_lists is None:
        return {}
    if isinstance(restricted_lists, Mapping):
        return dict(restricted_lists)
    return {r.name: r for r in restricted_lists}


def _scope_mask(prep: Prepared, rule: Rule, valued: np.ndarray, cache: dict) -> np.ndarray:
    if rule.scope is None:
        return valued
    mask = cache.get(rule.scope)
    if mask is None:
        # rules often share a scope (the accounts of one model, one group)
        mask = cache[rule.scope] = valued & prep.accounts.isin(rule.scope)
    return mask


def require_known_lists(rule: Rule, lists) -> None:
    """A restricted-list rule names only lists there are (`lists`: by name)."""
    if rule.kind == "restricted":
        for name in rule.params["list"]:
            if name not in lists:
                raise RuleError(
                    f"rule {rule.id}: unknown restricted list {name!r}", rule=rule.id, field="list"
                )


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
        require_known_lists(rule, lists)
    prep = book if isinstance(book, Prepared) else prepare(book)
    A = prep.n_accounts
    valued = np.ones(A, dtype=bool)
    if prep.unvalued:
        valued[list(prep.unvalued)] = False
    ctx = _Context(lists)
    outcomes: list[tuple[Rule, Outcome]] = []
    scopes: dict = {}
    # NaN and infinity are part of the answer (an unknown ADV, a NAV that is not
    # positive); every comparison below is written to treat them as breaches
    with np.errstate(all="ignore"):
        build_groupings(prep, groupings_of(rules))
        for rule in rules:
            outcomes.append(
                (
                    rule,
                    MEASURES[rule.kind](prep, rule, _scope_mask(prep, rule, valued, scopes), ctx),
                )
            )
    return _result(prep, outcomes, valued)


def _repeat(values: list, counts: list[int]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return np.repeat(out, counts)


def _result(prep: Prepared, outcomes: list[tuple[Rule, Outcome]], valued) -> CheckResult:
    n_orders = len(prep.ord_ids)
    A = prep.n_accounts
    acc_ids = prep.acc_ids
    rules = [r for r, _ in outcomes]
    R = len(rules)
    rule_ids = [r.id for r in rules]
    n_ord = [len(o.order) for _, o in outcomes]
    severity_rank = np.array([_SEVERITY_RANK[r.severity] for r in rules], dtype=np.int8)
    fail_code = np.where(severity_rank == 1, WARN, FAIL).astype(np.int8)

    def cat(name, dtype):
        parts = [getattr(o, name) for _, o in outcomes]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    # order rows of every rule, and each order's status: the worst severity it failed
    o_idx = cat("order", np.int64).astype(np.int64)
    o_status = cat("order_status", np.int8).astype(np.int8)
    o_value = cat("order_value", float).astype(float)
    o_pos = np.repeat(np.arange(R), n_ord)
    hit = o_status > 0
    worst = np.zeros(n_orders, dtype=np.int8)
    np.maximum.at(worst, o_idx[hit], severity_rank[o_pos[hit]])
    status = _BY_RANK[worst]
    status[~valued[prep.ord_acct]] = "unchecked"
    o_rule = _repeat(rule_ids, n_ord)
    orders = Table(
        {
            "order": prep.ord_ids,
            "account": acc_ids[prep.ord_acct],
            "status": status,
            # tuples of rule ids are Python objects, one per order: made on demand
            "failed": lambda: _tuples(n_orders, o_idx, o_rule, o_status == FAIL),
            "warned": lambda: _tuples(n_orders, o_idx, o_rule, o_status == WARN),
        },
        ("order", "account", "failed", "warned"),
    )
    limits = np.array([r.limit for r in rules], dtype=float)
    order_results = Table(
        {
            "order": prep.ord_ids[o_idx],
            "account": acc_ids[prep.ord_acct[o_idx]],
            "rule": o_rule,
            "version": np.array([r.version for r in rules], dtype=np.int64)[o_pos],
            "kind": _repeat([r.kind for r in rules], n_ord),
            "severity": _repeat([r.severity for r in rules], n_ord),
            "status": RESULT_STATUSES[o_status],
            "value": o_value,
            "limit": limits[o_pos],
            "group": cat("order_group", object),
        },
        ("order", "account", "rule", "group"),
    )

    # account rows: (rule x account) tables, then the cells in each rule's scope
    value = np.full((R, A), np.nan)
    before = np.full((R, A), np.nan)
    group = np.empty((R, A), dtype=object)
    breach = np.zeros((R, A), dtype=bool)
    active = np.zeros((R, A), dtype=bool)
    scope = np.zeros((R, A), dtype=bool)
    max_issuer = np.full((R, A), np.nan)
    max_issuer_before = np.full((R, A), np.nan)
    order_level = np.zeros(R, dtype=bool)
    for j, (_, o) in enumerate(outcomes):
        scope[j] = o.scope
        if o.value is None:
            order_level[j] = True
            continue
        value[j] = o.value
        before[j] = o.value_before
        if o.group is not None:
            group[j] = o.group
        breach[j] = o.breach
        active[j] = o.active
        if "max_issuer" in o.extra:
            max_issuer[j] = o.extra["max_issuer"]
            max_issuer_before[j] = o.extra["max_issuer_before"]
    # how many of each account's orders each rule failed or warned
    cell = o_pos * A + prep.ord_acct[o_idx]
    counts = np.bincount(cell[hit], minlength=R * A).reshape(R, A)
    acct_status = np.where(active, fail_code[:, None], np.where(breach, WARN, PASS)).astype(np.int8)
    if order_level.any():
        # an order-level rule: the account's worst order value, and its worst status
        mine = order_level[o_pos]
        np.maximum.at(acct_status.reshape(-1), cell[mine], o_status[mine])
        rule_min = np.array([o.worst == "min" for _, o in outcomes])
        signed = np.where(rule_min[o_pos], -o_value, o_value)
        top = np.full(R * A, np.nan)
        np.fmax.at(top, cell[mine], signed[mine])
        top = top.reshape(R, A)
        value[order_level] = np.where(rule_min[:, None], -top, top)[order_level]
    cells = np.flatnonzero(scope.reshape(-1))
    a_pos, a_idx = np.divmod(cells, A)
    flat = {
        "value": value.reshape(-1)[cells],
        "value_before": before.reshape(-1)[cells],
        "group": group.reshape(-1)[cells],
        "status": acct_status.reshape(-1)[cells],
        "passive": (breach & ~active).reshape(-1)[cells],
        "orders_failed": counts.reshape(-1)[cells],
        "max_issuer": max_issuer.reshape(-1)[cells],
        "max_issuer_before": max_issuer_before.reshape(-1)[cells],
    }
    rule_obj = np.empty(R, dtype=object)
    rule_obj[:] = rule_ids
    account_results = Table(
        {
            "account": acc_ids[a_idx],
            "rule": rule_obj[a_pos],
            "version": np.array([r.version for r in rules], dtype=np.int64)[a_pos],
            "kind": np.array([r.kind for r in rules], dtype=object)[a_pos],
            "severity": np.array([r.severity for r in rules], dtype=object)[a_pos],
            "status": RESULT_STATUSES[flat["status"]],
            "value": flat["value"],
            "value_before": flat["value_before"],
            "limit": limits[a_pos],
            "group": flat["group"],
            "passive": flat["passive"],
            "orders_failed": flat["orders_failed"],
            "max_issuer": flat["max_issuer"],
            "max_issuer_before": flat["max_issuer_before"],
        },
        ("account", "rule", "group"),
    )
    keep = valued
    accounts = Table(
        {
            "account": acc_ids[keep],
            "nav_before": prep.nav_before[keep],
            "nav_after": prep.nav_after[keep],
            "cash_before": prep.cash_total_before[keep],
            "cash_after": prep.cash_total_after[keep],
        },
        ("account",),
    )
    bad = sorted(prep.unvalued)
    skipped = Table(
        {
            "account": acc_ids[bad] if bad else np.zeros(0, dtype=object),
            "reason": np.array([prep.unvalued[a] for a in bad], dtype=object),
        },
        ("account",),
    )
    return CheckResult(
        {
            "orders": orders,
            "order_results": order_results,
            "account_results": account_results,
            "accounts": accounts,
            "skipped": skipped,
        }
    )


def _ids(values: np.ndarray) -> pd.Series:
    # ids, labels and names keep their Python type (a database key stays an int) and
    # None stays None: pandas would otherwise infer a string column, NaN for missing
    # values, and a dtype that depends on whether the column is empty
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
        cut = np.flatnonzero(np.concatenate([[True], who[1:] != who[:-1], [True]]))
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
    keep = np.ones(prep.n_accounts, dtype=bool)
    keep[list(prep.unvalued)] = False
    keep = keep[g.acct]
    with np.errstate(all="ignore"):
        wb = weights(g.before, prep.nav_before[g.acct])
        wa = weights(g.after, prep.nav_after[g.acct])
    return pd.DataFrame(
        {
            "account": _ids(prep.acc_ids[g.acct[keep]]),
            "group": _ids(g.labels[g.code[keep]]),
            "value_before": g.before[keep],
            "value_after": g.after[keep],
            "weight_before": wb[keep],
            "weight_after": wa[keep],
        }
    )
