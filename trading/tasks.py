"""Thin Celery tasks: take ids (or a report), load, call a service."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import OperationalError

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
        if route is None or not services.route_claim_for_sending(route_id):
            return  # gone, or already sent by an earlier delivery of this task
        try:
            adapter_for(route.broker, apply_in_order).send(services.route_ticket(route))
        except Exception as exc:
            # The broker may or may not have the order: say so, never drop it silently.
            log.exception("sending route %s failed", route.cl_ord_id)
            services.route_mark_unconfirmed(route_id, f"send failed: {exc}")


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
