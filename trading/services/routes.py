"""Routes: (part of) a block sent to a broker, its one send, a cancel or
cancel/replace request, a status request, and the ends of a route whose order
never reached the broker.

A route is created here; a route to a FIX broker is put in its session's outbox in
the same transaction (the gateway sends it once that commits), any other is sent by
the routing worker after commit (`route_send`); how the broker answers is the
execution services' business.

What a route holds of its block is `Route.reserved_quantity`: its quantity while
live (or the larger one a pending replace asks for, so that nothing else can be
routed into it meanwhile), what filled once it has ended. A block's
`routed_quantity` is the sum of that over its routes, and never exceeds the
block; every change here moves it by the change in what the route holds.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from audit.services import (
    audit_record,
    audit_record_each,
    audit_record_many,
    audited_transaction,
    snapshot,
)
from oms.bulk import update_rows
from oms.numbers import price as round_price
from oms.numbers import qty as round_qty
from oms.roles import Action, require
from oms.state import TransitionError, move
from oms.tasking import enqueue, enqueue_on_commit
from portfolios import terms as portfolio_terms
from portfolios.instruments import InstrumentError
from portfolios.models import AssetClass
from trading import locks
from trading.brokers import ReplaceTerms, RouteTicket, adapter_for, fixmap
from trading.models import Block, Broker, OrderType, Route, TimeInForce
from trading.selectors import exchange_of

from . import trading_day
from .blocks import block_changed, block_follow_routes, orders_follow_block, orders_follow_blocks
from .executions import apply_in_order

log = logging.getLogger(__name__)

#: Only a database that is briefly unavailable or locked is worth a retry.
TRANSIENT = (OperationalError,)


def _new_cl_ord_id() -> str:
    return f"OMS-{timezone.now():%Y%m%d}-{uuid.uuid4().hex[:12].upper()}"


_WHOLE = Decimal(1)
_MICRO = Decimal("0.000001")


def trading_unit(security, broker: Broker) -> Decimal:
    """The step in which a route's quantity goes to the broker: whole units,
    unless the security trades in fractions and the broker takes them
    (``Broker.settings["fractional"]``); an FX amount in the base currency's minor unit
    (cents of a euro, whole yen), as every FX dealer takes it."""
    if portfolio_terms.is_fx(security):
        return portfolio_terms.instrument_of(security).quantity_rule().step
    if security.fractional and broker.settings.get("fractional"):
        return _MICRO
    return _WHOLE


def _fmt(quantity: Decimal) -> str:
    return f"{quantity.normalize():f}"


def broker_terms_errors(
    broker: Broker, *, order_type: str, time_in_force: str, security=None
) -> dict[str, list[str]]:
    """What a broker does not take, by field: its capabilities are
    ``Broker.settings["order_types"]``, ``["time_in_force"]`` and ``["asset_classes"]``
    (every one when absent; the asset class is checked when a security is given)."""
    errors: dict[str, list[str]] = {}
    classes = broker.settings.get("asset_classes")
    if security is not None and classes is not None and security.asset_class not in classes:
        taken = ", ".join(AssetClass(c).label.lower() for c in classes if c in AssetClass.values)
        errors["broker"] = [
            f"{broker.code} does not trade {security.get_asset_class_display().lower()} "
            f"({security.ticker}); it takes {taken or 'no asset class'}."
        ]
    order_types = broker.settings.get("order_types")
    if order_types is not None and order_type not in order_types:
        errors["order_type"] = [
            f"{broker.code} does not take {OrderType(order_type).label.lower()} orders "
            f"(it takes {', '.join(order_types)})."
        ]
    tifs = broker.settings.get("time_in_force")
    if tifs is not None and time_in_force not in tifs:
        errors["time_in_force"] = [
            f"{broker.code} does not take {TimeInForce(time_in_force).label.lower()} orders "
            f"(it takes {', '.join(tifs)})."
        ]
    return errors


def _ends_at(security, time_in_force: str, expire_at: datetime | None) -> datetime | None:
    try:
        return trading_day.order_ends_at(
            time_in_force=time_in_force,
            entered_at=timezone.now(),
            mic=exchange_of(security),
            expire_at=expire_at,
        )
    except trading_day.UnknownExchange as exc:
        raise ValidationError(f"{security.ticker}: {exc}.") from None


def _hold(block: Block, route: Route, held_before: Decimal) -> None:
    """Move the block's routed quantity by the change in what the route holds."""
    block.routed_quantity += route.reserved_quantity - held_before


