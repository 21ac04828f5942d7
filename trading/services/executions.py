"""Executions: a broker's execution report applied to its route and block.

Every report goes through `execution_apply`, whichever broker adapter brought
it (the in-worker simulated broker, or the FIX gateway), once per route and
ExecID. Route states follow the broker's OrdStatus through the route's
transition map; what a broker did not fill comes back to the block.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from django.db import IntegrityError, OperationalError

from audit.services import audit_record, audited_transaction, snapshot
from oms.numbers import ZERO
from oms.numbers import price as round_price
from oms.numbers import qty as round_qty
from trading import locks
from trading.brokers import ExecutionReport
from trading.models import Block, Execution, Route

from .blocks import block_follow_routes

log = logging.getLogger(__name__)

#: Only a database that is briefly unavailable or locked is worth waiting for.
TRANSIENT = (OperationalError,)


_EXEC_TYPES = set(Execution.ExecType.values)
_ORD_STATUSES = set(Route.Status.values)


def execution_apply(report: ExecutionReport) -> Execution | None:
    """Apply one execution report. The same report (route, ExecID) applied twice
    changes nothing the second time and returns None."""
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
    route_before = snapshot(route, Route.AUDIT_FIELDS)
    block_before = snapshot(block, Block.AUDIT_FIELDS)
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
        after=snapshot(route, Route.AUDIT_FIELDS)
        | {
            "exec_id": execution.exec_id,
            "last_quantity": execution.last_quantity,
            "last_price": execution.last_price,
        },
        reason=execution.text,
    )
    block_follow_routes(block, actor_name=actor_name, before=block_before)


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
