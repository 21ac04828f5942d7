"""API fixtures: clients per persona (token-authenticated, as integrators are) and
objects in each state the actions start from, made through the services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from trading.services import orders as order_services


@pytest.fixture
def client_for():
    """A client that sends the user's API token; None for an anonymous one."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def make_order(pm, book):
    """A draft order (through the service), optionally approved and released."""

    def make(*, ticker="AAA", side="buy", quantity="10", account=0, upto="draft", actor=None):
        actor = actor or pm
        order = order_services.order_create(
            actor=actor,
            portfolio=book["accounts"][account],
            security=book["securities"][ticker],
            side=side,
            quantity=Decimal(quantity),
        )
        if upto in ("approved", "released"):
            order_services.orders_approve(actor=actor, order_ids=[order.pk])
        if upto == "released":
            order_services.orders_release(actor=actor, order_ids=[order.pk])
        order.refresh_from_db()
        return order

    return make
