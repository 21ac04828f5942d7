"""Reads of the rule book that the checks, the pages, the API and the rebalancer share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from django.db import connection
from django.db.models import Q, QuerySet

from compliance import rules as engine
from compliance.models import Override, PretradeResult, RestrictedList, Rule, RuleBookStamp
from oms.bulk import sql_in
from oms.roles import Action, can, sees_all_accounts
from portfolios.models import LotClosing, Portfolio, Security


def rules_in_force(day: dt.date, stage: str = "pre") -> list[Rule]:
    """The active rules checked at this stage (``pre`` or ``post``) on this day, with
    their chosen accounts."""
    whens = Rule.PRE_TRADE if stage == "pre" else Rule.POST_TRADE
    return list(
        Rule.objects.filter(is_active=True, when__in=whens)
        .filter(Q(active_from__isnull=True) | Q(active_from__lte=day))
        .filter(Q(active_to__isnull=True) | Q(active_to__gte=day))
        .prefetch_related("accounts")
        .order_by("pk")
    )


@dataclass(frozen=True)
class EngineBook:
    """The rule book as the engine checks it, for a set of accounts: the engine's rules
    (ids are our rule keys, or (rule key, list key) for an account's own list), the
    restricted lists they name, and our rules by key."""

    rules: list[engine.Rule]
    lists: dict[str, engine.RestrictedList]
    by_id: dict[int, Rule]


def rule_key(engine_id) -> int:
    """Our rule's key from an engine rule id."""
    return engine_id[0] if isinstance(engine_id, tuple) else engine_id


def engine_book(rules: Iterable[Rule], model_of: Mapping[int, int | None]) -> EngineBook:
    """The engine's rules for the accounts in ``model_of`` (account key -> model key).

    A rule's scope is resolved to the account keys it binds among these accounts; a rule
    that binds none of them is left out. A restricted rule checks firm lists over its
    scope, and an account's own list only in that account (an engine rule of its own)."""
    rules = list(rules)
    accounts = set(model_of)
    names = {n for r in rules if r.kind == "restricted" for n in r.params.get("list", ())}
    lists: dict[str, RestrictedList] = {
        rl.name: rl
        for rl in RestrictedList.objects.filter(name__in=names, is_active=True).prefetch_related(
            "entries"
        )
    }
    out: list[engine.Rule] = []
    for rule in rules:
        if rule.scope == Rule.Scope.ALL:
            scope = None
        elif rule.scope == Rule.Scope.ACCOUNTS:
            scope = {a.pk for a in rule.accounts.all()} & accounts
        else:
            scope = {a for a, m in model_of.items() if m == rule.model_id}
        if scope is not None and not scope:
            continue
        if rule.kind != "restricted":
            out.append(_engine_rule(rule.pk, rule, rule.params, scope))
            continue
        mine = [lists[n] for n in rule.params.get("list", ()) if n in lists]
        firm = [rl.name for rl in mine if rl.level == RestrictedList.Level.FIRM]
        if firm:
            out.append(_engine_rule(rule.pk, rule, rule.params | {"list": firm}, scope))
        for rl in mine:
            if rl.level != RestrictedList.Level.ACCOUNT or rl.portfolio_id not in accounts:
                continue
            if scope is not None and rl.portfolio_id not in scope:
                continue
            own = rule.params | {"list": [rl.name]}
            out.append(_engine_rule((rule.pk, rl.pk), rule, own, {rl.portfolio_id}))
    return EngineBook(
        rules=out,
        lists={name: _engine_list(rl) for name, rl in lists.items()},
        by_id={r.pk: r for r in rules},
    )


#: The rule book's stamp as a scalar subquery of plain SQL, to read with another
#: statement's rows (the pre-trade check reads it with the accounts of its orders): no
#: query of its own.
RULE_BOOK_STAMP_SQL = f"SELECT stamp FROM {RuleBookStamp._meta.db_table} WHERE id = 1"


def _read_stamp() -> str | None:
    return RuleBookStamp.objects.filter(pk=1).values_list("stamp", flat=True).first()


#: The engine's rule books this process built under one stamp (the last one read), by
#: (day, stage, accounts with their models); decision 37.
_KEPT: tuple[str | None, dict[tuple, EngineBook]] = (None, {})
#: At most this many accounts in a book that is kept: a rebalance run's batch of
#: thousands of accounts is built afresh (once per run: nothing to gain).
_KEEP_ACCOUNTS = 16
_KEEP_BOOKS = 256


def engine_book_in_force(
    day: dt.date, stage: str, model_of: Mapping[int, int | None], *, stamp: str | None
) -> EngineBook:
    """``engine_book(rules_in_force(day, stage), model_of)``, built once per process for
    as long as the rule book's stamp stays ``stamp`` (read by the caller, in its
    transaction, with `RULE_BOOK_STAMP_SQL`).

    Correct across processes because the stamp is written by a trigger in the
    transaction of every change to the rule book's tables and is random, so never
    reused (a rolled-back change leaves a stamp no one will read again). A book is kept
    only when the stamp read again after loading it is still ``stamp``: nothing changed
    in between, so the book loaded is the one of that stamp. Without a stamp (no row:
    a database without the trigger, or a flushed one) nothing is kept."""
    global _KEPT
    key = (day, stage, tuple(sorted(model_of.items())))
    kept_stamp, books = _KEPT
    if stamp is not None and kept_stamp == stamp:
        book = books.get(key)
        if book is not None:
            return book
    book = engine_book(rules_in_force(day, stage), model_of)
    if stamp is None or len(model_of) > _KEEP_ACCOUNTS or _read_stamp() != stamp:
        return book
    if kept_stamp != stamp or len(books) >= _KEEP_BOOKS:
        books = {}
        _KEPT = (stamp, books)
    books[key] = book
    return book


def _engine_rule(rid, rule: Rule, params: dict, scope) -> engine.Rule:
    return engine.Rule(
        id=rid,
        kind=rule.kind,
        params=params,
        # a wash sale is a warning only; a rule stored before that was enforced still
        # warns rather than stopping every check
        severity="warning" if rule.kind == "wash_sale" else rule.severity,
        scope=scope,
        version=rule.version,
    )


def _engine_list(rl: RestrictedList) -> engine.RestrictedList:
    entries = list(rl.entries.all())
    return engine.RestrictedList(
        name=rl.name,
        securities={e.security_id for e in entries if e.security_id},
        issuers={e.issuer for e in entries if not e.security_id},
    )


def rebalance_restrictions_for(portfolio_ids: Iterable[int], day: dt.date) -> pd.DataFrame:
    """The rebalancer's restrictions (``account`` None for every account, ``security``,
    ``restriction``) from the pre-trade restricted rules in force: a run never proposes
    what the check would reject."""
    model_of = dict(Portfolio.objects.filter(pk__in=list(portfolio_ids)).values_list("pk", "model"))
    restricted = [r for r in rules_in_force(day, "pre") if r.kind == "restricted"]
    empty = pd.DataFrame({"account": [], "security": [], "restriction": []}, dtype=object)
    if not restricted or not model_of:
        return empty
    book = engine_book(restricted, model_of)
    if not book.rules:
        return empty
    securities = pd.DataFrame(
        list(Security.objects.values_list("pk", "issuer")), columns=["security", "issuer"]
    )
    frame = engine.rebalance_restrictions(book.rules, book.lists, securities)
    # A rule over every account restricts the run's accounts; an account's own list, its account.
    return frame[frame["account"].isna() | frame["account"].isin(list(model_of))].reset_index(
        drop=True
    )


def rules_visible_to(user) -> QuerySet[Rule]:
    if not can(user, Action.COMPLIANCE_VIEW):
        return Rule.objects.none()
    return Rule.objects.select_related("model").prefetch_related("accounts").order_by("name")


def restricted_lists_visible_to(user) -> QuerySet[RestrictedList]:
    if not can(user, Action.COMPLIANCE_VIEW):
        return RestrictedList.objects.none()
    qs = RestrictedList.objects.select_related("portfolio").prefetch_related("entries__security")
    if not sees_all_accounts(user, Action.COMPLIANCE_VIEW):
        qs = qs.filter(Q(portfolio__isnull=True) | Q(portfolio__manager=user))
    return qs.order_by("name")


def results_visible_to(user) -> QuerySet[PretradeResult]:
    if not can(user, Action.COMPLIANCE_VIEW):
        return PretradeResult.objects.none()
    qs = PretradeResult.objects.select_related("rule", "order__portfolio", "order__security")
    if not sees_all_accounts(user, Action.COMPLIANCE_VIEW):
        qs = qs.filter(order__portfolio__manager=user)
    return qs.order_by("-checked_at", "pk")


def latest_results(order_id: int) -> list[PretradeResult]:
    """The results of the order's latest check, worst first."""
    last = (
        PretradeResult.objects.filter(order_id=order_id)
        .order_by("-checked_at")
        .values_list("checked_at", flat=True)
        .first()
    )
    if last is None:
        return []
    rank = {"fail": 0, "warn": 1, "pass": 2}
    rows = list(
        PretradeResult.objects.filter(order_id=order_id, checked_at=last).select_related("rule")
    )
    return sorted(rows, key=lambda r: (rank[r.status], r.rule.name if r.rule else ""))


def overrides_visible_to(user) -> QuerySet[Override]:
    if not (can(user, Action.OVERRIDE_DECIDE) or can(user, Action.OVERRIDE_REQUEST)):
        return Override.objects.none()
    qs = Override.objects.select_related(
        "order__portfolio", "order__security", "requested_by", "decided_by"
    ).prefetch_related("rules")
    if not (
        sees_all_accounts(user, Action.OVERRIDE_DECIDE)
        or sees_all_accounts(user, Action.OVERRIDE_REQUEST)
    ):
        qs = qs.filter(order__portfolio__manager=user)
    return qs.order_by("-requested_at", "-pk")


def alerts_visible_to(user) -> QuerySet:
    from compliance.models import Alert

    if not can(user, Action.COMPLIANCE_VIEW):
        return Alert.objects.none()
    qs = Alert.objects.select_related(
        "portfolio", "rule", "assignee", "resolved_by"
    ).prefetch_related("comments__author")
    if not sees_all_accounts(user, Action.COMPLIANCE_VIEW):
        qs = qs.filter(portfolio__manager=user)
    return qs.order_by("-opened_at", "-pk")


def _closed_on_or_after(since: dt.datetime) -> dt.date:
    """The first closing date a sale booked at or after `since` may carry."""
    return since.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def accounts_with_sales_since(account_ids: Iterable[int], *, since: dt.datetime) -> set[int]:
    """The accounts among these with a lot closed since `since` (those in which
    `realised_sales` may find a sale): one query, over the accounts alone, so that a
    run over the whole book asks `realised_sales` about the pairs of those only."""
    return set(
        LotClosing.objects.filter(
            portfolio_id__in=list(account_ids), closed_on__gte=_closed_on_or_after(since)
        )
        .order_by()
        .values_list("portfolio_id", flat=True)
        .distinct()
    )


def realised_sales(
    pairs: Iterable[tuple[int, int]], *, since: dt.datetime, base_of: Mapping[int, str], fx
) -> dict[str, list]:
    """The sales booked since ``since`` in these (account, security) pairs, with the gain
    each realised, in the account's base currency: the engine's ``sales`` table
    (``account``, ``security``, ``date``, ``gain``) for ``wash_sale``.

    Read from what the books stored when each sale was booked
    (`portfolios.LotClosing`, one row per lot a sale closed, reversing rows offsetting
    a busted sale): one query whatever the number of pairs, the rows of one sale (one
    allocation) summed, a sale wholly reversed left out. A sale's date is when it was
    first booked. ``fx`` is a ``portfolios.selectors.FxTable`` (the gain's currency is
    the security's; without a rate it keeps its own, which keeps its sign)."""
    wanted = set(pairs)
    out: dict[str, list] = {"account": [], "security": [], "date": [], "gain": []}
    if not wanted:
        return out
    accounts = sorted({a for a, _ in wanted})
    securities = sorted({s for _, s in wanted})
    ops = connection.ops
    in_accounts, account_params = sql_in("c.portfolio_id", accounts)
    in_securities, security_params = sql_in("c.security_id", securities)
    # Plain SQL: the ORM's building of this grouped statement cost more than the
    # database's answer, on every buy under a wash-sale rule.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.portfolio_id, c.security_id, s.currency, MIN(c.created_at),"
            f" SUM(c.realised_gain) FROM {LotClosing._meta.db_table} c"
            f" JOIN {Security._meta.db_table} s ON s.id = c.security_id"
            f" WHERE {in_accounts} AND {in_securities} AND c.closed_on >= %s"
            " GROUP BY c.portfolio_id, c.security_id, c.allocation_id, s.currency"
            " HAVING MIN(c.created_at) >= %s AND SUM(c.quantity) > 0"
            " ORDER BY c.portfolio_id, c.security_id, MIN(c.created_at)",
            [
                *account_params,
                *security_params,
                ops.adapt_datefield_value(_closed_on_or_after(since)),
                ops.adapt_datetimefield_value(since),
            ],
        )
        rows = cursor.fetchall()
    for account, security, currency, at, gain in rows:
        if (account, security) not in wanted:
            continue
        rate = fx.rate(currency, base_of[account])
        gain = float(_decimal(gain))
        out["account"].append(account)
        out["security"].append(security)
        out["date"].append(aware_utc(at))
        out["gain"].append(gain * rate if rate is not None else gain)
    return out


def _decimal(value) -> Decimal:
    """A sum of a NUMERIC column read with plain SQL, as the ORM gives it (SQLite's
    driver gives a float or an int, the ORM a Decimal of its text)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def aware_utc(value) -> dt.datetime:
    """A timestamp read with plain SQL, as the ORM gives it: aware, in UTC (SQLite's
    driver gives it as text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
