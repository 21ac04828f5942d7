"""Executions: a broker's execution report applied to its route and block.

Every report goes through `execution_apply`, whichever broker adapter brought
it (the in-worker simulated broker, or the FIX gateway), once per route and
ExecID. Route states follow the broker's OrdStatus through the route's
transition map; what a broker did not fill comes back to the block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal

from django.db import IntegrityError, OperationalError
from django.utils import timezone

from audit.services import audit_record, audit_record_each, audited_transaction, snapshot
from oms.bulk import update_rows
from oms.numbers import ZERO, money
from oms.numbers import price as round_price
from oms.numbers import qty as round_qty
from oms.state import move
from trading import locks
from trading.brokers import ExecutionReport
from trading.models import Block, Execution, Route, TimeInForce
from trading.selectors import exchange_of

from . import trading_day
from .blocks import (
    DAY_OVER,
    ORDERS_FOLLOW,
    allocate_all_when_ended,
    block_changed,
    block_follow_routes,
    block_status_by_routes,
    orders_follow_blocks,
)

log = logging.getLogger(__name__)

#: Only a database that is briefly unavailable or locked is worth waiting for.
TRANSIENT = (OperationalError,)


_EXEC_TYPES = set(Execution.ExecType.values)
_ORD_STATUSES = set(Route.Status.values)


def execution_apply(report: ExecutionReport) -> Execution | None:
    """Apply one execution report. The same report (route, ExecID) applied twice
    changes nothing the second time and returns None."""
    _check_known(report)
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
            execution = _execution(route, report)
            execution.save(force_insert=True)
            _apply_to_route_and_block(route, block, execution, report)
            return execution
    except IntegrityError:
        # A concurrent apply of the same report won the unique (route, ExecID).
        if Execution.objects.filter(
            route__cl_ord_id=report.cl_ord_id, exec_id=report.exec_id
        ).exists():
            return None
        raise


def _check_known(report: ExecutionReport) -> None:
    if report.exec_type not in _EXEC_TYPES or report.ord_status not in _ORD_STATUSES:
        raise ValueError(f"unknown exec type {report.exec_type!r} or status {report.ord_status!r}")


def _execution(route: Route, report: ExecutionReport) -> Execution:
    return Execution(
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
        settlement_date=report.settlement_date,
    )


def executions_apply(
    reports: Sequence[ExecutionReport], *, routes: Mapping[str, Route] | None = None
) -> list[Execution | None]:
    """Apply several reports of one broker at once, in their order: what
    `execution_apply` does for each in turn, set-based, in one transaction.

    The blocks are locked in one statement, then the routes in one (the lock order
    of `trading.locks`); the ExecIDs already booked and the statuses of the blocks'
    other routes are read in one each; each report is then applied in memory, to the
    route and block as the reports before it left them, with the same checks and
    transitions as alone (no fill booked twice, a block never filled or held past
    its quantity); the executions are inserted in one statement, the routes and the
    blocks written in one each, the events (one per report, one per block update, in
    the order `execution_apply` would append them) in one INSERT, and the blocks'
    orders follow in three (`orders_follow_blocks`, to the last status a report left
    each block in). A report already applied returns None in its place.

    All or nothing: a report that would be refused alone (`BookingRefused`, an
    unknown route or status) refuses the call and nothing of it is written; the
    caller applies the reports one by one instead, to keep the good ones and say
    which one was refused (the FIX gateway does).

    ``routes``: the reports' routes by ClOrdID (their pk and block_id), when the
    caller has read them already (the gateway, naming the routes of a read); they
    are locked here all the same."""
    if not reports:
        return []
    for report in reports:
        _check_known(report)
    brokers = {report.broker for report in reports}
    if len(brokers) != 1:
        raise ValueError("reports of one broker at a time")
    [broker_code] = brokers
    actor_name = f"broker:{broker_code}"
    with audited_transaction():
        named = {report.cl_ord_id for report in reports}
        refs = (
            {name: routes[name] for name in named if name in routes}
            if routes is not None
            else {
                route.cl_ord_id: route
                for route in Route.objects.filter(cl_ord_id__in=named).only(
                    "pk", "block_id", "cl_ord_id"
                )
            }
        )
        unknown = named - set(refs)
        if unknown:
            raise Route.DoesNotExist(f"no route {sorted(unknown)[0]!r}")
        blocks = {
            block.pk: block for block in locks.lock_blocks({r.block_id for r in refs.values()})
        }
        routes = {route.pk: route for route in locks.lock_routes(r.pk for r in refs.values())}
        for route in routes.values():
            if route.broker.code != broker_code:
                raise ValueError(f"report from {broker_code} for a route to {route.broker.code}")
        booked = set(
            Execution.objects.filter(
                route_id__in=list(routes), exec_id__in={report.exec_id for report in reports}
            ).values_list("route_id", "exec_id")
        )
        # every route of the blocks, as the reports leave them: is one still live, did a
        # day route end with the broker's day
        # (by block: a read of hundreds of reports asks this once per report)
        states: dict[int, dict[int, tuple]] = {pk: {} for pk in blocks}
        for pk, block_id, status, tif in Route.objects.filter(
            block_id__in=list(blocks)
        ).values_list("pk", "block_id", "status", "time_in_force"):
            states[block_id][pk] = (status, tif)
        now = timezone.now()
        results: list[Execution | None] = []
        executions: list[Execution] = []
        events: list[tuple] = []
        route_fields: set[str] = set()
        changed_routes: dict[int, Route] = {}
        changed_blocks: dict[int, Block] = {}
        follow: dict[int, str] = {}
        followed: dict[int, Block] = {}  # the blocks that followed their routes
        for report in reports:
            route = routes[refs[report.cl_ord_id].pk]
            block = blocks[route.block_id]
            if (route.pk, report.exec_id) in booked:
                results.append(None)
                continue
            booked.add((route.pk, report.exec_id))
            execution = _execution(route, report)
            fields, event, block_before = _advance(route, block, execution, report)
            executions.append(execution)
            results.append(execution)
            route.updated_at = block.updated_at = now
            route_fields |= fields
            changed_routes[route.pk] = route
            changed_blocks[block.pk] = block
            events.append(event)
            states[block.pk][route.pk] = (route.status, route.time_in_force)
            if block.status not in Block.OPEN_STATES:
                continue  # a late report: recorded on its route, moves the block no more
            mine = list(states[block.pk].values())
            target = block_status_by_routes(
                block,
                live=any(status not in Route.TERMINAL_STATES for status, _ in mine),
                day_over=lambda mine=mine, block=block: (
                    block.time_in_force == TimeInForce.DAY
                    and any(s in DAY_OVER and tif == TimeInForce.DAY for s, tif in mine)
                ),
            )
            if target != block.status:
                move(block, target)
            after = snapshot(block, Block.AUDIT_FIELDS)
            if after != block_before:
                events.append(("block.updated", block, block_before, after, ""))
            followed[block.pk] = block
            if block.status in ORDERS_FOLLOW:
                follow[block.pk] = block.status  # the last status its orders are to show
        Execution.objects.bulk_create(executions)
        update_rows(Route, list(changed_routes.values()), sorted(route_fields))
        update_rows(
            Block, list(changed_blocks.values()), ["status", *Block.FIGURE_FIELDS, "updated_at"]
        )
        audit_record_each(actor=None, actor_name=actor_name, events=events)
        orders_follow_blocks(
            [blocks[pk] for pk in follow], actor=None, actor_name=actor_name, statuses=follow
        )
        allocate_all_when_ended(list(followed.values()))
        for block in changed_blocks.values():
            block_changed(block.pk)
    return results


class BookingRefused(ValueError):
    """A report that would book more than the order or the block holds, or a fill
    for a block whose trading has ended: recorded nowhere, kept for a person
    (the FIX gateway keeps the message in its inbox, not applied, with why)."""


#: Pending states a report may leave the route in while the request is in flight.
_PENDING = frozenset({Route.Status.PENDING_CANCEL, Route.Status.PENDING_REPLACE})


def _n(quantity: Decimal) -> str:
    return f"{quantity.normalize():f}"


def _progress(route: Route) -> str:
    """The state a live route is in by its fills alone."""
    if route.filled_quantity >= route.quantity:
        return Route.Status.FILLED
    return Route.Status.PARTIALLY_FILLED if route.filled_quantity > 0 else Route.Status.NEW


def _clear_pending(route: Route, fields: set) -> None:
    for name in Route.PENDING_FIELDS:
        setattr(route, name, "" if name.endswith(("cl_ord_id", "time_in_force")) else None)
    fields.update(Route.PENDING_FIELDS)


def _end_anew(route: Route, fields: set) -> None:
    """A replace changed the route's time in force or date: it ends when its new
    terms say (the sweep and the close go by ``ends_at``), from today's session."""
    try:
        route.ends_at = trading_day.order_ends_at(
            time_in_force=route.time_in_force,
            entered_at=timezone.now(),
            mic=exchange_of(route.block.security),
            expire_at=route.expire_at,
        )
    except trading_day.UnknownExchange:
        log.error("route %s: no calendar to end it by; its end is kept", route.cl_ord_id)
        return
    fields.add("ends_at")