def _routable_quantity(block: Block, broker: Broker, quantity: Decimal | None) -> Decimal:
    """What of a locked block may go to a broker (its open quantity when none is
    given, rounded down to how the broker takes the security); refused in words
    when the block is not open, the broker does not take its terms, or the
    quantity is off."""
    if block.status not in Block.OPEN_STATES:
        raise TransitionError(
            block,
            block.status,
            Block.Status.WORKING,
            f"Block #{block.pk} is {block.get_status_display().lower()}: it cannot be routed.",
        )
    if not broker.is_active:
        raise ValidationError({"broker": [f"Broker {broker.code} is not active."]})
    errors = broker_terms_errors(
        broker,
        order_type=block.order_type,
        time_in_force=block.time_in_force,
        security=block.security,
    )
    if errors:
        raise ValidationError(errors)
    security = block.security
    _check_fx_tradeable(security)
    unit = trading_unit(security, broker)
    available = block.quantity - block.routed_quantity
    if quantity is None:
        quantity = (available / unit).to_integral_value(ROUND_FLOOR) * unit
        if quantity <= 0 < available:
            raise ValidationError(
                {
                    "quantity": [
                        f"Only {_fmt(available)} of {security.ticker} is left, less than "
                        f"one unit {broker.code} takes."
                    ]
                }
            )
    else:
        quantity = round_qty(quantity)
    if quantity <= 0:
        raise ValidationError(
            {
                "quantity": ["Nothing left to route: the whole block is with brokers."]
                if available <= 0
                else ["Quantity must be positive."]
            }
        )
    if quantity % unit != 0:
        raise ValidationError(
            {
                "quantity": [
                    f"{security.ticker} goes to {broker.code} in whole units: "
                    f"{_fmt(quantity)} is not a whole number."
                ]
            }
        )
    if quantity > available:
        raise ValidationError(
            {"quantity": [f"Only {_fmt(available)} of the block is left to route."]}
        )
    return quantity


def _new_route(block: Block, broker: Broker, quantity: Decimal, actor) -> Route:
    return Route(
        block=block,
        broker=broker,
        cl_ord_id=_new_cl_ord_id(),
        quantity=quantity,
        order_type=block.order_type,
        limit_price=block.limit_price,
        stop_price=block.stop_price,
        time_in_force=block.time_in_force,
        expire_at=block.expire_at,
        ends_at=_ends_at(block.security, block.time_in_force, block.expire_at),
        created_by=actor,
    )


