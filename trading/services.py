"""Every write of the trading domain.

Each service validates, locks what it changes (trading.locks, in the house
order), checks the transition against the model's map, writes with
update_fields, and appends an audit event, all in one transaction. Work for a
worker is enqueued with transaction.on_commit and carries ids only.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.services import audit_record, audited_transaction
from oms.numbers import ZERO
from oms.numbers import price as round_price
from oms.numbers import qty as round_qty
from oms.roles import Action, require, sees_all_portfolios
from oms.state import TransitionError, check_transition
from portfolios.models import Portfolio, Position, Security
from portfolios.services import holdings_book_fill

from . import locks
from .allocation import allocate_pro_rata
from .brokers import ExecutionReport, RouteTicket
from .models import Allocation, Block, Broker, Execution, Order, OrderType, Route, Side, TimeInForce

log = logging.getLogger(__name__)

ORDER_FIELDS = ("status", "quantity", "filled_quantity", "average_price", "block_id")
BLOCK_FIELDS = ("status", "quantity", "routed_quantity", "filled_quantity", "average_price")
ROUTE_FIELDS = ("status", "quantity", "filled_quantity", "average_price")


def _snapshot(obj, fields) -> dict:
    return {name: getattr(obj, name) for name in fields}


def _set_status(obj, target: str) -> None:
    check_transition(obj, obj.TRANSITIONS, target)
    obj.status = target


def _ensure_manages(actor, portfolio: Portfolio) -> None:
    if portfolio.manager_id != actor.pk and not sees_all_portfolios(actor):
        raise PermissionDenied(f"You do not manage account {portfolio.code}.")


# --- Orders ----------------------------------------------------------------------


def order_check(
    *,
    portfolio: Portfolio,
    security: Security,
    side: str,
    quantity: Decimal,
    order_type: str,
    time_in_force: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    expire_at: datetime | None,
) -> None:
    """Validate an order's terms; raise ValidationError naming each bad field."""
    errors: dict[str, list[str]] = defaultdict(list)
    if not portfolio.is_active:
        errors["portfolio"].append(f"Account {portfolio.code} is closed.")
    if not security.is_active:
        errors["security"].append(f"{security.ticker} is not active.")
    if side not in Side.values:
        errors["side"].append(f"Unknown side {side!r}.")
    if order_type not in OrderType.values:
        errors["order_type"].append(f"Unknown order type {order_type!r}.")
    if time_in_force not in TimeInForce.values:
        errors["time_in_force"].append(f"Unknown time in force {time_in_force!r}.")
    if quantity is None or quantity <= 0:
        errors["quantity"].append("Quantity must be positive.")
    else:
        if quantity < security.min_quantity:
            errors["quantity"].append(f"Below the minimum quantity of {security.min_quantity}.")
        if not security.fractional and quantity != quantity.to_integral_value():
            errors["quantity"].append(f"{security.ticker} trades in whole units only.")
    needs_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_limit and (limit_price is None or limit_price <= 0):
        errors["limit_price"].append("A limit order needs a positive limit price.")
    if not needs_limit and limit_price is not None:
        errors["limit_price"].append("Only limit and stop-limit orders take a limit price.")
    if needs_stop and (stop_price is None or stop_price <= 0):
        errors["stop_price"].append("A stop order needs a positive stop price.")
    if not needs_stop and stop_price is not None:
        errors["stop_price"].append("Only stop and stop-limit orders take a stop price.")
    for field, value in (("limit_price", limit_price), ("stop_price", stop_price)):
        if value is not None and value > 0 and value % security.tick_size != 0:
            errors[field].append(f"Must be a multiple of the tick size {security.tick_size}.")
    if time_in_force == TimeInForce.GTD:
        if expire_at is None:
            errors["expire_at"].append("A good-till-date order needs an expiry.")
        elif expire_at <= timezone.now():
            errors["expire_at"].append("The expiry must be in the future.")
    elif expire_at is not None:
        errors["expire_at"].append("Only good-till-date orders take an expiry.")
    if side == Side.SELL_SHORT and portfolio.long_only:
        errors["side"].append(f"Account {portfolio.code} is long-only: no short sales.")
    if side == Side.SELL and quantity and quantity > 0:
        held = (
            Position.objects.filter(portfolio=portfolio, security=security)
            .values_list("quantity", flat=True)
            .first()
        ) or ZERO
        committed = sum(
            Order.objects.filter(
                portfolio=portfolio,
                security=security,
                side=Side.SELL,
                status__in=[
                    Order.Status.APPROVED,
                    Order.Status.RELEASED,
                    Order.Status.WORKING,
                    Order.Status.PARTIALLY_FILLED,
                ],
            ).values_list("quantity", flat=True),
            ZERO,
        )
        if quantity > held - committed:
            errors["quantity"].append(
                f"Sells {quantity} but account {portfolio.code} holds {held} of "
                f"{security.ticker} with {committed} already committed to other sells."
            )
    if errors:
        raise ValidationError(dict(errors))


