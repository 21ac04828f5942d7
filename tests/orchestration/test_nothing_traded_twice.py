"""Nothing traded twice: an account in an open run enters no other run, and a run
sizes its trades on holdings plus the orders already on their way."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from orchestration import services as run_services
from portfolios.models import Position, RebalanceRun
from trading.models import Order
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db


def test_an_account_in_an_open_run_cannot_enter_another(pm, book):
    acc1, acc2 = book["accounts"]
    first = run_services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert first.status == RebalanceRun.Status.PROPOSED
    with pytest.raises(ValidationError) as error:
        run_services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    [message] = error.value.message_dict["portfolios"]
    assert f"ACC1 is in Rebalance #{first.pk} (proposed)" in message
    assert RebalanceRun.objects.count() == 1  # nothing half-written
    run_services.rebalance_run_approve(actor=pm, run_id=first.pk)
    with pytest.raises(ValidationError, match=f"Rebalance #{first.pk} \\(approved\\)"):
        run_services.rebalance_run_create(actor=pm, portfolios=[acc1])
    # once the run ends, the account is free again
    run_services.rebalance_run_cancel(actor=pm, run_id=first.pk)
    again = run_services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    assert again.status == RebalanceRun.Status.PROPOSED


def test_the_form_and_the_api_name_the_open_run(pm, book, client):
    acc1 = book["accounts"][0]
    first = run_services.rebalance_run_create(actor=pm, portfolios=[acc1])
    client.force_login(pm)
    page = client.post(
        "/portfolios/runs/new/",
        {
            "portfolios": [acc1.pk],
            "trade_to": "target",
            "min_trade_value": "0",
            "lot_selection": "fifo",
        },
    )
    assert page.status_code == 422
    assert f"ACC1 is in Rebalance #{first.pk}" in page.content.decode()
    api = APIClient()
    api.force_authenticate(pm)
    response = api.post(f"/api/v1/portfolios/{acc1.pk}/rebalance/", {}, format="json")
    assert response.status_code == 400
    assert f"Rebalance #{first.pk}" in str(response.json())
    assert RebalanceRun.objects.count() == 1


def _sells(orders) -> dict:
    sold = defaultdict(Decimal)
    for order in orders:
        if order.side == "sell":
            sold[(order.portfolio_id, order.security_id)] += order.quantity
    return sold


def test_a_second_run_sizes_on_what_the_first_already_trades(pm, book):
    accounts = book["accounts"]
    first = run_services.rebalance_run_create(actor=pm, portfolios=accounts)
    run_services.rebalance_run_approve(actor=pm, run_id=first.pk)
    run_services.rebalance_run_release(actor=pm, run_id=first.pk)
    first_orders = list(first.orders.all())
    second = run_services.rebalance_run_create(actor=pm, portfolios=accounts)
    # before: the second run proposed the same sells again and failed on "already committed"
    assert second.status == RebalanceRun.Status.PROPOSED, second.error
    second_orders = list(second.orders.all())
    sold = _sells(first_orders + second_orders)
    for (account, security), quantity in sold.items():
        held = Position.objects.get(portfolio_id=account, security_id=security).quantity
        assert quantity <= held
    # the first run's buys are not bought again: the accounts are on target already
    bought = {(o.portfolio_id, o.security_id): o.quantity for o in first_orders if o.side == "buy"}
    for order in second_orders:
        if order.side == "buy" and (order.portfolio_id, order.security_id) in bought:
            assert order.quantity < bought[(order.portfolio_id, order.security_id)] / 2
    assert len(second_orders) < len(first_orders)


def test_an_account_with_approved_sells_rebalances(pm, book):
    acc1 = book["accounts"][0]
    aaa = book["securities"]["AAA"]
    sell = order_services.order_create(
        actor=pm, portfolio=acc1, security=aaa, side="sell", quantity=Decimal(250)
    )
    order_services.orders_approve(actor=pm, order_ids=[sell.pk])
    run = run_services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert run.status == RebalanceRun.Status.PROPOSED, run.error
    more = sum(
        o.quantity for o in run.orders.filter(security=aaa, side="sell", status=Order.Status.DRAFT)
    )
    assert more + 250 <= 600  # ACC1 holds 600 AAA
    # the cash the approved sell raises is counted: the run does not sell more AAA than
    # the model wants (40% of 90,000 is 360 shares of AAA at 100: 240 to sell in all)
    assert more + 250 <= 240 + 100


def test_a_run_over_a_selection_through_the_api(pm, other_pm, book):
    api = APIClient()
    api.force_authenticate(pm)
    answer = api.post(
        "/api/v1/rebalance-runs/",
        {"portfolios": ["ACC1", "ACC2"], "min_trade_value": 100},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "proposed" and sorted(body["portfolios"]) == ["ACC1", "ACC2"]
    assert body["orders_proposed"] == len(body["orders"]) > 0
    # the same accounts again: refused, naming the run
    again = api.post("/api/v1/rebalance-runs/", {"portfolios": ["ACC2"]}, format="json")
    assert again.status_code == 400
    assert f"Rebalance #{body['id']}" in str(again.json())
    unknown = api.post("/api/v1/rebalance-runs/", {"portfolios": ["NOPE"]}, format="json")
    assert unknown.status_code == 400 and "NOPE" in str(unknown.json())
    outsider = APIClient()
    outsider.force_authenticate(other_pm)
    # another manager's accounts do not exist for them
    theirs = outsider.post("/api/v1/rebalance-runs/", {"portfolios": ["ACC1"]}, format="json")
    assert theirs.status_code == 400
    assert RebalanceRun.objects.count() == 1
