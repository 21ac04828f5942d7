"""The pre-trade check: the checker that trading asks through `trading.pretrade`.

`pretrade_check(orders, stage=..., actor=...)` builds the engine's book from the
database for the accounts of the orders -- holdings, cash in every currency, the
latest prices and FX rates, security reference data, and every other live order of
those accounts (draft, approved, released, working: the portfolio after counts them)
-- runs one batch check of the rules in force, stores what each rule found of each
order (`PretradeResult`, with the rule's version and the numbers that drove it) and
returns a verdict per order. It never moves an order: the trading service that asked
does. A fixed number of queries whatever the number of orders.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from compliance import rules as engine
from compliance.models import Override, PretradeResult, Rule
from compliance.rules.measures import RELATIVE_TOLERANCE
from compliance.rules.rule import UCITS_AGGREGATE, UCITS_ISSUER, UCITS_THRESHOLD
from compliance.selectors import (
    RULE_BOOK_STAMP_SQL,
    aware_utc,
    engine_book_in_force,
    realised_sales,
    rule_key,
)
from oms.bulk import one_round_trip, read_together, sql_in, sql_not_in
from portfolios.models import CashBalance, Portfolio, Position, Price, Security
from portfolios.quotes import average_daily_volume
from portfolios.selectors import FxTable, cash_on_its_way, cash_on_its_way_statements
from portfolios.terms import FX_KINDS, TERMS_FIELDS, accrued_per_unit, price_multiplier
from trading import pretrade
from trading.models import Order

#: The states of the account's other orders that the portfolio after counts. Fills are
#: booked at allocation, so a filled order not yet allocated still counts whole.
LIVE_STATES = (
    Order.Status.DRAFT,
    Order.Status.APPROVED,
    Order.Status.RELEASED,
    Order.Status.WORKING,
    Order.Status.PARTIALLY_FILLED,
    Order.Status.FILLED,
)
_RANK = {"approved": 0, "needs_override": 1, "rejected": 2}


def _adv_days() -> int:
    """Over how many days of bars ``max_adv_pct`` averages the daily volume
    (``OMS_ADV_DAYS``, default 20: about a month of trading days)."""
    return int(getattr(settings, "OMS_ADV_DAYS", 20))


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _order_row(order) -> tuple:
    return (
        order.pk,
        order.portfolio_id,
        order.security_id,
        order.side,
        float(order.quantity),
        float(order.limit_price) if order.limit_price is not None else float("nan"),
        order.created_at,
    )


_ORDER_COLUMNS = ("order", "account", "security", "side", "quantity", "limit_price", "created_at")


def _columns(rows: list[tuple], names: Sequence[str]) -> dict[str, list]:
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


#: A check over at most this many accounts reads their positions with the securities'
#: rows (one statement); a larger batch reads them apart, so that each security's row
#: is not repeated for every account holding it.
_JOINED_ACCOUNTS = 16

#: The columns of a security the book reads, after its key; price is the latest one.
_SECURITY_COLUMNS = (
    "s.ticker, (SELECT CAST(p.price AS double precision) FROM {price} p"
    " WHERE p.security_id = s.id AND p.as_of <= %s ORDER BY p.as_of DESC LIMIT 1),"
    " s.currency, s.issuer, s.sector, s.country, s.asset_class,"
    " CAST(s.multiplier AS double precision), s.government"
)


def _live(account_ids: Sequence[int], order_ids: Sequence[int]) -> tuple[str, list]:
    """Plain SQL: an order is another live order of these accounts (not one of
    ``order_ids``), and its parameters."""
    accounts, params = sql_in("portfolio_id", account_ids)
    states, more = sql_in("status", [s.value for s in LIVE_STATES], type="text")
    sql, params = f"{accounts} AND {states}", params + more
    if order_ids:
        others, more = sql_not_in("id", order_ids)
        sql, params = f"{sql} AND {others}", params + more
    return sql, params


def _accounts_statement(account_ids: Sequence[int]) -> tuple[str, list]:
    """The accounts (key, base currency, long only, model key, the rule book's stamp),
    in the order of their codes (the ORM's building of it, with the stamp's subquery,
    cost more than its answer)."""
    where, params = sql_in("id", account_ids)
    return (
        f"SELECT id, base_currency, long_only, model_id, ({RULE_BOOK_STAMP_SQL})"
        f" FROM {Portfolio._meta.db_table} WHERE {where} ORDER BY code",
        params,
    )


def _positions_statements(
    account_ids: Sequence[int], order_ids: Sequence[int], ordered: Sequence[int], *, on
) -> list[tuple[str, list]]:
    """The securities held in these accounts, in their other live orders or ordered, each
    with its latest price (dated on or before ``on``), with the accounts' positions
    (account, security, quantity): one statement for a check of a few accounts, two for
    a batch (`_positions_with_prices` reads their rows). Plain SQL: the ORM's building
    of this statement and its reading of five hundred rows cost more than the
    database's answer."""
    where, held_params = sql_in("portfolio_id", account_ids)
    held_sql = (
        f"SELECT portfolio_id, security_id, CAST(quantity AS double precision) AS q"
        f" FROM {Position._meta.db_table} WHERE {where} AND quantity <> 0"
    )
    live_sql, live_params = _live(account_ids, order_ids)
    ordered_sql, ordered_params = sql_in("s.id", ordered)
    columns = _SECURITY_COLUMNS.format(price=Price._meta.db_table)
    joined = len(account_ids) <= _JOINED_ACCOUNTS
    sql = (
        f"WITH held AS ({held_sql}) SELECT s.id, {columns}, "
        + ("held.portfolio_id, held.q" if joined else "NULL, NULL")
        + f" FROM {Security._meta.db_table} s"
        + (" LEFT JOIN held ON held.security_id = s.id" if joined else "")
        + " WHERE s.id IN (SELECT security_id FROM held)"
        + f" OR s.id IN (SELECT security_id FROM {Order._meta.db_table} WHERE {live_sql})"
        + f" OR {ordered_sql} ORDER BY s.ticker"
    )
    statements = [(sql, [*held_params, on, *live_params, *ordered_params])]
    if not joined:
        statements.append((held_sql, held_params))
    return statements


def _positions_with_prices(rows: list[tuple], held: list[tuple] | None):
    """The securities (key, then `_SECURITY_COLUMNS`) and the positions (account,
    security, quantity) from the rows of `_positions_statements` (``held``: its second
    statement's, for a batch)."""
    securities: list[tuple] = []
    if held is None:
        holdings = [(row[-2], row[0], row[-1]) for row in rows if row[-2] is not None]
    else:
        holdings = list(held)
    for row in rows:
        if not securities or securities[-1][0] != row[0]:
            securities.append(row[:-2])
    # in the order the ORM read them: securities by ticker, positions by account, ticker
    ticker = {row[0]: row[1] for row in securities}
    holdings.sort(key=lambda h: (h[0], ticker[h[1]]))
    return securities, holdings


def _live_statement(
    account_ids: Sequence[int], order_ids: Sequence[int], *, created: bool
) -> tuple[str, list]:
    """The accounts' other live orders (`_live_orders` reads their rows). ``created``:
    with when each was created (only ``duplicate_order`` reads it), as UTC
    microseconds worked out by the database, not one timestamp per row made into a
    Python object and back (three hundred live orders cost more than the rest of the
    read)."""
    when = ", " + _MICROSECONDS.get(connection.vendor, "created_at") if created else ""
    live_sql, params = _live(account_ids, order_ids)
    return (
        f"SELECT id, portfolio_id, security_id, side, CAST(quantity AS double precision),"
        f" CAST(limit_price AS double precision){when} FROM {Order._meta.db_table}"
        f" WHERE {live_sql} ORDER BY created_at DESC, id DESC",
        params,
    )


def _live_orders(rows: list[tuple], *, created: bool) -> dict[str, Sequence]:
    """The other live orders as the engine's order columns (`_ORDER_COLUMNS`) from the
    rows of `_live_statement`. Without ``created`` the engine takes them all as
    created now, which no rule but ``duplicate_order`` looks at."""
    nan = float("nan")
    columns: dict[str, Sequence] = {
        "order": [r[0] for r in rows],
        "account": [r[1] for r in rows],
        "security": [r[2] for r in rows],
        "side": [r[3] for r in rows],
        "quantity": [r[4] for r in rows],
        "limit_price": [nan if r[5] is None else r[5] for r in rows],
    }
    if created:
        if connection.vendor in _MICROSECONDS:
            micros = [r[6] for r in rows]
        else:
            micros = [(aware_utc(r[6]) - _EPOCH) // _MICROSECOND for r in rows]
        columns["created_at"] = np.array(micros, dtype=np.int64).view("datetime64[us]")
    return columns


#: When an order was created, as UTC microseconds since 1970, in the database's words.
_MICROSECONDS = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM created_at) * 1000000 AS bigint)",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _cash_statement(account_ids: Sequence[int]) -> tuple[tuple[str, list], bool]:
    """The accounts' cash balances (account, currency, amount), by account and currency,
    then the cash committed but not booked yet (a run's deposits and withdrawals:
    `cash_on_its_way`), in its providers' order: one statement when every provider
    gives its rows as SQL (the flag says whether it did; `_cash` reads the rest)."""
    where, params = sql_in("portfolio_id", account_ids)
    balances = (
        "SELECT 0, 0, portfolio_id, currency, CAST(amount AS double precision)"
        f" FROM {CashBalance._meta.db_table} WHERE {where}"
    )
    statements = cash_on_its_way_statements(account_ids) if account_ids else []
    parts = [balances]
    for k, (sql, more) in enumerate(statements or (), 1):
        parts.append(f"SELECT {k}, * FROM ({sql}) AS on_its_way_{k}")
        params = params + list(more)
    return (" UNION ALL ".join(parts) + " ORDER BY 1, 2, 3, 4", params), statements is not None


