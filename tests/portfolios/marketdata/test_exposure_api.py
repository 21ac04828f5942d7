"""The exposure API (/api/v1/exposure/totals/ and /breakdown/): each role's view of the
hand-made book (exposure_book.make_book), levels, dimensions, filters, bad input, and
the queries pinned."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolios.models import CashBalance, Portfolio, Position

from .exposure_book import make_book

pytestmark = pytest.mark.django_db

TOTALS = "/api/v1/exposure/totals/"
BREAKDOWN = "/api/v1/exposure/breakdown/"


@pytest.fixture
def hand_book(quote_store, pm, other_pm):
    return make_book(pm, other_pm)


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def money(row) -> tuple:
    return tuple(row[f] for f in ("market_value", "cash", "nav", "unrealised_pnl", "day_pnl"))


@pytest.mark.parametrize(
    ("persona", "status", "nav"),
    [
        ("pm", 200, "35850.00"),  # A1 and A2 only
        ("compliance", 200, "37450.00"),
        ("ops", 200, "37450.00"),
        ("trader", 403, None),
        ("outsider", 403, None),
    ],
)
def test_each_role_sees_its_accounts(hand_book, personas, persona, status, nav):
    response = api(personas[persona]).get(TOTALS)
    assert response.status_code == status, response.content
    breakdown = api(personas[persona]).get(BREAKDOWN, {"dimension": "country"})
    assert breakdown.status_code == status
    if nav:
        body = response.json()
        assert (body["level"], body["currency"], body["count"]) == ("firm", "USD", 1)
        assert body["results"][0]["nav"] == nav and body["results"][0]["id"] is None
        assert breakdown.json()["nav"] == nav


def test_anonymous_is_asked_to_authenticate(hand_book):
    assert api().get(TOTALS).status_code == 401
    assert api().get(BREAKDOWN, {"dimension": "sector"}).status_code == 401


def test_totals_by_level(hand_book, ops, pm, other_pm):
    client = api(ops)
    (firm,) = client.get(TOTALS, {"level": "firm"}).json()["results"]
    assert money(firm) == ("32950.00", "4500.00", "37450.00", "7650.00", "2950.00")
    assert (firm["stale"], firm["missing"], firm["incomplete"], firm["accounts"]) == (1, 1, True, 3)
    managers = {r["id"]: r for r in client.get(TOTALS, {"level": "manager"}).json()["results"]}
    assert managers[pm.pk]["nav"] == "35850.00" and managers[pm.pk]["label"] == "pm"
    assert managers[other_pm.pk]["missing"] == 1
    models = {r["label"]: r for r in client.get(TOTALS, {"level": "model"}).json()["results"]}
    assert models["Income"]["id"] == hand_book["income"].pk
    assert money(models["Income"]) == ("7650.00", "2400.00", "10050.00", "1350.00", "650.00")
    accounts = {r["label"]: r for r in client.get(TOTALS, {"level": "account"}).json()["results"]}
    a2 = accounts["A2"]
    assert (a2["id"], a2["manager"], a2["model"]) == (
        hand_book["accounts"]["A2"].pk, "pm", "Income",
    )  # fmt: skip
    assert a2["base"] == {
        "currency": "EUR", "market_value": "6375.00", "cash": "2000.00", "nav": "8375.00",
        "unrealised_pnl": "1125.00", "day_pnl": "541.67", "realised_pnl": "0.00",
    }  # fmt: skip
    assert firm["base"] is None


def test_a_pm_sees_no_other_managers_accounts(hand_book, pm):
    accounts = api(pm).get(TOTALS, {"level": "account"}).json()["results"]
    assert [r["label"] for r in accounts] == ["A1", "A2"]
    managers = api(pm).get(TOTALS, {"level": "manager"}).json()["results"]
    assert [r["label"] for r in managers] == ["pm"]


def test_exposure_by_dimension_with_filters(hand_book, compliance_officer, pm):
    client = api(compliance_officer)
    body = client.get(BREAKDOWN, {"dimension": "currency"}).json()
    rows = {r["key"]: r for r in body["results"]}
    assert (rows["EUR"]["market_value"], rows["EUR"]["weight"]) == ("22800.00", "0.608812")
    assert rows["USD"]["stale"] == 1 and rows["USD"]["missing"] == 1
    assert body["currency"] == "USD" and body["dimension"] == "currency"
    classes = {
        r["key"]: r for r in client.get(BREAKDOWN, {"dimension": "asset_class"}).json()["results"]
    }
    assert classes["equity"]["label"] == "Equity" and classes["Cash"]["market_value"] == "4500.00"
    income = client.get(BREAKDOWN, {"dimension": "sector", "model": hand_book["income"].pk}).json()
    assert income["nav"] == "10050.00"
    assert {r["key"]: r["market_value"] for r in income["results"]} == {
        "Industrials": "6600.00", "Cash": "2400.00", "Tech": "1050.00",
    }  # fmt: skip
    eur = client.get(TOTALS, {"currency": "EUR", "manager": pm.pk}).json()["results"][0]
    assert eur["nav"] == "10050.00" and eur["accounts"] == 1


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        (TOTALS, {"level": "desk"}, "level"),
        (BREAKDOWN, {}, "dimension"),
        (BREAKDOWN, {"dimension": "issuer"}, "dimension"),
        (TOTALS, {"model": "999999"}, "model"),
        (TOTALS, {"currency": "XYZ"}, "currency"),
        (BREAKDOWN, {"dimension": "sector", "manager": "x"}, "manager"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(hand_book, ops, url, params, field):
    response = api(ops).get(url, params)
    assert response.status_code == 400 and field in response.json(), response.content


def test_the_queries_do_not_grow_with_the_book(hand_book, ops, django_assert_num_queries):
    client = api(ops)

    def both():
        assert client.get(TOTALS, {"level": "account"}).status_code == 200
        assert client.get(BREAKDOWN, {"dimension": "sector"}).status_code == 200

    with django_assert_num_queries(
        24
    ):  # two valuations, each with its realised P&L and open forwards
        both()
    aaa = hand_book["securities"]["AAA"]
    for n in range(30):
        account = Portfolio.objects.create(code=f"X{n}", name="x", manager=ops)
        Position.objects.create(portfolio=account, security=aaa, quantity=3)
        CashBalance.objects.create(portfolio=account, currency="EUR", amount=1)
    with django_assert_num_queries(
        24
    ):  # two valuations, each with its realised P&L and open forwards
        both()


def test_the_schema_documents_both(client, hand_book):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert {"/api/v1/exposure/totals/", "/api/v1/exposure/breakdown/"} <= set(schema["paths"])
