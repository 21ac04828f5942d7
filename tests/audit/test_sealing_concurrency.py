"""The sealer against concurrent writers, on a committing database.

Commit order is not id order: a transaction that took a lower id can commit after
one that took a higher id. The sealer must neither skip it (chaining past it for
good) nor wait on it; these tests make that happen on purpose, then at random.
"""

from __future__ import annotations

import random
import threading

import pytest
from django.db import transaction

from audit.models import AuditCheckpoint, AuditEvent, AuditSeal
from audit.sealer import run_sealer
from audit.services import audit_record, audit_seal, audited_transaction, verify_audit_chain
from tests.audit.trail import in_thread, sealed_ids

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 30  # seconds a thread waits for its cue before the test gives up on it


def test_an_event_that_commits_after_later_ones_is_sealed_not_skipped(postgresql, pm):
    appended, commit = threading.Event(), threading.Event()
    early: list[AuditEvent] = []

    def slow_writer() -> None:
        with audited_transaction():
            early.append(audit_record(actor=pm, kind="test.early", obj=pm))
            appended.set()
            commit.wait(WAIT)

    errors: list = []
    thread = in_thread(slow_writer, errors)
    assert appended.wait(WAIT)
    with audited_transaction():
        late = audit_record(actor=pm, kind="test.late", obj=pm)
    [first] = early
    assert first.pk < late.pk  # the lower id is still uncommitted

    assert audit_seal() == 1
    assert sealed_ids() == [late.pk]
    # The mark the next round starts from stays at or below the open transaction.
    seal = AuditSeal.objects.get()
    assert seal.horizon <= AuditEvent.objects.get(pk=late.pk).xact
    assert verify_audit_chain().ok

    commit.set()
    thread.join(WAIT)
    assert not errors
    assert audit_seal() == 1
    assert sealed_ids() == [late.pk, first.pk]
    report = verify_audit_chain()
    assert report.ok and report.checked == 2 and report.awaiting == 0


def test_concurrent_writers_and_two_sealers_seal_every_committed_event_once(postgresql, pm):
    writers, transactions = 8, 25
    done = threading.Event()
    errors: list = []
    committed: list[int] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for n in range(transactions):
            ids = []
            try:
                with audited_transaction():
                    for i in range(rng.randint(1, 3)):
                        ids.append(
                            audit_record(actor=pm, kind="test.w", obj=pm, after={"n": n, "i": i}).pk
                        )
                        if rng.random() < 0.3:
                            # Hold the transaction open while others commit around it.
                            threading.Event().wait(rng.uniform(0, 0.02))
                    if rng.random() < 0.2:
                        raise _RolledBack
            except _RolledBack:
                continue
            with lock:
                committed.extend(ids)

    def sealer() -> None:
        while not done.is_set():
            audit_seal(batch_size=7)  # small rounds: full batches, often

    sealers = [in_thread(sealer, errors) for _ in range(2)]
    threads = [in_thread(lambda s=s: writer(s), errors) for s in range(writers)]
    for thread in threads:
        thread.join(WAIT * 4)
    done.set()
    for thread in sealers:
        thread.join(WAIT)
    assert not errors
    while audit_seal():
        pass

    chain = sealed_ids()
    assert sorted(chain) == sorted(committed)  # every committed event, once
    assert set(AuditEvent.objects.values_list("pk", flat=True)) == set(committed)
    positions = list(AuditSeal.objects.order_by("position").values_list("position", flat=True))
    assert positions == list(range(1, len(committed) + 1))
    report = verify_audit_chain()
    assert report.ok and report.checked == len(committed) and report.awaiting == 0


class _RolledBack(Exception):
    pass


def test_the_sealer_process_chains_and_signs_what_commits(pm):
    stop = threading.Event()
    errors: list = []
    sealed: list[int] = []
    thread = in_thread(
        lambda: sealed.append(run_sealer(stop=stop, every=0.05, checkpoint_every=0)), errors
    )
    try:
        for _ in range(3):
            with audited_transaction():
                audit_record(actor=pm, kind="test.event", obj=pm)
        chained = threading.Event()
        for _ in range(WAIT * 20):
            if AuditCheckpoint.objects.filter(position=3).exists():
                chained.set()
                break
            chained.wait(0.05)
        assert chained.is_set(), "the sealer did not chain and sign the events"
    finally:
        stop.set()
        thread.join(WAIT)
    assert not errors
    assert sealed == [3]
    assert verify_audit_chain().checkpoints_checked >= 1
    with transaction.atomic():
        assert AuditSeal.objects.count() == 3