def route_create(*, actor, block_id: int, broker: Broker, quantity: Decimal | None = None) -> Route:
    """Route all or part of a block to a broker; the routing worker sends it after commit.

    The quantity goes as the security trades with that broker (whole shares
    unless both take fractions): no quantity routes what is left, rounded down
    to that; a quantity off it is refused, as are terms the broker does not take."""
    require(actor, Action.BLOCK_ROUTE)
    with audited_transaction():
        block = locks.lock_block(block_id)
        quantity = _routable_quantity(block, broker, quantity)
        route = _new_route(block, broker, quantity, actor)
        outbox = _outbox_of(broker, [route])
        route.save(force_insert=True)
        block_before = snapshot(block, Block.AUDIT_FIELDS)
        block.routed_quantity += quantity
        fields = ["routed_quantity", "updated_at"]
        if block.status == Block.Status.OPEN:
            move(block, Block.Status.WORKING)
            fields.append("status")
        block.save(update_fields=fields)
        orders_follow_block(block, actor=actor)
        created = {
            "block": block.pk,
            "broker": broker.code,
            "quantity": quantity,
            "cl_ord_id": route.cl_ord_id,
        }
        audit_record_each(
            actor=actor,
            events=[
                ("route.created", route, None, created, ""),
                ("block.routed", block, block_before, snapshot(block, Block.AUDIT_FIELDS), ""),
            ],
        )
        if outbox is not None:
            _queue_created(outbox, [route])
        else:
            enqueue_on_commit("trading.tasks.route_send", route.pk)
        block_changed(block.pk)
    return route


#: Routes a send task carries (`routes_send`): one claim, one outbox INSERT each.
SEND_BATCH = 200


def routes_create(*, actor, block_ids, broker: Broker) -> list[Route]:
    """Route what is left of each of several blocks to one broker, at once: the
    desk's "route these" (the blotter's selection, a program). Each block is
    checked as `route_create` checks it (open, terms the broker takes, whole
    units); one that cannot be routed refuses the whole call, naming the block,
    and nothing is written. Set-based: the blocks are locked in one statement, the
    routes inserted in one, the blocks written in one, their orders follow in
    three (`orders_follow_blocks`), and the events (one `route.created` per route,
    one `block.routed` per block) appended in one INSERT per kind; the routing
    worker sends them after commit, up to `SEND_BATCH` a task (`routes_send`)."""
    require(actor, Action.BLOCK_ROUTE)
    wanted = sorted(set(block_ids))
    if not wanted:
        return []
    with audited_transaction():
        blocks = locks.lock_blocks(wanted)
        missing = set(wanted) - {block.pk for block in blocks}
        if missing:
            raise ValidationError(
                f"No block #{', #'.join(str(pk) for pk in sorted(missing))} to route."
            )
        routes = []
        befores = {}
        for block in blocks:
            try:
                quantity = _routable_quantity(block, broker, None)
            except ValidationError as exc:
                raise ValidationError(
                    f"Block #{block.pk} ({block.security.ticker}): " + " ".join(exc.messages)
                ) from None
            routes.append(_new_route(block, broker, quantity, actor))
            befores[block.pk] = snapshot(block, Block.AUDIT_FIELDS)
            block.routed_quantity += quantity
            if block.status == Block.Status.OPEN:
                move(block, Block.Status.WORKING)
            block.updated_at = timezone.now()
        outbox = _outbox_of(broker, routes)
        Route.objects.bulk_create(routes)
        update_rows(Block, blocks, ["routed_quantity", "status", "updated_at"])
        orders_follow_blocks(blocks, actor=actor)
        audit_record_many(
            actor=actor,
            kind="route.created",
            entries=[
                (
                    route,
                    None,
                    {
                        "block": route.block_id,
                        "broker": broker.code,
                        "quantity": route.quantity,
                        "cl_ord_id": route.cl_ord_id,
                    },
                )
                for route in routes
            ],
        )
        audit_record_many(
            actor=actor,
            kind="block.routed",
            entries=[
                (block, befores[block.pk], snapshot(block, Block.AUDIT_FIELDS)) for block in blocks
            ],
        )
        if outbox is not None:
            _queue_created(outbox, routes)
        else:
            ids = [route.pk for route in routes]
            for start in range(0, len(ids), SEND_BATCH):
                enqueue_on_commit("trading.tasks.route_send_many", ids[start : start + SEND_BATCH])
        for block in blocks:
            block_changed(block.pk)
    return routes


