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

from django.db.models import Q

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


def lock_blocks_orders(target_by_block: dict[int, str]) -> list[Order]:
    """The orders of several blocks, locked in one statement (in pk order); of each
    block only those not already in the status given for it. For their following
    the block (`orders_follow_blocks`): each with its status, block and what names it
    in the trail (side, quantity, ticker), no more; reading every column of the order,
    its account and its security was half the CPU of a `route_create`."""
    if not target_by_block:
        return []
    blocks_by_target: dict[str, list[int]] = {}
    for block_id, target in target_by_block.items():
        blocks_by_target.setdefault(target, []).append(block_id)
    wanted = Q()
    for target, block_ids in blocks_by_target.items():
        wanted |= Q(block_id__in=block_ids) & ~Q(status=target)
    return list(
        Order.objects.select_for_update(of=("self",))
        .select_related("security")
        .only("status", "block_id", "side", "quantity", "security__ticker")
        .filter(wanted)
        .order_by("pk")
    )


def lock_blocks(pks: Iterable[int]) -> list[Block]:
    """Blocks locked in one statement, in pk order."""
    return list(
        Block.objects.select_for_update(of=("self",))
        .select_related("security")
        .filter(pk__in=list(pks))
        .order_by("pk")
    )


def lock_routes(pks: Iterable[int]) -> list[Route]:
    """Routes locked in one statement, in pk order."""
    return list(
        Route.objects.select_for_update(of=("self",))
        .select_related("broker")
        .filter(pk__in=list(pks))
        .order_by("pk")
    )


def lock_orders_of_blocks(block_ids: Iterable[int]) -> list[Order]:
    """Every order of several blocks, locked in one statement (in pk order)."""
    return list(
        Order.objects.select_for_update(of=("self",))
        .select_related("portfolio", "security")
        .filter(block_id__in=list(block_ids))
        .order_by("pk")
    )