def _cash(rows: list[tuple], account_ids: Sequence[int], *, whole: bool) -> list[tuple]:
    """The cash of `_cash_statement`'s rows, and what its providers without a statement
    give (one more query each)."""
    cash = [row[2:] for row in rows]
    if not whole:
        cash += cash_on_its_way(list(account_ids))
    return cash


@dataclass
class BookRows:
    """What a check reads of its accounts in one round trip (`_read_book_rows`)."""

    accounts: list[tuple] | None  # (key, base currency, long only, model key, stamp)
    securities: list[tuple]
    holdings: list[tuple]
    cash: list[tuple]
    live: dict[str, Sequence]
    fx: FxTable


def _read_book_rows(
    account_ids: Sequence[int],
    order_ids: Sequence[int],
    ordered: Sequence[int],
    *,
    on,
    with_accounts: bool,
    created: bool,
) -> BookRows:
    """The accounts with the rule book's stamp (``with_accounts``), their positions with
    the securities' reference data and prices, their cash, their other live orders and
    the FX rates: independent reads, sent together (`oms.bulk.read_together`: one round
    trip on PostgreSQL)."""
    accounts, orders = list(account_ids), list(order_ids)
    positions = _positions_statements(accounts, orders, ordered, on=on)
    cash_sql, whole = _cash_statement(accounts)
    statements = [
        *([_accounts_statement(accounts)] if with_accounts else []),
        *positions,
        cash_sql,
        _live_statement(accounts, orders, created=created),
        FxTable.latest_statement(),
    ]
    results = read_together(statements)
    account_rows = results.pop(0) if with_accounts else None
    security_rows = results.pop(0)
    held = results.pop(0) if len(positions) > 1 else None
    cash_rows, live_rows, fx_rows = results
    securities, holdings = _positions_with_prices(security_rows, held)
    return BookRows(
        accounts=(
            [(pk, base, bool(lo), model, stamp) for pk, base, lo, model, stamp in account_rows]
            if account_rows is not None
            else None
        ),
        securities=securities,
        holdings=holdings,
        cash=_cash(cash_rows, accounts, whole=whole),
        live=_live_orders(live_rows, created=created),
        fx=FxTable.from_rows(fx_rows),
    )