def _outbox_of(broker: Broker, routes: list[Route]):
    """For new routes (not yet inserted) to a broker reached through the database (a
    FIX session's outbox): the adapter and the routes' outbox rows, built, and the
    routes stamped sent, so that their INSERT claims them. None for any other broker
    or if a route cannot be made into a message: the routing worker then sends it, or
    says why not, as before. Decision 48 of docs/architecture.md."""
    try:
        adapter = adapter_for(broker, apply_in_order)
    except ValueError:
        return None
    if not adapter.queues_in_database:
        return None
    try:
        rows = adapter.new_orders([(route, route_ticket(route)) for route in routes])
    except Exception:
        log.exception("routes to %s left to the routing worker", broker.code)
        return None
    sent_at = timezone.now()
    for route in routes:
        route.sent_at = sent_at
    return adapter, rows


def _queue_created(outbox, routes: list[Route]) -> None:
    """The new orders of routes inserted claimed (`_outbox_of`) go into the session's
    outbox in the transaction that created them, with their ``route.sent`` events: the
    gateway sends them once it commits, with no task and no worker in between, as a
    cancel or a replace already goes. A transaction that rolls back leaves neither."""
    adapter, rows = outbox
    audit_record_many(
        actor=None,
        actor_name=f"broker:{routes[0].broker.code}",
        kind="route.sent",
        entries=[
            (route, None, {"cl_ord_id": route.cl_ord_id, "sent_at": route.sent_at})
            for route in routes
        ],
    )
    adapter.send_built(rows)


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
    return _request_cancel(route_id=route_id, actor=actor, actor_name=None, reason=reason)


def route_cancel_by_system(*, route_id: int, reason: str) -> Route:
    """The OMS itself asks to cancel a route (a day order still working after
    its close): as a trader's cancel, recorded as the system's."""
    return _request_cancel(route_id=route_id, actor=None, actor_name="system", reason=reason)


def _request_cancel(*, route_id: int, actor, actor_name: str | None, reason: str) -> Route:
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
                actor_name=actor_name,
                claim=True,  # the routing task, if it comes, finds it claimed
            )
            return route
        if route.status == Route.Status.PENDING_REPLACE:
            raise TransitionError(
                route,
                route.status,
                Route.Status.PENDING_CANCEL,
                f"Route {route.cl_ord_id} has a replace waiting for {route.broker}'s answer: "
                "cancel it once the broker has answered.",
            )
        route_before = snapshot(route, Route.AUDIT_FIELDS)
        if Route.Status.PENDING_CANCEL not in Route.TRANSITIONS[route.status]:
            raise TransitionError(
                route,
                route.status,
                Route.Status.PENDING_CANCEL,
                f"Route {route.cl_ord_id} is {route.get_status_display().lower()}: "
                + (
                    f"its cancel is waiting for {route.broker}'s answer already."
                    if route.status == Route.Status.PENDING_CANCEL
                    else "there is nothing to cancel."
                ),
            )
        route.status_before_pending = route.status
        move(route, Route.Status.PENDING_CANCEL)
        route.pending_cl_ord_id = fixmap.request_id(route.cl_ord_id, "C")
        route.save(
            update_fields=["status", "status_before_pending", "pending_cl_ord_id", "updated_at"]
        )
        audit_record(
            actor=actor,
            actor_name=actor_name,
            kind="route.cancel_requested",
            obj=route,
            before=route_before,
            after=snapshot(route, Route.AUDIT_FIELDS) | {"request": route.pending_cl_ord_id},
            reason=reason,
        )
        adapter = adapter_for(route.broker, apply_in_order)
        if adapter.queues_in_database:
            adapter.cancel(route_ticket(route), cl_ord_id=route.pending_cl_ord_id)
        else:
            enqueue_on_commit("trading.tasks.route_cancel_send", route.pk)
        block_changed(block.pk)
    return route