def order_create(
    *,
    actor,
    portfolio: Portfolio,
    security: Security,
    side: str,
    quantity: Decimal,
    order_type: str = OrderType.MARKET,
    time_in_force: str = TimeInForce.DAY,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    expire_at: datetime | None = None,
    notes: str = "",
    rebalance_run=None,
    estimated_price: Decimal | None = None,
) -> Order:
    """Create a draft order for one account."""
    require(actor, Action.ORDER_CREATE)
    _ensure_manages(actor, portfolio)
    terms = {
        "portfolio": portfolio,
        "security": security,
        "side": side,
        "quantity": round_qty(quantity) if quantity is not None else quantity,
        "order_type": order_type,
        "time_in_force": time_in_force,
        "limit_price": limit_price,
        "stop_price": stop_price,
        "expire_at": expire_at,
    }
    order_check(**terms)
    with audited_transaction():
        order = Order.objects.create(
            **terms,
            notes=notes,
            rebalance_run=rebalance_run,
            estimated_price=estimated_price,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            kind="order.created",
            obj=order,
            after=terms
            | {
                "portfolio": portfolio.code,
                "security": security.ticker,
                "rebalance_run": getattr(rebalance_run, "pk", None),
            },
        )
    return order


def orders_approve(*, actor, order_ids: list[int]) -> list[Order]:
    """Approve draft orders for release to the desk, in one transaction."""
    require(actor, Action.ORDER_APPROVE)
    with audited_transaction():
        orders = locks.lock_orders(order_ids)
        _ensure_found(orders, order_ids)
        for order in orders:
            _ensure_manages(actor, order.portfolio)
            before = _snapshot(order, ("status",))
            _set_status(order, Order.Status.APPROVED)
            order.approved_by = actor
            order.save(update_fields=["status", "approved_by", "updated_at"])
            audit_record(
                actor=actor,
                kind="order.approved",
                obj=order,
                before=before,
                after={"status": order.status},
            )
    return orders


def _ensure_found(orders: list[Order], order_ids: list[int]) -> None:
    missing = set(order_ids) - {o.pk for o in orders}
    if missing:
        raise Order.DoesNotExist(f"No order {sorted(missing)[0]}.")


def _block_key(order: Order) -> tuple:
    return (order.security_id, order.side, order.order_type, order.limit_price, order.time_in_force)


def _open_block_for(order: Order) -> Block:
    """The open block that an order joins: same security, side and terms, not yet routed."""
    security_id, side, order_type, limit_price, tif = _block_key(order)
    existing = (
        Block.objects.select_for_update()
        .filter(
            status=Block.Status.OPEN,
            security_id=security_id,
            side=side,
            order_type=order_type,
            limit_price=limit_price,
            time_in_force=tif,
        )
        .order_by("pk")
        .first()
    )
    if existing:
        return existing
    return Block.objects.create(
        security_id=security_id,
        side=side,
        order_type=order_type,
        limit_price=limit_price,
        time_in_force=tif,
    )


def orders_release(*, actor, order_ids: list[int]) -> list[Order]:
    """Release approved orders to the trading desk, aggregating them into blocks."""
    require(actor, Action.ORDER_RELEASE)
    with audited_transaction():
        orders = locks.lock_orders(order_ids)
        _ensure_found(orders, order_ids)
        for order in orders:
            _ensure_manages(actor, order.portfolio)
            check_transition(order, order.TRANSITIONS, Order.Status.RELEASED)
        by_key: dict[tuple, list[Order]] = defaultdict(list)
        for order in orders:
            by_key[_block_key(order)].append(order)
        for group in by_key.values():
            block = _open_block_for(group[0])
            block_before = _snapshot(block, BLOCK_FIELDS)
            for order in group:
                before = _snapshot(order, ("status",))
                order.status = Order.Status.RELEASED
                order.block = block
                order.released_by = actor
                order.save(update_fields=["status", "block", "released_by", "updated_at"])
                audit_record(
                    actor=actor,
                    kind="order.released",
                    obj=order,
                    before=before,
                    after={"status": order.status, "block": block.pk},
                )
            block.quantity += sum((o.quantity for o in group), ZERO)
            block.save(update_fields=["quantity", "updated_at"])
            audit_record(
                actor=actor,
                kind="block.orders_added",
                obj=block,
                before=block_before,
                after=_snapshot(block, BLOCK_FIELDS) | {"orders": [o.pk for o in group]},
            )
    return orders


