"""Through the API: an order says how its sell closes tax lots, and an account shows
what its sales realised (today and in total, short and long term, base currency)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from portfolios.services.holdings import Fill, holdings_book_fills
from trading.models import Order

from .utils import API

pytestmark = pytest.mark.django_db


def _order(book, **overrides) -> dict:
    return {
        "portfolio": "ACC1",
        "security": "AAA",
        "side": "sell",
        "quantity": "10",
    } | overrides


def test_a_sell_takes_a_lot_method_and_shows_it(pm, book, client_for):
    client = client_for(pm)
    made = client.post(f"{API}/orders/", _order(book, lot_method="hifo"), format="json")
    assert made.status_code == 201, made.content
    assert made.json()["lot_method"] == "hifo" and made.json()["lots"] == []
    plain = client.post(f"{API}/orders/", _order(book, quantity="5"), format="json")
    assert plain.json()["lot_method"] == "fifo"  # the default
    shown = client.get(f"{API}/orders/{made.json()['id']}/")
    assert shown.json()["lot_method"] == "hifo"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"lot_method": "lifo"}, "not a valid choice"),
        ({"lot_method": "hifo", "side": "buy"}, "sells only"),
    ],
)
def test_a_bad_lot_method_is_a_400_in_words_and_writes_nothing(
    pm, book, client_for, overrides, words
):
    response = client_for(pm).post(f"{API}/orders/", _order(book, **overrides), format="json")
    assert response.status_code == 400
    assert words in str(response.json())
    assert not Order.objects.exists()


def test_the_account_shows_its_realised_pnl(pm, book, client_for):
    acc1 = book["accounts"][0]
    # ACC1's 600 AAA were bought at 30, 400 days ago: selling 100 at 100 realises 7,000
    holdings_book_fills(
        security=book["securities"]["AAA"],
        fills=[Fill(portfolio_id=acc1.pk, buying=False, quantity=Decimal(100), price=Decimal(100))],
        on_date=timezone.now().date(),
    )
    body = client_for(pm).get(f"{API}/portfolios/{acc1.pk}/").json()
    realised = body["realised_pnl"]
    assert realised["currency"] == "USD"
    for when in ("today", "total"):
        assert realised[when] == {
            "short_term": "0.00",
            "long_term": "7000.00",
            "total": "7000.00",
        }
    other = client_for(pm).get(f"{API}/portfolios/{book['accounts'][1].pk}/").json()
    assert other["realised_pnl"]["total"]["total"] == "0.00"
