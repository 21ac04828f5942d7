"""A rebalance run's bulk steps go through the pre-trade check as single orders do: the
approval keeps each verdict in words on its order, and the release checks again."""

import pytest
from django.core.exceptions import ValidationError

from compliance.services import rules as rule_services
from orchestration import services as runs
from trading.models import Order

pytestmark = pytest.mark.django_db


def _proposed_run(pm, book):
    run = runs.rebalance_run_create(actor=pm, portfolios=[book["accounts"][0]])
    assert run.status == run.Status.PROPOSED
    orders = list(run.orders.all())
    assert orders, "the run proposes orders"
    return run, orders


def test_approving_a_run_keeps_each_verdict_on_its_order(pm, compliance_officer, book):
    rule_services.rule_create(
        actor=compliance_officer,
        name="Tiny orders only",
        kind="max_order_notional",
        params={"limit": 1},
        severity="hard",
    )
    run, orders = _proposed_run(pm, book)
    runs.rebalance_run_approve(actor=pm, run_id=run.pk)
    for order in Order.objects.filter(pk__in=[o.pk for o in orders]):
        assert order.status == Order.Status.REJECTED
        assert "Tiny orders only" in order.compliance_note


def test_releasing_a_run_checks_again_and_releases_nothing_that_fails(pm, compliance_officer, book):
    rule = rule_services.rule_create(
        actor=compliance_officer,
        name="Order value",
        kind="max_order_notional",
        params={"limit": 10**9},
        severity="hard",
    )
    run, orders = _proposed_run(pm, book)
    runs.rebalance_run_approve(actor=pm, run_id=run.pk)
    run_filter = {"rebalance_run": run}
    assert {o.status for o in Order.objects.filter(**run_filter)} == {Order.Status.APPROVED}
    # The rule book tightens between approval and release.
    rule_services.rule_update(actor=compliance_officer, rule_id=rule.pk, params={"limit": 1})
    with pytest.raises(ValidationError, match="no longer pass the pre-trade check"):
        runs.rebalance_run_release(actor=pm, run_id=run.pk)
    run.refresh_from_db()
    assert run.status == run.Status.APPROVED
    assert {o.status for o in Order.objects.filter(**run_filter)} == {Order.Status.APPROVED}
    assert not Order.objects.filter(**run_filter, block__isnull=False).exists()
