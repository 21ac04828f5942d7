"""The trail tampered with as a superuser would (triggers off), on PostgreSQL: every
change, deletion, insertion, cut, rehash, TRUNCATE and reordering is named by
`manage.py verify_audit` with the checkpoints an auditor keeps, and by the page."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import AuditEvent
from audit.services import (
    audit_checkpoint,
    audit_record,
    audited_transaction,
    verify_audit_chain,
)
from tests.audit.trail import record, rehash_from, seal_all, sealed_ids

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgresql")]

TABLES = ("compliance_auditevent", "audit_auditseal", "audit_auditcheckpoint")


@contextlib.contextmanager
def triggers_off(how: str = "alter"):
    """As a superuser: ALTER TABLE ... DISABLE TRIGGER ALL, or session_replication_role."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if how == "alter":
            for table in TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        else:
            cursor.execute("SET LOCAL session_replication_role = replica")
        yield cursor
        if how == "alter":
            for table in TABLES:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
        else:
            cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def kept(tmp_path, capsys):
    """The auditor's file, kept after a verification that passed."""
    path = tmp_path / "kept.jsonl"

    def keep():
        call_command("verify_audit", "--checkpoints", str(path), "--keep", str(path))
        capsys.readouterr()

    keep.path = path
    path.touch()
    return keep


def verify_command(path, capsys) -> tuple[int, str]:
    try:
        call_command("verify_audit", "--checkpoints", str(path))
    except SystemExit as exit_:
        return exit_.code, capsys.readouterr().out
    return 0, capsys.readouterr().out


def verify_page(client, user) -> str:
    client.force_login(user)
    answer = client.post("/compliance/audit/verify/")
    assert answer.status_code == 200
    return answer.content.decode()


@pytest.fixture
def trail(pm, kept):
    """Ten events sealed and checkpointed, the checkpoint kept by the auditor."""
    record(pm, 10)
    seal_all()
    audit_checkpoint()
    kept()
    return sealed_ids()


# --- Values the database writes back otherwise ---------------------------------------------


def test_awkward_json_seals_and_verifies(pm, kept, capsys, client, compliance_officer):
    after = {
        "neg_zero": -0.0,
        "big": 1e30,
        "tiny": 1e-7,
        "huge_int": 2**70,
        "neg_int": -(2**63),
        "unicode": "Zürich ✓ 日本 😀 \u2028 \\ \" '",
        "nested": {"d": Decimal("1.10"), "list": [Decimal("-0.00"), Decimal("1E+30"), -0.0]},
        "ключ": [1e-7, 1e300, 0.1 + 0.2],
    }
    with audited_transaction():
        audit_record(
            actor=pm, kind="test.awkward", obj=pm, before={"x": -0.0}, after=after, reason="é ✓"
        )
    seal_all()
    audit_checkpoint()
    kept()
    # The session's settings do not change the text that is hashed.
    with connection.cursor() as cursor:
        cursor.execute("SET extra_float_digits = -10")
    code, out = verify_command(kept.path, capsys)
    assert code == 0, out
    assert "Chain intact" in verify_page(client, compliance_officer)


# --- Tampering ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["alter", "replica"])
def test_a_changed_field_of_several_events_names_each(
    trail, how, kept, capsys, client, compliance_officer
):
    with triggers_off(how) as cursor:
        cursor.execute("UPDATE compliance_auditevent SET reason = 'x' WHERE id = %s", [trail[1]])
        cursor.execute(
            "UPDATE compliance_auditevent SET occurred_at = occurred_at + interval '1 microsecond'"
            " WHERE id = %s",
            [trail[4]],
        )
        cursor.execute(
            "UPDATE compliance_auditevent SET after = '{\"i\": 7.0}' WHERE id = %s", [trail[7]]
        )
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    for position, pk in ((2, trail[1]), (5, trail[4]), (8, trail[7])):
        assert f"Event #{pk} (position {position}) does not match its seal" in out
    page = verify_page(client, compliance_officer)
    assert all(f"Event #{pk} (position" in page for pk in (trail[1], trail[4], trail[7]))


def test_a_deleted_middle_event_is_named(trail, kept, capsys, client, compliance_officer):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [trail[3]])
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [trail[6]])
        cursor.execute("DELETE FROM audit_auditseal WHERE position = 7")
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert "Positions 4–4 are missing" in out and "Positions 7–7 are missing" in out
    assert f"#{trail[3]}" in out  # its seal still names it
    page = verify_page(client, compliance_officer)
    assert "Positions 4–4 are missing" in page and "Positions 7–7 are missing" in page


def test_a_deleted_seal_is_named(trail, kept, capsys):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE position = 5")
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert "Positions 5–5 are missing" in out


def test_a_forged_event_is_named(trail, pm, kept, capsys, client, compliance_officer):
    first = AuditEvent.objects.get(pk=trail[0])
    with triggers_off() as cursor:
        # Triggers off: no transaction stamped on it.
        cursor.execute(
            "INSERT INTO compliance_auditevent (occurred_at, actor_name, kind, object_type,"
            " object_id, object_repr, before, after, reason, origin) VALUES (%s, 'pm',"
            " 'forged', 'auth.user', %s, 'pm', '{}', '{}', '', '') RETURNING id",
            [connection.ops.adapt_datetimefield_value(first.occurred_at), str(pm.pk)],
        )
        forged = cursor.fetchone()[0]
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert f"Event #{forged} is not in the chain" in out
    assert f"Event #{forged} is not in the chain" in verify_page(client, compliance_officer)


