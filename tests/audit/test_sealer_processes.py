"""The sealer as the Procfile runs it (`manage.py seal_audit --loop`), in processes of
its own against the test database: two at once with eight writers, one killed in the
middle of its rounds and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent, AuditSeal
from audit.services import audit_record, audit_seal, audited_transaction, verify_audit_chain
from tests.audit.trail import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql")]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{db.get('USER') or 'postgres'}{password}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def _sealer(log: Path) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "OMS_AUDIT_SEAL_KEY": settings.OMS_AUDIT_SEAL_KEY,
        "OMS_AUDIT_SEAL_EVERY": "0.5",
        "OMS_AUDIT_CHECKPOINT_EVERY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "seal_audit", "--loop"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _until(condition, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_two_sealers_and_eight_writers_chain_every_event_within_seconds(pm, tmp_path):
    log = tmp_path / "sealers.log"
    sealers = [_sealer(log), _sealer(log)]
    committed: dict[int, object] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(40):
                with audited_transaction():
                    ids = [
                        audit_record(actor=pm, kind="test.w", obj=pm, after={"n": n}).pk
                        for _ in range(3)
                    ]
                now = timezone.now()
                with lock:
                    committed.update(dict.fromkeys(ids, now))
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    try:
        # Started (Django's start-up takes seconds on a loaded machine) before anyone writes.
        assert _until(lambda: log.read_text().count("Audit sealer: a round") == 2), log.read_text()
        threads = [threading.Thread(target=writer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not errors
        assert _until(lambda: AuditSeal.objects.count() == len(committed)), log.read_text()
    finally:
        for process in sealers:
            _stop(process)
    assert all(process.returncode == 0 for process in sealers), log.read_text()
    seals = dict(AuditSeal.objects.values_list("event_id", "sealed_at"))
    assert set(seals) == set(committed) == set(AuditEvent.objects.values_list("pk", flat=True))
    lags = sorted((seals[pk] - at).total_seconds() for pk, at in committed.items())
    print(f"sealed within: p50 {lags[len(lags) // 2]:.2f}s, max {lags[-1]:.2f}s")
    assert lags[-1] < 5, f"an event waited {lags[-1]:.1f}s for its seal"
    positions = list(AuditSeal.objects.order_by("position").values_list("position", flat=True))
    assert positions == list(range(1, len(committed) + 1))
    report = verify_audit_chain()
    assert report.ok and report.checkpoints_checked >= 1, report.breaks


def test_a_sealer_killed_in_the_middle_of_its_round_is_carried_on_by_the_next(pm, tmp_path):
    with audited_transaction():
        for i in range(300):
            audit_record(actor=pm, kind="test.backlog", obj=pm, after={"i": i})
    log = tmp_path / "sealer.log"
    locked, release = threading.Event(), threading.Event()

    def hold_the_seals() -> None:
        # The round reads and hashes, then waits here to write its seals: mid-round.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE audit_auditseal IN EXCLUSIVE MODE")
                locked.set()
                release.wait(WAIT)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_seals)
    holder.start()
    assert locked.wait(WAIT)
    first = _sealer(log)
    try:
        assert _until(_a_sealer_waits_to_write), log.read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(WAIT)
    finally:
        release.set()
        holder.join(WAIT)
        _stop(first)
    second = _sealer(log)
    try:
        with audited_transaction():
            audit_record(actor=pm, kind="test.after", obj=pm)
        assert _until(lambda: AuditSeal.objects.count() == 301), log.read_text()
    finally:
        _stop(second)
    assert second.returncode == 0, log.read_text()
    report = verify_audit_chain()
    assert report.ok and report.checked == 301 and report.awaiting == 0, report.breaks
    assert list(AuditSeal.objects.values_list("position", flat=True)) == list(range(1, 302))


def _a_sealer_waits_to_write() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO audit_auditseal%%'"
        )
        return cursor.fetchone()[0] > 0


def test_verifying_while_writers_and_the_sealer_run_finds_nothing_wrong(pm, settings, tmp_path):
    from audit.sealer import run_sealer

    settings.OMS_AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    stop = threading.Event()
    errors: list[BaseException] = []

    writers_stop = threading.Event()

    def writer() -> None:
        while not writers_stop.is_set():
            with audited_transaction():
                for _ in range(3):
                    audit_record(actor=pm, kind="test.w", obj=pm)
                time.sleep(0.005)

    writers = [in_thread(writer, errors) for _ in range(4)]
    sealer = in_thread(lambda: run_sealer(stop=stop, every=0.05, checkpoint_every=0), errors)
    reports = []
    try:
        for _ in range(15):
            reports.append(verify_audit_chain())
            time.sleep(0.1)
    finally:
        writers_stop.set()
        for thread in writers:
            thread.join(WAIT)
        stop.set()
        sealer.join(WAIT)
    # A writer's last commit can land after the sealer's last round: seal what is left.
    while audit_seal():
        pass
    assert not errors
    assert all(report.ok for report in reports), [r.breaks for r in reports if not r.ok]
    assert reports[-1].checked > 0 and reports[-1].checkpoints_checked > 0
    report = verify_audit_chain()
    assert report.ok and report.awaiting == 0 and report.checked == AuditEvent.objects.count()


def test_a_tail_cut_under_a_running_sealer_is_signed_by_it_before_the_next_checkpoint(pm):
    # Checkpoints every hour: only the sealer's memory of what it sealed can tell.
    from audit.sealer import run_sealer

    stop = threading.Event()
    errors: list[BaseException] = []

    thread = in_thread(lambda: run_sealer(stop=stop, every=0.05, checkpoint_every=3600), errors)
    try:
        for _ in range(5):
            with audited_transaction():
                audit_record(actor=pm, kind="test.event", obj=pm)
        assert _until(lambda: AuditSeal.objects.count() == 5)
        time.sleep(0.3)  # a round or two after the last seal
        newest = list(AuditSeal.objects.filter(position__gt=3).values_list("event_id", flat=True))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("DELETE FROM audit_auditseal WHERE position > 3")
            cursor.execute("DELETE FROM audit_auditcheckpoint")
            cursor.execute("DELETE FROM compliance_auditevent WHERE id = ANY(%s)", [newest])
        assert _until(lambda: AuditCheckpoint.objects.filter(position=5).exists(), 10)
        time.sleep(0.3)  # rounds after it sign nothing more
    finally:
        stop.set()
        thread.join(WAIT)
    assert not errors
    assert AuditCheckpoint.objects.count() == 1  # signed once, not at every round after
    report = verify_audit_chain()
    assert any("positions 4–5 were cut off" in found.problem for found in report.breaks), (
        report.breaks
    )
