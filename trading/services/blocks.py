"""How a block follows its routes, and its account orders follow the block.

A block's status is derived from its routes' fills: filled, partially filled,
working while a route is live, open again when every route ended unfilled.
A day block that is partly filled when every route has ended, one of them
because the broker ended its day (expired or done for day), is done for the
day; a trader can also end a partly filled block for the day. A block that is
filled or done for the day is allocated (`allocations.block_allocate`, queued
after commit).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import audit_record, audit_record_many, audited_transaction, snapshot
from oms import push
from oms.roles import Action, require
from oms.state import move
from oms.tasking import enqueue_on_commit
from trading import locks
from trading.models import Block, Order, Route, TimeInForce

#: Route ends that mean the broker's trading day is over for a day order.
_DAY_OVER = frozenset({Route.Status.EXPIRED, Route.Status.DONE_FOR_DAY})


def _day_over_at_broker(block: Block) -> bool:
    return (
        block.time_in_force == TimeInForce.DAY
        and block.routes.filter(status__in=_DAY_OVER, time_in_force=TimeInForce.DAY).exists()
    )


def block_changed(block_id: int) -> None:
    """Tell open blotters (and the block's page) that a block changed: after
    commit, on the push channel (oms/push.py)."""
    push.publish("blotter", {"block": block_id})


def allocate_when_ended(block: Block) -> None:
    """Queue the allocation of a block whose trading has ended with fills."""
    if block.status in Block.ALLOCATABLE_STATES and block.filled_quantity > 0:
        enqueue_on_commit("trading.tasks.allocate_block", block.pk)


def allocate_all_when_ended(blocks) -> None:
    """`allocate_when_ended` for several blocks: one task allocates those that ended
    with fills, each block in a transaction of its own (`allocations.blocks_allocate`)."""
    ended = [b.pk for b in blocks if b.status in Block.ALLOCATABLE_STATES and b.filled_quantity > 0]
    if len(ended) == 1:
        enqueue_on_commit("trading.tasks.allocate_block", ended[0])
    elif ended:
        enqueue_on_commit("trading.tasks.allocate_blocks", ended)


def block_done_for_day(*, actor, block_id: int, reason: str = "") -> Block:
    """A trader ends a partly filled block for the day: nothing more is routed,
    and what filled is allocated. Every route must have ended first (cancel the
    working ones)."""
    require(actor, Action.BLOCK_ROUTE)
    with audited_transaction():
        block = locks.lock_block(block_id)
        if block.routes.exclude(status__in=Route.TERMINAL_STATES).exists():
            raise ValidationError(f"Block #{block.pk} has routes still working: cancel them first.")
        if block.filled_quantity == 0:
            raise ValidationError(
                f"Nothing of block #{block.pk} is filled: cancel its orders instead."
            )
        before = snapshot(block, Block.AUDIT_FIELDS)
        move(block, Block.Status.DONE_FOR_DAY)
        block.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            kind="block.done_for_day",
            obj=block,
            before=before,
            after=snapshot(block, Block.AUDIT_FIELDS),
            reason=reason,
        )
        allocate_when_ended(block)
        block_changed(block.pk)
    return block


def block_status_by_routes(block: Block, *, live: bool, day_over) -> str:
    """The status an open block's figures and routes give it: ``live`` whether a route
    of it is still live, ``day_over()`` whether a day route of it ended with the
    broker's day (asked only when it matters)."""
    if block.filled_quantity >= block.quantity:
        return Block.Status.FILLED
    if block.filled_quantity > 0 and not live and day_over():
        return Block.Status.DONE_FOR_DAY  # allocated with what filled
    if block.filled_quantity > 0:
        return Block.Status.PARTIALLY_FILLED
    if live or block.routed_quantity > 0:
        return Block.Status.WORKING
    return Block.Status.OPEN  # every route ended unfilled: the block can be routed again


#: Route ends that mean the broker's trading day is over for a day order (public).
DAY_OVER = _DAY_OVER


def block_follow_routes(block: Block, *, actor_name: str | None, before: dict, actor=None) -> None:
    if block.status not in Block.OPEN_STATES:
        # Filled, allocated or closed: a late report (an acknowledgement that arrives
        # after the fills, say) is recorded on its route but moves the block no more.
        block.save(update_fields=[*Block.FIGURE_FIELDS, "updated_at"])
        block_changed(block.pk)
        return
    live = block.routes.exclude(status__in=Route.TERMINAL_STATES).exists()
    target = block_status_by_routes(block, live=live, day_over=lambda: _day_over_at_broker(block))
    if target != block.status:
        move(block, target)
    block.save(update_fields=["status", *Block.FIGURE_FIELDS, "updated_at"])
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
    allocate_when_ended(block)
    block_changed(block.pk)


_ORDER_STATUS_FOR_BLOCK = {
    Block.Status.OPEN: Order.Status.RELEASED,
    Block.Status.WORKING: Order.Status.WORKING,
    Block.Status.PARTIALLY_FILLED: Order.Status.PARTIALLY_FILLED,
    Block.Status.FILLED: Order.Status.PARTIALLY_FILLED,  # filled for the account at allocation
}


#: The block statuses its account orders follow (the others leave them as they are).
ORDERS_FOLLOW = frozenset(_ORDER_STATUS_FOR_BLOCK)


def orders_follow_block(block: Block, *, actor, actor_name: str | None = None) -> None:
    orders_follow_blocks([block], actor=actor, actor_name=actor_name)


def orders_follow_blocks(
    blocks, *, actor, actor_name: str | None = None, statuses: dict[int, str] | None = None
) -> None:
    """Account orders show the progress of their blocks until allocation.

    Set-based, for one block or many: the blocks' orders are locked in one statement, each one's move is
    checked against the order's map, the moved ones are written in one UPDATE
    (they all end in one status) and their events appended in one INSERT, so the
    cost does not grow with the number of orders in the block."""
    # ``statuses``: the block status each block's orders follow, when not its own now
    # (the last one a batch of reports left them to follow)
    statuses = statuses or {}
    targets = {}
    for block in blocks:
        status = statuses.get(block.pk, block.status)
        if status in _ORDER_STATUS_FOR_BLOCK:
            targets[block.pk] = (block, _ORDER_STATUS_FOR_BLOCK[status])
    if not targets:
        return
    moved: list[tuple[Order, dict, dict]] = []
    by_target: dict[str, list[int]] = {}
    for order in locks.lock_blocks_orders({pk: target for pk, (_, target) in targets.items()}):
        block, target = targets[order.block_id]
        before = {"status": order.status}
        if target not in Order.TRANSITIONS[order.status] and order.status == Order.Status.RELEASED:
            move(order, Order.Status.WORKING)  # a late fill on a block that was open again
        move(order, target)
        by_target.setdefault(target, []).append(order.pk)
        moved.append(
            (
                order,
                before,
                {
                    "status": order.status,
                    "block": block.pk,
                    "block_status": statuses.get(block.pk, block.status),
                },
            )
        )
    if not moved:
        return
    now = timezone.now()
    for target, pks in by_target.items():
        Order.objects.filter(pk__in=pks).update(status=target, updated_at=now)
    audit_record_many(actor=actor, actor_name=actor_name, kind="order.status", entries=moved)
