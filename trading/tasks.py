"""Thin Celery tasks: take ids, call one service. Only a database that is briefly
unavailable or locked (OperationalError) is retried."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from oms.context import origin

from .services import allocations, day_end, routes

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 8}


@shared_task(**RETRY)
def route_send(route_id: int) -> None:
    with origin("task", "route_send"):
        routes.route_send(route_id)


@shared_task(**RETRY)
def route_send_many(route_ids: list[int]) -> None:
    """Named route_* to go on the routing queue (CELERY_TASK_ROUTES)."""
    with origin("task", "route_send_many"):
        routes.routes_send(route_ids)


@shared_task(**RETRY)
def route_cancel_send(route_id: int) -> None:
    with origin("task", "route_cancel_send"):
        routes.route_cancel_send(route_id)


@shared_task(**RETRY)
def route_replace_send(route_id: int) -> None:
    with origin("task", "route_replace_send"):
        routes.route_replace_send(route_id)


@shared_task(**RETRY)
def route_status_send(route_id: int) -> None:
    with origin("task", "route_status_send"):
        routes.route_status_send(route_id)


@shared_task(**RETRY)
def allocate_block(block_id: int) -> None:
    with origin("task", "allocate_block"):
        allocations.block_allocate(block_id=block_id)


@shared_task(**RETRY)
def allocate_blocks(block_ids: list[int]) -> None:
    with origin("task", "allocate_blocks"):
        allocations.blocks_allocate(block_ids=block_ids)


@shared_task
def resend_unsent_routes(older_than_seconds: float = 30.0) -> int:
    with origin("task", "resend_unsent_routes"):
        return routes.routes_resend_unsent(older_than_seconds=older_than_seconds)


@shared_task
def reconcile_route_status() -> dict:
    """Celery beat: the order status sweep."""
    with origin("task", "reconcile_route_status"):
        result = day_end.routes_sweep_status()
    return {"asked": result.asked, "cancelled": result.cancelled, "person": result.for_a_person}


@shared_task
def expire_day_blocks() -> int:
    """Celery beat: end the blocks whose trading day is over."""
    with origin("task", "expire_day_blocks"):
        return len(day_end.blocks_close_day())
