"""Routes: (part of) a block sent to a broker, its one send, a cancel request,
and the ends of a route whose order never reached the broker.

A route is created here and sent by the routing worker after commit
(`route_send`); how the broker answers is the execution services' business.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from audit.services import audit_record, audited_transaction, snapshot
from oms.numbers import qty as round_qty
from oms.roles import Action, require
from oms.state import TransitionError, move
from oms.tasking import enqueue, enqueue_on_commit
from trading import locks
from trading.brokers import RouteTicket, adapter_for
from trading.models import Block, Broker, Route

from .blocks import block_follow_routes, orders_follow_block
from .executions import apply_in_order

log = logging.getLogger(__name__)

#: Only a database that is briefly unavailable or locked is worth a retry.
TRANSIENT = (OperationalError,)


def _new_cl_ord_id() -> str:
    return f"OMS-{timezone.now():%Y%m%d}-{uuid.uuid4().hex[:12].upper()}"


def route_create(*, actor, block_id: int, broker: Broker, quantity: Decimal | None = None) -> Route:
    """Route all or part of a block to a broker; the routing worker sends it after commit."""
    require(actor, Action.BLOCK_ROUTE)
    with audited_transaction():
        block = locks.lock_block(block_id)
        if block.status not in Block.OPEN_STATES:
            raise ValidationError(
                f"Block #{block.pk} is {block.get_status_display().lower()}: it cannot be routed."
            )
        if not broker.is_active:
            raise ValidationError({"broker": [f"Broker {broker.code} is not active."]})
        available = block.quantity - block.routed_quantity
        quantity = available if quantity is None else round_qty(quantity)
        if quantity <= 0:
            raise ValidationError(
                {
                    "quantity": ["Nothing left to route: the whole block is with brokers."]
                    if available <= 0
                    else ["Quantity must be positive."]
                }
            )
        if quantity > available:
            raise ValidationError(
                {"quantity": [f"Only {available} of the block is left to route."]}
            )
        route = Route.objects.create(
            block=block,
            broker=broker,
            cl_ord_id=_new_cl_ord_id(),
            quantity=quantity,
            order_type=block.order_type,
            limit_price=block.limit_price,
            time_in_force=block.time_in_force,
            created_by=actor,
        )
        block_before = snapshot(block, Block.AUDIT_FIELDS)
        block.routed_quantity += quantity
        fields = ["routed_quantity", "updated_at"]
        if block.status == Block.Status.OPEN:
            move(block, Block.Status.WORKING)
            fields.append("status")
        block.save(update_fields=fields)
        orders_follow_block(block, actor=actor)
        audit_record(
            actor=actor,
            kind="route.created",
            obj=route,
            after={
                "block": block.pk,
                "broker": broker.code,
                "quantity": quantity,
                "cl_ord_id": route.cl_ord_id,
            },
        )
        audit_record(
            actor=actor,
            kind="block.routed",
            obj=block,
            before=block_before,
            after=snapshot(block, Block.AUDIT_FIELDS),
        )
        enqueue_on_commit("trading.tasks.route_send", route.pk)
    return route


def route_claim_for_sending(route_id: int) -> bool:
    """Claim a route for its one send. True for the caller that won the claim."""
    with audited_transaction():
        won = (
            Route.objects.filter(pk=route_id, sent_at__isnull=True).update(sent_at=timezone.now())
            == 1
        )
        if won:
            route = Route.objects.select_related("broker").get(pk=route_id)
            audit_record(
                actor=None,
                actor_name=f"broker:{route.broker.code}",
                kind="route.sent",
                obj=route,
                after={"cl_ord_id": route.cl_ord_id, "sent_at": route.sent_at},
            )
    return won


def route_mark_unconfirmed(route_id: int, reason: str) -> None:
    """The send's outcome is unknown (the adapter failed mid-way): never silently failed."""
    with audited_transaction():
        route = locks.lock_route(route_id)
        if Route.Status.UNCONFIRMED not in Route.TRANSITIONS[route.status]:
            return
        before = snapshot(route, Route.AUDIT_FIELDS)
        route.status = Route.Status.UNCONFIRMED
        route.text = reason[:500]
        route.save(update_fields=["status", "text", "updated_at"])
        audit_record(
            actor=None,
            kind="route.unconfirmed",
            obj=route,
            before=before,
            after=snapshot(route, Route.AUDIT_FIELDS),
            reason=reason,
            actor_name="system",
        )


