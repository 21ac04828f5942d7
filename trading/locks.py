"""The row locks of the trading domain, always taken in one order.

Block, then Route, then Order (each ordered by pk), then holdings. Every writer
takes them through these helpers so that two writers never wait on each other
in opposite orders. Each locks its own rows only (``of=("self",)``): the rows
joined to read them (the security, the broker, the account) are not locked, so
that routing one block never waits on a price load or another account's order.
On SQLite select_for_update is a no-op: there, the settings start every
transaction with BEGIN IMMEDIATE, which serialises writers.
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Block, Order, Route


def lock_block(pk: int) -> Block:
    return Block.objects.select_for_update(of=("self",)).select_related("security").get(pk=pk)


def lock_route(pk: int) -> Route:
    return Route.objects.select_for_update(of=("self",)).select_related("broker").get(pk=pk)


def lock_orders(pks: Iterable[int]) -> list[Order]:
    return list(
        Order.objects.select_for_update(of=("self",))
        .select_related("portfolio", "security")
        .filter(pk__in=list(pks))
        .order_by("pk")
    )


def lock_block_orders(block: Block, *, only_not: str | None = None) -> list[Order]:
    """The block's orders, locked; ``only_not``: only those not in that status (the
    rest are neither read nor locked)."""
    orders = (
        Order.objects.select_for_update(of=("self",))
        .select_related("portfolio", "security")
        .filter(block=block)
    )
    if only_not is not None:
        orders = orders.exclude(status=only_not)
    return list(orders.order_by("pk"))
