"""The exposure page in a real browser: plotly.js draws each breakdown (served from
the installed package, under the Content-Security-Policy), and a quote on the push
channel moves the totals without a reload."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portfolios.marketdata import Quote
from portfolios.services import quotes as quote_services

from .test_live_positions import local_quotes  # noqa: F401 (a fixture)

SHOT = os.environ.get("OMS_EXPOSURE_SCREENSHOT")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_charts_draw_and_a_quote_moves_the_totals(log_in, live_server, book, pm, local_quotes):  # noqa: F811
    page = log_in(pm)
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/portfolios/exposure/")
    for dimension in ("asset_class", "currency", "sector", "country"):
        expect(page.locator(f"#chart-{dimension} .main-svg").first).to_be_visible()
    nav = page.locator('[data-total="nav"]')
    before = nav.inner_text()
    assert before.startswith("150,000")  # ACC1 90,000 and ACC2 60,000, cash included

    quote_services.quotes_apply(
        [Quote("AAA", "XNAS", timezone.now(), 109.9, 110.1, 110.0)], source="test"
    )
    quote_services.bars_flush()  # without Redis the page's poll replays the bars
    # AAA from 100 to 110 on 700 shares of the PM's two accounts: 7,000 more
    page.wait_for_function(  # the results are swapped in anew: look the card up again
        "before => document.querySelector('[data-total=nav]').textContent !== before",
        arg=before,
        timeout=15_000,
    )
    assert nav.inner_text().startswith("157,000")
    page.screenshot(path=str(SHOT), full_page=True) if SHOT else None
    assert "values live" in page.locator("[data-exposure-state]").inner_text()
    expect(page.locator("#chart-sector .main-svg").first).to_be_visible()
    assert problems == []
