"""The trading chain through the services, with tasks run eagerly on commit."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from audit.services import verify_audit_chain
from portfolios.models import CashBalance, Position, TaxLot
from trading.brokers import ExecutionReport
from trading.models import Allocation, Block, Execution, Order, Route
from trading.services import executions as execution_services
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def _order(pm, book, ticker="AAA", side="buy", quantity="100", account=0):
    return order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][account],
        security=book["securities"][ticker],
        side=side,
        quantity=Decimal(quantity),
    )


def test_orders_flow_from_draft_to_allocated(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    first = _order(pm, book, quantity="100", account=0)
    second = _order(pm, book, quantity="50", account=1)
    order_services.orders_approve(actor=pm, order_ids=[first.pk, second.pk])
    order_services.orders_release(actor=pm, order_ids=[first.pk, second.pk])

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.block_id == second.block_id, "same security and side share one block"
    block = first.block
    assert block.quantity == Decimal(150)
    assert block.status == Block.Status.OPEN

    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])

    route.refresh_from_db()
    block.refresh_from_db()
    assert route.status == Route.Status.FILLED
    assert route.filled_quantity == Decimal(150)
    assert block.status == Block.Status.ALLOCATED
    assert block.average_price == Decimal(100)
    assert Execution.objects.filter(route=route, exec_type="trade").count() == 2

    allocations = {a.order_id: a for a in Allocation.objects.all()}
    assert allocations[first.pk].quantity == Decimal(100)
    assert allocations[second.pk].quantity == Decimal(50)
    first.refresh_from_db()
    assert first.status == Order.Status.ALLOCATED
    assert first.average_price == Decimal(100)

    acc1, acc2 = book["accounts"]
    assert Position.objects.get(portfolio=acc1, security__ticker="AAA").quantity == Decimal(700)
    assert Position.objects.get(portfolio=acc2, security__ticker="AAA").quantity == Decimal(150)
    assert CashBalance.objects.get(portfolio=acc1, currency="USD").amount == Decimal("10000")
    assert TaxLot.objects.filter(portfolio=acc1, security__ticker="AAA").count() == 2

    kinds = list(AuditEvent.objects.order_by("pk").values_list("kind", flat=True))
    for expected in (
        "order.created",
        "order.approved",
        "order.released",
        "route.created",
        "route.sent",
        "execution.trade",
        "order.allocated",
        "block.allocated",
    ):
        assert expected in kinds
    assert verify_audit_chain().ok


def test_same_execution_twice_changes_nothing(pm, trader, book, eager_celery):
    order = _order(pm, book, quantity="100")
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    route = route_services.route_create(
        actor=trader, block_id=order.block_id, broker=book["broker"]
    )
    from django.utils import timezone

    report = ExecutionReport(
        broker="SIM",
        cl_ord_id=route.cl_ord_id,
        exec_id="X1",
        exec_type="trade",
        ord_status="partially_filled",
        transact_time=timezone.now(),
        last_quantity=Decimal(40),
        last_price=Decimal("99.5"),
        cumulative_quantity=Decimal(40),
        leaves_quantity=Decimal(60),
    )
    assert execution_services.execution_apply(report) is not None
    events = AuditEvent.objects.count()
    assert execution_services.execution_apply(report) is None
    route.refresh_from_db()
    assert route.filled_quantity == Decimal(40)
    assert route.status == Route.Status.PARTIALLY_FILLED
    assert Execution.objects.count() == 1
    assert AuditEvent.objects.count() == events


def test_sell_more_than_held_is_refused(pm, book):
    with pytest.raises(ValidationError) as error:
        _order(pm, book, ticker="AAA", side="sell", quantity="601")
    assert "quantity" in error.value.message_dict
    assert not Order.objects.exists()


def test_other_managers_account_is_refused(other_pm, book):
    with pytest.raises(PermissionDenied):
        _order(other_pm, book)


def test_trader_cannot_create_orders(trader, book):
    with pytest.raises(PermissionDenied):
        _order(trader, book)


def test_a_route_whose_send_was_lost_is_sent_by_beat_once(pm, trader, book, eager_celery):
    from datetime import timedelta

    from django.utils import timezone

    from trading.tasks import resend_unsent_routes

    order = _order(pm, book, quantity="10")
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    # No on-commit capture: the send task is never enqueued, as if the broker was down.
    route = route_services.route_create(
        actor=trader, block_id=order.block_id, broker=book["broker"]
    )
    assert resend_unsent_routes() == 0, "too recent to be called lost"
    Route.objects.filter(pk=route.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert resend_unsent_routes() == 1
    route.refresh_from_db()
    assert route.sent_at is not None
    assert route.status == Route.Status.FILLED
    assert resend_unsent_routes() == 0
    assert AuditEvent.objects.filter(kind="route.sent", object_id=str(route.pk)).count() == 1


def test_the_order_service_refuses_figures_beyond_what_a_trade_can_hold(pm, book):
    """The pages and the API refuse them at the edge; the service, which owns the
    rule, refuses them too (a caller that skips the edge cannot overflow a block)."""
    base = {
        "actor": pm,
        "portfolio": book["accounts"][0],
        "security": book["securities"]["AAA"],
        "side": "buy",
    }
    with pytest.raises(ValidationError, match="less than 100,000,000,000"):
        order_services.order_create(**base, quantity=Decimal(10) ** 11)
    with pytest.raises(ValidationError, match="less than 1,000,000,000"):
        order_services.order_create(
            **base, quantity=Decimal(1), order_type="limit", limit_price=Decimal(10) ** 9
        )
