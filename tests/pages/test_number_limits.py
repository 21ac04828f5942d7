"""A number the database cannot hold is a form error, never a 500.

The columns are numeric(24, 6) for quantities (18 digits before the point),
numeric(24, 8) for prices (16 before the point): on PostgreSQL a larger value is
"numeric field overflow", and past 28 significant digits Python's Decimal cannot
even round it to the column's places (InvalidOperation). Input is held below
oms.numbers.MAX_QUANTITY (10^11) and MAX_PRICE (10^9), so that quantity times
price still fits a money column."""

from __future__ import annotations

import pytest
from django.urls import reverse

from trading.models import Order, Route

from .test_trading_pages import order_data

pytestmark = pytest.mark.django_db

TOO_BIG_QUANTITIES = ["1e30", "1e20", "1000000000000000000", "1e11", "NaN", "Infinity"]
TOO_BIG_PRICES = ["1e30", "1e17", "10000000000000000", "1000000000"]


@pytest.mark.parametrize("quantity", TOO_BIG_QUANTITIES)
def test_an_order_quantity_beyond_the_column_is_a_form_error(quantity, pm, book, client_for):
    response = client_for(pm).post(
        reverse("trading:order-create"), order_data(book, quantity=quantity)
    )
    assert response.status_code == 422
    assert response.context["form"].errors["quantity"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("price", TOO_BIG_PRICES)
@pytest.mark.parametrize("field", ["limit_price", "stop_price"])
def test_an_order_price_beyond_the_column_is_a_form_error(field, price, pm, book, client_for):
    terms = order_data(book, order_type="stop_limit", limit_price="50", stop_price="50")
    response = client_for(pm).post(reverse("trading:order-create"), terms | {field: price})
    assert response.status_code == 422
    assert response.context["form"].errors[field]
    assert not Order.objects.exists()


def test_the_largest_quantity_the_trade_allows_is_accepted(pm, book, client_for):
    quantity = "99999999999"  # below 10^11
    response = client_for(pm).post(
        reverse("trading:order-create"), order_data(book, quantity=quantity)
    )
    assert response.status_code == 302, response.context["form"].errors
    assert Order.objects.get().quantity == int(quantity)


@pytest.mark.parametrize("quantity", TOO_BIG_QUANTITIES)
def test_a_route_quantity_beyond_the_column_is_an_error_on_the_row(
    quantity, trader, book, released_block, client_for
):
    response = client_for(trader).post(
        reverse("trading:block-route", args=[released_block.pk]),
        {"broker": book["broker"].pk, "quantity": quantity},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert not Route.objects.exists()


@pytest.mark.parametrize("value", ["1e30", "1e13", "NaN", "Infinity"])
@pytest.mark.parametrize("field", ["min_trade_value", "cash_need"])
def test_rebalance_figures_beyond_their_range_are_form_errors(field, value, pm, book, client_for):
    data = {"portfolios": [book["accounts"][0].pk], "trade_to": "target", "lot_selection": "fifo"}
    response = client_for(pm).post(reverse("runs:create"), data | {field: value})
    assert response.status_code == 422
    assert response.context["form"].errors[field]