def _terms(securities: Sequence[tuple]) -> dict[int, dict]:
    """The instrument terms of the bonds and FX trades among these securities (every
    other kind is worth its price times its multiplier, with nothing accrued): one
    query when there are any, none otherwise."""
    wanted = [s[0] for s in securities if s[7] == "bond" or s[7] in FX_KINDS]
    if not wanted:
        return {}
    return {
        row[0]: dict(zip(TERMS_FIELDS, row[1:], strict=True))
        for row in Security.objects.filter(pk__in=wanted).values_list("pk", *TERMS_FIELDS)
    }


def build_book(
    orders: Sequence,
    *,
    now=None,
    account_ids: Sequence[int] | None = None,
    adv_days: int | None = None,
    wash_days: int | None = None,
    accounts: Sequence[tuple] | None = None,
    duplicates: bool = True,
    rows: BookRows | None = None,
) -> tuple[engine.Book, dict]:
    """The engine's book for the accounts of these orders (or these accounts, for a
    post-trade check with no order); also the securities by key (ticker, price) for the
    messages.

    ``adv_days``: read the average daily volume of the ordered securities over that many
    days of bars (for ``max_adv_pct``; one query). ``wash_days``: read the sales realised
    in the accounts and securities bought within that many days (for ``wash_sale``; one
    or two queries, `compliance.selectors.realised_sales`). ``accounts``: the accounts'
    (key, base currency, long only) rows if the caller has read them already.
    ``duplicates``: read when the other live orders were created (``duplicate_order``
    alone looks at it). ``rows``: what `_read_book_rows` read of the accounts, if the
    caller has read it already (with the accounts, or given ``accounts``)."""
    now = now or timezone.now()
    if account_ids is None:
        account_ids = sorted({o.portfolio_id for o in orders})
    if rows is None:
        rows = _read_book_rows(
            account_ids,
            [o.pk for o in orders],
            sorted({o.security_id for o in orders}),
            on=timezone.now().date(),
            with_accounts=accounts is None,
            created=duplicates,
        )
    if accounts is None:
        accounts = [a[:3] for a in rows.accounts]
    securities, holdings = rows.securities, rows.holdings
    cash_by: dict[tuple[int, str], float] = {}
    for account, currency, amount in rows.cash:
        cash_by[(account, currency)] = cash_by.get((account, currency), 0.0) + amount
    cash = [(account, currency, amount) for (account, currency), amount in cash_by.items()]
    live = rows.live
    # One unit's worth (portfolios.terms.unit_value): price x multiplier + accrued.
    on = now.date()
    terms = _terms(securities)
    fx = rows.fx
    adv: dict[int, float] = {}
    if adv_days and orders:
        adv = average_daily_volume({o.security_id for o in orders}, days=adv_days, now=now)
    sales = None
    if wash_days is not None:
        bought = {(o.portfolio_id, o.security_id) for o in orders if o.side == "buy"}
        if bought:
            since = datetime.combine(
                now.astimezone(UTC).date() - timedelta(days=wash_days), time.min, tzinfo=UTC
            )
            sales = realised_sales(
                bought, since=since, base_of={a[0]: a[1] for a in accounts}, fx=fx
            )
    # an FX trade's base currency is a cash leg of its own (the engine's currency_trade)
    fx_bases = [terms[s[0]].get("base_currency") if s[7] in FX_KINDS else None for s in securities]
    currencies = {s[3] for s in securities} | {c for _, c, _ in cash} | {b for b in fx_bases if b}
    bases = {b for _, b, _ in accounts}
    book = engine.Book(
        securities={
            "security": [s[0] for s in securities],
            "name": [s[1] for s in securities],  # the ticker, for the engine's messages
            "price": [s[2] if s[2] is not None else float("nan") for s in securities],
            "currency": [s[3] for s in securities],
            "issuer": [s[4] for s in securities],
            "sector": [s[5] for s in securities],
            "country": [s[6] for s in securities],
            "asset_class": [s[7] for s in securities],
            "investment_company": [s[7] == "etf" for s in securities],
            "currency_trade": [s[7] in FX_KINDS for s in securities],
            "base_currency": fx_bases,
            "multiplier": [
                float(price_multiplier(terms[s[0]])) if s[0] in terms else s[8] for s in securities
            ],
            "accrued": [
                float(accrued_per_unit(terms[s[0]], on)) if s[0] in terms else 0.0
                for s in securities
            ],
            "government": [bool(s[9]) for s in securities],
            # NaN: no volume history (max_adv_pct then fails the order, never passes it)
            "adv": [adv.get(s[0], float("nan")) for s in securities],
        },
        accounts={
            "account": [a[0] for a in accounts],
            "base_currency": [a[1] for a in accounts],
            "long_only": [bool(a[2]) for a in accounts],
        },
        holdings=_columns(holdings, ("account", "security", "quantity")),
        cash=_columns(cash, ("account", "currency", "amount")),
        fx=fx.columns(currencies, bases),
        orders=_columns([_order_row(o) for o in orders], _ORDER_COLUMNS),
        live_orders=live,
        sales=sales,
        as_of=now,
    )
    return book, {s[0]: (s[1], s[2]) for s in securities}