def route_cancel(*, actor, route_id: int, reason: str = "") -> Route:
    """Ask the broker to cancel what is left of a route.

    A route whose order has not left us yet (never claimed for sending) is
    cancelled here and now. Otherwise it goes to *pending cancel* and the
    cancel request goes to the broker: for a broker reached through the
    database (FIX: the session's outbox) in this same transaction, for the
    others by the routing worker after commit. The broker's answer settles it:
    Canceled (the unfilled rest comes back to the block), a fill first (legal),
    or a cancel reject (the route goes back to where it was)."""
    require(actor, Action.BLOCK_ROUTE)
    with audited_transaction():
        route_ref = Route.objects.get(pk=route_id)
        block = locks.lock_block(route_ref.block_id)
        route = locks.lock_route(route_id)
        if route.sent_at is None and route.status == Route.Status.PENDING_NEW:
            _end_unsent_route(
                route,
                block,
                status=Route.Status.CANCELLED,
                kind="route.cancelled",
                text=reason or "Cancelled before it was sent",
                reason=reason or "cancelled before it was sent",
                actor=actor,
                claim=True,  # the routing task, if it comes, finds it claimed
            )
            return route
        route_before = snapshot(route, Route.AUDIT_FIELDS)
        if Route.Status.PENDING_CANCEL not in Route.TRANSITIONS[route.status]:
            raise TransitionError(
                route,
                route.status,
                Route.Status.PENDING_CANCEL,
                f"Route {route.cl_ord_id} is {route.get_status_display().lower()}: "
                "there is nothing to cancel.",
            )
        route.status_before_pending = route.status
        move(route, Route.Status.PENDING_CANCEL)
        route.save(update_fields=["status", "status_before_pending", "updated_at"])
        audit_record(
            actor=actor,
            kind="route.cancel_requested",
            obj=route,
            before=route_before,
            after=snapshot(route, Route.AUDIT_FIELDS),
            reason=reason,
        )
        adapter = adapter_for(route.broker, apply_in_order)
        if adapter.queues_in_database:
            adapter.cancel(route_ticket(route))
        else:
            enqueue_on_commit("trading.tasks.route_cancel_send", route.pk)
    return route


def route_not_sent(route_id: int, reason: str) -> None:
    """The route's order never left us (it could not be made into a message):
    the route is rejected by us and its quantity goes back to the block."""
    with audited_transaction():
        route_ref = Route.objects.get(pk=route_id)
        block = locks.lock_block(route_ref.block_id)
        route = locks.lock_route(route_id)
        if route.status != Route.Status.PENDING_NEW:
            return  # the broker has answered after all: its answer stands
        _end_unsent_route(
            route,
            block,
            status=Route.Status.REJECTED,
            kind="route.not_sent",
            text=reason,
            reason=reason,
            actor_name="system",
        )


def _end_unsent_route(
    route: Route,
    block: Block,
    *,
    status: str,
    kind: str,
    text: str,
    reason: str,
    actor=None,
    actor_name: str | None = None,
    claim: bool = False,
) -> None:
    """A route whose order no broker has: end it (locked, with its block) in
    ``status``, give its quantity back to the block, and record why."""
    route_before = snapshot(route, Route.AUDIT_FIELDS)
    block_before = snapshot(block, Block.AUDIT_FIELDS)
    move(route, status)
    route.text = text[:500]
    fields = ["status", "text", "updated_at"]
    if claim:
        route.sent_at = timezone.now()
        fields.append("sent_at")
    route.save(update_fields=fields)
    block.routed_quantity -= route.quantity - route.filled_quantity
    audit_record(
        actor=actor,
        actor_name=actor_name,
        kind=kind,
        obj=route,
        before=route_before,
        after=snapshot(route, Route.AUDIT_FIELDS),
        reason=reason,
    )
    block_follow_routes(block, actor_name=actor_name, before=block_before, actor=actor)


