"""Bad input is a 400 naming its fields; another user's object a 404; an illegal
transition a 409. Never a 500."""

from __future__ import annotations

import pytest

from portfolios.models import Price, Security
from trading.models import Order, Route

from .utils import API, proposed_run

pytestmark = pytest.mark.django_db


def _create_order(client, **body):
    return client.post(f"{API}/orders/", body, format="json")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"portfolio", "security", "side", "quantity"}),
        ({"portfolio": "ACC1", "security": "NOPE", "side": "buy", "quantity": 1}, {"security"}),
        ({"portfolio": "ACC1", "security": "AAA", "side": "up", "quantity": 1}, {"side"}),
        ({"portfolio": "ACC1", "security": "AAA", "side": "buy", "quantity": -3}, {"quantity"}),
        ({"portfolio": "ACC1", "security": "AAA", "side": "buy", "quantity": "1.5"}, {"quantity"}),
        ({"portfolio": "ACC1", "security": "AAA", "side": "buy", "quantity": "x"}, {"quantity"}),
        ({"portfolio": "ACC1", "security": "AAA", "side": "sell", "quantity": 601}, {"quantity"}),
        (
            {
                "portfolio": "ACC1",
                "security": "AAA",
                "side": "buy",
                "quantity": 1,
                "order_type": "limit",
            },
            {"limit_price"},
        ),
        (
            {
                "portfolio": "ACC1",
                "security": "AAA",
                "side": "buy",
                "quantity": 1,
                "time_in_force": "gtd",
            },
            {"expire_at"},
        ),
        (
            {"portfolio": "ACC1", "security": "AAA", "side": "buy", "quantity": "1e40"},
            {"quantity"},
        ),
    ],
)
def test_bad_orders_are_refused_field_by_field(body, fields, pm, book, client_for):
    response = _create_order(client_for(pm), **body)
    assert response.status_code == 400, response.content
    assert set(response.json()) == fields
    assert not Order.objects.exists()


def test_codes_with_nul_characters_are_bad_input(pm, trader, make_order, client_for):
    # PostgreSQL refuses NUL in text: it must never reach a query (it was a 500 there).
    # JSON bodies with NUL are refused whole by the parser; form bodies reach the fields.
    response = client_for(pm).post(
        f"{API}/orders/",
        {"portfolio": "AC\x00C1", "security": "A\x00", "side": "buy", "quantity": 1},
        format="multipart",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"portfolio", "security"}
    block_id = make_order(upto="released").block_id
    response = client_for(trader).post(
        f"{API}/blocks/{block_id}/route/", {"broker": "S\x00M"}, format="multipart"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"broker"}
    assert not Route.objects.exists()


def test_another_managers_account_does_not_exist(other_pm, book, client_for):
    response = _create_order(
        client_for(other_pm), portfolio="ACC1", security="AAA", side="buy", quantity=1
    )
    assert response.status_code == 400
    assert set(response.json()) == {"portfolio"}


def test_malformed_json_is_bad_input(pm, book, client_for):
    response = client_for(pm).post(
        f"{API}/orders/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("what", ["orders", "portfolios", "rebalance-runs"])
def test_another_managers_objects_are_not_found(what, other_pm, pm, book, make_order, client_for):
    ids = {
        "orders": lambda: make_order().pk,
        "portfolios": lambda: book["accounts"][0].pk,
        "rebalance-runs": lambda: proposed_run(pm, book).pk,
    }
    object_id = ids[what]()
    assert client_for(pm).get(f"{API}/{what}/{object_id}/").status_code == 200
    assert client_for(other_pm).get(f"{API}/{what}/{object_id}/").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["orders/{order}/approve/", "orders/{order}/cancel/", "portfolios/{portfolio}/rebalance/"],
)
def test_another_managers_objects_cannot_be_acted_on(path, other_pm, book, make_order, client_for):
    order = make_order()
    url = path.format(order=order.pk, portfolio=book["accounts"][0].pk)
    response = client_for(other_pm).post(f"{API}/{url}", {}, format="json")
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == Order.Status.DRAFT


@pytest.mark.parametrize("path", ["orders/999999/", "orders/abc/", "orders/99999999999999999999/"])
def test_unknown_ids_are_not_found(path, pm, book, client_for):
    assert client_for(pm).get(f"{API}/{path}").status_code == 404