#: Order-level kinds whose result is about the order's security: their group is its ticker.
_PER_SECURITY = ("max_adv_pct", "wash_sale", "no_short")


def _figure(value: float | None, kind: str) -> str:
    if value is None:
        return "none"
    if kind in ("max_weight", "min_cash", "ucits_5_10_40", "diversified_fund", "max_adv_pct"):
        return f"{value:.2%}"
    if kind == "price_collar":
        return f"{value:.2%}"
    return f"{value:,.2f}"


def describe(
    rule: Rule | None,
    kind: str,
    status: str,
    value,
    limit,
    group: str,
    *,
    account_row: dict | None = None,
    order_level: bool = False,
) -> str:
    """A result in words, as the order page and the refusals show it. `account_row`:
    the rule's account-level row (``ucits_5_10_40`` reads its largest issuer and its
    40% sum there); `order_level`: `value` is the order's own measure."""
    name = rule.name if rule else kind
    if status == "pass":
        return f"{name}: passes"
    if kind == "ucits_5_10_40":
        return _describe_ucits(name, value, group, account_row or {}, order_level)
    if kind == "restricted":
        return f"{name}: on the restricted list"
    if kind == "wash_sale" and value is not None:
        days = int(round(value))
        when = "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"
        return (
            f"{name}: {group or 'the security'} was sold at a loss {when}, within the "
            f"{int(limit)}-day wash-sale window"
        )
    if kind == "max_adv_pct" and value is None:
        return (
            f"{name}: no volume history for {group or 'the security'}, so the order cannot "
            f"be shown to be within {_figure(limit, kind)} of its average daily volume"
        )
    where = f" ({group})" if group else ""
    lower_bound = kind in ("min_cash", "no_overdraft", "no_short", "diversified_fund")
    word = "below" if lower_bound else "over"
    return f"{name}{where}: {_figure(value, kind)} {word} the limit of {_figure(limit, kind)}"


