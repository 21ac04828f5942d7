"""Review: a run's approval must not bring back an order cancelled meanwhile.

On PostgreSQL `_orders_locked` locks ``WHERE id IN (<the drafts' query>) FOR UPDATE``:
when a row it waits for is changed, PostgreSQL re-checks only the outer condition
(the id) on the new version, not the subquery's ``status = 'draft'``, so an order
cancelled by another transaction while the approval waited for its lock comes back
locked with its new status and is then moved to *approved* by id: a cancelled order
revived, and released with the run. (Before, ``drafts.select_for_update()`` put the
status in the locking statement's own WHERE, which PostgreSQL re-checks.)
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from portfolios.models import CashBalance, Portfolio, RebalanceRun
from portfolios.services import reference
from trading.models import Order
from trading.services.bulk import ProposedOrder, run_orders_approve, run_orders_create


@pytest.mark.django_db(transaction=True)
def test_an_order_cancelled_while_the_approval_waits_stays_cancelled(ops, pm):
    from tests.conftest import service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: writers at once (SQLite serialises them)")
    xyz = reference.security_create(
        actor=ops, ticker="XYZ", name="XYZ Corp", asset_class="equity", currency="USD"
    )
    reference.prices_create(
        actor=ops,
        prices=[{"security": xyz, "as_of": timezone.now().date(), "price": Decimal("10")}],
    )
    accounts = []
    for i in range(3):
        account = Portfolio.objects.create(code=f"ACC{i}", name=f"ACC{i}", manager=pm)
        CashBalance.objects.create(portfolio=account, currency="USD", amount=Decimal(10**6))
        accounts.append(account)
    run = RebalanceRun.objects.create(created_by=pm, status=RebalanceRun.Status.PROPOSED)
    with transaction.atomic():
        orders = run_orders_create(
            actor=pm,
            run=run,
            proposed=[
                ProposedOrder(a.pk, xyz.pk, "buy", Decimal(10), Decimal(10)) for a in accounts
            ],
        )
    victim = orders[1].pk
    locked = threading.Event()

    def cancel_meanwhile():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE trading_order SET status = 'cancelled' WHERE id = %s", [victim]
                )
                locked.set()
                time.sleep(1.0)  # the approval waits for this row meanwhile
        finally:
            connection.close()

    thread = threading.Thread(target=cancel_meanwhile)
    thread.start()
    assert locked.wait(5)
    moved = run_orders_approve(actor=pm, run=run)
    thread.join()

    assert Order.objects.get(pk=victim).status == Order.Status.CANCELLED
    assert victim not in {pk for ids in moved.values() for pk in ids}