def test_an_illegal_transition_is_a_conflict(pm, make_order, client_for):
    client = client_for(pm)
    draft = make_order()
    response = client.post(f"{API}/orders/{draft.pk}/release/")
    assert response.status_code == 409
    assert "draft" in response.json()["detail"]
    approved = make_order(upto="approved")
    response = client.post(f"{API}/orders/{approved.pk}/approve/")
    assert response.status_code == 409
    approved.refresh_from_db()
    assert approved.status == Order.Status.APPROVED


def test_a_run_cannot_be_approved_twice(pm, book, client_for):
    client = client_for(pm)
    run = proposed_run(pm, book)
    assert client.post(f"{API}/rebalance-runs/{run.pk}/approve/").status_code == 200
    assert client.post(f"{API}/rebalance-runs/{run.pk}/approve/").status_code == 409
    assert client.post(f"{API}/rebalance-runs/{run.pk}/release/").status_code == 200
    assert client.post(f"{API}/rebalance-runs/{run.pk}/cancel/").status_code == 409


def test_routing_more_than_the_block_is_refused(trader, make_order, client_for):
    block_id = make_order(upto="released", quantity="10").block_id
    client = client_for(trader)
    for body, field in (
        ({"broker": "SIM", "quantity": 11}, "quantity"),
        ({"broker": "SIM", "quantity": 0}, "quantity"),
        ({"broker": "NOPE"}, "broker"),
        ({}, "broker"),
    ):
        response = client.post(f"{API}/blocks/{block_id}/route/", body, format="json")
        assert response.status_code == 400, body
        assert field in response.json()
    assert not Route.objects.exists()


