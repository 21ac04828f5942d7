"""The end of the trading day, and the order status sweep (both run by Celery beat).

**The sweep** asks each broker where an order stands when we cannot know
without asking: a route unconfirmed (sent, outcome unknown), pending (new,
cancel or replace) longer than ``OMS_ROUTE_PENDING_SECONDS``, live but silent
longer than ``OMS_ROUTE_QUIET_SECONDS`` (the worker that was filling it died),
or still open past the end of its life (a day order at its exchange's close, a
good-till-date one at its date). The broker's answer settles the route through
the execution services. A day order the broker still calls working a while
after the close is asked to be cancelled. A route asked
``OMS_ROUTE_STATUS_TRIES`` times without an answer is left for a person: the
*Needs a person* page lists it (`routes_needing_a_person`), nothing fails it
silently, and a person can ask again or close it on the broker's word.

**The close** ends day blocks (and good-till-date ones at their date) once
their exchange has closed and no route of theirs is still working: what filled
is allocated (done for day), and a block that nothing filled is done for the
day with its account orders expired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from audit.services import audit_record, audited_transaction, snapshot
from oms.roles import Action, require
from oms.state import TransitionError, move
from oms.tasking import enqueue
from trading import locks
from trading.models import Block, FixOutbox, Order, Route
from trading.selectors import exchange_of

from . import routes as route_services
from . import trading_day
from .blocks import allocate_when_ended, block_changed, block_follow_routes

log = logging.getLogger(__name__)

_LIVE = set(Route.Status) - Route.TERMINAL_STATES


@dataclass(frozen=True)
class SweepResult:
    asked: int
    cancelled: int
    for_a_person: int


def _sweep_settings() -> tuple[timedelta, timedelta, int]:
    return (
        timedelta(seconds=settings.OMS_ROUTE_PENDING_SECONDS),
        timedelta(seconds=settings.OMS_ROUTE_QUIET_SECONDS),
        settings.OMS_ROUTE_STATUS_TRIES,
    )


def routes_to_ask(now: datetime | None = None):
    """Routes whose state only their broker can settle now, with why."""
    now = now or timezone.now()
    pending, quiet, tries = _sweep_settings()
    not_asked_lately = Q(status_requested_at__isnull=True) | Q(
        status_requested_at__lt=now - pending
    )
    sent = Q(sent_at__isnull=False)
    why = (
        Q(status=Route.Status.UNCONFIRMED)
        | Q(status__in=Route.PENDING_STATES, updated_at__lt=now - pending)
        | Q(status__in=_LIVE, updated_at__lt=now - quiet)
        | Q(status__in=_LIVE, ends_at__lte=now)
    )
    # a message still waiting in the outbox (the order itself, or the last status
    # request) is not answered yet: asking again would only queue up requests
    waiting = FixOutbox.objects.filter(route=OuterRef("pk"), status=FixOutbox.Status.PENDING)
    return (
        Route.objects.filter(why, sent, not_asked_lately, status_requests__lt=tries)
        .exclude(status__in=Route.TERMINAL_STATES)
        .exclude(Exists(waiting))
        .order_by("pk")
    )


def routes_sweep_status(*, now: datetime | None = None, limit: int = 500) -> SweepResult:
    """Ask the brokers of routes that need it for their status; cancel day
    orders a broker still works well after the close. Returns what it did."""
    now = now or timezone.now()
    pending, _, tries = _sweep_settings()
    asked = cancelled = 0
    # A day order still working after the close and after its broker was asked:
    # what is left comes back to the block.
    overdue = (
        Route.objects.filter(
            status__in=Route.CANCELLABLE_STATES,
            ends_at__lte=now - pending,
            status_requested_at__gt=F("ends_at"),
        )
        .exclude(status__in=Route.PENDING_STATES)
        .values_list("pk", flat=True)[:limit]
    )
    for route_id in list(overdue):
        try:
            route_services.route_cancel_by_system(
                route_id=route_id, reason="still working after its close: what is left comes back"
            )
            cancelled += 1
        except (ValidationError, TransitionError) as exc:
            log.warning("route %s not cancelled at the close: %s", route_id, exc)
    for route_id in list(routes_to_ask(now).values_list("pk", flat=True)[:limit]):
        reason = "order status sweep"
        if route_services.route_ask_status(route_id, reason=reason):
            asked += 1
    # A block that ended with fills but was not allocated (its task was lost with
    # a killed worker) is allocated again; the allocation is idempotent.
    stale = Block.objects.filter(
        status__in=Block.ALLOCATABLE_STATES, filled_quantity__gt=0, updated_at__lt=now - pending
    ).values_list("pk", flat=True)[:limit]
    for block_id in list(stale):
        enqueue("trading.tasks.allocate_block", block_id)
    return SweepResult(
        asked=asked,
        cancelled=cancelled,
        for_a_person=routes_needing_a_person(now).count(),
    )


def routes_needing_a_person(now: datetime | None = None):
    """Routes the sweep could not settle: asked ``OMS_ROUTE_STATUS_TRIES`` times
    without an answer, and still not ended."""
    _, _, tries = _sweep_settings()
    return (
        Route.objects.filter(status_requests__gte=tries)
        .exclude(status__in=Route.TERMINAL_STATES)
        .select_related("broker", "block__security")
        .order_by("status_requested_at", "pk")
    )


# --- The close -------------------------------------------------------------------------


def block_day_ends_at(block: Block) -> datetime | None:
    """When a block's day is over: the close of its exchange's session in which it
    was released (day and other within-the-day orders), its date (good-till-date)."""
    try:
        return trading_day.order_ends_at(
            time_in_force=block.time_in_force,
            entered_at=block.created_at,
            mic=exchange_of(block.security),
            expire_at=block.expire_at,
        )
    except trading_day.UnknownExchange:
        log.error("block #%s: no calendar for %s", block.pk, exchange_of(block.security))
        return None


def blocks_close_day(*, now: datetime | None = None) -> list[int]:
    """End the blocks whose day is over and whose routes have all ended.
    Returns the ids of the blocks ended."""
    now = now or timezone.now()
    ended = []
    candidates = (
        Block.objects.filter(status__in=Block.OPEN_STATES)
        .exclude(time_in_force="gtc")
        .select_related("security")
        .order_by("pk")
    )
    for block in candidates:
        ends_at = block_day_ends_at(block)
        if ends_at is None or ends_at > now:
            continue
        if block.routes.filter(status__in=_LIVE).exists():
            continue  # the sweep asks the broker; the block ends when the routes do
        if block_end_day(block_id=block.pk, now=now):
            ended.append(block.pk)
    return ended


def block_end_day(*, block_id: int, now: datetime) -> bool:
    """End one block at the close: done for the day (allocated with what filled),
    its unfilled account orders expired when nothing filled at all."""
    with audited_transaction():
        block = locks.lock_block(block_id)
        if block.status not in Block.OPEN_STATES:
            return False
        if block.routes.filter(status__in=_LIVE).exists():
            return False
        before = snapshot(block, Block.AUDIT_FIELDS)
        move(block, Block.Status.DONE_FOR_DAY)
        block.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=None,
            actor_name="system",
            kind="block.day_ended",
            obj=block,
            before=before,
            after=snapshot(block, Block.AUDIT_FIELDS),
            reason=f"the trading day ended ({block.get_time_in_force_display().lower()} order)",
        )
        if block.filled_quantity == 0:
            for order in locks.lock_block_orders(block):
                if Order.Status.EXPIRED not in Order.TRANSITIONS[order.status]:
                    continue
                order_before = {"status": order.status}
                move(order, Order.Status.EXPIRED)
                order.save(update_fields=["status", "updated_at"])
                audit_record(
                    actor=None,
                    actor_name="system",
                    kind="order.expired",
                    obj=order,
                    before=order_before,
                    after={"status": order.status, "block": block.pk},
                    reason="its trading day ended with nothing filled",
                )
        else:
            allocate_when_ended(block)
        block_changed(block.pk)
    return True


# --- By hand ---------------------------------------------------------------------------


def route_ask_again(*, actor, route_id: int) -> bool:
    """A person asks the broker once more (the count starts again)."""
    require(actor, Action.BLOCK_ROUTE)
    return route_services.route_ask_status(
        route_id, reason=f"asked again by {actor}", actor=actor, again=True
    )


def route_close_by_hand(*, actor, route_id: int, status: str, reason: str) -> Route:
    """Close a route the broker confirmed out of band (by phone, on its
    statement): cancelled or expired with what it filled; the rest comes back."""
    require(actor, Action.BLOCK_ROUTE)
    if status not in (Route.Status.CANCELLED, Route.Status.EXPIRED):
        raise ValidationError({"status": ["A route is closed by hand as cancelled or expired."]})
    if not reason.strip():
        raise ValidationError({"reason": ["Say who at the broker confirmed it, and how."]})
    with audited_transaction():
        route_ref = Route.objects.get(pk=route_id)
        block = locks.lock_block(route_ref.block_id)
        route = locks.lock_route(route_id)
        if route.status in Route.TERMINAL_STATES:
            raise ValidationError(f"Route {route.cl_ord_id} has ended already.")
        before = snapshot(route, Route.AUDIT_FIELDS)
        block_before = snapshot(block, Block.AUDIT_FIELDS)
        held = route.reserved_quantity
        move(route, status)
        route.text = reason[:500]
        route.status_requests = 0
        route.save(update_fields=["status", "text", "status_requests", "updated_at"])
        block.routed_quantity += route.reserved_quantity - held
        audit_record(
            actor=actor,
            kind="route.closed_by_hand",
            obj=route,
            before=before,
            after=snapshot(route, Route.AUDIT_FIELDS),
            reason=reason,
        )
        block_follow_routes(block, actor_name=None, before=block_before, actor=actor)
    return route
