"""The account page's positions move with the quotes in a real browser, and its
totals stay the sum of every row, not only of the rows a quote has moved: polling
pytest-django's live server, and over the push stream of the application served as
production serves it (uvicorn, Redis), the path bench/marketdata.py times."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from portfolios.marketdata import Quote
from portfolios.services import quotes as quote_services
from tests.e2e import test_blotter
from tests.e2e.test_blotter import _log_in

asgi_server = test_blotter.asgi_server  # the fixture: uvicorn on the test database

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


def test_over_the_stream_each_tick_moves_its_row_to_its_value(book, pm, browser, asgi_server):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    # the server checks passwords with the production hashers, not the tests' fast one
    hasher = PBKDF2PasswordHasher()
    pm.password = hasher.encode(f"pw-{pm.username}", hasher.salt(), iterations=1000)
    pm.save(update_fields=["password"])
    account = book["accounts"][0]  # AAA 600, BBB 100, EEE 500
    context, page = _log_in(browser, asgi_server, pm)
    try:
        page.goto(f"{asgi_server}/portfolios/{account.pk}/")
        expect(page.locator("[data-quotes-state]")).to_have_text("prices live")
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        aaa = page.locator('#live-positions tr[data-ticker="AAA"] [data-col="value"]')
        bbb = page.locator('#live-positions tr[data-ticker="BBB"] [data-col="value"]')
        for aaa_last, aaa_value, bbb_last, bbb_value in (
            (110.0, "66,000.00", 51.1, "5,110.00"),
            (110.5, "66,300.00", 51.2, "5,120.00"),
        ):
            now = timezone.now()
            quote_services.quotes_apply(
                [
                    Quote("AAA", "XNAS", now, aaa_last - 0.1, aaa_last + 0.1, aaa_last),
                    Quote("BBB", "XNAS", now, None, None, bbb_last),
                ],
                source="test",
            )
            expect(aaa).to_have_text(aaa_value)
            expect(bbb).to_have_text(bbb_value)
        assert not [u for u in requests if "/push/poll/" in u], requests  # pushed, not polled
    finally:
        context.close()