def route_replace(
    *,
    actor,
    route_id: int,
    quantity: Decimal | None = None,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    time_in_force: str | None = None,
    expire_at: datetime | None = None,
    reason: str = "",
) -> Route:
    """Ask the broker to amend a working route (cancel/replace): a new quantity,
    limit price, stop price or time in force; a term not given stays as it is.

    The route turns *pending replace* until the broker answers: accepted, the
    new terms apply; rejected, the route is as it was; a fill meanwhile is
    booked. The new quantity is never below what is filled (nor equal to it:
    cancel the rest instead), and a larger one must fit in what is left of
    the block: the increase is held from the block at once, so that nothing
    else can be routed into it while the broker decides."""
    require(actor, Action.BLOCK_ROUTE)
    with audited_transaction():
        route_ref = Route.objects.get(pk=route_id)
        block = locks.lock_block(route_ref.block_id)
        route = locks.lock_route(route_id)
        if route.status not in Route.REPLACEABLE_STATES:
            raise TransitionError(
                route,
                route.status,
                Route.Status.PENDING_REPLACE,
                f"Route {route.cl_ord_id} is {route.get_status_display().lower()}: "
                "it cannot be amended now.",
            )
        terms = _replace_terms(
            route,
            block,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            expire_at=expire_at,
        )
        before = snapshot(route, Route.AUDIT_FIELDS)
        block_before = snapshot(block, Block.AUDIT_FIELDS)
        held_before = route.reserved_quantity
        route.status_before_pending = route.status
        move(route, Route.Status.PENDING_REPLACE)
        route.pending_cl_ord_id = terms.cl_ord_id
        route.pending_quantity = terms.quantity
        route.pending_limit_price = terms.limit_price
        route.pending_stop_price = terms.stop_price
        route.pending_time_in_force = terms.time_in_force
        route.pending_expire_at = terms.expire_at
        route.save(
            update_fields=[*Route.PENDING_FIELDS, "status", "status_before_pending", "updated_at"]
        )
        _hold(block, route, held_before)
        block.save(update_fields=["routed_quantity", "updated_at"])
        audit_record(
            actor=actor,
            kind="route.replace_requested",
            obj=route,
            before=before,
            after=snapshot(route, Route.AUDIT_FIELDS) | pending_terms(route),
            reason=reason,
        )
        if block.routed_quantity != block_before["routed_quantity"]:
            audit_record(
                actor=actor,
                kind="block.routed",
                obj=block,
                before=block_before,
                after=snapshot(block, Block.AUDIT_FIELDS),
            )
        adapter = adapter_for(route.broker, apply_in_order)
        if adapter.queues_in_database:
            adapter.replace(route_ticket(route), terms)
        else:
            enqueue_on_commit("trading.tasks.route_replace_send", route.pk)
        block_changed(block.pk)
    return route


def pending_terms(route: Route) -> dict:
    """The terms a pending replace asks for, for the audit trail and the pages."""
    return {
        "pending_quantity": route.pending_quantity,
        "pending_limit_price": route.pending_limit_price,
        "pending_stop_price": route.pending_stop_price,
        "pending_time_in_force": route.pending_time_in_force,
        "request": route.pending_cl_ord_id,
    }


