"""Cancelling a route from the desk: the request goes to the broker and its
answer settles the route; a route not sent yet is cancelled at once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_audit_chain
from oms.state import TransitionError
from tests.desk import released_block
from trading.models import Block, Order, Route
from trading.services import routes as route_services
from trading.tasks import route_send

pytestmark = pytest.mark.django_db


def _block(pm, book, order_type="limit", limit_price="50") -> Block:
    limit = Decimal(limit_price) if order_type == "limit" else None
    return released_block(pm, book, "10", "10", order_type=order_type, limit_price=limit)


def test_a_resting_order_is_cancelled_by_the_broker_and_the_block_can_be_routed_again(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    block = _block(pm, book)  # a buy limit at 50 with AAA at 100: it rests
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route.refresh_from_db()
    assert route.status == Route.Status.NEW

    with django_capture_on_commit_callbacks(execute=True) as hooks:
        route_services.route_cancel(actor=trader, route_id=route.pk, reason="price moved away")
        assert Route.objects.get(pk=route.pk).status == Route.Status.PENDING_CANCEL
    assert len(hooks) == 1  # the cancel request went to the worker after commit

    route.refresh_from_db()
    block.refresh_from_db()
    assert route.status == Route.Status.CANCELLED
    assert (block.status, block.routed_quantity) == (Block.Status.OPEN, 0)
    assert set(block.orders.values_list("status", flat=True)) == {Order.Status.RELEASED}
    event = AuditEvent.objects.get(kind="route.cancel_requested")
    assert (event.actor, event.reason) == (trader, "price moved away")
    assert AuditEvent.objects.filter(kind="execution.canceled").exists()
    assert verify_audit_chain().ok


def test_a_route_not_sent_yet_is_cancelled_at_once_and_never_sent(pm, trader, book, eager_celery):
    block = _block(pm, book, order_type="market")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    # the routing task has not run (its on_commit hook did not fire)
    route_services.route_cancel(actor=trader, route_id=route.pk)
    route.refresh_from_db()
    assert route.status == Route.Status.CANCELLED and route.filled_quantity == 0
    route_send(route.pk)  # the task arrives late: it finds the route claimed
    route.refresh_from_db()
    assert route.status == Route.Status.CANCELLED and not route.executions.exists()
    assert Block.objects.get(pk=block.pk).status == Block.Status.OPEN


def test_a_filled_route_cannot_be_cancelled_and_only_traders_may_ask(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    block = _block(pm, book, order_type="market")
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    with pytest.raises(TransitionError, match="nothing to cancel"):
        route_services.route_cancel(actor=trader, route_id=route.pk)
    with pytest.raises(PermissionDenied):
        route_services.route_cancel(actor=pm, route_id=route.pk)
    assert not AuditEvent.objects.filter(kind="route.cancel_requested").exists()


def test_cancel_through_the_api(pm, trader, book, eager_celery, django_capture_on_commit_callbacks):
    block = _block(pm, book)
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=trader).key}")
    url = f"/api/v1/routes/{route.pk}/cancel/"
    pm_api = APIClient()
    pm_api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=pm).key}")
    assert pm_api.post(url, {}, format="json").status_code == 403

    response = api.post(url, {"reason": "no longer wanted"}, format="json")
    assert response.status_code == 200, response.content
    assert response.data["status"] == "pending_cancel"
    again = api.post(url, {}, format="json")
    assert again.status_code == 409 and "waiting for SIM's answer already" in str(again.data)


def test_cancel_button_on_the_block_page(pm, trader, book, client, eager_celery):
    block = _block(pm, book, order_type="market")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    client.force_login(pm)
    pm_page = client.get(reverse("trading:block-detail", args=[block.pk])).content.decode()
    client.force_login(trader)
    page = client.get(reverse("trading:block-detail", args=[block.pk]))
    assert reverse("trading:route-cancel", args=[route.pk]) in page.content.decode()
    assert reverse("trading:route-cancel", args=[route.pk]) not in pm_page
    response = client.post(reverse("trading:route-cancel", args=[route.pk]))
    assert response.status_code == 302
    assert Route.objects.get(pk=route.pk).status == Route.Status.CANCELLED
    again = client.post(reverse("trading:route-cancel", args=[route.pk]), follow=True)
    assert "nothing to cancel" in again.content.decode()
