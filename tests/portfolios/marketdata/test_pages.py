"""The quarantine page: everyone with reference data sees it, operations decide."""

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from portfolios.marketdata import Quote
from portfolios.models import QuarantinedQuote
from portfolios.services import quotes as services

pytestmark = pytest.mark.django_db


def held_quote():
    (row,) = services.quotes_apply(
        [Quote("AAA", "XNAS", timezone.now(), None, None, -3.0)], source="probe"
    ).quarantined
    return row


def test_the_page_lists_held_quotes_and_operations_discard_one(client, book, quote_store, ops, pm):
    row = held_quote()
    client.force_login(pm)
    page = client.get("/portfolios/quarantine/")
    assert page.status_code == 200 and b"negative last -3" in page.content
    assert b'name="decision"' not in page.content  # a PM sees, does not decide
    assert (
        client.post(
            "/portfolios/quarantine/", {"quote": row.pk, "decision": "discard", "reason": "x"}
        ).status_code
        == 403
    )
    client.force_login(ops)
    answer = client.post(
        "/portfolios/quarantine/",
        {"quote": row.pk, "decision": "discard", "reason": "bad print"},
        follow=True,
    )
    assert b"AAA on XNAS: discarded." in answer.content
    row.refresh_from_db()
    assert row.status == QuarantinedQuote.Status.DISCARDED
    assert AuditEvent.objects.filter(kind="quote.discarded", object_id=str(row.pk)).exists()
    again = client.post(
        "/portfolios/quarantine/",
        {"quote": row.pk, "decision": "release", "reason": "oops"},
        follow=True,
    )
    assert b"cannot be released (negative last -3)" in again.content
    empty = client.post(
        "/portfolios/quarantine/",
        {"quote": row.pk, "decision": "discard", "reason": " "},
        follow=True,
    )
    assert b"Say why" in empty.content or b"already decided" in empty.content


def test_positions_are_valued_live_with_unrealised_and_day_pnl(book, quote_store, settings):
    from decimal import Decimal

    from portfolios import quotes as selectors

    settings.OMS_QUOTE_MAX_AGE = settings.OMS_QUOTE_MAX_AGE | {"equity": 900}
    now = timezone.now()
    services.quotes_apply([Quote("AAA", "XNAS", now, 109.9, 110.1, 110.0)], source="t")
    live = selectors.positions_valued(book["accounts"][0], now=now)
    rows = {r.security.ticker: r for r in live["rows"]}
    aaa = rows["AAA"]  # 600 bought at 30, closed at 99 yesterday
    assert (aaa.value_base, aaa.unrealised, aaa.day_pnl) == (
        Decimal("66000.00"), Decimal("48000.00"), Decimal("6600.00"),
    )  # fmt: skip
    assert aaa.reading.usable and aaa.reading.source == "live"
    eee = rows["EEE"]  # 500 at 30, only a daily price of 10 today: stale for an equity
    assert eee.unrealised == Decimal("-10000.00") and eee.reading.stale
    assert live["stale"] == ["BBB", "EEE"] and live["unvalued"] == []
    assert live["totals"]["value_base"] == Decimal("66000") + Decimal("5000") + Decimal("5000")


def test_the_account_page_shows_live_values_and_marks_stale_prices(
    client, book, quote_store, pm, django_assert_max_num_queries
):
    services.quotes_apply([Quote("AAA", "XNAS", timezone.now(), 109.9, 110.1, 110.0)], source="t")
    client.force_login(pm)
    with django_assert_max_num_queries(40):
        page = client.get(f"/portfolios/{book['accounts'][0].pk}/")
    html = page.content.decode()
    assert 'id="live-positions"' in html and "js/quotes.js" in html
    assert 'data-ticker="AAA" data-qty="600' in html and "66,000.00" in html and "48,000.00" in html
    assert "Stale prices (older than their asset class allows): BBB, EEE" in html
    assert '<span data-col="freshness" class="badge badge-stale">stale</span>' in html


def test_the_blotter_carries_live_quote_cells(client, book, quote_store, trader):
    client.force_login(trader)
    html = client.get("/trading/blotter/").content.decode()
    assert "js/quotes.js" in html


def test_a_page_polls_the_quotes_topic_without_redis(
    client, book, quote_store, pm, outsider, settings
):
    settings.OMS_PUSH_REDIS_URL = ""
    client.force_login(pm)
    first = client.get("/push/poll/", {"topic": "quotes"}).json()
    services.quotes_apply([Quote("AAA", "XNAS", timezone.now(), 101.9, 102.1, 102.0)], source="t")
    services.bars_flush()
    second = client.get("/push/poll/", {"topic": "quotes", "cursor": first["cursor"]}).json()
    assert second["events"][0]["q"]["AAA"][0] == 102.0
    client.force_login(outsider)
    assert client.get("/push/poll/", {"topic": "quotes"}).status_code == 403