def test_an_order_with_a_broker_cannot_be_cancelled(pm, trader, make_order, client_for):
    order = make_order(upto="released")
    client_for(trader).post(f"{API}/blocks/{order.block_id}/route/", {"broker": "SIM"})
    response = client_for(pm).post(f"{API}/orders/{order.pk}/cancel/")
    assert response.status_code == 400
    assert "route" in str(response.json())


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([], "non_field_errors"),
        ({"security": "AAA"}, "non_field_errors"),
        ([{"security": "AAA", "as_of": "2020-01-01", "price": "0"}], "price"),
        ([{"security": "AAA", "as_of": "2020-13-01", "price": "1"}], "as_of"),
        ([{"security": "NOPE", "as_of": "2020-01-01", "price": "1"}], "security"),
        (
            [
                {"security": "AAA", "as_of": "2020-01-01", "price": "1"},
                {"security": "AAA", "as_of": "2020-01-01", "price": "2"},
            ],
            "as_of",
        ),
        ("today", "as_of"),
    ],
)
def test_bad_price_loads_are_refused_whole(rows, field, ops, book, client_for):
    if rows == "today":  # a price the book already has
        today = Price.objects.order_by("-as_of").first()
        rows = [{"security": today.security.ticker, "as_of": str(today.as_of), "price": "1"}]
    before = Price.objects.count()
    response = client_for(ops).post(f"{API}/prices/", rows, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in str(body)
    assert Price.objects.count() == before


def test_a_duplicate_ticker_is_refused(ops, book, client_for):
    response = client_for(ops).post(
        f"{API}/securities/",
        {"ticker": "AAA", "name": "Again", "asset_class": "crypto", "currency": "USD"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"ticker", "asset_class"}


def test_a_ticker_that_differs_only_in_case_is_a_duplicate(ops, book, client_for):
    """Models, CSV imports and the pages read a ticker whatever its case (``aaa`` is
    AAA): a second security ``aaa`` beside AAA would be one name for two securities."""
    response = client_for(ops).post(
        f"{API}/securities/",
        {"ticker": "aaa", "name": "Again", "asset_class": "equity", "currency": "USD"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json() == {"ticker": ["A security with the ticker AAA exists already."]}
    assert not Security.objects.filter(ticker="aaa").exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"currency": "US"}, "currency"),
        ({"currency": "U$D"}, "currency"),
        ({"currency": "123"}, "currency"),
        ({"asset_class": "fx_spot", "currency": "USD", "base_currency": "e1"}, "base_currency"),
    ],
)
def test_a_currency_that_is_not_an_iso_code_is_refused(fields, field, ops, book, client_for):
    body = {"ticker": "NEWCO", "name": "New Co", "asset_class": "equity"} | fields
    response = client_for(ops).post(f"{API}/securities/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Security.objects.filter(ticker="NEWCO").exists()


def test_a_lower_case_currency_is_read_as_its_code(ops, book, client_for):
    """As a cash flow's currency is: ``usd`` is USD, not a currency of its own that no
    FX rate, cash balance or account would ever match."""
    response = client_for(ops).post(
        f"{API}/securities/",
        {"ticker": "NEWCO", "name": "New Co", "asset_class": "equity", "currency": "gbp"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["currency"] == "GBP"
    assert Security.objects.get(ticker="NEWCO").currency == "GBP"


@pytest.mark.parametrize(
    "query", ["created_from=yesterday", "status=lost", "rebalance_run=abc", "page=99"]
)
def test_bad_filters_are_refused(query, pm, book, client_for):
    response = client_for(pm).get(f"{API}/orders/?{query}")
    assert response.status_code in (400, 404), response.content
    assert response.status_code == (404 if query.startswith("page") else 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trade_to": "moon"}, "trade_to"),
        ({"lot_selection": "random"}, "lot_selection"),
        ({"min_trade_value": -1}, "min_trade_value"),
        ({"cash_need": "lots"}, "cash_need"),
    ],
)
def test_bad_rebalance_parameters_are_refused(body, field, pm, book, client_for):
    url = f"{API}/portfolios/{book['accounts'][0].pk}/rebalance/"
    response = client_for(pm).post(url, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_an_account_that_cannot_be_valued_is_skipped_with_the_reason(pm, book, client_for):
    from portfolios.models import CashBalance, RebalanceRun

    # Cash in a currency with no rate to the account's base: its value is unknown.
    CashBalance.objects.create(portfolio=book["accounts"][0], currency="GBP", amount=1)
    url = f"{API}/portfolios/{book['accounts'][0].pk}/rebalance/"
    response = client_for(pm).post(url, {}, format="json")
    assert response.status_code == 201
    assert response.json()["skipped"] == {"ACC1": "no FX rate from GBP to USD"}
    assert response.json()["orders"] == []
    run = RebalanceRun.objects.get()
    assert run.status == RebalanceRun.Status.PROPOSED
    assert not run.orders.exists()


def test_a_book_the_engine_cannot_compute_is_refused_with_the_reason(pm, book, client_for):
    from portfolios.models import RebalanceRun, Security

    # A lot size of zero slipped past the forms (written straight to the table).
    Security.objects.filter(ticker="AAA").update(round_lot=0)
    url = f"{API}/portfolios/{book['accounts'][0].pk}/rebalance/"
    response = client_for(pm).post(url, {}, format="json")
    assert response.status_code == 422
    assert "lot" in response.json()["detail"]
    run = RebalanceRun.objects.get()
    assert run.status == RebalanceRun.Status.FAILED
    assert "lot" in run.error


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"targets": [{"security": "AAA", "weight": "0.5"}]}, "targets", "add up to 50%"),
        (
            {
                "targets": [
                    {"security": "AAA", "weight": "0.5"},
                    {"security": "AAA", "weight": "0.5"},
                ]
            },
            "targets",
            "already a target",
        ),
        (
            {"targets": [{"security": "AAA", "weight": "0"}, {"security": "BBB", "weight": "1"}]},
            "targets",
            "must be positive",
        ),
        ({"targets": [{"security": "NOPE", "weight": "1"}]}, "targets", "No security NOPE."),
        ({"targets": []}, "targets", "A model needs at least one target."),
        ({"name": "Core", "targets": [{"security": "AAA", "weight": "1"}]}, "name", "exists"),
        (
            {"band_absolute": "-0.1", "targets": [{"security": "AAA", "weight": "1"}]},
            "band_absolute",
            "zero or more",
        ),
    ],
)
def test_bad_models_are_refused(body, field, message, pm, book, client_for):
    from portfolios.models import ModelPortfolio

    response = client_for(pm).post(f"{API}/models/", {"name": "New"} | body, format="json")
    assert response.status_code == 400, response.content
    assert message in str(response.json()[field])
    assert ModelPortfolio.objects.count() == 1
