"""The account page's positions move with the quotes in a real browser, and its
totals stay the sum of every row, not only of the rows a quote has moved."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from portfolios.marketdata import Quote
from portfolios.services import quotes as quote_services

pytestmark = pytest.mark.django_db(transaction=True)


def _amount(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text.replace("−", "-")))


@pytest.fixture
def local_quotes(settings):
    """Quotes and the push channel in this process (the live server's thread shares it)."""
    settings.OMS_QUOTE_REDIS_URL = ""
    settings.OMS_PUSH_REDIS_URL = ""
    settings.OMS_QUOTE_MAX_AGE = settings.OMS_QUOTE_MAX_AGE | {"equity": 900}
    cache.clear()
    yield
    cache.clear()


def test_a_quote_moves_its_row_and_the_totals_still_add_every_row(
    log_in, live_server, book, pm, local_quotes
):
    account = book["accounts"][0]
    page = log_in(pm)
    page.goto(f"{live_server.url}/portfolios/{account.pk}/")
    table = page.locator("#live-positions")
    before = _amount(table.locator('[data-total="value-base"]').inner_text())
    rows = table.locator("tr[data-live-position]")
    assert rows.count() >= 3

    quote_services.quotes_apply(
        [Quote("AAA", "XNAS", timezone.now(), 109.9, 110.1, 110.0)], source="test"
    )
    quote_services.bars_flush()  # without Redis the page's poll replays the bars
    aaa = table.locator('tr[data-ticker="AAA"] [data-col="value-base"]')
    page.wait_for_function(
        "el => el.textContent.includes('66,000.00')", arg=aaa.element_handle(), timeout=15_000
    )
    cells = [_amount(t) for t in table.locator('tr[data-live-position] [data-col="value-base"]')
             .all_inner_texts() if t.strip()]  # fmt: skip
    total = _amount(table.locator('[data-total="value-base"]').inner_text())
    assert total == sum(cells)
    assert total != before  # the quote moved it
