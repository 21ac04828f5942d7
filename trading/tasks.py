"""Thin Celery tasks: take ids (or a report), load, call a service."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import OperationalError, transaction

from oms.context import origin

from . import services
from .brokers import adapter_for
from .brokers.base import ExecutionReport
from .models import Route

log = logging.getLogger(__name__)

# Only a database that is briefly unavailable or locked is worth a retry.
TRANSIENT = (OperationalError,)


def apply_in_order(report: ExecutionReport, attempts: int = 5) -> None:
    """The report sink of adapters that answer while the send runs: each report is
    applied before the next one is read, so that reports apply in the broker's order.
    A briefly locked or unavailable database is waited for, never skipped."""
    for attempt in range(attempts):
        try:
            services.execution_apply(report)
            return
        except TRANSIENT:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=8)
def route_send(route_id: int) -> None:
    with origin("task", "route_send"):
        route = (
            Route.objects.select_related("broker", "block__security").filter(pk=route_id).first()
        )
        if route is None:
            return
        try:
            adapter = adapter_for(route.broker, apply_in_order)
        except ValueError as exc:  # the broker is not set up to be reached
            log.error("route %s: %s", route.cl_ord_id, exc)
            services.route_not_sent(route_id, str(exc))
            return
        if adapter.queues_in_database:
            _queue_route(adapter, route)
            return
        if not services.route_claim_for_sending(route_id):
            return  # already sent by an earlier delivery of this task
        try:
            adapter.send(services.route_ticket(route))
        except Exception as exc:
            # The broker may or may not have the order: say so, never drop it silently.
            log.exception("sending route %s failed", route.cl_ord_id)
            services.route_mark_unconfirmed(route_id, f"send failed: {exc}")


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=8)
def route_cancel_send(route_id: int) -> None:
    """Send a cancel request to a broker reached from the worker (the simulated
    broker); its answer comes back through the sink like any report."""
    with origin("task", "route_cancel_send"):
        route = Route.objects.select_related("broker", "block__security").get(pk=route_id)
        if route.status != Route.Status.PENDING_CANCEL:
            return  # settled already (filled, or answered by an earlier delivery)
        try:
            adapter_for(route.broker, apply_in_order).cancel(services.route_ticket(route))
        except TRANSIENT:
            raise
        except Exception as exc:
            log.exception("cancel of route %s failed", route.cl_ord_id)
            services.route_mark_unconfirmed(route_id, f"cancel request failed: {exc}")


def _queue_route(adapter, route: Route) -> None:
    """For adapters that write the message to the database (FIX: the outbox that
    the gateway sends): the claim and the message commit together, so a worker
    that dies between the two leaves neither, and the route is sent again."""
    try:
        with transaction.atomic():
            if not services.route_claim_for_sending(route.pk):
                return  # already queued by an earlier delivery of this task
            adapter.send(services.route_ticket(route))
    except TRANSIENT:
        raise  # retried; nothing was written
    except Exception as exc:
        # Nothing left us and nothing will: the route is rejected, its quantity freed.
        log.exception("queueing route %s failed", route.cl_ord_id)
        services.route_not_sent(route.pk, f"could not be queued for the broker: {exc}")


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=8)
def allocate_block(block_id: int) -> None:
    with origin("task", "allocate_block"):
        services.block_allocate(block_id=block_id)


@shared_task
def resend_unsent_routes(older_than_seconds: float = 30.0) -> int:
    """Enqueue the send of routes created but never claimed for sending.

    route_send claims a route once, so a route enqueued twice is still sent once.
    """
    from datetime import timedelta

    from django.utils import timezone

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(
        Route.objects.filter(
            status=Route.Status.PENDING_NEW, sent_at__isnull=True, created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for route_id in stale:
        route_send.delay(route_id)
    return len(stale)
