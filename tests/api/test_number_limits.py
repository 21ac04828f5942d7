"""A number the database cannot hold is a 400 naming its field, never a 500
(see tests/pages/test_number_limits.py for the columns' digits)."""

from __future__ import annotations

import pytest

from portfolios.models import ModelPortfolio, Price, Security
from trading.models import Order, Route

from .utils import API

pytestmark = pytest.mark.django_db

TOO_BIG = ["1e30", "1e20", "1000000000000000000", "NaN", "Infinity", 1e30, 1e20]


@pytest.mark.parametrize("value", TOO_BIG)
@pytest.mark.parametrize("field", ["quantity", "limit_price", "stop_price"])
def test_order_figures_beyond_their_column_are_400s(field, value, pm, book, client_for):
    body = {
        "portfolio": "ACC1",
        "security": "AAA",
        "side": "buy",
        "quantity": "10",
        "order_type": "stop_limit",
        "limit_price": "100",
        "stop_price": "100",
    }
    response = client_for(pm).post(f"{API}/orders/", body | {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Order.objects.exists()


@pytest.mark.parametrize("value", TOO_BIG)
def test_a_route_quantity_beyond_its_column_is_a_400(value, trader, book, make_order, client_for):
    block = make_order(upto="released").block
    response = client_for(trader).post(
        f"{API}/blocks/{block.pk}/route/", {"broker": "SIM", "quantity": value}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "quantity" in response.json()
    assert not Route.objects.exists()


@pytest.mark.parametrize("value", TOO_BIG)
def test_a_price_beyond_its_column_is_a_400(value, ops, book, client_for):
    body = {"security": "AAA", "as_of": "2026-01-02", "price": value}
    response = client_for(ops).post(f"{API}/prices/", body, format="json")
    assert response.status_code == 400, response.content
    assert not Price.objects.filter(as_of="2026-01-02").exists()


@pytest.mark.parametrize("value", TOO_BIG)
@pytest.mark.parametrize("field", ["round_lot", "min_quantity", "tick_size", "multiplier"])
def test_security_figures_beyond_their_column_are_400s(field, value, ops, book, client_for):
    body = {"ticker": "NEW", "name": "New Corp", "asset_class": "equity", "currency": "USD"}
    response = client_for(ops).post(f"{API}/securities/", body | {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Security.objects.filter(ticker="NEW").exists()


@pytest.mark.parametrize("value", TOO_BIG)
@pytest.mark.parametrize("field", ["cash_weight", "band_absolute", "band_relative", "weight"])
def test_model_figures_beyond_their_column_are_400s(field, value, pm, book, client_for):
    target = {"security": "AAA", "weight": "0.5"}
    body = {"name": "Big", "cash_weight": "0.5", "band_absolute": "0.01", "targets": [target]}
    if field == "weight":
        body["targets"] = [target | {"weight": value}]
    else:
        body[field] = value
    response = client_for(pm).post(f"{API}/models/", body, format="json")
    assert response.status_code == 400, response.content
    assert not ModelPortfolio.objects.filter(name="Big").exists()


@pytest.mark.parametrize("value", [1e30, "1e30", 1e13, "NaN", "Infinity"])
@pytest.mark.parametrize("field", ["min_trade_value", "cash_need"])
def test_rebalance_figures_beyond_their_range_are_400s(field, value, pm, book, client_for):
    account = book["accounts"][0]
    response = client_for(pm).post(
        f"{API}/portfolios/{account.pk}/rebalance/", {field: value}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", "100000000000"), ("limit_price", "1000000000"), ("stop_price", "1e9")],
)
def test_order_figures_beyond_the_trade_limits_are_400s(field, value, pm, book, client_for):
    """The columns would hold these, but quantity × price would overflow a money figure."""
    body = {
        "portfolio": "ACC1",
        "security": "AAA",
        "side": "buy",
        "quantity": "10",
        "order_type": "stop_limit",
        "limit_price": "100",
        "stop_price": "100",
    }
    response = client_for(pm).post(f"{API}/orders/", body | {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()[field] == [
        "Must be less than 100,000,000,000."
        if field == "quantity"
        else "Must be less than 1,000,000,000."
    ]


@pytest.mark.parametrize("value", ["-1.0052880376504286e+209", "1e30", "99999999999999999999999"])
@pytest.mark.parametrize("path", ["overrides", "pretrade-results"])
def test_an_order_id_filter_beyond_an_id_column_is_a_400(
    path, value, compliance_officer, client_for
):
    """Schemathesis found it on SQLite: an id beyond 64 bits reached the database (500)."""
    response = client_for(compliance_officer).get(f"{API}/{path}/", {"order": value})
    assert response.status_code == 400, response.content
    assert "order" in response.json()
