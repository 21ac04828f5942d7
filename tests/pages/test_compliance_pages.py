"""The compliance officer's pages: the audit explorer with its chain's status, its
verification and its export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_checkpoint, audit_record, audit_seal
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db


def events(n: int, actor, kind="test.event", **fields):
    with transaction.atomic():
        for i in range(n):
            audit_record(actor=actor, kind=kind, obj=actor, after={"i": i}, **fields)


def seal_all() -> None:
    while audit_seal():
        pass


def shown(response) -> set[str]:
    return {e.kind for e in response.context["page"].object_list}


def exported(response) -> list[dict]:
    assert response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_audit_list_shows_each_event_and_the_chain_s_status(
    compliance_officer, pm, released_block, client_for
):
    seal_all()
    checkpoint = audit_checkpoint()
    events(2, pm)  # not sealed yet
    response = client_for(compliance_officer).get(reverse("compliance:audit-list"))
    assert response.status_code == 200
    page = list(response.context["page"].object_list)
    assert page[0].pk > page[-1].pk  # newest first
    assert {"order.created", "order.approved", "order.released", "block.orders_added"} <= {
        e.kind for e in page
    }
    chain = response.context["chain"]
    assert (chain.last_position, chain.awaiting) == (checkpoint.position, 2)
    assert chain.checkpoint_position == checkpoint.position and chain.uncovered == 0
    html = response.content.decode()
    assert "order.released" in html and ">pm<" in html and "before → after" in html
    assert "Awaiting their seal" in html and f"#{chain.last_event_id}" in html
    assert "awaiting seal" in html and f"sealed {checkpoint.position}<" in html
    assert "Order " in html  # the object's kind as the pages name it, not trading.order


@pytest.mark.parametrize(
    ("query", "expected_kinds"),
    [
        ({"kind": "order.rel"}, {"order.released"}),
        ({"actor": "pm", "kind": "block."}, {"block.orders_added"}),
        ({"actor": "Pat Morgan", "kind": "block."}, {"block.orders_added"}),
        ({"actor": "organ", "kind": "block."}, set()),  # a name matches from its start
        ({"actor": "mor", "kind": "block."}, {"block.orders_added"}),
        ({"actor": "Casey"}, set()),
        ({"object": "Block"}, {"block.orders_added"}),
        ({"object_type": "trading.block"}, {"block.orders_added"}),
        ({"object_type": "Block"}, {"block.orders_added"}),
    ],
)
def test_audit_list_filters_by_the_names_a_person_uses(
    compliance_officer, pm, released_block, client_for, query, expected_kinds
):
    pm.first_name, pm.last_name = "Pat", "Morgan"
    pm.save(update_fields=["first_name", "last_name"])
    response = client_for(compliance_officer).get(reverse("compliance:audit-list"), query)
    assert shown(response) == expected_kinds


def test_audit_list_filters_by_an_object_as_the_pages_name_it(
    compliance_officer, pm, book, proposed_run, client_for
):
    # A run's orders are created in bulk (one event on the run); a ticket has its own.
    order = order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(10),
    )
    client = client_for(compliance_officer)
    url = reverse("compliance:audit-list")
    by_order = client.get(url, {"object": f"Order {order.pk}"})
    assert {(e.object_type, e.object_id) for e in by_order.context["page"].object_list} == {
        ("trading.order", str(order.pk))
    }
    assert shown(client.get(url, {"object": f"order #{order.pk}"})) == {"order.created"}
    run = client.get(url, {"object": f"Rebalance run {proposed_run.pk}"})
    assert shown(run) == {
        "rebalance.created",
        "rebalance.started",
        "orders.created",
        "rebalance.proposed",
    }
    security = client.get(url, {"object": "AAA", "kind": "order."})
    assert shown(security) == {"order.created"}  # the object's description names it
    assert not shown(client.get(url, {"object": f"Order {order.pk}0"}))


def test_audit_list_filters_by_object_and_time(compliance_officer, pm, client_for):
    events(3, pm)
    client = client_for(compliance_officer)
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert (
        client.get(reverse("compliance:audit-list"), {"occurred_from": later})
        .context["page"]
        .paginator.count
        == 0
    )
    by_object = client.get(
        reverse("compliance:audit-list"), {"object_type": "auth.user", "object_id": str(pm.pk)}
    )
    assert by_object.context["page"].paginator.count == 3


def test_audit_list_is_paginated_and_answers_htmx_with_the_table(
    compliance_officer, pm, client_for, django_assert_max_num_queries
):
    events(120, pm)
    seal_all()
    audit_checkpoint()
    client = client_for(compliance_officer)
    # Session, user, roles, the chain's head, its awaiting count, its checkpoint, the
    # page's count and rows (each with its seal, joined).
    with django_assert_max_num_queries(8):
        first = client.get(reverse("compliance:audit-list"))
    assert len(first.context["page"].object_list) == 50
    assert first.context["page"].paginator.num_pages == 3
    with django_assert_max_num_queries(5):
        third = client.get(
            reverse("compliance:audit-list"),
            {"page": 3},
            headers={"HX-Request": "true", "HX-Target": "results"},
        )
    assert b"<html" not in third.content and b"chain-status" not in third.content
    assert len(third.context["page"].object_list) == 20


def test_csv_export_follows_the_filter(compliance_officer, pm, released_block, client_for):
    seal_all()
    response = client_for(compliance_officer).get(
        reverse("compliance:audit-export"), {"kind": "order.released"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = exported(response)
    assert len(rows) == 2
    assert {row["kind"] for row in rows} == {"order.released"}
    assert {row["actor_name"] for row in rows} == {"pm"}
    assert {row["object_kind"] for row in rows} == {"Order"}
    assert all(len(row["hash"]) == 64 and int(row["position"]) > 0 for row in rows)


def test_csv_export_escapes_what_a_spreadsheet_would_run(compliance_officer, pm, book, client_for):
    order = order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(1),
    )
    client_for(pm).post(
        reverse("trading:order-cancel", args=[order.pk]),
        {"reason": '=HYPERLINK("http://evil.example","Click")'},
    )
    assert AuditEvent.objects.get(kind="order.cancelled").reason.startswith("=HYPERLINK")
    for reason in ("+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "fine = ok"):
        events(1, pm, kind="test.reason", reason=reason)
    rows = exported(client_for(compliance_officer).get(reverse("compliance:audit-export")))
    reasons = [row["reason"] for row in rows if row["reason"]]
    assert reasons == [
        '\'=HYPERLINK("http://evil.example","Click")',
        "'+1+2",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "fine = ok",
    ]


def test_csv_export_streams_a_long_trail_oldest_first(compliance_officer, pm, client_for):
    events(4500, pm)
    response = client_for(compliance_officer).get(
        reverse("compliance:audit-export"), {"actor": "pm"}
    )
    rows = exported(response)
    assert len(rows) == 4500
    assert [int(row["id"]) for row in rows] == sorted(int(row["id"]) for row in rows)
    assert {row["position"] for row in rows} == {""}  # not sealed yet: no position


def test_verify_page_reports_an_intact_chain(compliance_officer, pm, client_for):
    events(5, pm)
    seal_all()
    audit_checkpoint()
    client = client_for(compliance_officer)
    page = client.get(reverse("compliance:audit-verify"))
    assert page.context["report"] is None and page.context["chain"].last_position == 5
    response = client.post(reverse("compliance:audit-verify"), headers={"HX-Request": "true"})
    assert response.context["report"].ok
    assert b"Chain intact." in response.content and b"1 signed checkpoint" in response.content
    assert b"<html" not in response.content


def _tamper(sql: str, params) -> None:
    """Change rows behind the application's back (on PostgreSQL, past its triggers)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


