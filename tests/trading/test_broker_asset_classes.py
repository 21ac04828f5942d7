"""A broker that does not trade an asset class: routing a block of it is refused with
a message that names the broker, the security and what the broker takes (ticket,
page and API), and nothing is routed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.desk import released_block
from trading.models import Block, Broker, Route
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def _block(pm, book, ticker: str) -> Block:
    return released_block(pm, book, "10", ticker=ticker)


@pytest.fixture
def equity_desk(db):
    return Broker.objects.create(
        code="EQD", name="Equity desk", settings={"asset_classes": ["equity", "etf"]}
    )


def test_a_block_of_an_asset_class_the_broker_does_not_trade_is_refused(
    pm, trader, book, equity_desk
):
    block = _block(pm, book, "CCC")  # fixed income
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        route_services.route_create(actor=trader, block_id=block.pk, broker=equity_desk)
    assert refused.value.message_dict["broker"] == [
        "EQD does not trade fixed income (CCC); it takes equity, exchange-traded fund."
    ]
    assert not Route.objects.exists() and AuditEvent.objects.count() == events
    block.refresh_from_db()
    assert block.status == Block.Status.OPEN and block.routed_quantity == 0


def test_what_the_broker_trades_is_routed(pm, trader, book, equity_desk):
    block = _block(pm, book, "AAA")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=equity_desk)
    assert route.quantity == Decimal(10)


def test_the_api_answers_400_in_words(pm, trader, book, equity_desk):
    block = _block(pm, book, "CCC")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=trader).key}")
    response = client.post(f"/api/v1/blocks/{block.pk}/route/", {"broker": "EQD"}, format="json")
    assert response.status_code == 400, response.content
    assert "EQD does not trade fixed income (CCC)" in str(response.json())
    assert not Route.objects.exists()
