"""API: cash flows (one, a CSV, cancel), raise cash, edit a proposed quantity, the
totals per security; bad input is a 400 in the user's words."""

import pytest

from orchestration import services
from orchestration.models import CashFlow
from portfolios.models import RebalanceRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client_for, pm):
    return client_for(pm)


def test_enter_list_and_cancel_a_cash_flow(api, book):
    made = api.post(
        "/api/v1/cash-flows/",
        {"portfolio": "ACC1", "kind": "withdrawal", "currency": "USD", "amount": "1500.50"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["status"] == "pending" and body["amount"] == "1500.5000"
    listed = api.get("/api/v1/cash-flows/?portfolio=ACC1&status=pending").json()
    assert [f["id"] for f in listed["results"]] == [body["id"]]
    cancelled = api.post(f"/api/v1/cash-flows/{body['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post(f"/api/v1/cash-flows/{body['id']}/cancel/")
    assert again.status_code == 400
    assert "only a pending one can be cancelled" in str(again.json())


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"amount": "-100"}, "Must be positive"),
        ({"portfolio": "NOPE"}, "No account NOPE among yours."),
        ({"currency": "JPY"}, "No FX rate from JPY"),
        ({"kind": "refund"}, "'deposit' or 'withdrawal'"),
    ],
)
def test_bad_cash_flows_are_400s_in_words(api, book, changes, words):
    data = {"portfolio": "ACC1", "kind": "withdrawal", "currency": "USD", "amount": "10"}
    response = api.post("/api/v1/cash-flows/", data | changes, format="json")
    assert response.status_code == 400
    assert words in str(response.json())
    assert not CashFlow.objects.exists()


def test_csv_import_all_or_nothing(api, book):
    bad = "account,currency,amount,kind\nACC1,USD,10,deposit\nACC9,USD,10,deposit\n"
    response = api.post("/api/v1/cash-flows/import/", {"text": bad}, format="json")
    assert response.status_code == 400
    assert "Line 3: no account 'ACC9' among yours." in str(response.json())
    assert not CashFlow.objects.exists()
    from django.core.files.uploadedfile import SimpleUploadedFile

    good = SimpleUploadedFile(
        "flows.csv", b"account,currency,amount,kind\nACC1,USD,10,deposit\nACC2,EUR,5,withdrawal\n"
    )
    response = api.post("/api/v1/cash-flows/import/", {"file": good}, format="multipart")
    assert response.status_code == 201, response.json()
    assert len(response.json()) == 2


def test_raise_cash_through_the_api(api, book):
    acc1 = book["accounts"][0]
    response = api.post(
        f"/api/v1/portfolios/{acc1.pk}/raise-cash/",
        {"amount": "25000", "lot_selection": "hifo"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    run = response.json()
    assert run["parameters"]["objective"] == "raise_cash"
    assert run["parameters"]["lot_selection"] == "hifo"
    assert {o["side"] for o in run["orders"]} == {"sell"}
    nothing = api.post(f"/api/v1/portfolios/{book['accounts'][1].pk}/raise-cash/", {})
    assert nothing.status_code == 400
    assert "has no pending withdrawal" in str(nothing.json())


def test_tax_options_in_the_run_request(api, book):
    response = api.post(
        "/api/v1/rebalance-runs/",
        {"portfolios": ["ACC1"], "lot_selection": "min_tax", "gains_cap": 0, "wash_sale_days": 10},
        format="json",
    )
    assert response.status_code == 201, response.json()
    run = response.json()
    assert run["parameters"]["gains_cap"] == 0.0 and run["parameters"]["wash_sale_days"] == 10
    figures = run["summary"]["ACC1"]
    assert figures["realised_gain"] <= 1e-6  # the cap holds
    assert {"short_term_gain", "long_term_gain"} <= set(figures)
    bad = api.post(
        "/api/v1/rebalance-runs/",
        {"portfolios": ["ACC2"], "wash_sale_days": 1000},
        format="json",
    )
    assert bad.status_code == 400 and "wash_sale_days" in bad.json().get("fields", bad.json())


def test_edit_a_proposed_quantity_and_read_the_totals(api, pm, book):
    run = services.rebalance_run_create(actor=pm, portfolios=book["accounts"])
    assert run.status == RebalanceRun.Status.PROPOSED
    sell = run.orders.get(portfolio__code="ACC1", security__ticker="AAA", side="sell")
    url = f"/api/v1/rebalance-runs/{run.pk}/orders/{sell.pk}/quantity/"
    response = api.post(url, {"quantity": str(sell.quantity - 10)}, format="json")
    assert response.status_code == 200, response.json()
    edited = next(o for o in response.json()["orders"] if o["id"] == sell.pk)
    assert float(edited["quantity"]) == float(sell.quantity - 10)
    broken = api.post(url, {"quantity": "600.5"}, format="json")
    assert broken.status_code == 400
    assert "lot" in str(broken.json())
    answer = api.get(f"/api/v1/rebalance-runs/{run.pk}/totals/").json()
    assert answer["run"] == run.pk
    totals = answer["totals"]
    by_key = {(t["security"], t["side"]): t for t in totals}
    assert all(t["currency"] for t in totals)
    ddd = [t for t in totals if t["security"] == "DDD"]
    assert ddd and ddd[0]["currency"] == "EUR" and "USD" in ddd[0]["base_values"]
    aaa_sells = run.orders.filter(security__ticker="AAA", side="sell")
    assert float(by_key[("AAA", "sell")]["quantity"]) == float(sum(o.quantity for o in aaa_sells))
