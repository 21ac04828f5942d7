"""The chain on real parts: PostgreSQL, Redis and a Celery worker process."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from audit.services import audit_seal, verify_audit_chain
from orchestration import services as run_services
from portfolios.models import Position
from trading.models import Block, Order, Route
from trading.services import routes as route_services

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_worker_routes_fills_and_allocates(celery_worker_process, wait_for, pm, trader, book):
    acc1 = book["accounts"][0]
    run = run_services.rebalance_run_create(
        actor=pm, portfolios=[acc1], parameters={"min_trade_value": 100}
    )
    run_services.rebalance_run_approve(actor=pm, run_id=run.pk)
    run_services.rebalance_run_release(actor=pm, run_id=run.pk)
    blocks = list(Block.objects.filter(orders__rebalance_run=run).distinct())
    assert blocks
    for block in blocks:
        route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])

    def all_allocated():
        return not Block.objects.exclude(status=Block.Status.ALLOCATED).exists()

    assert wait_for(all_allocated, 60), list(Block.objects.values_list("pk", "status"))
    assert set(Route.objects.values_list("status", flat=True)) == {Route.Status.FILLED}
    orders = list(run.orders.select_related("security"))
    assert {o.status for o in orders} == {Order.Status.ALLOCATED}
    for order in orders:
        assert order.filled_quantity == order.quantity
    sold = next(o for o in orders if o.security.ticker == "EEE")
    assert (
        Position.objects.get(portfolio=acc1, security__ticker="EEE").quantity
        == Decimal(500) - sold.quantity
    )
    broker_events = AuditEvent.objects.filter(actor_name="broker:SIM", kind="execution.trade")
    assert broker_events.count() >= len(blocks)
    # every event of the chain, written by this process and the worker, sealed and sound
    audit_seal()
    report = verify_audit_chain()
    assert report.ok and report.awaiting == 0
    assert report.checked == AuditEvent.objects.count() > 0