def _describe_ucits(name: str, value, group: str, account: dict, order_level: bool) -> str:
    """Which leg of 5/10/40 fails: an issuer above 10%, or the issuers above 5% summing
    to more than 40% (an order row's value is its issuer's weight after; an account
    row's value is the sum, its ``max_issuer`` the largest issuer, its group that one)."""
    pct = lambda v: _figure(v, "ucits_5_10_40")  # noqa: E731
    total = _num(account.get("value"))
    largest = value if order_level else _num(account.get("max_issuer"))
    issuer = group or "one issuer"
    after = " after" if order_level else ""
    sum_leg = (
        f"the issuers above {UCITS_THRESHOLD:.0%} sum to {pct(total)}, over the limit of "
        f"{UCITS_AGGREGATE:.2%}"
    )
    if largest is not None and largest > UCITS_ISSUER + RELATIVE_TOLERANCE:
        legs = [
            f"{issuer} at {pct(largest)}{after}, over the limit of {UCITS_ISSUER:.2%} for one issuer"
        ]
        if not order_level and total is not None and total > UCITS_AGGREGATE + RELATIVE_TOLERANCE:
            legs.append(sum_leg)
        return f"{name}: " + "; ".join(legs)
    if order_level:
        # blamed as one of the issuers above 5% while their sum breaches 40%
        return f"{name}: {issuer} at {pct(value)} after, and {sum_leg}"
    return f"{name}: {sum_leg}"