def order_cancel(*, actor, order_id: int, reason: str = "") -> Order:
    """Cancel an order that has not reached a broker."""
    require(actor, Action.ORDER_CANCEL)
    with audited_transaction():
        order = Order.objects.select_related("portfolio", "block").get(pk=order_id)
        block = locks.lock_block(order.block_id) if order.block_id else None
        [order] = locks.lock_orders([order_id])
        _ensure_manages(actor, order.portfolio)
        if block is not None and block.status != Block.Status.OPEN:
            raise ValidationError("The order's block is with a broker: cancel the route instead.")
        before = _snapshot(order, ORDER_FIELDS)
        _set_status(order, Order.Status.CANCELLED)
        order.block = None
        order.save(update_fields=["status", "block", "updated_at"])
        audit_record(
            actor=actor,
            kind="order.cancelled",
            obj=order,
            before=before,
            after=_snapshot(order, ORDER_FIELDS),
            reason=reason,
        )
        if block is not None:
            block_before = _snapshot(block, BLOCK_FIELDS)
            block.quantity -= order.quantity
            fields = ["quantity", "updated_at"]
            if block.quantity == 0:
                _set_status(block, Block.Status.CANCELLED)
                fields.append("status")
            block.save(update_fields=fields)
            audit_record(
                actor=actor,
                kind="block.order_removed",
                obj=block,
                before=block_before,
                after=_snapshot(block, BLOCK_FIELDS) | {"order": order.pk},
            )
    return order


# --- Routes -----------------------------------------------------------------------


def _new_cl_ord_id() -> str:
    return f"OMS-{timezone.now():%Y%m%d}-{uuid.uuid4().hex[:12].upper()}"


def route_create(*, actor, block_id: int, broker: Broker, quantity: Decimal | None = None) -> Route:
    """Route all or part of a block to a broker; the routing worker sends it after commit."""
    require(actor, Action.BLOCK_ROUTE)
    from .tasks import route_send

    with audited_transaction():
        block = locks.lock_block(block_id)
        if block.status not in (
            Block.Status.OPEN,
            Block.Status.WORKING,
            Block.Status.PARTIALLY_FILLED,
        ):
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
        block_before = _snapshot(block, BLOCK_FIELDS)
        block.routed_quantity += quantity
        fields = ["routed_quantity", "updated_at"]
        if block.status == Block.Status.OPEN:
            _set_status(block, Block.Status.WORKING)
            fields.append("status")
        block.save(update_fields=fields)
        _orders_follow_block(block, actor=actor)
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
            after=_snapshot(block, BLOCK_FIELDS),
        )
        transaction.on_commit(lambda: route_send.delay(route.pk))
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
        before = _snapshot(route, ROUTE_FIELDS)
        route.status = Route.Status.UNCONFIRMED
        route.text = reason[:500]
        route.save(update_fields=["status", "text", "updated_at"])
        audit_record(
            actor=None,
            kind="route.unconfirmed",
            obj=route,
            before=before,
            after=_snapshot(route, ROUTE_FIELDS),
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
    from .brokers import adapter_for
    from .tasks import apply_in_order, route_cancel_send

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
        route_before = _snapshot(route, ROUTE_FIELDS)
        if Route.Status.PENDING_CANCEL not in Route.TRANSITIONS[route.status]:
            raise TransitionError(
                route,
                route.status,
                Route.Status.PENDING_CANCEL,
                f"Route {route.cl_ord_id} is {route.get_status_display().lower()}: "
                "there is nothing to cancel.",
            )
        route.status_before_pending = route.status
        _set_status(route, Route.Status.PENDING_CANCEL)
        route.save(update_fields=["status", "status_before_pending", "updated_at"])
        audit_record(
            actor=actor,
            kind="route.cancel_requested",
            obj=route,
            before=route_before,
            after=_snapshot(route, ROUTE_FIELDS),
            reason=reason,
        )
        adapter = adapter_for(route.broker, apply_in_order)
        if adapter.queues_in_database:
            adapter.cancel(route_ticket(route))
        else:
            transaction.on_commit(lambda: route_cancel_send.delay(route.pk))
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
    route_before = _snapshot(route, ROUTE_FIELDS)
    block_before = _snapshot(block, BLOCK_FIELDS)
    _set_status(route, status)
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
        after=_snapshot(route, ROUTE_FIELDS),
        reason=reason,
    )
    _refresh_block(block, actor_name=actor_name, before=block_before, actor=actor)


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


