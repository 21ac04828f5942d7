"""What the trading desk's tests share: orders of the book's accounts, approved and
released by their portfolio manager, in the block they join."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from trading.brokers import ExecutionReport
from trading.models import Block
from trading.services import orders as order_services


def released_block(pm, book, *quantities: str, ticker: str = "AAA", **terms) -> Block:
    """The PM's buys of `ticker` for the book's accounts, one order of each quantity (the
    first account's first), approved and released: the block they join. `terms` go to
    every order (``order_type="limit", limit_price=Decimal(50)``, ...)."""
    assert 0 < len(quantities) <= len(book["accounts"]), quantities
    orders = [
        order_services.order_create(
            actor=pm,
            portfolio=account,
            security=book["securities"][ticker],
            side="buy",
            quantity=Decimal(quantity),
            **terms,
        )
        for account, quantity in zip(book["accounts"], quantities, strict=False)
    ]
    ids = [order.pk for order in orders]
    order_services.orders_approve(actor=pm, order_ids=ids)
    order_services.orders_release(actor=pm, order_ids=ids)
    return Block.objects.get(orders__pk=ids[0])


def new_order(pm, account, security, quantity, side="buy"):
    """The PM's draft order of `quantity` of `security` for `account`."""
    return order_services.order_create(
        actor=pm, portfolio=account, security=security, side=side, quantity=Decimal(quantity)
    )


def approved(pm, order):
    """`order` after the PM's approval asked the pre-trade check (approved or held)."""
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    return order


def broker_report(
    route, exec_id, exec_type, ord_status, last=0, cum=0, *, price="100", at=None, **extra
) -> ExecutionReport:
    """The route's broker reporting on it (at `at`, or now): `last` filled at `price`,
    `cum` filled in all at `price` on average; `extra` are more of the report's fields.
    (AAA trades at 100 in the book.)"""
    return ExecutionReport(
        broker=route.broker.code,
        cl_ord_id=route.cl_ord_id,
        exec_id=exec_id,
        exec_type=exec_type,
        ord_status=ord_status,
        transact_time=at or timezone.now(),
        last_quantity=Decimal(last),
        last_price=Decimal(price) if last else None,
        cumulative_quantity=Decimal(cum),
        average_price=Decimal(price) if cum else None,
        **extra,
    )
