"""The compliance officer's pages: the audit trail, its verification and its export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = pytest.mark.django_db


def events(n: int, actor, kind="test.event"):
    with transaction.atomic():
        for i in range(n):
            audit_record(actor=actor, kind=kind, obj=actor, after={"i": i})


def test_audit_list_shows_each_event_with_actor_change_and_origin(
    compliance_officer, pm, released_block, client_for
):
    response = client_for(compliance_officer).get(reverse("compliance:audit-list"))
    assert response.status_code == 200
    shown = list(response.context["page"].object_list)
    assert shown[0].pk > shown[-1].pk  # newest first
    kinds = {e.kind for e in shown}
    assert {"order.created", "order.approved", "order.released", "block.orders_added"} <= kinds
    html = response.content.decode()
    assert "order.released" in html and ">pm<" in html
    assert "before → after" in html


@pytest.mark.parametrize(
    ("query", "expected_kinds"),
    [
        ({"kind": "order.rel"}, {"order.released"}),
        ({"actor": "pm", "kind": "block."}, {"block.orders_added"}),
        ({"object_type": "trading.block"}, {"block.orders_added"}),
    ],
)
def test_audit_list_filters(compliance_officer, released_block, client_for, query, expected_kinds):
    response = client_for(compliance_officer).get(reverse("compliance:audit-list"), query)
    assert {e.kind for e in response.context["page"].object_list} == expected_kinds


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
    client = client_for(compliance_officer)
    with django_assert_max_num_queries(6):
        first = client.get(reverse("compliance:audit-list"))
    assert len(first.context["page"].object_list) == 50
    assert first.context["page"].paginator.num_pages == 3
    third = client.get(
        reverse("compliance:audit-list"),
        {"page": 3},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert b"<html" not in third.content
    assert len(third.context["page"].object_list) == 20


def test_csv_export_follows_the_filter(compliance_officer, pm, released_block, client_for):
    response = client_for(compliance_officer).get(
        reverse("compliance:audit-export"), {"kind": "order.released"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2
    assert {row["kind"] for row in rows} == {"order.released"}
    assert {row["actor_name"] for row in rows} == {"pm"}
    assert all(len(row["hash"]) == 64 for row in rows)


def test_verify_page_reports_an_intact_chain(compliance_officer, pm, client_for):
    events(5, pm)
    client = client_for(compliance_officer)
    assert client.get(reverse("compliance:audit-verify")).context["report"] is None
    response = client.post(reverse("compliance:audit-verify"), headers={"HX-Request": "true"})
    assert response.context["report"].ok
    assert b"Chain intact." in response.content
    assert b"<html" not in response.content


def _break_the_chain(pm) -> AuditEvent:
    """Append a row whose link to the previous one is wrong (UPDATE is refused)."""
    forged = AuditEvent(
        occurred_at=timezone.now(),
        actor=pm,
        actor_name="pm",
        kind="forged",
        object_type="auth.user",
        object_id=str(pm.pk),
        object_repr="pm",
        previous_hash="f" * 64,
    )
    forged.hash = forged.compute_hash()
    AuditEvent.objects.bulk_create([forged])
    return AuditEvent.objects.get(kind="forged")


def test_verify_page_names_the_first_broken_link(compliance_officer, pm, client_for):
    events(3, pm)
    forged = _break_the_chain(pm)
    events(2, pm)
    response = client_for(compliance_officer).post(reverse("compliance:audit-verify"))
    report = response.context["report"]
    assert report.first_broken_id == forged.pk
    assert f"Chain broken at event #{forged.pk}".encode() in response.content


def test_verify_audit_command_prints_ok(pm, capsys):
    events(4, pm)
    call_command("verify_audit")
    assert capsys.readouterr().out.startswith("OK: 4 events")


def test_verify_audit_command_exits_1_naming_the_broken_link(pm, capsys):
    events(2, pm)
    forged = _break_the_chain(pm)
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit")
    assert exit_.value.code == 1
    assert f"BROKEN at event #{forged.pk}" in capsys.readouterr().out
