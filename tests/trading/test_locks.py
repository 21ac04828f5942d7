"""The trading locks take their own rows only: locking a block, a route or an
order does not lock the security, broker or account joined to read it."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from portfolios.models import Portfolio, Security
from tests.conftest import service_missing
from trading import locks
from trading.models import Broker
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db(transaction=True)


def _locked_elsewhere(model, pk) -> bool:
    """Whether another connection finds ``model`` row ``pk`` locked (NOWAIT)."""
    result = {}

    def probe():
        try:
            with transaction.atomic():
                model.objects.select_for_update(nowait=True).get(pk=pk)
            result["locked"] = False
        except Exception as exc:  # DatabaseError: could not obtain lock
            result["locked"] = "lock" in str(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(10)
    return result["locked"]


def test_locking_trading_rows_leaves_the_joined_rows_free(pm, trader, book):
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL): row locks")
    order = order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(10),
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    route = route_services.route_create(
        actor=trader, block_id=order.block_id, broker=book["broker"]
    )
    with transaction.atomic():
        locks.lock_block(order.block_id)
        locks.lock_route(route.pk)
        locks.lock_orders([order.pk])
        assert not _locked_elsewhere(Security, order.security_id)
        assert not _locked_elsewhere(Broker, route.broker_id)
        assert not _locked_elsewhere(Portfolio, order.portfolio_id)
        # and the rows themselves are locked
        assert _locked_elsewhere(type(order), order.pk)
