"""A block that is partly filled when its routes have ended is not left hanging:
when the broker ends a day order's route (expired or done for day) the block is
done for the day, and a trader can end a block for the day; either way what did
fill is allocated at one average price."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from portfolios.models import Position
from tests.desk import broker_report, released_block
from trading.models import Allocation, Block, Order, Route
from trading.services import blocks as block_services
from trading.services import executions as execution_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def _report(route, n, *args, **kwargs):
    return broker_report(route, f"T{n}", *args, **kwargs)


def _partly_fill(route, quantity):
    execution_services.execution_apply(_report(route, 1, "new", "new"))
    execution_services.execution_apply(
        _report(route, 2, "trade", "partially_filled", last=quantity, cum=quantity)
    )


def test_a_day_route_the_broker_expires_ends_the_block_for_the_day_and_allocates_it(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    _partly_fill(route, 50)
    with django_capture_on_commit_callbacks(execute=True):
        execution_services.execution_apply(_report(route, 3, "expired", "expired", cum=50))
    block.refresh_from_db()
    assert block.status == Block.Status.ALLOCATED
    split = dict(Allocation.objects.values_list("order__quantity", "quantity"))
    assert split == {Decimal(60): Decimal(30), Decimal(40): Decimal(20)}  # pro rata
    for order in Order.objects.filter(block=block):
        assert order.status == Order.Status.ALLOCATED
        assert order.filled_quantity < order.quantity
    acc1 = book["accounts"][0]
    assert Position.objects.get(portfolio=acc1, security__ticker="AAA").quantity == 630


def test_a_trader_ends_a_partly_filled_block_for_the_day_and_it_is_allocated(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    _partly_fill(route, 50)
    execution_services.execution_apply(_report(route, 3, "canceled", "cancelled", cum=50))
    block.refresh_from_db()
    # cancelled by the trader: the rest may still be routed elsewhere today
    assert block.status == Block.Status.PARTIALLY_FILLED
    assert block.unrouted_quantity == 50
    with django_capture_on_commit_callbacks(execute=True):
        block_services.block_done_for_day(actor=trader, block_id=block.pk, reason="market closed")
    block.refresh_from_db()
    assert block.status == Block.Status.ALLOCATED
    assert sum(Allocation.objects.values_list("quantity", flat=True)) == 50


def test_a_block_with_a_live_route_cannot_be_ended_for_the_day(pm, trader, book):
    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    _partly_fill(route, 50)
    with pytest.raises(ValidationError, match="still working"):
        block_services.block_done_for_day(actor=trader, block_id=block.pk)
    assert Route.objects.get(pk=route.pk).status == Route.Status.PARTIALLY_FILLED


def test_only_a_trader_ends_a_block_for_the_day(pm, book):
    block = released_block(pm, book, "60", "40")
    with pytest.raises(PermissionDenied):
        block_services.block_done_for_day(actor=pm, block_id=block.pk)


def test_the_block_page_and_the_api_end_a_block_for_the_day(pm, trader, book, eager_celery):
    from django.test import Client
    from django.urls import reverse
    from rest_framework.test import APIClient

    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    _partly_fill(route, 50)
    execution_services.execution_apply(_report(route, 3, "canceled", "cancelled", cum=50))
    page_client = Client()
    page_client.force_login(trader)
    page = page_client.get(reverse("trading:block-detail", args=[block.pk]))
    assert b"Done for day" in page.content
    client = APIClient()
    client.force_authenticate(trader)
    busy = client.post(f"/api/v1/blocks/{block.pk}/done-for-day/", {}, format="json")
    assert busy.status_code == 200, busy.content
    assert busy.json()["status"] in ("done_for_day", "allocated")
    again = client.post(f"/api/v1/blocks/{block.pk}/done-for-day/", {}, format="json")
    assert again.status_code == 409
    assert "done for day" in again.json()["detail"] or "allocated" in again.json()["detail"]


def test_a_day_route_whose_send_was_lost_yesterday_is_not_sent_today(
    pm, trader, book, eager_celery
):
    """Beat re-sends routes whose send task was lost; a day route created on an
    earlier trading day must not go out: it is rejected and its quantity freed."""
    from datetime import timedelta

    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    Route.objects.filter(pk=route.pk).update(created_at=timezone.now() - timedelta(days=1))
    route_services.route_send(route.pk)
    route.refresh_from_db()
    block.refresh_from_db()
    assert route.sent_at is None or route.status == Route.Status.REJECTED
    assert route.status == Route.Status.REJECTED
    assert "earlier trading day" in route.text
    assert block.routed_quantity == 0 and block.status == Block.Status.OPEN