#: The columns of a stored result, in the order `_result` gives them.
_RESULT_COLUMNS = (
    "order_id",
    "rule_id",
    "rule_version",
    "stage",
    "severity",
    "status",
    "value",
    '"limit"',
    '"group"',
    "passive",
    "message",
    "checked_at",
)
#: Results per INSERT at most (12 parameters each; PostgreSQL allows 65,535).
_RESULTS_PER_INSERT = 2000


def _result(order_id, rule, r, stage: str, status: str, passive: bool, words: str, now):
    """What a rule found of an order (`r`: the engine's row), as it is stored: a row of
    `PretradeResult` in the order of `_RESULT_COLUMNS`."""
    return (
        order_id,
        rule.pk,
        r["version"],
        stage,
        r["severity"],
        status,
        _num(r["value"]),
        _num(r["limit"]),
        str(r["group"] or "")[:200],
        passive,
        words[:500],
        now,
    )


#: The type of each column of `_RESULT_COLUMNS` but the last (the time of the check, one
#: for all), as PostgreSQL's arrays of a result's values carry them.
_RESULT_TYPES = (
    "bigint",
    "bigint",
    "integer",
    "text",
    "text",
    "text",
    "double precision",
    "double precision",
    "text",
    "boolean",
    "text",
)
#: Results per INSERT on PostgreSQL (each column is one array parameter).
_RESULTS_PER_ARRAY_INSERT = 50_000


def _results_statements(rows: list[tuple]) -> list[tuple[str, list]]:
    """The INSERTs that append the results (rows of `_result`, all of one check, so of
    one time): a few whatever their number, without a model instance per row (the ORM's
    bulk_create cost more than the rest of the check's writing). On PostgreSQL each
    column is one array parameter (``INSERT ... SELECT FROM unnest(...)``): the same
    text for every check, which the driver parses once, where a list of a few hundred
    placeholders was parsed again at each check. Elsewhere as many rows of VALUES per
    statement as the backend takes parameters (SQLite's limit is low)."""
    if not rows:
        return []
    table = connection.ops.quote_name(PretradeResult._meta.db_table)
    columns = ", ".join(_RESULT_COLUMNS)
    checked_at = connection.ops.adapt_datetimefield_value(rows[0][-1])
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{t}[]" for t in _RESULT_TYPES)
        sql = f"INSERT INTO {table} ({columns}) SELECT *, %s FROM unnest({arrays})"
        return [
            (sql, [checked_at, *(list(c) for c in zip(*chunk, strict=True))])
            for start in range(0, len(rows), _RESULTS_PER_ARRAY_INSERT)
            for chunk in [[row[:-1] for row in rows[start : start + _RESULTS_PER_ARRAY_INSERT]]]
        ]
    one = "(" + ", ".join(["%s"] * len(_RESULT_COLUMNS)) + ")"
    per = connection.ops.bulk_batch_size(_RESULT_COLUMNS, rows) or len(rows)
    per = max(1, min(per, _RESULTS_PER_INSERT))
    return [
        (
            f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * len(chunk)),
            [value for row in chunk for value in (*row[:-1], checked_at)],
        )
        for start in range(0, len(rows), per)
        for chunk in [rows[start : start + per]]
    ]