def _apply_replace(route: Route, execution: Execution, report, fields: set) -> None:
    """The broker accepted the pending replace: its terms are the route's now,
    and the order goes by the request's ClOrdID from here on."""
    if not route.pending_cl_ord_id:
        return  # a repeat, or a replace we did not ask for: nothing to apply
    quantity = report.order_quantity or route.pending_quantity
    if quantity is not None:
        route.quantity = round_qty(quantity)
    route.limit_price = route.pending_limit_price
    route.stop_price = route.pending_stop_price
    lifetime = (route.time_in_force, route.expire_at)
    if route.pending_time_in_force:
        route.time_in_force = route.pending_time_in_force
    route.expire_at = route.pending_expire_at
    if (route.time_in_force, route.expire_at) != lifetime:
        _end_anew(route, fields)
    route.working_cl_ord_id = route.pending_cl_ord_id
    fields.update(
        {"quantity", "limit_price", "stop_price", "time_in_force", "expire_at", "working_cl_ord_id"}
    )
    _clear_pending(route, fields)


def _apply_to_route_and_block(route: Route, block: Block, execution: Execution, report) -> None:
    fields, (kind, _, before, after, reason), block_before = _advance(
        route, block, execution, report
    )
    if execution.commission:
        execution.save(update_fields=["commission"])
    route.save(update_fields=sorted(fields))
    actor_name = f"broker:{route.broker.code}"
    audit_record(
        actor=None,
        actor_name=actor_name,
        kind=kind,
        obj=route,
        before=before,
        after=after,
        reason=reason,
    )
    block_follow_routes(block, actor_name=actor_name, before=block_before)


