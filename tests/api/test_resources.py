"""Reading, filtering, paginating and creating through the API, as integrators do."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from audit.services import audit_seal
from portfolios.models import Price, Security

from .utils import API, proposed_run, results

pytestmark = pytest.mark.django_db


def test_securities_list_with_latest_price_and_filters(trader, book, client_for):
    client = client_for(trader)
    rows = results(client.get(f"{API}/securities/"))
    assert [r["ticker"] for r in rows] == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    assert Decimal(rows[0]["latest_price"]) == Decimal(100)
    assert [r["ticker"] for r in results(client.get(f"{API}/securities/?currency=EUR"))] == ["DDD"]
    fixed_income = results(client.get(f"{API}/securities/?asset_class=fixed_income"))
    assert [r["ticker"] for r in fixed_income] == ["CCC"]
    assert [r["ticker"] for r in results(client.get(f"{API}/securities/?q=bbb"))] == ["BBB"]
    detail = client.get(f"{API}/securities/{book['securities']['DDD'].pk}/").json()
    assert detail["currency"] == "EUR"


def test_operations_add_a_security(ops, book, client_for):
    response = client_for(ops).post(
        f"{API}/securities/",
        {
            "ticker": "NEWCO",
            "name": "New Co",
            "asset_class": "equity",
            "currency": "GBP",
            "isin": "GB0000000001",
            "round_lot": "100",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["ticker"] == "NEWCO"
    assert body["round_lot"] == "100.000000"
    assert body["latest_price"] is None
    security = Security.objects.get(ticker="NEWCO")
    event = AuditEvent.objects.get(kind="security.created", object_id=str(security.pk))
    assert event.actor == ops
    assert event.origin.startswith("api")


def test_operations_load_prices_in_one_go(ops, book, client_for):
    rows = [
        {"security": "AAA", "as_of": "2021-03-01", "price": "101.5", "source": "close"},
        {"security": "BBB", "as_of": "2021-03-01", "price": "51"},
        {"security": "AAA", "as_of": "2021-03-02", "price": "102"},
    ]
    response = client_for(ops).post(f"{API}/prices/", rows, format="json")
    assert response.status_code == 201, response.content
    assert [(r["security"], r["as_of"]) for r in response.json()] == [
        ("AAA", "2021-03-01"),
        ("BBB", "2021-03-01"),
        ("AAA", "2021-03-02"),
    ]
    assert AuditEvent.objects.filter(kind="price.created", actor=ops).count() == 3
    client = client_for(ops)
    march = results(client.get(f"{API}/prices/?security=AAA&as_of_to=2021-12-31"))
    assert [(r["as_of"], r["price"]) for r in march] == [
        ("2021-03-02", "102.00000000"),
        ("2021-03-01", "101.50000000"),
    ]
    assert Price.objects.filter(as_of__year=2021).count() == 3


def test_portfolios_are_those_the_user_may_see(pm, other_pm, compliance_officer, book, client_for):
    own = results(client_for(pm).get(f"{API}/portfolios/"))
    assert [p["code"] for p in own] == ["ACC1", "ACC2"]
    assert results(client_for(other_pm).get(f"{API}/portfolios/")) == []
    assert len(results(client_for(compliance_officer).get(f"{API}/portfolios/"))) == 2
    acc1 = own[0]
    assert acc1["manager"] == "pm"
    assert acc1["model"] == "Core"
    assert {p["security"]: p["quantity"] for p in acc1["positions"]} == {
        "AAA": "600.000000",
        "BBB": "100.000000",
        "EEE": "500.000000",
    }
    assert acc1["cash"] == [
        {
            "currency": "USD",
            "amount": "20000.0000",
            "settled": "20000.0000",
            "unsettled": "0.0000",
            "next_value_date": None,
        }
    ]
    assert acc1["drift"]["value"] == pytest.approx(60000 + 5000 + 5000 + 20000)
    assert acc1["drift"]["cash_target"] == pytest.approx(0.05)
    assert acc1["drift"]["out_of_band"] is True


def test_portfolio_detail_has_weights_against_the_model(pm, book, client_for):
    body = client_for(pm).get(f"{API}/portfolios/{book['accounts'][0].pk}/").json()
    assert body["code"] == "ACC1"
    assert body["drift"] is not None
    assert body["weights"], "one row per security held or targeted"
    assert {"AAA", "DDD", "EEE"} <= {
        row.get("ticker", row.get("security")) for row in body["weights"]
    }


def test_portfolio_filters(compliance_officer, book, client_for):
    client = client_for(compliance_officer)
    assert [p["code"] for p in results(client.get(f"{API}/portfolios/?q=acc2"))] == ["ACC2"]
    model = book["model"].pk
    assert len(results(client.get(f"{API}/portfolios/?model={model}"))) == 2


def test_models_with_targets(pm, book, client_for):
    [core] = results(client_for(pm).get(f"{API}/models/?name__icontains=cor"))
    assert core["cash_weight"] == "0.05000000"
    assert [(t["security"], t["weight"]) for t in core["targets"]] == [
        ("AAA", "0.40000000"),
        ("BBB", "0.30000000"),
        ("CCC", "0.15000000"),
        ("DDD", "0.10000000"),
    ]


def test_a_pm_adds_a_model(pm, book, client_for):
    response = client_for(pm).post(
        f"{API}/models/",
        {
            "name": "Income",
            "description": "Bonds first",
            "cash_weight": "0.05",
            "band_absolute": "0.03",
            "targets": [
                {"security": "CCC", "weight": "0.6"},
                {"security": "AAA", "weight": "0.35"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["owner"], body["band_absolute"]) == ("Income", "pm", "0.03000000")
    assert [(t["security"], t["weight"]) for t in body["targets"]] == [
        ("CCC", "0.60000000"),
        ("AAA", "0.35000000"),
    ]
    event = AuditEvent.objects.get(kind="model.created", object_id=str(body["id"]))
    assert event.actor == pm
    assert event.after["targets"] == [
        {"security": "CCC", "weight": "0.60000000"},
        {"security": "AAA", "weight": "0.35000000"},
    ]


def test_a_pm_creates_an_order(pm, book, client_for):
    response = client_for(pm).post(
        f"{API}/orders/",
        {
            "portfolio": "ACC1",
            "security": "BBB",
            "side": "buy",
            "quantity": "25",
            "order_type": "limit",
            "limit_price": "49.5",
            "time_in_force": "gtc",
            "notes": "top up",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert (body["portfolio"], body["security"], body["quantity"]) == ("ACC1", "BBB", "25.000000")
    assert body["limit_price"] == "49.50000000"
    assert body["created_by"] == "pm"
    event = AuditEvent.objects.get(kind="order.created", object_id=str(body["id"]))
    assert event.actor_name == "pm"


def test_orders_filter_and_paginate(pm, trader, make_order, client_for):
    for account, ticker in ((0, "AAA"), (0, "BBB"), (1, "AAA")):
        make_order(account=account, ticker=ticker)
    released = make_order(account=1, ticker="CCC", upto="released")
    client = client_for(trader)
    assert len(results(client.get(f"{API}/orders/?security=AAA"))) == 2
    assert len(results(client.get(f"{API}/orders/?portfolio=ACC2"))) == 2
    by_status = results(client.get(f"{API}/orders/?status=released&status=approved"))
    assert [o["id"] for o in by_status] == [released.pk]
    assert results(client.get(f"{API}/orders/?block={released.block_id}"))[0]["block"] == (
        released.block_id
    )
    page = client.get(f"{API}/orders/?page_size=3").json()
    assert page["count"] == 4
    assert len(page["results"]) == 3
    assert page["next"].endswith("page=2&page_size=3")
    second = client.get(page["next"]).json()
    assert len(second["results"]) == 1
    assert {o["id"] for o in page["results"] + second["results"]} == {
        o["id"] for o in results(client.get(f"{API}/orders/"))
    }


def test_a_pm_sees_only_own_orders(pm, other_pm, make_order, client_for):
    make_order()
    assert len(results(client_for(pm).get(f"{API}/orders/"))) == 1
    assert results(client_for(other_pm).get(f"{API}/orders/")) == []


def test_rebalance_runs_with_their_orders(pm, other_pm, book, client_for):
    run = proposed_run(pm, book)
    [listed] = results(client_for(pm).get(f"{API}/rebalance-runs/?status=proposed"))
    assert listed["id"] == run.pk
    assert listed["portfolios"] == ["ACC1"]
    assert [(o["security"], o["status"]) for o in listed["orders"]] == [("BBB", "draft")]
    assert results(client_for(other_pm).get(f"{API}/rebalance-runs/")) == []
    assert results(client_for(pm).get(f"{API}/rebalance-runs/?status=approved")) == []


def test_blocks_routes_and_brokers_for_the_desk(trader, make_order, client_for):
    first = make_order(account=0, upto="released")
    second = make_order(account=1, upto="released")
    client = client_for(trader)
    [block] = results(client.get(f"{API}/blocks/?status=open&security=AAA"))
    assert block["orders"] == [first.pk, second.pk]
    assert block["quantity"] == block["unrouted_quantity"] == "20.000000"
    [broker] = results(client.get(f"{API}/brokers/"))
    assert broker == {
        "id": broker["id"],
        "code": "SIM",
        "name": "Simulated",
        "adapter": "simulated",
        "is_active": True,
    }
    response = client.post(
        f"{API}/blocks/{block['id']}/route/", {"broker": "SIM", "quantity": "15"}, format="json"
    )
    assert response.status_code == 201, response.content
    route = response.json()
    assert (route["status"], route["quantity"], route["security"]) == (
        "pending_new",
        "15.000000",
        "AAA",
    )
    block = client.get(f"{API}/blocks/{block['id']}/").json()
    assert block["status"] == "working"
    assert block["unrouted_quantity"] == "5.000000"
    assert [r["cl_ord_id"] for r in block["routes"]] == [route["cl_ord_id"]]
    assert [r["id"] for r in results(client.get(f"{API}/routes/?broker=SIM"))] == [route["id"]]
    assert results(client.get(f"{API}/routes/?status=filled")) == []


def test_audit_events_filter_by_actor_and_kind(pm, compliance_officer, make_order, client_for):
    order = make_order(upto="approved")
    client = client_for(compliance_officer)
    approved = results(client.get(f"{API}/audit-events/?kind=order.approved"))
    assert [(e["actor_name"], e["object_id"]) for e in approved] == [("pm", str(order.pk))]
    mine = results(client.get(f"{API}/audit-events/?actor=pm&object_type=trading.order"))
    assert {e["kind"] for e in mine} == {"order.created", "order.approved"}
    assert results(client.get(f"{API}/audit-events/?actor=nobody")) == []
    audit_seal()  # the sealer's round: the event gets its place in the chain
    detail = client.get(f"{API}/audit-events/{approved[0]['id']}/").json()
    assert detail["after"] == {"status": "approved"}
    assert len(detail["hash"]) == 64


def test_the_accounts_api_filters_out_of_band_and_sorts_by_drift_like_the_page(
    pm, book, client_for
):
    """One filter definition for the page and the API: the band filter and the drift
    sort were the page's only."""
    from portfolios.models import Portfolio

    Portfolio.objects.create(code="ZZZ", name="No model", manager=pm)  # no drift figures
    client = client_for(pm)

    def codes(**params):
        response = client.get(f"{API}/portfolios/", params)
        assert response.status_code == 200, response.content
        return [row["code"] for row in response.json()["results"]]

    assert codes() == ["ACC1", "ACC2", "ZZZ"]  # code order without a sort
    assert codes(sort="-drift") == ["ACC1", "ACC2", "ZZZ"]  # 0.99, 0.67, none last
    assert codes(sort="drift") == ["ACC2", "ACC1", "ZZZ"]
    assert codes(out_of_band="true") == ["ACC1", "ACC2"]
    bad = client.get(f"{API}/portfolios/", {"sort": "colour"})
    assert bad.status_code == 400 and "sort" in bad.json()


def test_sorting_by_drift_when_no_account_has_a_drift_keeps_code_order(pm, client_for):
    """On PostgreSQL an empty ranking was ORDER BY 0: a 500."""
    from portfolios.models import Portfolio

    for code in ("B1", "A1"):
        Portfolio.objects.create(code=code, name=code, manager=pm)
    response = client_for(pm).get(f"{API}/portfolios/", {"sort": "-drift"})
    assert response.status_code == 200
    assert [row["code"] for row in response.json()["results"]] == ["A1", "B1"]
