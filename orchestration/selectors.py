"""Reads of rebalance runs shared by the services, pages, API and tasks."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import connection
from django.db.models import Case, Count, DecimalField, F, Q, Sum, When

from audit.models import AuditEvent
from oms.bulk import ids_in, sql_in
from portfolios.models import RebalanceRun
from portfolios.selectors import LoadedBook, load_book
from trading.models import Order, Side
from trading.services.bulk import in_ranges

#: Orders whose whole quantity is on its way: approved, on the desk, or filled and
#: waiting for allocation (positions are booked at allocation).
PENDING_STATES = Order.COMMITTED_STATES | {Order.Status.FILLED}
#: Orders that ended with fills not yet allocated: their filled quantity is on its way.
ENDED_UNALLOCATED = (Order.Status.CANCELLED, Order.Status.EXPIRED, Order.Status.DONE_FOR_DAY)


def pending_quantities(portfolio_ids: Iterable[int]) -> list[tuple[int, int, float]]:
    """``(account, security, signed quantity)`` the desk will still add to (buys) or
    take from (sells) these accounts' positions, in one query."""
    portfolio_ids = list(portfolio_ids)
    rows = (
        Order.objects.filter(ids_in(Order, "portfolio_id", portfolio_ids))
        .filter(
            Q(status__in=PENDING_STATES) | Q(status__in=ENDED_UNALLOCATED, filled_quantity__gt=0)
        )
        .values("portfolio_id", "security_id", "side")
        .annotate(
            total=Sum(
                Case(
                    When(status__in=PENDING_STATES, then=F("quantity")),
                    default=F("filled_quantity"),
                    output_field=DecimalField(),
                )
            )
        )
        .order_by()
    )
    signed = {Side.BUY: 1, Side.BUY_TO_COVER: 1, Side.SELL: -1, Side.SELL_SHORT: -1}
    return [
        (row["portfolio_id"], row["security_id"], signed[row["side"]] * float(row["total"]))
        for row in rows
    ]


def load_projected_book(portfolio_ids: Iterable[int]) -> LoadedBook:
    """The book a run sizes its trades on: holdings plus the orders on their way, so
    that a run never re-buys what the desk is already buying, nor sells twice."""
    portfolio_ids = list(portfolio_ids)
    return load_book(portfolio_ids, pending=pending_quantities(portfolio_ids))


def order_history(order: Order) -> list[AuditEvent]:
    """Every audit event of an order, oldest first: its own, and the events of its run
    that moved it in bulk (they name their orders as id ranges)."""
    events = list(AuditEvent.objects.filter(object_type="trading.order", object_id=str(order.pk)))
    if order.rebalance_run_id:
        for event in AuditEvent.objects.filter(
            object_type=RebalanceRun._meta.label_lower,
            object_id=str(order.rebalance_run_id),
            kind__startswith="orders.",
        ):
            if _names(event.after, order.pk):
                events.append(event)
    return sorted(events, key=lambda e: (e.occurred_at, e.pk))


def _names(after: dict, pk: int) -> bool:
    for key, value in after.items():
        if key == "orders" or key in Order.Status.values:
            if in_ranges(pk, value):
                return True
        elif key == "blocks" and any(in_ranges(pk, b["orders"]) for b in value.values()):
            return True
    return False


def proposal_totals(run: RebalanceRun) -> list[dict]:
    """The run's live orders per security and side, as the desk will see them as blocks:
    total quantity, how many accounts, the estimated value in the security's currency,
    and that value in each account base currency the orders belong to. Two queries (the
    orders grouped in the database, the FX rates)."""
    from portfolios.selectors import FxTable

    rows = (
        run.orders.exclude(status__in=(Order.Status.CANCELLED, Order.Status.REJECTED))
        .values("security__ticker", "security__currency", "side", "portfolio__base_currency")
        .annotate(
            quantity_total=Sum("quantity"),
            accounts=Count("portfolio", distinct=True),
            # a contract's multiplier; a bond's 0.01 (clean value, accrued interest aside)
            value=Sum(
                F("quantity") * F("estimated_price") * F("security__multiplier"),
                output_field=DecimalField(),
            ),
        )
        .order_by("security__ticker", "side", "portfolio__base_currency")
    )
    fx = None
    totals: dict[tuple, dict] = {}
    for row in rows:
        key = (row["security__ticker"], row["side"])
        total = totals.setdefault(
            key,
            {
                "security": row["security__ticker"],
                "side": row["side"],
                "quantity": Decimal(0),
                "accounts": 0,
                "value": Decimal(0),
                "currency": row["security__currency"],
                "base_values": {},
            },
        )
        total["quantity"] += row["quantity_total"]
        total["accounts"] += row["accounts"]
        value = row["value"] or Decimal(0)
        total["value"] += value
        base = row["portfolio__base_currency"]
        if base == total["currency"]:
            rate = 1.0
        else:
            fx = fx or FxTable.latest()
            rate = fx.rate(total["currency"], base)
        converted = (
            None if rate is None else (value * Decimal(repr(rate))).quantize(Decimal("0.01"))
        )
        previous = total["base_values"].get(base, Decimal(0))
        total["base_values"][base] = (
            None if converted is None or previous is None else previous + converted
        )
    return list(totals.values())


