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
