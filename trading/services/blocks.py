"""How a block follows its routes, and its account orders follow the block.

A block's status is derived from its routes' fills: filled, partially filled,
working while a route is live, open again when every route ended unfilled.
Called by the route and execution services inside their transactions, with the
block locked.
"""

from __future__ import annotations

from audit.services import audit_record, snapshot
from oms.state import move
from trading import locks
from trading.models import Block, Order, Route


def block_follow_routes(block: Block, *, actor_name: str | None, before: dict, actor=None) -> None:
    if block.status not in Block.OPEN_STATES:
        # Filled, allocated or closed: a late report (an acknowledgement that arrives
        # after the fills, say) is recorded on its route but moves the block no more.
        block.save(
            update_fields=["routed_quantity", "filled_quantity", "average_price", "updated_at"]
        )
        return
    live = block.routes.exclude(status__in=Route.TERMINAL_STATES).exists()
    if block.filled_quantity >= block.quantity:
        target = Block.Status.FILLED
    elif block.filled_quantity > 0:
        target = Block.Status.PARTIALLY_FILLED
    elif live or block.routed_quantity > 0:
        target = Block.Status.WORKING
    else:
        target = Block.Status.OPEN  # every route ended unfilled: the block can be routed again
    if target != block.status:
        move(block, target)
    block.save(
        update_fields=[
            "status",
            "routed_quantity",
            "filled_quantity",
            "average_price",
            "updated_at",
        ]
    )
    after = snapshot(block, Block.AUDIT_FIELDS)
    if after != before:
        audit_record(
            actor=actor,
            actor_name=actor_name,
            kind="block.updated",
            obj=block,
            before=before,
            after=after,
        )
    orders_follow_block(block, actor=actor, actor_name=actor_name)


_ORDER_STATUS_FOR_BLOCK = {
    Block.Status.OPEN: Order.Status.RELEASED,
    Block.Status.WORKING: Order.Status.WORKING,
    Block.Status.PARTIALLY_FILLED: Order.Status.PARTIALLY_FILLED,
    Block.Status.FILLED: Order.Status.PARTIALLY_FILLED,  # filled for the account at allocation
}


def orders_follow_block(block: Block, *, actor, actor_name: str | None = None) -> None:
    """Account orders show the progress of their block until allocation."""
    target = _ORDER_STATUS_FOR_BLOCK.get(block.status)
    if target is None:
        return
    for order in locks.lock_block_orders(block):
        if order.status == target:
            continue
        before = {"status": order.status}
        move(order, target)
        order.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            actor_name=actor_name,
            kind="order.status",
            obj=order,
            before=before,
            after={"status": order.status, "block": block.pk, "block_status": block.status},
        )