def run_options(params: dict):
    """The engine's options of a run's parameters."""
    from portfolios.rebalance import Options

    cap = params.get("gains_cap")
    return Options(
        trade_to=params.get("trade_to", "target"),
        lot_selection=params.get("lot_selection", "fifo"),
        gains_cap=None if cap is None else float(cap),
        wash_sale_days=int(params.get("wash_sale_days", 30)),
    )


def account_trades(orders, edited: int | None = None, quantity: Decimal | None = None):
    import pandas as pd

    rows = []
    for order in orders:
        q = quantity if order.pk == edited else order.quantity
        sign = 1.0 if order.side in (Side.BUY, Side.BUY_TO_COVER) else -1.0
        rows.append(
            {
                "account": order.portfolio_id,
                "security": order.security_id,
                "quantity": sign * float(q),
            }
        )
    return pd.DataFrame(rows, columns=["account", "security", "quantity"])


def account_what_if(run: RebalanceRun, account, orders, *, edited=None, quantity=None):
    """The what-if of an account's proposed orders in a run, measured on its projected
    book as it stands (with the cash need the run used): ``(as proposed, with order
    `edited` at `quantity`)``, each a ``portfolios.rebalance.WhatIf``. ValueError says
    why the account cannot be measured."""
    from portfolios.rebalance import what_if

    loaded = load_projected_book([account.pk])
    if account.pk in loaded.skipped:
        raise ValueError(f"{account.code} cannot be valued: {loaded.skipped[account.pk]}.")
    book = loaded.book
    figures = run.summary.get(account.code, {})
    book.accounts["cash_need"] = float(figures.get("cash_need") or 0.0)
    options = run_options(run.parameters)
    before = what_if(book, account_trades(orders), options)
    if edited is None:
        return before, before
    return before, what_if(book, account_trades(orders, edited, quantity), options)


#: Which accounts a run covers, besides a hand-picked selection.
SCOPES = {
    "selected": "The accounts ticked below",
    "all": "All my accounts",
    "out_of_band": "All my accounts out of band",
    "model": "All my accounts on a model",
}
SCOPE_CHOICES = list(SCOPES.items())


def empty_scope_message(scope: str, model=None) -> str:
    """Why a run over `scope` has no account, in the PM's words."""
    if scope == "out_of_band":
        return "None of your accounts is out of band."
    if scope == "model":
        return f"None of your active accounts is on {model}."
    if scope == "selected":
        return "Choose at least one account."
    return "You have no active account to rebalance."


def accounts_in_scope(user, scope: str, *, model=None, selected: Iterable = ()):
    """The active accounts a run over `scope` covers, among those the user may
    rebalance: the `selected` ones, all of them, those on `model`, or those out of
    band. Out of band is read from the stored drift; an account whose figures are
    missing or older than their inputs is included too (the run measures it again
    and proposes nothing for an account in band)."""
    from oms.roles import Action
    from portfolios.selectors import portfolios_for_action

    mine = portfolios_for_action(user, Action.REBALANCE_RUN)
    if scope == "selected":
        return mine.filter(pk__in=[getattr(p, "pk", p) for p in selected])
    if scope == "all":
        return mine
    if scope == "model":
        return mine.filter(model=model)
    if scope == "out_of_band":
        return mine.filter(
            Q(drift_figures__isnull=True)
            | Q(drift_figures__out_of_band=True)
            | Q(drift_figures__inputs_changed_at__gt=F("drift_figures__computed_at"))
        )
    raise ValueError(f"unknown scope {scope!r}")


def cash_flows_in_runs(account_ids) -> list[tuple[int, str, float]]:
    """The cash flows runs hold for these accounts and have not booked yet, signed as
    cash: a deposit the run invests (> 0), a withdrawal it raises (< 0), in the flow's
    currency; open runs' and withdrawals waiting for a released run's sells, newest
    first. The pre-trade check counts them till they are booked on the cash balances
    (`portfolios.selectors.cash_on_its_way`; it reads `cash_flows_statement` with the
    cash balances, in one statement). One query."""
    ids = list(account_ids)
    if not ids:
        return []
    sql, params = cash_flows_statement(ids)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ORDER BY 1", params)
        return [(account, currency, amount) for _, account, currency, amount in cursor.fetchall()]


def cash_flows_statement(account_ids) -> tuple[str, list]:
    """`cash_flows_in_runs` as one plain SELECT of ``(seq, account, currency, amount)``
    (``seq``: newest first), for `portfolios.selectors.register_cash_on_its_way`. Plain
    SQL: the pre-trade check asks on every order, and the ORM's building of the
    statement cost more than the database's answer."""
    from .models import CashFlow

    accounts, account_params = sql_in("portfolio_id", account_ids)
    amount = "CAST(amount AS double precision)"
    return (
        "SELECT ROW_NUMBER() OVER (ORDER BY created_at DESC, id DESC), portfolio_id, currency,"
        f" CASE WHEN kind = %s THEN {amount} ELSE -{amount} END FROM {CashFlow._meta.db_table}"
        f" WHERE {accounts} AND status IN (%s, %s)",
        [
            CashFlow.Kind.DEPOSIT.value,
            *account_params,
            CashFlow.Status.IN_RUN.value,
            CashFlow.Status.AWAITING_SELLS.value,
        ],
    )