def route_ticket(route: Route) -> RouteTicket:
    return RouteTicket(
        broker=route.broker.code,
        cl_ord_id=route.cl_ord_id,
        symbol=route.block.security.ticker,
        side=route.block.side,
        quantity=route.quantity,
        order_type=route.order_type,
        time_in_force=route.time_in_force,
        limit_price=route.limit_price,
        filled_quantity=route.filled_quantity,
        settings=route.broker.settings,
    )


# --- Sending to the broker (the routing worker's part) -------------------------------


def route_send(route_id: int) -> None:
    """Hand a route's order to its broker's adapter, once.

    A broker reached through the database (FIX: the session's outbox, sent by the
    gateway) gets its message in the same transaction as the route's claim, so a
    worker that dies between the two leaves neither and the route is sent again.
    A broker reached from here (the simulated broker) is sent the order after the
    claim; a failure mid-way leaves the route unconfirmed, never silently failed.
    """
    route = Route.objects.select_related("broker", "block__security").filter(pk=route_id).first()
    if route is None:
        return
    try:
        adapter = adapter_for(route.broker, apply_in_order)
    except ValueError as exc:  # the broker is not set up to be reached
        log.error("route %s: %s", route.cl_ord_id, exc)
        route_not_sent(route_id, str(exc))
        return
    if adapter.queues_in_database:
        _queue(adapter, route)
        return
    if not route_claim_for_sending(route_id):
        return  # already sent by an earlier delivery of the task
    try:
        adapter.send(route_ticket(route))
    except Exception as exc:
        # The broker may or may not have the order: say so, never drop it silently
        # (a retry would find the route claimed and send nothing).
        log.exception("sending route %s failed", route.cl_ord_id)
        route_mark_unconfirmed(route_id, f"send failed: {exc}")


def _queue(adapter, route: Route) -> None:
    try:
        with transaction.atomic():
            if not route_claim_for_sending(route.pk):
                return  # already queued by an earlier delivery of the task
            adapter.send(route_ticket(route))
    except TRANSIENT:
        raise  # retried; nothing was written
    except Exception as exc:
        # Nothing left us and nothing will: the route is rejected, its quantity freed.
        log.exception("queueing route %s failed", route.cl_ord_id)
        route_not_sent(route.pk, f"could not be queued for the broker: {exc}")


def route_cancel_send(route_id: int) -> None:
    """Send a cancel request to a broker reached from the worker (the simulated
    broker); its answer comes back through the report sink like any report."""
    route = Route.objects.select_related("broker", "block__security").get(pk=route_id)
    if route.status != Route.Status.PENDING_CANCEL:
        return  # settled already (filled, or answered by an earlier delivery)
    try:
        adapter_for(route.broker, apply_in_order).cancel(route_ticket(route))
    except TRANSIENT:
        raise
    except Exception as exc:
        log.exception("cancel of route %s failed", route.cl_ord_id)
        route_mark_unconfirmed(route_id, f"cancel request failed: {exc}")


def routes_resend_unsent(*, older_than_seconds: float = 30.0) -> int:
    """Enqueue the send of routes created but never claimed for sending (their
    task was lost). `route_send` claims a route once, so a route enqueued twice is
    still sent once. Returns how many were enqueued."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(
        Route.objects.filter(
            status=Route.Status.PENDING_NEW, sent_at__isnull=True, created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for route_id in stale:
        enqueue("trading.tasks.route_send", route_id)
    return len(stale)
