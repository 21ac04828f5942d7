"""The audit trail: appended unchained, sealed into a hash chain after commit, checked
against signed checkpoints, and every broken link named."""

from __future__ import annotations

import contextlib
import json
import stat
from decimal import Decimal

import hypothesis
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from hypothesis import strategies as st

from audit.chain import StoredEvent, seal_hash, seal_key
from audit.models import GENESIS_HASH, AppendOnlyError, AuditCheckpoint, AuditEvent, AuditSeal
from audit.services import audit_checkpoint, audit_record, audit_seal, audited_transaction
from audit.verification import kept_checkpoints, verify_audit_chain
from oms.context import origin
from tests.audit.trail import record, rehash_from, seal_all, sealed_ids
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def past_the_trigger():
    """A cursor that changes the trail behind the application's back: on PostgreSQL as a
    superuser who switches the triggers off for the rest of the test's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        yield cursor
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


def db_time(moment):
    """A timestamp as a raw query hands it to this database."""
    return connection.ops.adapt_datetimefield_value(moment)


def findings(report) -> list[str]:
    return [found.problem for found in report.breaks]


# --- Appending and sealing ------------------------------------------------------------


def test_events_are_appended_unchained_then_sealed_in_order(pm, book):
    with origin("api", "10.1.2.3"):
        for _ in range(2):
            order_services.order_create(
                actor=pm,
                portfolio=book["accounts"][0],
                security=book["securities"]["AAA"],
                side="buy",
                quantity=Decimal(1),
            )
    first, second = AuditEvent.objects.order_by("pk")
    assert (second.actor, second.actor_name, second.origin) == (pm, "pm", "api:10.1.2.3")
    assert second.after["quantity"] == "1.000000"
    assert not AuditSeal.objects.exists()  # the writer chains nothing
    assert verify_audit_chain().awaiting == 2

    assert audit_seal() == 2
    one, two = AuditSeal.objects.order_by("position")
    assert (one.position, one.event_id, one.previous_hash) == (1, first.pk, GENESIS_HASH)
    assert (two.position, two.event_id, two.previous_hash) == (2, second.pk, one.hash)
    stored = AuditEvent.objects.filter(pk=second.pk).values_list(StoredEvent(), flat=True).get()
    assert two.hash == seal_hash(2, one.hash, stored)
    assert audit_seal() == 0  # nothing left: sealing twice seals nothing twice
    report = verify_audit_chain()
    assert report.ok and report.checked == 2 and report.awaiting == 0
    assert (report.head_position, report.head_event_id) == (2, second.pk)


def test_the_stored_form_is_the_database_s_own_text_of_the_event(pm):
    [event] = record(pm, note="a\nb", amount=Decimal("1.50"))
    stored = json.loads(
        AuditEvent.objects.filter(pk=event.pk).values_list(StoredEvent(), flat=True).get()
    )
    assert stored[0] == event.pk
    assert stored[1] == event.occurred_at.strftime("%Y-%m-%d") + stored[1][10:]
    assert stored[2:8] == [pm.pk, "pm", "test.event", "auth.user", str(pm.pk), "pm"]
    assert stored[8:] == [{}, {"i": 0, "note": "a\nb", "amount": "1.50"}, "", "system"]


def test_a_batch_bigger_than_a_round_is_sealed_over_several_rounds(pm):
    record(pm, 7)
    assert [audit_seal(batch_size=3) for _ in range(4)] == [3, 3, 1, 0]
    assert list(AuditSeal.objects.values_list("position", flat=True)) == list(range(1, 8))
    assert sealed_ids() == sorted(sealed_ids())
    assert verify_audit_chain().ok


def test_model_layer_refuses_changes(pm):
    record(pm)
    seal_all()
    audit_checkpoint()
    for model in (AuditEvent, AuditSeal, AuditCheckpoint):
        row = model.objects.get()
        with pytest.raises(AppendOnlyError):
            row.save()
        with pytest.raises(AppendOnlyError):
            row.delete()
        with pytest.raises(AppendOnlyError):
            model.objects.all().update(pk=1)
        with pytest.raises(AppendOnlyError):
            model.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_audit_outside_a_transaction_is_refused(pm):
    # In autocommit the event could commit without the change it records.
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=pm, kind="x", obj=pm)
    assert not AuditEvent.objects.exists()


# --- What the database stores is what is hashed -----------------------------------------


def test_values_the_database_stores_differently_verify(postgresql, pm):
    # PostgreSQL keeps JSON numbers as numeric: -0.0 comes back 0.0, 1e30 as an integer
    # of 31 digits, 1e-30 as 0.000...1. Hashing the Python values broke the chain.
    record(pm, min_trade_value=-0.0, big=1e30, tiny=1e-30, sum=0.1 + 0.2, deep={"x": [-0.0]})
    after = AuditEvent.objects.get().after
    assert str(after["min_trade_value"]) == "0.0"  # the sign is gone
    assert after["big"] == 10**30 and isinstance(after["big"], int)
    assert after["sum"] == 0.30000000000000004
    seal_all()
    audit_checkpoint()
    report = verify_audit_chain()
    assert report.ok, findings(report)
    assert report.checked == 1 and report.checkpoints_checked == 1


def test_a_pm_s_minus_zero_through_the_api_verifies(pm, book, settings):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    settings.OMS_REBALANCE_INLINE_LIMIT = 50
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=pm).key}")
    answer = client.post(
        f"/api/v1/portfolios/{book['accounts'][0].pk}/rebalance/",
        '{"min_trade_value": -0.0}',
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.content
    assert seal_all() > 0
    report = verify_audit_chain()
    assert report.ok, findings(report)


# --- Every broken link named --------------------------------------------------------------


def test_verification_names_every_changed_event_not_only_the_first(pm):
    record(pm, 6)
    seal_all()
    ids = sealed_ids()
    with past_the_trigger() as cursor:
        for pk in (ids[1], ids[4]):
            cursor.execute("UPDATE compliance_auditevent SET reason = 'edited' WHERE id = %s", [pk])
    report = verify_audit_chain()
    assert not report.ok
    assert [(b.position, b.event_id) for b in report.breaks] == [(2, ids[1]), (5, ids[4])]
    assert all("does not match its seal" in p for p in findings(report))
    assert report.first_broken_id == ids[1]


def test_verification_names_a_deleted_event_and_a_changed_seal(pm):
    record(pm, 6)
    seal_all()
    ids = sealed_ids()
    with past_the_trigger() as cursor:
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [ids[1]])
        cursor.execute("UPDATE audit_auditseal SET hash = %s WHERE position = 4", ["f" * 64])
    problems = findings(verify_audit_chain())
    assert problems == [
        f"Positions 2–2 are missing from the chain: event #{ids[1]} was deleted",
        f"Event #{ids[3]} (position 4) does not match its seal: the event or its seal was changed",
        f"Event #{ids[4]} (position 5) does not link to the seal before it: a seal was "
        "changed, inserted or removed",
    ]


def test_verification_names_the_newest_events_deleted_without_their_seals(pm):
    record(pm, 4)
    seal_all()
    with past_the_trigger() as cursor:
        for pk in sealed_ids()[2:]:
            cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [pk])
    report = verify_audit_chain()
    assert report.checked == 2
    ids = sealed_ids()
    assert findings(report) == [
        f"Positions 3–4 are missing from the chain: events #{ids[2]}, #{ids[3]} were deleted"
    ]


def test_verification_names_an_event_inserted_into_the_chain(pm):
    record(pm, 4)
    seal_all()
    ids = sealed_ids()
    [forged] = record(pm, forged=True)
    stored = AuditEvent.objects.filter(pk=forged.pk).values_list(StoredEvent(), flat=True).get()
    before = AuditSeal.objects.get(position=2).hash
    with past_the_trigger() as cursor:
        # Make room at position 3 and put a forged event there, linked as it should be.
        for position in (4, 3):
            cursor.execute(
                "UPDATE audit_auditseal SET position = position + 1 WHERE position = %s",
                [position],
            )
        cursor.execute(
            "INSERT INTO audit_auditseal (position, event_id, previous_hash, hash, sealed_at,"
            " horizon) VALUES (3, %s, %s, %s, %s, 0)",
            [forged.pk, before, seal_hash(3, before, stored), db_time(forged.occurred_at)],
        )
    problems = findings(verify_audit_chain())
    # The seals after it moved: their positions are hashed, and the next link is wrong.
    assert problems == [
        f"Event #{ids[2]} (position 4) does not link to the seal before it: a seal was "
        "changed, inserted or removed",
        f"Event #{ids[2]} (position 4) does not match its seal: the event or its seal was changed",
        f"Event #{ids[3]} (position 5) does not match its seal: the event or its seal was changed",
    ]


def test_verification_names_an_event_slipped_in_behind_the_sealer(pm):
    record(pm, 3)
    seal_all()
    record(pm, 2)  # these await the sealer: not a fault
    first = AuditEvent.objects.order_by("pk").first()
    with past_the_trigger() as cursor:
        # An event placed where the sealer has already been (below its horizon): an old
        # id on SQLite, an ended transaction on PostgreSQL.
        cursor.execute(
            "INSERT INTO compliance_auditevent (id, occurred_at, actor_name, kind, object_type,"
            " object_id, object_repr, before, after, reason, origin, xact) VALUES (%s, %s,"
            " 'pm', 'forged', 'auth.user', %s, 'pm', '{}', '{}', '', '', 1)",
            [first.pk - 1, db_time(first.occurred_at), str(pm.pk)],
        )
    report = verify_audit_chain()
    assert report.awaiting == 2
    assert findings(report) == [
        f"Event #{first.pk - 1} is not in the chain, though the sealer had passed its place: "
        "it was inserted behind the application's back"
    ]


# --- Checkpoints: a cut tail, a chain rehashed ------------------------------------------------


def test_cutting_the_newest_events_off_is_named_by_the_checkpoint(pm):
    record(pm, 5)
    seal_all()
    checkpoint = audit_checkpoint()
    assert checkpoint.position == 5
    assert audit_checkpoint() is None  # the head has not moved
    ids = sealed_ids()
    with past_the_trigger() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE position > 3")
        for pk in ids[3:]:
            cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [pk])
    report = verify_audit_chain()
    assert report.checked == 3
    assert findings(report) == [
        f"The trail ends at position 3, but checkpoint #{checkpoint.pk} signed position 5 on "
        f"{checkpoint.signed_at.isoformat(timespec='microseconds')}: the events sealed at "
        "positions 4–5 were cut off"
    ]


def test_a_tail_cut_with_its_checkpoints_is_named_by_the_checkpoints_an_auditor_kept(
    pm, tmp_path, capsys
):
    record(pm, 4)
    seal_all()
    audit_checkpoint()
    kept = tmp_path / "kept.jsonl"
    call_command("verify_audit", "--keep", str(kept))
    assert "Kept in" in capsys.readouterr().out
    [line] = kept_checkpoints(kept)
    assert line.position == 4
    last = sealed_ids()[-1]
    with past_the_trigger() as cursor:
        cursor.execute("DELETE FROM audit_auditcheckpoint")
        cursor.execute("DELETE FROM audit_auditseal WHERE position = 4")
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [last])
    assert verify_audit_chain().ok  # the database alone cannot tell
    report = verify_audit_chain(kept=kept_checkpoints(kept))
    assert findings(report) == [
        f"The trail ends at position 3, but the checkpoint kept in {kept}, line 1, signed "
        f"position 4 on {line.signed_at}: the events sealed at positions 4–4 were cut off"
    ]
    with pytest.raises(SystemExit):
        call_command("verify_audit", "--checkpoints", str(kept))
    assert "were cut off" in capsys.readouterr().out


def test_recomputing_every_hash_from_a_point_on_is_named_by_the_checkpoints(pm):
    record(pm, 3)
    seal_all()
    early = audit_checkpoint()
    record(pm, 3)
    seal_all()
    late = audit_checkpoint()
    ids = sealed_ids()
    with past_the_trigger() as cursor:
        cursor.execute(
            "UPDATE compliance_auditevent SET reason = 'rewritten' WHERE id = %s", [ids[4]]
        )
        rehash_from(cursor, 5)
    report = verify_audit_chain()
    assert findings(report) == [
        f"The chain at position 6 is not what checkpoint #{late.pk} signed on "
        f"{late.signed_at.isoformat(timespec='microseconds')}: it was rewritten after "
        "position 3 (hashes recomputed from there on)"
    ]
    assert early.position == 3


def test_a_forged_checkpoint_is_named_and_not_trusted(pm):
    record(pm, 2)
    seal_all()
    real = audit_checkpoint()
    with past_the_trigger() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditcheckpoint (position, head_hash, signed_at, key_id,"
            " signature) VALUES (9, %s, %s, %s, %s)",
            ["a" * 64, db_time(real.signed_at), real.key_id, "b" * 64],
        )
    report = verify_audit_chain()
    [problem] = findings(report)
    assert problem.endswith(
        "(position 9) does not carry a valid signature: it was forged or changed"
    )
    assert report.latest_checkpoint.position == 2


def test_checkpoints_signed_with_another_key_are_not_checked(pm, settings):
    record(pm)
    seal_all()
    audit_checkpoint()
    settings.OMS_AUDIT_SEAL_KEY = "another key"
    report = verify_audit_chain()
    assert report.ok and report.checkpoints_checked == 0
    assert report.notes[0].startswith("1 checkpoint(s) signed with a key this process does not")


def test_checkpoints_go_to_the_auditor_s_file_once_committed(
    pm, settings, tmp_path, django_capture_on_commit_callbacks
):
    path = tmp_path / "checkpoints.jsonl"
    settings.OMS_AUDIT_CHECKPOINT_FILE = str(path)
    record(pm, 2)
    seal_all()
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = audit_checkpoint()
        assert not path.exists()  # not before the checkpoint commits
    [kept] = kept_checkpoints(path)
    assert (kept.position, kept.head_hash, kept.signature) == (
        2,
        checkpoint.head_hash,
        checkpoint.signature,
    )
    assert verify_audit_chain(kept=[kept]).checkpoints_checked == 2


def test_the_sealer_makes_its_key_file_readable_by_its_owner_only(settings, tmp_path):
    settings.OMS_AUDIT_SEAL_KEY = ""
    settings.OMS_AUDIT_SEAL_KEY_FILE = str(tmp_path / "keys" / "seal.key")
    assert seal_key() is None  # verification never makes one
    key = seal_key(create=True)
    assert len(key) == 64 and seal_key() == key
    assert stat.S_IMODE((tmp_path / "keys" / "seal.key").stat().st_mode) == 0o600


def test_verify_audit_prints_ok_and_the_chain_s_state(pm, capsys):
    record(pm, 4)
    seal_all()
    record(pm)
    audit_checkpoint()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert out.startswith("OK: 4 events in the chain, intact up to position 4")
    assert "1 awaiting their seal; 1 checkpoint(s) match" in out


def test_verify_audit_exits_1_naming_every_finding(pm, capsys):
    record(pm, 3)
    seal_all()
    ids = sealed_ids()
    with past_the_trigger() as cursor:
        cursor.execute("UPDATE compliance_auditevent SET reason = 'x'")
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit")
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert out.startswith("BROKEN: 3 finding(s) in 3 events")
    assert all(f"Event #{pk} (position" in out for pk in ids)


def test_seal_audit_command_seals_and_signs(pm, capsys):
    record(pm, 3)
    call_command("seal_audit")
    assert capsys.readouterr().out == "Sealed 3 events, checkpoint at position 3\n"
    assert AuditCheckpoint.objects.get().position == 3


# --- The database refuses changes ----------------------------------------------------------


def test_database_refuses_update_delete_and_truncate_on_postgresql(postgresql, pm):
    record(pm)
    seal_all()
    audit_checkpoint()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no pending check
    for table, column in (
        ("compliance_auditevent", "reason"),
        ("audit_auditseal", "hash"),
        ("audit_auditcheckpoint", "head_hash"),
    ):
        for sql in (
            f"UPDATE {table} SET {column} = 'x'",
            f"DELETE FROM {table}",
            f"TRUNCATE {table} CASCADE",
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():  # noqa: SIM117
                with connection.cursor() as cursor:
                    cursor.execute(sql)
    assert AuditEvent.objects.get().reason == ""
    assert verify_audit_chain().ok


def test_an_application_role_can_neither_empty_the_trail_nor_turn_its_triggers_off(postgresql, pm):
    record(pm)
    seal_all()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no pending check
        # A role that may write every table, as an application's role does; created and
        # dropped with the test's transaction.
        cursor.execute("CREATE ROLE oms_audit_probe NOLOGIN")
        cursor.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON compliance_auditevent, "
            "audit_auditseal, audit_auditcheckpoint TO oms_audit_probe"
        )
        cursor.execute("SET LOCAL ROLE oms_audit_probe")
        for sql, refusal in (
            ("TRUNCATE compliance_auditevent, audit_auditseal", "append-only"),
            ("SET session_replication_role = replica", "permission denied"),
        ):
            with pytest.raises(DatabaseError, match=refusal), transaction.atomic():
                cursor.execute(sql)
        cursor.execute("RESET ROLE")
    assert AuditSeal.objects.count() == 1


def test_a_walk_that_stops_early_releases_its_reader(postgresql, pm, monkeypatch):
    # On PostgreSQL a thread reads the chain ahead of the walk: a walk that fails half
    # way must not leave it blocked (nor the connection's cursor open).
    import audit.verification as verification

    record(pm, 30)
    seal_all()
    monkeypatch.setattr(verification, "_PAGE", 2)
    calls = []

    def failing_hash(*args):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("a bug in the walk")
        return seal_hash(*args)

    monkeypatch.setattr(verification, "seal_hash", failing_hash)
    with pytest.raises(RuntimeError, match="a bug in the walk"):
        verify_audit_chain()
    monkeypatch.setattr(verification, "seal_hash", seal_hash)
    assert verify_audit_chain().ok  # the connection is usable again


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@hypothesis.settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(after=_JSON, reason=_TEXT)
def test_whatever_json_a_writer_hands_over_the_chain_verifies(pm, after, reason):
    # Whatever the database makes of the values (numbers as numeric, keys reordered and
    # deduplicated by jsonb), the hash is of what it stores, so the chain verifies.
    with audited_transaction():
        audit_record(actor=pm, kind="test.any", obj=pm, after={"value": after}, reason=reason)
    seal_all()
    report = verify_audit_chain()
    assert report.ok, findings(report)
