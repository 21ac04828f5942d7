"""The walkthrough through the REST API with tokens, on PostgreSQL, Redis and a real
Celery worker process: the PM rebalances, approves and releases; the trader routes
the blocks to the simulated broker; fills come back, are allocated and booked; the
compliance officer reads every step in the audit trail."""

from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolios.models import CashBalance, Position

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _all(client, url, **params):
    rows, page = [], 1
    while True:
        response = client.get(url, {**params, "page": page})
        assert response.status_code == 200, response.content
        rows += response.data["results"]
        if not response.data["next"]:
            return rows
        page += 1


def test_walkthrough_through_the_api(
    celery_worker_process, wait_for, pm, trader, compliance_officer, book
):
    pm_api, trader_api, compliance_api = _client(pm), _client(trader), _client(compliance_officer)
    account = book["accounts"][0]
    cash_before = CashBalance.objects.get(portfolio=account, currency="USD").amount

    drift = pm_api.get(f"/api/v1/portfolios/{account.pk}/")
    assert drift.status_code == 200

    response = pm_api.post(
        f"/api/v1/portfolios/{account.pk}/rebalance/",
        {"min_trade_value": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="rebalance-acc1-1",
    )
    assert response.status_code == 201, response.content
    run = response.data
    assert run["status"] == "proposed"
    retry = pm_api.post(
        f"/api/v1/portfolios/{account.pk}/rebalance/",
        {"min_trade_value": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="rebalance-acc1-1",
    )
    assert retry.status_code == 201 and retry.data["id"] == run["id"], "a retry creates nothing"

    assert pm_api.post(f"/api/v1/rebalance-runs/{run['id']}/approve/").status_code == 200
    assert pm_api.post(f"/api/v1/rebalance-runs/{run['id']}/release/").status_code == 200
    orders = _all(pm_api, "/api/v1/orders/", rebalance_run=run["id"])
    assert orders and {o["status"] for o in orders} == {"released"}

    blocks = _all(trader_api, "/api/v1/blocks/", status="open")
    assert {b["id"] for b in blocks} >= {o["block"] for o in orders}
    for block in blocks:
        response = trader_api.post(
            f"/api/v1/blocks/{block['id']}/route/", {"broker": "SIM"}, format="json"
        )
        assert response.status_code == 201, response.content

    def everything_allocated():
        rows = _all(trader_api, "/api/v1/blocks/")
        return rows and all(b["status"] == "allocated" for b in rows)

    assert wait_for(everything_allocated, 60), _all(trader_api, "/api/v1/blocks/")
    executions = _all(trader_api, "/api/v1/executions/")
    assert {e["exec_type"] for e in executions} >= {"new", "trade"}
    orders = _all(pm_api, "/api/v1/orders/", rebalance_run=run["id"])
    assert {o["status"] for o in orders} == {"allocated"}

    # Cash moved by exactly the allocated fills, in each security's currency.
    currency = {ticker: security.currency for ticker, security in book["securities"].items()}
    expected = {}
    for order in orders:
        quantity, price = Decimal(order["filled_quantity"]), Decimal(order["average_price"])
        amount = (quantity * price).quantize(Decimal("0.0001"))
        amount = -amount if order["side"] == "buy" else amount
        ccy = currency[order["security"]]
        expected[ccy] = expected.get(ccy, Decimal(0)) + amount
    for ccy, change in expected.items():
        before = cash_before if ccy == "USD" else Decimal(0)
        after = CashBalance.objects.get(portfolio=account, currency=ccy).amount
        assert after - before == change, ccy
    sold_eee = sum(Decimal(o["filled_quantity"]) for o in orders if o["security"] == "EEE")
    assert (
        Position.objects.get(portfolio=account, security__ticker="EEE").quantity == 500 - sold_eee
    )

    events = _all(compliance_api, "/api/v1/audit-events/")
    by_kind = {}
    for event in events:
        by_kind.setdefault(event["kind"], set()).add(event["actor_name"])
    assert by_kind["rebalance.created"] == {"pm"}
    assert by_kind["rebalance.approved"] == {"pm"}
    assert by_kind["orders.released"] == {"pm"}  # one event for the run's orders
    assert by_kind["route.created"] == {"trader"}
    assert by_kind["execution.trade"] == {"broker:SIM"}
    assert "order.allocated" in by_kind
    assert trader_api.get("/api/v1/audit-events/").status_code == 403