def _advance(route: Route, block: Block, execution: Execution, report):
    """A report's effect on its (locked) route and block, in memory: the route's
    changed fields, its event as ``(kind, route, before, after, reason)``, and the
    block's figures before. Refuses (`BookingRefused`) what would book too much."""
    route_before = snapshot(route, Route.AUDIT_FIELDS)
    block_before = snapshot(block, Block.AUDIT_FIELDS)
    held_before = route.reserved_quantity
    fields = {"updated_at", "status_requests"}
    route.status_requests = 0  # the broker answered
    if report.order_id and not route.broker_order_id:
        route.broker_order_id = report.order_id[:64]
        fields.add("broker_order_id")
    exec_type = execution.exec_type
    if exec_type == Execution.ExecType.TRADE and execution.last_quantity > 0:
        _book_fill(route, block, execution)
        fields |= {"filled_quantity", "average_price", "commission"}

    if exec_type == Execution.ExecType.REPLACED and route.status not in Route.TERMINAL_STATES:
        _apply_replace(route, execution, report, fields)
    target = execution.ord_status
    if exec_type == Execution.ExecType.CANCEL_REJECT:
        # A cancel or replace the broker refused: the route is as it was before
        # the request, with whatever filled meanwhile.
        target = route.status
        if route.status in _PENDING:
            target = route.status_before_pending or _progress(route)
            if target in (Route.Status.NEW, Route.Status.REPLACED, Route.Status.PENDING_NEW):
                target = _progress(route)
        if route.status not in Route.TERMINAL_STATES:
            _clear_pending(route, fields)
    elif exec_type == Execution.ExecType.REPLACED:
        # FIX 4.2 says Replaced, 4.4 the order's state: after a replace the
        # route's state is what its fills make it
        target = target if target in Route.TERMINAL_STATES else _progress(route)
    elif route.status in _PENDING and target == route.status:
        # A fill while the request is pending (FIX reports Pending Cancel/Replace
        # over Partially Filled): booked, and what a reject would go back to.
        progress = _progress(route)
        if route.status_before_pending != progress and exec_type == Execution.ExecType.TRADE:
            route.status_before_pending = progress
            fields.add("status_before_pending")
    if target == Route.Status.PENDING_REPLACE and route.status != target:
        target = route.status  # a pending replace the broker announces that we did not ask
    if target != route.status:
        if target in Route.TRANSITIONS[route.status]:
            if target in _PENDING:
                route.status_before_pending = route.status
                fields.add("status_before_pending")
            route.status = target
            fields.add("status")
            if target in Route.TERMINAL_STATES:
                _clear_pending(route, fields)
        else:
            log.warning(
                "route %s: report %s says %s, which cannot follow %s; status kept",
                route.cl_ord_id,
                execution.exec_id,
                target,
                route.status,
            )
    # What the broker did not fill comes back to the block, to route again; what
    # a late fill took is held again: the block's routed quantity follows.
    block.routed_quantity += route.reserved_quantity - held_before
    if block.routed_quantity > block.quantity:
        raise BookingRefused(
            f"report {execution.exec_id} on route {route.cl_ord_id} would put "
            f"{_n(block.routed_quantity)} of block #{block.pk}'s {_n(block.quantity)} "
            "with brokers"
        )
    if execution.text:
        route.text = execution.text
        fields.add("text")
    return (
        fields,
        (
            f"execution.{execution.exec_type}",
            route,
            route_before,
            snapshot(route, Route.AUDIT_FIELDS)
            | {
                "exec_id": execution.exec_id,
                "last_quantity": execution.last_quantity,
                "last_price": execution.last_price,
                "commission": execution.commission,
            },
            execution.text,
        ),
        block_before,
    )