# --- Executions --------------------------------------------------------------------

_EXEC_TYPES = set(Execution.ExecType.values)
_ORD_STATUSES = set(Route.Status.values)


def execution_apply(report: ExecutionReport) -> Execution | None:
    """Apply one execution report. The same report (route, ExecID) applied twice
    changes nothing the second time and returns None."""
    from .tasks import allocate_block

    if report.exec_type not in _EXEC_TYPES or report.ord_status not in _ORD_STATUSES:
        raise ValueError(f"unknown exec type {report.exec_type!r} or status {report.ord_status!r}")
    try:
        with audited_transaction():
            route_ref = Route.objects.select_related("broker").get(cl_ord_id=report.cl_ord_id)
            if route_ref.broker.code != report.broker:
                raise ValueError(
                    f"report from {report.broker} for a route to {route_ref.broker.code}"
                )
            block = locks.lock_block(route_ref.block_id)
            route = locks.lock_route(route_ref.pk)
            if Execution.objects.filter(route=route, exec_id=report.exec_id).exists():
                return None
            execution = Execution.objects.create(
                route=route,
                broker=route.broker,
                exec_id=report.exec_id,
                exec_type=report.exec_type,
                ord_status=report.ord_status,
                last_quantity=round_qty(report.last_quantity),
                last_price=report.last_price,
                cumulative_quantity=round_qty(report.cumulative_quantity),
                average_price=report.average_price,
                leaves_quantity=round_qty(report.leaves_quantity),
                text=report.text[:500],
                transact_time=report.transact_time,
            )
            _apply_to_route_and_block(route, block, execution, report)
            if block.status == Block.Status.FILLED:
                transaction.on_commit(lambda: allocate_block.delay(block.pk))
            return execution
    except IntegrityError:
        # A concurrent apply of the same report won the unique (route, ExecID).
        if Execution.objects.filter(
            route__cl_ord_id=report.cl_ord_id, exec_id=report.exec_id
        ).exists():
            return None
        raise


def _apply_to_route_and_block(route: Route, block: Block, execution: Execution, report) -> None:
    actor_name = f"broker:{route.broker.code}"
    route_before = _snapshot(route, ROUTE_FIELDS)
    block_before = _snapshot(block, BLOCK_FIELDS)
    fields = {"updated_at"}
    if report.order_id and not route.broker_order_id:
        route.broker_order_id = report.order_id[:64]
        fields.add("broker_order_id")
    if execution.exec_type == Execution.ExecType.TRADE and execution.last_quantity > 0:
        if execution.last_price is None or execution.last_price <= 0:
            raise ValueError(f"fill {execution.exec_id} has no price")
        route.average_price = _weighted(route.filled_quantity, route.average_price, execution)
        route.filled_quantity += execution.last_quantity
        block.average_price = _weighted(block.filled_quantity, block.average_price, execution)
        block.filled_quantity += execution.last_quantity
        fields |= {"filled_quantity", "average_price"}
        if route.filled_quantity > route.quantity:
            log.error(
                "route %s overfilled: %s of %s",
                route.cl_ord_id,
                route.filled_quantity,
                route.quantity,
            )

    target = execution.ord_status
    if execution.exec_type == Execution.ExecType.CANCEL_REJECT:
        target = route.status_before_pending or route.status
    if target != route.status:
        if target in Route.TRANSITIONS[route.status]:
            if target in (Route.Status.PENDING_CANCEL, Route.Status.PENDING_REPLACE):
                route.status_before_pending = route.status
                fields.add("status_before_pending")
            route.status = target
            fields.add("status")
            if target in Route.TERMINAL_STATES and target != Route.Status.FILLED:
                # What the broker did not fill comes back to the block, to route again.
                block.routed_quantity -= route.quantity - route.filled_quantity
        else:
            log.warning(
                "route %s: report %s says %s, which cannot follow %s; status kept",
                route.cl_ord_id,
                execution.exec_id,
                target,
                route.status,
            )
    if execution.text:
        route.text = execution.text
        fields.add("text")
    route.save(update_fields=sorted(fields))
    audit_record(
        actor=None,
        actor_name=actor_name,
        kind=f"execution.{execution.exec_type}",
        obj=route,
        before=route_before,
        after=_snapshot(route, ROUTE_FIELDS)
        | {
            "exec_id": execution.exec_id,
            "last_quantity": execution.last_quantity,
            "last_price": execution.last_price,
        },
        reason=execution.text,
    )
    _refresh_block(block, actor_name=actor_name, before=block_before)


