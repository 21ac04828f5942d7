"""Send a proposal back for a re-run: the run is cancelled with its drafts, its cash
flows go back to pending and straight into the new run, which measures the same
accounts again as they are now; nothing changes when the re-run is refused."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orchestration import services
from orchestration.models import CashFlow
from portfolios.models import ModelTarget, RebalanceRun
from trading.models import Order

pytestmark = pytest.mark.django_db


def test_a_rerun_cancels_the_proposal_and_measures_the_accounts_again(pm, book):
    acc1, acc2 = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="deposit", currency="USD", amount="5000"
    )
    first = services.rebalance_run_create(
        actor=pm, portfolios=[acc1, acc2], parameters={"min_trade_value": 100}
    )
    drafts = list(first.orders.values_list("pk", flat=True))
    # The model changes while the proposal waits: the re-run sees it.
    ModelTarget.objects.filter(model=book["model"], security__ticker="AAA").update(
        weight=Decimal("0.30")
    )
    ModelTarget.objects.filter(model=book["model"], security__ticker="BBB").update(
        weight=Decimal("0.40")
    )
    again = services.rebalance_run_rerun(actor=pm, run_id=first.pk)
    first.refresh_from_db()
    assert first.status == RebalanceRun.Status.CANCELLED
    assert set(Order.objects.filter(pk__in=drafts).values_list("status", flat=True)) == {
        Order.Status.CANCELLED
    }
    assert again.pk != first.pk and again.status == RebalanceRun.Status.PROPOSED
    assert sorted(again.portfolios.values_list("code", flat=True)) == ["ACC1", "ACC2"]
    assert again.parameters["min_trade_value"] == 100
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.IN_RUN and flow.run_id == again.pk
    event = AuditEvent.objects.get(kind="rebalance.sent_back")
    assert event.object_id == str(first.pk) and event.after["rerun"] == again.pk
    assert event.before == {"status": "proposed"}


def test_a_released_run_does_not_go_back_and_nothing_changes(pm, book):
    run = services.rebalance_run_create(actor=pm, portfolios=book["accounts"][:1])
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    services.rebalance_run_release(actor=pm, run_id=run.pk)
    with pytest.raises(ValidationError) as refused:
        services.rebalance_run_rerun(actor=pm, run_id=run.pk)
    assert "only a proposed, approved or failed run" in str(refused.value)
    assert RebalanceRun.objects.count() == 1
    assert not AuditEvent.objects.filter(kind="rebalance.sent_back").exists()


def test_the_run_page_sends_back_and_shows_the_new_run(pm, book):
    run = services.rebalance_run_create(actor=pm, portfolios=book["accounts"][:1])
    client = Client()
    client.force_login(pm)
    assert b'id="rerun"' in client.get(f"/portfolios/runs/{run.pk}/").content
    answer = client.post(f"/portfolios/runs/{run.pk}/rerun/", follow=True)
    again = RebalanceRun.objects.exclude(pk=run.pk).get()
    assert answer.redirect_chain[-1][0] == again.get_absolute_url()
    assert f"{run} sent back: {again} computes it again." in answer.content.decode()


def test_the_api_sends_back_and_refuses_another_manager(pm, other_pm, book):
    run = services.rebalance_run_create(actor=pm, portfolios=book["accounts"][:1])
    theirs = APIClient()
    theirs.force_authenticate(other_pm)
    assert theirs.post(f"/api/v1/rebalance-runs/{run.pk}/rerun/").status_code == 404
    api = APIClient()
    api.force_authenticate(pm)
    answer = api.post(f"/api/v1/rebalance-runs/{run.pk}/rerun/")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["id"] != run.pk and answer.json()["status"] == "proposed"
    again = api.post(f"/api/v1/rebalance-runs/{run.pk}/rerun/")  # the first is cancelled now
    assert again.status_code == 400 and "only a proposed" in str(again.json())
