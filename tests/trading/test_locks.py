"""The trading locks take their own rows only: locking a block, a route or an
order does not lock the security, broker or account joined to read it."""

import threading

import pytest
from django.db import connection, connections, transaction

from portfolios.models import Portfolio, Security
from tests.conftest import service_missing
from tests.desk import released_block
from trading import locks
from trading.models import Broker
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
    order = released_block(pm, book, "10").orders.get()
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