def pretrade_check(orders: Sequence, *, stage: str, actor) -> dict[int, pretrade.Verdict]:
    """The verdict on each order, checked as one batch; stores the results."""
    return _check(orders, stage=stage, overrides=False)[0]


def _check(
    orders: Sequence, *, stage: str, overrides: bool
) -> tuple[dict[int, pretrade.Verdict], dict[int, tuple[int, set[int]]]]:
    """`pretrade_check`, and with ``overrides`` the approved overrides in force of the
    orders (`override_in_force`), read in the round trip that stores the results."""
    now = timezone.now()
    account_ids = sorted({o.portfolio_id for o in orders})
    order_ids = [o.pk for o in orders]
    # the accounts with the rule book's stamp, read with the rest of the book in one
    # round trip: the rule book itself is loaded once per process and stamp
    # (`engine_book_in_force`, decision 37)
    read = _read_book_rows(
        account_ids,
        order_ids,
        sorted({o.security_id for o in orders}),
        on=now.date(),
        with_accounts=True,
        created=True,
    )
    rows = read.accounts
    model_of = {pk: model for pk, _, _, model, _ in rows}
    stamp = rows[0][4] if rows else None
    ebook = engine_book_in_force(timezone.localdate(now), "pre", model_of, stamp=stamp)
    if not ebook.rules:
        return {o.pk: pretrade.APPROVED for o in orders}, {}
    kinds = {r.kind for r in ebook.rules}
    wash = [r.params["days"] for r in ebook.rules if r.kind == "wash_sale"]
    book, securities = build_book(
        orders,
        now=now,
        account_ids=account_ids,
        adv_days=_adv_days() if "max_adv_pct" in kinds else None,
        wash_days=max(wash) if wash else None,
        accounts=[(pk, base, long_only) for pk, base, long_only, _, _ in rows],
        rows=read,
    )
    result = engine.check(book, ebook.rules, ebook.lists)
    skipped = {r["account"]: r["reason"] for r in result.records("skipped")}
    by_order: dict[int, list[dict]] = defaultdict(list)
    for row in result.records("order_results"):
        by_order[row["order"]].append(row)
    by_account: dict[int, list[dict]] = defaultdict(list)
    for row in result.records("account_results"):
        by_account[row["account"]].append(row)
    verdicts: dict[int, pretrade.Verdict] = {}
    stored: list[tuple] = []
    security_of = {o.pk: o.security_id for o in orders}
    for row in result.records("orders"):
        order_id, account = row["order"], row["account"]
        if row["status"] == "unchecked":
            ticker, price = securities.get(security_of[order_id], ("?", None))
            reason = skipped.get(account) or "the account could not be valued"
            if price is None:
                reason = f"no price for {ticker}"
            message = f"Could not be checked: {reason}. Compliance must look at it."
            verdicts[order_id] = pretrade.Verdict(
                "needs_override", message=message, details={"unchecked": True}
            )
            stored.append(
                (order_id, None, None, stage, "", PretradeResult.Status.FAIL.value)
                + (None, None, "", False, message[:500], now)
            )
            continue
        seen: set[int] = set()
        failed_words: list[str] = []
        account_rows = {a["rule"]: a for a in by_account.get(account, ())}
        for r in by_order.get(order_id, ()):
            rule = ebook.by_id[rule_key(r["rule"])]
            seen.add(r["rule"])
            if r["kind"] in _PER_SECURITY:
                r["group"] = securities.get(security_of[order_id], ("?", None))[0]
            words = describe(
                rule,
                r["kind"],
                r["status"],
                r["value"],
                r["limit"],
                r["group"],
                account_row=account_rows.get(r["rule"]),
                order_level=True,
            )
            if r["status"] != "pass":
                failed_words.append(words)
            stored.append(_result(order_id, rule, r, stage, r["status"], False, words, now))
        for r in by_account.get(account, ()):
            if r["rule"] in seen or engine.KINDS[r["kind"]].level == "order":
                continue
            rule = ebook.by_id[rule_key(r["rule"])]
            if r["kind"] == "no_short" and r["group"] is not None:
                r["group"] = securities.get(r["group"], (r["group"], None))[0]
            status = r["status"]
            if status == "fail":
                # an active breach not laid on this order: this order does not move it
                status = "pass"
            words = describe(
                rule, r["kind"], status, r["value"], r["limit"], r["group"], account_row=r
            )
            if r["passive"]:
                words = f"{rule.name}: already in breach ({_figure(_num(r['value']), r['kind'])}),"
                words += " not made worse"
            stored.append(_result(order_id, rule, r, stage, status, bool(r["passive"]), words, now))
        names = lambda ids: tuple(  # noqa: E731
            dict.fromkeys(ebook.by_id[rule_key(i)].name for i in ids)
        )
        status = row["status"]
        verb = {"approved": "Passes", "needs_override": "Needs an override", "rejected": "Rejected"}
        message = verb[status]
        if failed_words:
            message += ": " + "; ".join(failed_words)
        verdicts[order_id] = pretrade.Verdict(
            status,
            failed=names(row["failed"]),
            warned=names(row["warned"]),
            message=message[:1000],
            details={"rules": sorted({rule_key(i) for i in row["failed"]})},
        )
    statements = _results_statements(stored)
    if overrides:
        statements.append(_overrides_statement(order_ids, now))
    written = read_together(statements)
    return verdicts, _overrides_from_rows(written[-1]) if overrides else {}


