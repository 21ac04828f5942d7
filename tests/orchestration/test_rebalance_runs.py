"""Rebalance runs: from drifting accounts to proposed, approved and released orders."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from orchestration import services as run_services
from portfolios.models import Price, RebalanceRun
from portfolios.selectors import drift_by_account, drift_of_positions, load_book
from trading.models import Block, Order

pytestmark = pytest.mark.django_db


def test_load_book_converts_cash_and_reads_latest_prices(book):
    acc1, acc2 = book["accounts"]
    frames = load_book([acc1.pk, acc2.pk]).book
    prices = dict(zip(frames.securities["security"], frames.securities["price"], strict=True))
    assert prices[book["securities"]["AAA"].pk] == 100.0  # the latest, not yesterday's 99
    cash = dict(zip(frames.accounts["account"], frames.accounts["cash"], strict=True))
    assert cash == {acc1.pk: 20000.0, acc2.pk: 5000.0}
    fx = frames.fx.set_index(["currency", "base"])["rate"].to_dict()
    assert fx[("EUR", "USD")] == pytest.approx(1.1)


def test_drift_figures(book):
    acc1, _ = book["accounts"]
    drift = drift_by_account([acc1.pk])[acc1.pk]
    # ACC1: AAA 600×100 + BBB 100×50 + EEE 500×10 + cash 20000 = 90000
    assert drift["value"] == pytest.approx(90000.0)
    assert drift["out_of_band"]
    rows = {r["security"]: r for r in drift_of_positions(acc1.pk)}
    aaa = rows[book["securities"]["AAA"].pk]
    assert aaa["weight"] == pytest.approx(60000 / 90000)
    assert aaa["target"] == pytest.approx(0.40)


def test_rebalance_proposes_orders_that_reduce_drift(pm, book):
    acc1, acc2 = book["accounts"]
    run = run_services.rebalance_run_create(
        actor=pm, portfolios=[acc1, acc2], parameters={"min_trade_value": 100}
    )
    assert run.status == RebalanceRun.Status.PROPOSED
    orders = list(run.orders.select_related("security", "portfolio"))
    assert orders and all(o.status == Order.Status.DRAFT for o in orders)
    # ACC1 is overweight AAA and holds EEE, which is not in the model: both are sold.
    sells = {(o.portfolio.code, o.security.ticker) for o in orders if o.side == "sell"}
    assert ("ACC1", "AAA") in sells and ("ACC1", "EEE") in sells
    for code, figures in run.summary.items():
        assert figures["drift_after"] < figures["drift_before"], code
        assert figures["cash_after"] >= 500 - 1e-6  # the cash floor
    kinds = set(AuditEvent.objects.values_list("kind", flat=True))
    assert {
        "rebalance.created",
        "rebalance.started",
        "rebalance.proposed",
        "orders.created",  # one event for the run's orders, not one per order
    } <= kinds
    assert "order.created" not in kinds


def test_approve_then_release_puts_orders_in_blocks(pm, book):
    acc1, acc2 = book["accounts"]
    run = run_services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    run_services.rebalance_run_approve(actor=pm, run_id=run.pk)
    assert set(run.orders.values_list("status", flat=True)) == {Order.Status.APPROVED}
    run_services.rebalance_run_release(actor=pm, run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.RELEASED
    orders = list(run.orders.all())
    assert all(o.status == Order.Status.RELEASED and o.block_id for o in orders)
    # one block per security and side
    keys = {(o.security_id, o.side) for o in orders}
    assert Block.objects.count() == len(keys)
    for block in Block.objects.all():
        assert block.quantity == sum(o.quantity for o in orders if o.block_id == block.pk)


def test_account_with_a_missing_price_is_skipped_with_the_reason(pm, book):
    acc1, acc2 = book["accounts"]
    Price.objects.filter(security=book["securities"]["CCC"]).delete()
    run = run_services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    assert run.status == RebalanceRun.Status.PROPOSED
    assert set(run.skipped) == {"ACC1", "ACC2"}  # CCC is in the model of both
    assert not run.orders.exists()


def test_bad_parameters_are_refused_and_nothing_is_written(pm, book):
    with pytest.raises(ValidationError) as error:
        run_services.rebalance_run_create(
            actor=pm,
            portfolios=book["accounts"],
            parameters={"trade_to": "moon", "min_trade_value": -5, "x": 1},
        )
    assert set(error.value.message_dict) == {"trade_to", "min_trade_value", "x"}
    assert not RebalanceRun.objects.exists()


def test_only_the_accounts_manager_rebalances(other_pm, trader, book):
    for user in (other_pm, trader):
        with pytest.raises(PermissionDenied):
            run_services.rebalance_run_create(actor=user, portfolios=book["accounts"])
    assert not RebalanceRun.objects.exists()


def test_cancel_a_proposed_run_cancels_its_orders(pm, book):
    run = run_services.rebalance_run_create(actor=pm, portfolios=book["accounts"][:1])
    run_services.rebalance_run_cancel(actor=pm, run_id=run.pk)
    assert set(run.orders.values_list("status", flat=True)) == {Order.Status.CANCELLED}


def test_large_runs_go_to_the_worker(
    pm, book, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.OMS_REBALANCE_INLINE_LIMIT = 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = run_services.rebalance_run_create(actor=pm, portfolios=book["accounts"])
    # the run's start, then its one chunk (both accounts fit in one chunk)
    assert len(callbacks) == 2
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.PROPOSED
    assert Decimal(0) not in set(run.orders.values_list("quantity", flat=True))


def test_cash_in_a_currency_without_fx_skips_the_account_with_the_reason(pm, book):
    from portfolios.models import CashBalance

    acc1, acc2 = book["accounts"]
    CashBalance.objects.create(portfolio=acc1, currency="GBP", amount=Decimal(100))
    loaded = load_book([acc1.pk, acc2.pk])
    assert loaded.skipped == {acc1.pk: "no FX rate from GBP to USD"}
    assert set(loaded.book.accounts["account"]) == {acc2.pk}
    assert acc1.pk not in set(loaded.book.holdings["account"])
    drift = drift_by_account([acc1.pk, acc2.pk])
    assert drift[acc1.pk]["reason"] == "no FX rate from GBP to USD"
    assert drift[acc1.pk]["drift"] is None
    assert drift[acc2.pk]["drift"] is not None
    run = run_services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    assert run.status == RebalanceRun.Status.PROPOSED
    assert run.skipped == {"ACC1": "no FX rate from GBP to USD"}
    assert not run.orders.filter(portfolio=acc1).exists()


def test_an_account_that_cannot_be_valued_shows_its_reason_on_the_list(pm, book, client):
    from rest_framework.test import APIClient

    from portfolios.models import CashBalance

    acc1 = book["accounts"][0]
    CashBalance.objects.create(portfolio=acc1, currency="GBP", amount=Decimal(100))
    client.force_login(pm)
    page = client.get("/portfolios/")
    assert page.status_code == 200
    assert "no FX rate from GBP to USD" in page.content.decode()
    api = APIClient()
    api.force_authenticate(pm)
    response = api.get("/api/v1/portfolios/")
    assert response.status_code == 200
    rows = {row["code"]: row for row in response.json()["results"]}
    assert rows["ACC1"]["drift"]["reason"] == "no FX rate from GBP to USD"
    assert api.get(f"/api/v1/portfolios/{acc1.pk}/").status_code == 200
    assert client.get(f"/portfolios/{acc1.pk}/").status_code == 200


def test_a_book_the_engine_refuses_leaves_a_failed_run_with_the_reason(pm, book, client):
    from portfolios.models import Security

    # A lot size of zero slipped past the forms (written straight to the table).
    Security.objects.filter(ticker="AAA").update(round_lot=0)
    run = run_services.rebalance_run_create(actor=pm, portfolios=book["accounts"][:1])
    assert run.status == RebalanceRun.Status.FAILED
    assert "lot" in run.error
    assert not run.orders.exists()
    client.force_login(pm)
    response = client.post(
        "/portfolios/runs/new/",
        {
            "portfolios": [book["accounts"][0].pk],
            "trade_to": "target",
            "min_trade_value": "0",
            "lot_selection": "fifo",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "failed" in response.content.decode()
    assert RebalanceRun.objects.filter(status=RebalanceRun.Status.FAILED).count() == 2