def _weighted(filled: Decimal, average: Decimal | None, execution: Execution) -> Decimal:
    total = filled + execution.last_quantity
    return round_price(
        ((average or ZERO) * filled + execution.last_price * execution.last_quantity) / total
    )


def _refresh_block(block: Block, *, actor_name: str | None, before: dict, actor=None) -> None:
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
        _set_status(block, target)
    block.save(
        update_fields=[
            "status",
            "routed_quantity",
            "filled_quantity",
            "average_price",
            "updated_at",
        ]
    )
    after = _snapshot(block, BLOCK_FIELDS)
    if after != before:
        audit_record(
            actor=actor,
            actor_name=actor_name,
            kind="block.updated",
            obj=block,
            before=before,
            after=after,
        )
    _orders_follow_block(block, actor=actor, actor_name=actor_name)


_ORDER_STATUS_FOR_BLOCK = {
    Block.Status.OPEN: Order.Status.RELEASED,
    Block.Status.WORKING: Order.Status.WORKING,
    Block.Status.PARTIALLY_FILLED: Order.Status.PARTIALLY_FILLED,
    Block.Status.FILLED: Order.Status.PARTIALLY_FILLED,  # filled for the account at allocation
}


def _orders_follow_block(block: Block, *, actor, actor_name: str | None = None) -> None:
    """Account orders show the progress of their block until allocation."""
    target = _ORDER_STATUS_FOR_BLOCK.get(block.status)
    if target is None:
        return
    for order in locks.lock_block_orders(block):
        if order.status == target:
            continue
        before = {"status": order.status}
        _set_status(order, target)
        order.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            actor_name=actor_name,
            kind="order.status",
            obj=order,
            before=before,
            after={"status": order.status, "block": block.pk, "block_status": block.status},
        )


# --- Allocation ----------------------------------------------------------------------


def block_allocate(*, block_id: int) -> list[Allocation]:
    """Allocate a filled block to its account orders at one average price and book them.

    Idempotent: a block already allocated is left alone.
    """
    with audited_transaction():
        block = locks.lock_block(block_id)
        if block.status == Block.Status.ALLOCATED or block.filled_quantity == 0:
            return []
        if block.status not in (
            Block.Status.FILLED,
            Block.Status.CANCELLED,
            Block.Status.DONE_FOR_DAY,
        ):
            raise ValidationError(
                f"Block #{block.pk} is still {block.get_status_display().lower()}."
            )
        orders = locks.lock_block_orders(block)
        security = block.security
        lot = Decimal("0.000001") if security.fractional else security.round_lot
        split = allocate_pro_rata(
            block.filled_quantity, {o.pk: o.quantity for o in orders}, lot=lot
        )
        allocations = []
        today = timezone.now().date()
        for order in orders:
            quantity = split[order.pk]
            before = _snapshot(order, ORDER_FIELDS)
            if quantity > 0:
                order.filled_quantity = quantity
                order.average_price = block.average_price
                if quantity == order.quantity and order.status != Order.Status.FILLED:
                    _set_status(order, Order.Status.FILLED)
            if order.status in (Order.Status.WORKING, Order.Status.RELEASED):
                _set_status(order, Order.Status.CANCELLED)  # nothing of it was filled
            if quantity > 0:
                _set_status(order, Order.Status.ALLOCATED)
                allocation = Allocation.objects.create(
                    block=block,
                    order=order,
                    quantity=quantity,
                    price=block.average_price,
                    gross_amount=round_price(quantity * block.average_price * security.multiplier),
                )
                allocations.append(allocation)
                booked = holdings_book_fill(
                    portfolio=order.portfolio,
                    security=security,
                    buying=Side(order.side).is_buy,
                    quantity=quantity,
                    price=block.average_price,
                    on_date=today,
                )
            else:
                booked = {}
            order.save(update_fields=["status", "filled_quantity", "average_price", "updated_at"])
            audit_record(
                actor=None,
                kind="order.allocated",
                obj=order,
                before=before | booked.get("before", {}),
                after=_snapshot(order, ORDER_FIELDS) | booked.get("after", {}),
            )
        block_before = _snapshot(block, BLOCK_FIELDS)
        _set_status(block, Block.Status.ALLOCATED)
        block.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=None,
            kind="block.allocated",
            obj=block,
            before=block_before,
            after=_snapshot(block, BLOCK_FIELDS)
            | {"allocations": {o: str(q) for o, q in split.items()}},
        )
    return allocations