def _replace_terms(
    route: Route,
    block: Block,
    *,
    quantity,
    limit_price,
    stop_price,
    time_in_force,
    expire_at,
) -> ReplaceTerms:
    """Check a replace's terms; ValidationError naming each field that is wrong."""
    errors: dict[str, list[str]] = {}
    security = block.security
    new_quantity = route.quantity if quantity is None else round_qty(quantity)
    if quantity is not None:
        unit = trading_unit(security, route.broker)
        if new_quantity <= 0:
            errors["quantity"] = ["Quantity must be positive."]
        elif new_quantity % unit != 0:
            errors["quantity"] = [
                f"{security.ticker} goes to {route.broker.code} in whole units: "
                f"{_fmt(new_quantity)} is not a whole number."
            ]
        elif new_quantity < route.filled_quantity:
            errors["quantity"] = [
                f"{_fmt(route.filled_quantity)} of route {route.cl_ord_id} is already filled: "
                f"the quantity cannot go below that."
            ]
        elif new_quantity == route.filled_quantity:
            errors["quantity"] = [
                f"{_fmt(route.filled_quantity)} is exactly what is filled: cancel the rest instead."
            ]
        elif new_quantity - route.reserved_quantity > block.quantity - block.routed_quantity:
            room = block.quantity - block.routed_quantity + route.reserved_quantity
            errors["quantity"] = [
                f"The block has {_fmt(block.quantity)}, of which other routes hold "
                f"{_fmt(block.routed_quantity - route.reserved_quantity)}: this route can "
                f"have at most {_fmt(room)}."
            ]
    order_type = route.order_type
    takes_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    takes_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    new_limit = route.limit_price if limit_price is None else limit_price
    new_stop = route.stop_price if stop_price is None else stop_price
    for field, value, takes, kind in (
        ("limit_price", limit_price, takes_limit, "limit"),
        ("stop_price", stop_price, takes_stop, "stop"),
    ):
        if value is None:
            continue
        if not takes:
            errors[field] = [
                f"A {route.get_order_type_display().lower()} route has no {kind} price."
            ]
        elif value <= 0:
            errors[field] = [f"The {kind} price must be positive."]
        elif value % security.tick_size != 0:
            errors[field] = [
                f"{value:f} is off the tick: {security.ticker} trades in steps of "
                f"{security.tick_size.normalize():f}."
            ]
    new_tif = route.time_in_force if time_in_force is None else time_in_force
    if new_tif not in TimeInForce.values:
        errors["time_in_force"] = [f"Unknown time in force {new_tif!r}."]
    else:
        errors |= {
            k: v
            for k, v in broker_terms_errors(
                route.broker, order_type=order_type, time_in_force=new_tif
            ).items()
            if k == "time_in_force"
        }
    new_expire = route.expire_at if expire_at is None else expire_at
    if new_tif == TimeInForce.GTD:
        if new_expire is None:
            errors["expire_at"] = ["A good-till-date order needs an expiry."]
        elif new_expire <= timezone.now():
            errors["expire_at"] = ["The expiry must be in the future."]
    else:
        new_expire = None
    if not errors and (
        new_quantity,
        new_limit,
        new_stop,
        new_tif,
        new_expire,
    ) == (
        route.quantity,
        route.limit_price,
        route.stop_price,
        route.time_in_force,
        route.expire_at,
    ):
        raise ValidationError("Nothing to amend: the new terms are the route's terms.")
    if errors:
        raise ValidationError(errors)
    return ReplaceTerms(
        cl_ord_id=fixmap.request_id(route.cl_ord_id, "R"),
        quantity=new_quantity,
        order_type=order_type,
        time_in_force=new_tif,
        limit_price=round_price(new_limit) if new_limit is not None else None,
        stop_price=round_price(new_stop) if new_stop is not None else None,
        expire_at=new_expire,
    )


def pending_replace_terms(route: Route) -> ReplaceTerms:
    """The ReplaceTerms of a route's pending replace (what the worker sends)."""
    return ReplaceTerms(
        cl_ord_id=route.pending_cl_ord_id,
        quantity=route.pending_quantity,
        order_type=route.order_type,
        time_in_force=route.pending_time_in_force or route.time_in_force,
        limit_price=route.pending_limit_price,
        stop_price=route.pending_stop_price,
        expire_at=route.pending_expire_at,
    )


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
    held_before = route.reserved_quantity
    move(route, status)
    route.text = text[:500]
    fields = ["status", "text", "updated_at"]
    if claim:
        route.sent_at = timezone.now()
        fields.append("sent_at")
    route.save(update_fields=fields)
    _hold(block, route, held_before)
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
    """What a broker adapter needs to know of a route (plain data)."""
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
        stop_price=route.stop_price,
        expire_at=route.expire_at,
        working_cl_ord_id=route.working_cl_ord_id,
        status=route.status,
        ends_at=route.ends_at,
        order_id=route.broker_order_id,
        instrument_fields=fixmap.instrument_fields(_terms(route.block.security)),
    )


