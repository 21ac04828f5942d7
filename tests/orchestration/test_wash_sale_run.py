"""A run does not buy back what an account sold at a loss inside the wash-sale window:
the sales are derived from what was booked, as compliance's wash-sale rule reads them."""

from decimal import Decimal

import pytest

from orchestration import services
from trading.models import Block
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def _sell_at_a_loss(pm, trader, book, capture):
    """ACC2 sells 300 of its 500 CCC, bought at 30, at 20: a loss of 3,000."""
    acc2 = book["accounts"][1]
    order = order_services.order_create(
        actor=pm, portfolio=acc2, security=book["securities"]["CCC"], side="sell",
        quantity=Decimal(300),
    )  # fmt: skip
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    with capture(execute=True):
        route_services.route_create(actor=trader, block_id=order.block_id, broker=book["broker"])
    assert Block.objects.get(pk=order.block_id).status == Block.Status.ALLOCATED
    return acc2


def _ccc_buys(run) -> int:
    return run.orders.filter(security__ticker="CCC", side="buy").count()


def test_a_run_does_not_buy_back_a_loss_sale_inside_the_window(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    acc2 = _sell_at_a_loss(pm, trader, book, django_capture_on_commit_callbacks)
    run = services.rebalance_run_create(actor=pm, portfolios=[acc2])
    assert run.status == "proposed", run.error
    assert _ccc_buys(run) == 0  # the model wants CCC back, the window says no
    services.rebalance_run_cancel(actor=pm, run_id=run.pk)
    # with the rule off, the run buys CCC back to its target
    off = services.rebalance_run_create(
        actor=pm, portfolios=[acc2], parameters={"wash_sale_days": 0}
    )
    assert _ccc_buys(off) == 1
