"""The audit trail: append-only, hash-chained, verifiable."""

from decimal import Decimal

import pytest
from django.db import connection, transaction

from audit.models import AppendOnlyError, AuditEvent
from audit.services import audit_record, verify_audit_chain
from oms.context import origin
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db


def _events(pm, book, count=3):
    for _ in range(count):
        order_services.order_create(
            actor=pm,
            portfolio=book["accounts"][0],
            security=book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(1),
        )


def test_events_name_actor_origin_and_link_to_the_previous(pm, book):
    with origin("api", "10.1.2.3"):
        _events(pm, book, 2)
    first, second = AuditEvent.objects.order_by("pk")
    assert second.previous_hash == first.hash
    assert second.actor == pm and second.actor_name == "pm"
    assert second.origin == "api:10.1.2.3"
    assert second.after["quantity"] == "1.000000"
    assert second.occurred_at.tzinfo is not None
    report = verify_audit_chain()
    assert report.ok and report.checked == 2


def test_model_layer_refuses_changes(pm, book):
    _events(pm, book, 1)
    event = AuditEvent.objects.get()
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_audit_outside_a_transaction_is_refused(pm):
    # In autocommit the event could commit without the change it records.
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=pm, kind="x", obj=pm)
    assert not AuditEvent.objects.exists()


def _tamper(sql: str, params, *, past_the_trigger: bool = False) -> None:
    """Change a row behind the application's back. On PostgreSQL, past_the_trigger plays
    a table owner who switches the trigger off (inside the test's transaction)."""
    trigger = "compliance_auditevent_append_only"
    with connection.cursor() as cursor:
        if past_the_trigger and connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks before ALTER
            cursor.execute(f"ALTER TABLE compliance_auditevent DISABLE TRIGGER {trigger}")
        cursor.execute(sql, params)
        if past_the_trigger and connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE compliance_auditevent ENABLE TRIGGER {trigger}")


def test_verification_names_the_first_broken_link(pm, book):
    _events(pm, book, 4)
    ids = list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True))
    _tamper(
        "UPDATE compliance_auditevent SET reason = %s WHERE id = %s",
        ["edited", ids[1]],
        past_the_trigger=True,
    )
    report = verify_audit_chain()
    assert not report.ok
    assert report.first_broken_id == ids[1]
    assert "content" in report.problem


def test_verification_finds_a_removed_event(pm, book):
    _events(pm, book, 4)
    ids = list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True))
    _tamper("DELETE FROM compliance_auditevent WHERE id = %s", [ids[2]], past_the_trigger=True)
    report = verify_audit_chain()
    assert report.first_broken_id == ids[3]
    assert "link" in report.problem


def test_database_refuses_update_and_delete_on_postgresql(pm, book):
    if connection.vendor != "postgresql":
        from tests.conftest import REQUIRE_SERVICES

        if REQUIRE_SERVICES:
            pytest.fail("OMS_REQUIRE_SERVICES=1 but the suite is not running on PostgreSQL")
        pytest.skip("the trigger exists on PostgreSQL only")
    from django.db import DatabaseError

    _events(pm, book, 1)
    pk = AuditEvent.objects.get().pk
    for sql in (
        "UPDATE compliance_auditevent SET reason = 'x' WHERE id = %s",
        "DELETE FROM compliance_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _tamper(sql, [pk])
    assert AuditEvent.objects.get().reason == ""