def test_an_event_swapped_into_a_seal_is_named(trail, kept, capsys):
    with triggers_off() as cursor:
        # Reorder: two seals exchange their events.
        cursor.execute("UPDATE audit_auditseal SET event_id = -1 WHERE position = 3")
        cursor.execute("UPDATE audit_auditseal SET event_id = %s WHERE position = 6", [trail[2]])
        cursor.execute("UPDATE audit_auditseal SET event_id = %s WHERE position = 3", [trail[5]])
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert f"Event #{trail[5]} (position 3) does not match" in out
    assert f"Event #{trail[2]} (position 6) does not match" in out


def test_seals_reordered_are_named(trail, kept, capsys):
    with triggers_off() as cursor:
        for old, new in ((3, -3), (6, 3), (-3, 6)):
            cursor.execute(
                "UPDATE audit_auditseal SET position = %s WHERE position = %s", [new, old]
            )
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert "(position 3) does not link" in out and "(position 6) does not link" in out
    assert "(position 4) does not link" in out and "(position 7) does not link" in out


def test_events_ids_exchanged_are_named(trail, kept, capsys):
    with triggers_off() as cursor:
        cursor.execute(
            "UPDATE compliance_auditevent SET id = -id WHERE id IN (%s, %s)", [trail[2], trail[5]]
        )
        cursor.execute(
            "UPDATE compliance_auditevent SET id = CASE id WHEN %s THEN %s ELSE %s END"
            " WHERE id IN (%s, %s)",
            [-trail[2], trail[5], trail[2], -trail[2], -trail[5]],
        )
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert "(position 3) does not match" in out and "(position 6) does not match" in out


@pytest.mark.parametrize("with_checkpoints", [False, True])
def test_cutting_the_tail_is_named(
    trail, with_checkpoints, kept, capsys, client, compliance_officer
):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE position > 7")
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = ANY(%s)", [trail[7:]])
        if with_checkpoints:
            cursor.execute("DELETE FROM audit_auditcheckpoint")
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert "positions 8–10 were cut off" in out
    if not with_checkpoints:
        assert "positions 8–10 were cut off" in verify_page(client, compliance_officer)


def test_cutting_the_tail_and_sealing_on_is_named(trail, pm, kept, capsys):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE position > 7")
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = ANY(%s)", [trail[7:]])
        cursor.execute("DELETE FROM audit_auditcheckpoint")
    record(pm, 5)
    seal_all()
    audit_checkpoint()
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert "The chain at position 10 is not what the checkpoint kept" in out


def test_a_rehash_from_a_point_on_is_named(trail, pm, kept, capsys, client, compliance_officer):
    with triggers_off() as cursor:
        cursor.execute("UPDATE compliance_auditevent SET reason = 'r' WHERE id = %s", [trail[4]])
        rehash_from(cursor, 5)
    assert "is not what" in verify_page(client, compliance_officer)
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditcheckpoint")
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert "The chain at position 10 is not what the checkpoint kept" in out


@pytest.mark.parametrize("tables", [TABLES, TABLES[:1], TABLES[1:2], TABLES[:2]])
def test_truncate_is_named(trail, tables, kept, capsys):
    with triggers_off("replica") as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)}")
    code, out = verify_command(kept.path, capsys)
    assert code == 1, out
    assert "1–10" in out, out


def test_unsealed_events_are_not_broken(trail, pm, kept, capsys, client, compliance_officer):
    record(pm, 3)
    code, out = verify_command(kept.path, capsys)
    assert code == 0, out
    assert "3 awaiting their seal" in out
    assert "Chain intact" in verify_page(client, compliance_officer)


def test_every_finding_named_at_once(trail, pm, kept, capsys):
    with triggers_off() as cursor:
        cursor.execute("UPDATE compliance_auditevent SET reason = 'x' WHERE id = %s", [trail[1]])
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [trail[4]])
        cursor.execute("DELETE FROM audit_auditseal WHERE position > 8")
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = ANY(%s)", [trail[8:]])
    code, out = verify_command(kept.path, capsys)
    assert code == 1
    assert f"Event #{trail[1]} (position 2) does not match" in out
    assert "Positions 5–5 are missing" in out
    assert "positions 9–10 were cut off" in out
    assert json.loads(kept.path.read_text().splitlines()[0])["position"] == 10


def test_the_page_reads_the_sealer_s_checkpoint_file(
    pm, settings, tmp_path, client, compliance_officer, django_capture_on_commit_callbacks
):
    # Everything in the database emptied, checkpoints too: only the file the sealer
    # appends to outside the database (OMS_AUDIT_CHECKPOINT_FILE) can tell.
    settings.OMS_AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    record(pm, 4)
    seal_all()
    with django_capture_on_commit_callbacks(execute=True):
        audit_checkpoint()
    assert "Chain intact" in verify_page(client, compliance_officer)
    with triggers_off("replica") as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)}")
    page = verify_page(client, compliance_officer)
    assert "positions 1–4 were cut off" in page
    assert not verify_audit_chain().ok


def test_a_checkpoint_file_that_cannot_be_read_is_named(
    pm, settings, tmp_path, client, compliance_officer
):
    path = tmp_path / "checkpoints.jsonl"
    path.write_text("not json\n")
    settings.OMS_AUDIT_CHECKPOINT_FILE = str(path)
    record(pm)
    seal_all()
    page = verify_page(client, compliance_officer)
    assert "cannot be read" in page