def _book_fill(route: Route, block: Block, execution: Execution) -> None:
    """Book a fill on its route and block, with its commission. A fill that
    would take the route past its quantity or the block past its own, or that
    arrives for a block no longer trading (allocated, done), is refused."""
    if execution.last_price is None or execution.last_price <= 0:
        raise ValueError(f"fill {execution.exec_id} has no price")
    last = execution.last_quantity
    if route.filled_quantity + last > route.quantity:
        raise BookingRefused(
            f"fill {execution.exec_id} of {_n(last)} on route {route.cl_ord_id} would fill "
            f"{_n(route.filled_quantity + last)} of its {_n(route.quantity)}"
        )
    if block.filled_quantity + last > block.quantity:
        raise BookingRefused(
            f"fill {execution.exec_id} of {_n(last)} would fill block #{block.pk} "
            f"{_n(block.filled_quantity + last)} of its {_n(block.quantity)}"
        )
    if block.status not in Block.OPEN_STATES:
        raise BookingRefused(
            f"fill {execution.exec_id} of {_n(last)} on route {route.cl_ord_id} arrived after "
            f"block #{block.pk} was {block.get_status_display().lower()}"
        )
    if route.status in Route.TERMINAL_STATES and route.status != Route.Status.FILLED:
        log.warning(
            "route %s is %s but %s filled %s more: booked against what is left of block #%s",
            route.cl_ord_id,
            route.status,
            route.broker.code,
            last,
            block.pk,
        )
    execution.commission = fill_commission(route, execution, block.security.multiplier)
    route.average_price = _weighted(route.filled_quantity, route.average_price, execution)
    route.filled_quantity += last
    route.commission += execution.commission
    block.average_price = _weighted(block.filled_quantity, block.average_price, execution)
    block.filled_quantity += last
    block.commission += execution.commission


def fill_commission(route: Route, execution: Execution, multiplier: Decimal) -> Decimal:
    """The commission on one fill, by the broker's schedule
    (``Broker.settings["commission"]``: ``per_share``, ``bps`` of the notional,
    and a ``minimum`` per order): each fill pays its per-share and basis-point
    charge, and the first fills make up the order's minimum."""
    schedule = route.broker.settings.get("commission") or {}
    if not schedule:
        return ZERO
    per_share = Decimal(str(schedule.get("per_share", 0)))
    bps = Decimal(str(schedule.get("bps", 0)))
    minimum = Decimal(str(schedule.get("minimum", 0)))
    notional = execution.last_quantity * execution.last_price * multiplier
    charge = per_share * execution.last_quantity + bps * notional / Decimal(10_000)
    charged = route.commission
    return money(max(charged + charge, minimum) - charged)


def _weighted(filled: Decimal, average: Decimal | None, execution: Execution) -> Decimal:
    total = filled + execution.last_quantity
    return round_price(
        ((average or ZERO) * filled + execution.last_price * execution.last_quantity) / total
    )


def apply_in_order(report: ExecutionReport, attempts: int = 5) -> None:
    """The report sink of adapters that answer while the send runs: each report is
    applied before the next one is read, so that reports apply in the broker's order.
    A briefly locked or unavailable database is waited for, never skipped."""
    for attempt in range(attempts):
        try:
            execution_apply(report)
            return
        except TRANSIENT:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)