def _check_fx_tradeable(security) -> None:
    """An FX trade routed today must have a value date today: a forward whose date has
    passed since it was ordered is refused in words, not sent to fail at the broker."""
    if not portfolio_terms.is_fx(security):
        return
    try:
        portfolio_terms.settlement_date(security, timezone.localdate())
    except InstrumentError as exc:
        text = str(exc)
        raise ValidationError({"security": [text[:1].upper() + text[1:] + "."]}) from exc


def _terms(security) -> dict:
    """A security's terms as plain data for the FIX translation; an FX trade's value
    date (a spot's from today's trade date) for its SettlDate."""
    data = {name: getattr(security, name) for name in _FIX_TERMS}
    if security.asset_class == AssetClass.FX_FORWARD:
        # the contract's own date: a working route's cancel or status after it still
        # names it (the date is checked when the order is taken and routed)
        data["value_date"] = security.value_date
    elif portfolio_terms.is_fx(security):
        data["value_date"] = portfolio_terms.settlement_date(security, timezone.localdate())
    return data


_FIX_TERMS = (
    "asset_class",
    "currency",
    "government",
    "issue_date",
    "maturity",
    "coupon_rate",
    "expiry",
    "multiplier",
    "option_right",
    "strike",
    "base_currency",
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
    if route.sent_at is None and trading_day.day_order_over(
        time_in_force=route.time_in_force, entered_at=route.created_at, now=timezone.now()
    ):
        # its send was lost and its trading day is over: yesterday's day order never
        # goes out today
        route_not_sent(route_id, "a day order of an earlier trading day is not sent")
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


def routes_send(route_ids) -> None:
    """`route_send` for several routes at once (the task `routes_create` queues).

    The routes of a broker reached through the database (FIX) are claimed and
    queued together in one transaction: locked where still unclaimed (one
    statement; a route claimed meanwhile by another delivery is skipped), their
    ``sent_at`` written in one, their outbox messages inserted in one and their
    ``route.sent`` events appended in one, so that a worker that dies midway
    leaves none of them claimed and the task sends them again. A route that cannot
    be made into a message is ended (`route_not_sent`) and the others still go.
    Every other route (another adapter, a stale day order) goes through
    `route_send`, one at a time, as before."""
    routes = list(
        Route.objects.select_related("broker", "block__security")
        .filter(pk__in=list(route_ids), sent_at__isnull=True)
        .order_by("pk")
    )
    one_by_one = []
    by_broker: dict[int, tuple[object, list[Route]]] = {}
    now = timezone.now()
    for route in routes:
        if trading_day.day_order_over(
            time_in_force=route.time_in_force, entered_at=route.created_at, now=now
        ):
            one_by_one.append(route.pk)
            continue
        if route.broker_id not in by_broker:
            try:
                adapter = adapter_for(route.broker, apply_in_order)
            except ValueError:
                adapter = None
            by_broker[route.broker_id] = (adapter, [])
        adapter, batch = by_broker[route.broker_id]
        if adapter is None or not getattr(adapter, "queues_in_database", False):
            one_by_one.append(route.pk)
        else:
            batch.append(route)
    for adapter, batch in by_broker.values():
        if batch:
            _queue_many(adapter, batch)
    for route_id in one_by_one:
        route_send(route_id)


def _queue_many(adapter, routes: list[Route]) -> None:
    tickets = {}
    unsendable = {}
    for route in routes:
        try:
            tickets[route.pk] = route_ticket(route)
        except Exception as exc:
            log.exception("queueing route %s failed", route.cl_ord_id)
            unsendable[route.pk] = f"could not be queued for the broker: {exc}"
    with audited_transaction():
        unclaimed = set(
            Route.objects.select_for_update(of=("self",))
            .filter(pk__in=list(tickets), sent_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        claimed = [route for route in routes if route.pk in unclaimed]
        if claimed:
            sent_at = timezone.now()
            Route.objects.filter(pk__in=[route.pk for route in claimed]).update(sent_at=sent_at)
            for route in claimed:
                route.sent_at = sent_at
            code = routes[0].broker.code
            audit_record_many(
                actor=None,
                actor_name=f"broker:{code}",
                kind="route.sent",
                entries=[
                    (route, None, {"cl_ord_id": route.cl_ord_id, "sent_at": sent_at})
                    for route in claimed
                ],
            )
            adapter.send_many([(route, tickets[route.pk]) for route in claimed])
    for route_id, reason in unsendable.items():
        route_not_sent(route_id, reason)


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
        adapter_for(route.broker, apply_in_order).cancel(
            route_ticket(route), cl_ord_id=route.pending_cl_ord_id
        )
    except TRANSIENT:
        raise
    except Exception as exc:
        log.exception("cancel of route %s failed", route.cl_ord_id)
        route_mark_unconfirmed(route_id, f"cancel request failed: {exc}")


def route_replace_send(route_id: int) -> None:
    """Send a cancel/replace request to a broker reached from the worker (the
    simulated broker); its answer comes back through the report sink."""
    route = Route.objects.select_related("broker", "block__security").get(pk=route_id)
    if route.status != Route.Status.PENDING_REPLACE or not route.pending_cl_ord_id:
        return  # settled already
    try:
        adapter_for(route.broker, apply_in_order).replace(
            route_ticket(route), pending_replace_terms(route)
        )
    except TRANSIENT:
        raise
    except Exception as exc:
        log.exception("replace of route %s failed", route.cl_ord_id)
        route_mark_unconfirmed(route_id, f"replace request failed: {exc}")


# --- Asking the broker where an order stands -----------------------------------------


def route_ask_status(route_id: int, *, reason: str, actor=None, again: bool = False) -> bool:
    """Ask the route's broker for the order's status (OrderStatusRequest); its
    answer settles the route through the execution services. Counted on the
    route, so that one the broker never answers is listed for a person; a person
    who asks ``again`` starts the count afresh (recorded as theirs, in the same
    transaction). For a FIX broker the request is written to the outbox here; for
    the others the worker sends it after commit. False when the route needs no
    asking (it has ended: then nothing changes)."""
    with audited_transaction():
        route = (
            Route.objects.select_for_update(of=("self",))
            .select_related("broker", "block__security")
            .get(pk=route_id)
        )
        if route.status in Route.TERMINAL_STATES:
            return False
        before = {"status": route.status, "requests": route.status_requests}
        route.status_requested_at = timezone.now()
        route.status_requests = 1 if again else route.status_requests + 1
        route.save(update_fields=["status_requested_at", "status_requests"])
        audit_record(
            actor=actor,
            actor_name=None if actor is not None else "system",
            kind="route.status_requested",
            obj=route,
            before=before,
            after={"status": route.status, "requests": route.status_requests},
            reason=reason,
        )
        try:
            adapter = adapter_for(route.broker, apply_in_order)
        except ValueError as exc:
            log.error("route %s: %s", route.cl_ord_id, exc)
            return False
        if adapter.queues_in_database:
            adapter.status(route_ticket(route))
        else:
            enqueue_on_commit("trading.tasks.route_status_send", route.pk)
    return True


def route_status_send(route_id: int) -> None:
    """Send a status request to a broker reached from the worker."""
    route = Route.objects.select_related("broker", "block__security").get(pk=route_id)
    if route.status in Route.TERMINAL_STATES:
        return
    adapter_for(route.broker, apply_in_order).status(route_ticket(route))


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