def override_in_force(order_ids: Sequence[int], now=None) -> dict[int, tuple[int, set[int]]]:
    """The approved, unexpired override of each of these orders (if any), as its key
    and the keys of the rules it covers: one plain statement (the overrides with their
    rules), the last decided winning."""
    ids = list(order_ids)
    if not ids:
        return {}
    [rows] = read_together([_overrides_statement(ids, now or timezone.now())])
    return _overrides_from_rows(rows)


def _overrides_statement(order_ids: Sequence[int], now) -> tuple[str, list]:
    rules = Override.rules.through._meta.db_table
    orders, params = sql_in("o.order_id", order_ids)
    return (
        f"SELECT o.id, o.order_id, r.rule_id FROM {Override._meta.db_table} o"
        f" LEFT JOIN {rules} r ON r.override_id = o.id"
        f" WHERE {orders} AND o.status = %s"
        " AND (o.expires_at IS NULL OR o.expires_at > %s)"
        " ORDER BY o.decided_at, o.id",
        [*params, Override.Status.APPROVED.value, connection.ops.adapt_datetimefield_value(now)],
    )


def _overrides_from_rows(rows: list[tuple]) -> dict[int, tuple[int, set[int]]]:
    found: dict[int, tuple[int, set[int]]] = {}
    for pk, order_id, rule_id in rows:
        if order_id not in found or found[order_id][0] != pk:
            found[order_id] = (pk, set())
        if rule_id is not None:
            found[order_id][1].add(rule_id)
    return found


def checker(orders: Sequence, *, stage: str, actor) -> dict[int, pretrade.Verdict]:
    """The checker registered with `trading.pretrade`: the check, where an approved
    override in force lets through an order whose soft failures it covers (the
    overrides of the orders read in the round trip that stores the results)."""
    # where the overrides can be read in the round trip that stores the results, they
    # are read for every order; otherwise with a statement of their own, for those held
    together = stage != "proposal" and one_round_trip()
    verdicts, overrides = _check(orders, stage=stage, overrides=together)
    held = [pk for pk, v in verdicts.items() if v.status == "needs_override"]
    if held and stage != "proposal":
        if not together:
            overrides = override_in_force(held)
        for pk in held:
            if pk not in overrides:
                continue
            override, covered = overrides[pk]
            wanted = set(verdicts[pk].details.get("rules", ()))
            if wanted <= covered or (verdicts[pk].details.get("unchecked") and not wanted):
                v = verdicts[pk]
                verdicts[pk] = pretrade.Verdict(
                    "approved",
                    failed=v.failed,
                    warned=v.warned,
                    message=f"Override {override} in force: {v.message}",
                    details=v.details | {"override": override},
                )
    return verdicts
