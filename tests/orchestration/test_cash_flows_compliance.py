"""Cash flows as the pre-trade check sees them: a deposit a run invests is cash the
check counts, a withdrawal it raises is cash it does not (till the run is released and
books them)."""

from decimal import Decimal

import pytest

from compliance.services import rules as rule_services
from orchestration import services
from orchestration.models import ProposalCheck

pytestmark = pytest.mark.django_db


def test_a_deposit_s_buys_are_not_an_overdraft(pm, compliance_officer, book):
    rule_services.rule_create(
        actor=compliance_officer, name="Overdraft", kind="no_overdraft", params={}
    )
    _, acc2 = book["accounts"]
    services.cash_flow_create(
        actor=pm, portfolio=acc2, kind="deposit", currency="USD", amount="50000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc2])
    figures = run.summary["ACC2"]
    assert figures["buy_value"] > 5000 + figures["sell_value"]  # the deposit is invested
    usd = [
        c
        for c in ProposalCheck.objects.filter(run=run).select_related("order__security")
        if c.order.security.currency == "USD" and c.order.side == "buy"
    ]
    assert usd
    assert {c.status for c in usd} == {"approved"}, [(c.order_id, c.message) for c in usd]
    # and at approval, the check at that stage sees the same cash
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    assert not run.orders.filter(security__currency="USD", side="buy", status="rejected").exists()


def test_a_withdrawal_a_run_holds_is_cash_the_check_does_not_count(pm, compliance_officer, book):
    """ACC1 holds 20,000 of cash; a withdrawal of 19,000 held by its run leaves 1,000:
    with the run's orders gone, a manual buy of 2,000 meanwhile is an overdraft."""
    from trading.services import orders as order_services
    from trading.services.bulk import run_orders_cancel

    rule_services.rule_create(
        actor=compliance_officer, name="Overdraft", kind="no_overdraft", params={}
    )
    acc1, _ = book["accounts"]
    services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="19000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert run.status == "proposed"
    # the run's orders cancelled (the trading service a drop uses; a drop itself refuses
    # to take away the sells that keep the account above its cash floor)
    run_orders_cancel(
        actor=pm, run=run, reason="test", order_ids=list(run.orders.values_list("pk", flat=True))
    )
    order = order_services.order_create(
        actor=pm,
        portfolio=acc1,
        security=book["securities"]["BBB"],
        side="buy",
        quantity=Decimal(40),
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    assert order.status == "rejected"
