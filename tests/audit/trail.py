"""What the audit trail's tests share: write events, seal them all, read the sealed
chain, rehash it as a forger would, and run a writer or the sealer in a thread."""

from __future__ import annotations

import threading

from django.db import connection

from audit.chain import StoredEvent, seal_hash
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_record, audit_seal, audited_transaction


def record(actor, count: int = 1, **after) -> list[AuditEvent]:
    """`count` test events by `actor`, in one audited transaction."""
    with audited_transaction():
        return [
            audit_record(actor=actor, kind="test.event", obj=actor, after={"i": i} | after)
            for i in range(count)
        ]


def seal_all() -> int:
    """Seal every event waiting; how many there were."""
    sealed = 0
    while count := audit_seal():
        sealed += count
    return sealed


def sealed_ids() -> list[int]:
    """The events' ids in the order their seals chain them."""
    return list(AuditSeal.objects.order_by("position").values_list("event_id", flat=True))


def rehash_from(cursor, position: int) -> None:
    """What a forger who can write the tables does after changing an event: hash every
    seal again from `position` on, so that the chain holds together (only a checkpoint
    kept outside the database can tell)."""
    previous = AuditSeal.objects.get(position=position - 1).hash
    rows = AuditSeal.objects.filter(position__gte=position).order_by("position")
    for at, stored in rows.values_list("position", StoredEvent("event__")):
        digest = seal_hash(at, previous, stored)
        cursor.execute(
            "UPDATE audit_auditseal SET previous_hash = %s, hash = %s WHERE position = %s",
            [previous, digest, at],
        )
        previous = digest


def in_thread(target, errors: list) -> threading.Thread:
    """Start `target` in a thread with a database connection of its own; what it raises
    lands in `errors`, for the test to report (not lost in the thread)."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