def test_verify_page_names_every_broken_link(compliance_officer, pm, client_for):
    events(5, pm)
    seal_all()
    ids = list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True))
    for pk in (ids[1], ids[3]):
        _tamper("UPDATE compliance_auditevent SET reason = 'edited' WHERE id = %s", [pk])
    response = client_for(compliance_officer).post(reverse("compliance:audit-verify"))
    report = response.context["report"]
    assert [found.event_id for found in report.breaks] == [ids[1], ids[3]]
    html = response.content.decode()
    assert "Chain broken: 2 findings" in html
    assert f"Event #{ids[1]} (position 2) does not match its seal" in html
    assert f"Event #{ids[3]} (position 4) does not match its seal" in html


def test_verify_audit_command_and_page_agree(compliance_officer, pm, client_for, capsys):
    events(3, pm)
    seal_all()
    _tamper(
        "DELETE FROM compliance_auditevent WHERE id = %s",
        [AuditEvent.objects.order_by("pk").first().pk],
    )
    with pytest.raises(SystemExit):
        call_command("verify_audit")
    out = capsys.readouterr().out
    page = client_for(compliance_officer).post(reverse("compliance:audit-verify"))
    [found] = page.context["report"].breaks
    assert found.problem in out and found.problem in page.content.decode()


@pytest.mark.django_db
def test_the_explorer_hides_the_price_feed_s_flushes_unless_asked(compliance_officer, book):
    from django.test import Client
    from django.utils import timezone

    from audit.models import AuditEvent
    from portfolios.marketdata import Quote
    from portfolios.services import quotes

    # what earlier tests left in this process: their bars, their tickers' ids
    quotes.bars_discard()
    quotes.reference_forget()
    for _ in range(3):
        quotes.quotes_apply([Quote("AAA", "XNAS", timezone.now(), 99, 101, 100)], source="feed")
        quotes.bars_flush(source="feed")
    quotes.reference_forget()
    assert AuditEvent.objects.filter(kind="prices.flushed").count() == 3
    client = Client()
    client.force_login(compliance_officer)
    shown = client.get("/compliance/audit/").content.decode()
    assert "prices.flushed" not in shown.split("<table")[1]
    assert "prices.flushed" in client.get("/compliance/audit/?feed=show").content.decode()
    assert "prices.flushed" in client.get("/compliance/audit/?kind=prices.").content.decode()
    export = client.get("/compliance/audit/export.csv")
    assert export.status_code == 200
    exported = b"".join(export.streaming_content).decode()
    assert "prices.flushed" not in exported  # the export follows the page
    everything = client.get("/compliance/audit/export.csv?feed=show")
    assert "prices.flushed" in b"".join(everything.streaming_content).decode()
