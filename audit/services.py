"""Writes to the audit trail.

Every service that changes state calls `audit_record` inside its own
transaction, so that the change and its event commit together. The event is
appended unchained: no writer reads or waits for another's, so audited writes
commit side by side. The sealer (`audit_seal`, run in a loop by
`manage.py seal_audit`) chains committed events within a second or so, and
`audit_checkpoint` signs the head of the chain from time to time.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from oms.context import current_origin

from .chain import (
    StoredEvent,
    instant,
    key_id,
    seal_hash,
    seal_key,
    sealer_order,
    sealer_window,
    sign,
)
from .models import GENESIS_HASH, AuditCheckpoint, AuditEvent, AuditSeal
from .verification import ChainReport, Checkpoint, verify_audit_chain

__all__ = [
    "ChainReport",
    "audit_checkpoint",
    "audit_record",
    "audit_record_many",
    "audit_seal",
    "audited_transaction",
    "snapshot",
    "verify_audit_chain",
]

log = logging.getLogger(__name__)

SYSTEM = "system"
#: Taken by sealers only, never by a writer: two sealers never chain at once.
_SEALER_LOCK = 7_340_002
#: Events sealed per round at most (a round with more left goes again at once).
SEAL_BATCH = 5000
_SEALS_PER_INSERT = 100


def snapshot(obj, fields) -> dict:
    """The named fields of ``obj``, for an event's before and after."""
    return {name: getattr(obj, name) for name in fields}


def audited_transaction() -> transaction.Atomic:
    """The transaction of a service that appends audit events: a plain atomic block.

    It takes no lock of the trail's: events are appended unchained and sealed
    after commit, so audited writes never wait for one another on the trail
    (docs/audit.md). Kept as the one name every audited service opens; Django's own
    block, not a generator wrapped round it (every audited write opens one).
    """
    return transaction.atomic()


def audit_record(
    *,
    actor,
    kind: str,
    obj,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    actor_name: str | None = None,
) -> AuditEvent:
    """Append one event to the trail. Must run inside the caller's transaction."""
    [event] = _append(
        actor=actor,
        kind=kind,
        entries=[(obj, before, after)],
        reason=reason,
        actor_name=actor_name,
    )
    return event


#: Events per INSERT at most (each takes 11 parameters; PostgreSQL allows 65,535).
_EVENTS_PER_INSERT = 1000


def audit_record_many(
    *,
    actor,
    kind: str,
    entries: Iterable[tuple[object, dict | None, dict | None]],
    reason: str = "",
    actor_name: str | None = None,
) -> list[AuditEvent]:
    """Append one event per ``(obj, before, after)`` of ``entries``, by one actor, of
    one kind, with one reason: the same events `audit_record` would append one by one,
    in that order, in a single INSERT (per thousand). A service that changes many
    rows of one kind at once (the orders of a block) records each change at the cost
    of one statement. Must run inside the caller's transaction."""
    return _append(actor=actor, kind=kind, entries=entries, reason=reason, actor_name=actor_name)


def audit_record_each(
    *,
    actor,
    events: Iterable[tuple[str, object, dict | None, dict | None, str]],
    actor_name: str | None = None,
) -> list[AuditEvent]:
    """Append one event per ``(kind, obj, before, after, reason)`` of ``events``, by one
    actor: the events `audit_record` would append one by one, of whatever kinds, in
    that order, in a single INSERT (per thousand). For a service that applies several
    changes of different kinds at once (the execution reports of one read: a route's
    report, its block's update, the next report) and keeps their order. Must run
    inside the caller's transaction."""
    return _append(actor=actor, kind=None, entries=events, reason="", actor_name=actor_name)


#: One encoder for every event (``json.dumps(..., cls=...)`` builds one per call); its
#: text is what the INSERT sends, encoded once.
_encode = DjangoJSONEncoder().encode
#: The columns of an event as `AuditEvent.from_db` takes them, in the model's order.
_FIELDS = [f.attname for f in AuditEvent._meta.concrete_fields]


def _stored(value: dict | None) -> tuple[str, dict]:
    """A before or after as the trail stores it: the JSON text sent (encoded once), and
    the value the database gives back for it (Decimals and dates as their text)."""
    if not value:
        return "{}", {}
    text = _encode(value)
    return text, json.loads(text)


def _append(*, actor, kind, entries, reason, actor_name) -> list[AuditEvent]:
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    known = bool(getattr(actor, "pk", None))
    actor_id = actor.pk if known else None
    name = actor_name or (actor.get_username() if known else SYSTEM)
    occurred_at = timezone.now()
    origin = str(current_origin())[:100]
    rows = []
    values = []
    for entry in entries:
        if kind is None:
            event_kind, obj, before, after, event_reason = entry
        else:
            (obj, before, after), event_kind, event_reason = entry, kind, reason
        stored_before, decoded_before = _stored(before)
        stored_after, decoded_after = _stored(after)
        meta = getattr(obj, "_meta", None)
        row = (
            actor_id,
            name,
            event_kind,
            meta.label_lower if meta is not None else type(obj).__name__,
            str(obj.pk),
            str(obj)[:200],
            stored_before,
            stored_after,
            event_reason,
            origin,
        )
        rows.append(row)
        values.append((decoded_before, decoded_after))
    # Plain INSERTs: this runs in every audited write of the system, and the ORM's
    # insert (save() is closed on the model anyway) costs more than the rest of it.
    at = connection.ops.adapt_datetimefield_value(occurred_at)
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _EVENTS_PER_INSERT):
            chunk = rows[start : start + _EVENTS_PER_INSERT]
            cursor.execute(
                _INSERT_ONE if len(chunk) == 1 else _insert(len(chunk)),
                [value for row in chunk for value in (at, *row)],
            )
            # RETURNING gives the rows in the order of VALUES (PostgreSQL and SQLite)
            ids.extend(row[0] for row in cursor.fetchall())
    # The events as the ORM would read them back (no model __init__ with keywords per
    # event; xact is set by the database's trigger and not read back).
    db = connection.alias
    events = []
    for pk, row, (before, after) in zip(ids, rows, values, strict=True):
        # in the model's order: the INSERT's columns with the decoded before and after
        fields = (pk, occurred_at, *row[:6], before, after, *row[8:], None)
        event = AuditEvent.from_db(db, _FIELDS, fields)
        if known:
            event.actor = actor
        events.append(event)
    return events


def _insert(n: int) -> str:
    return f"{_INSERT_EVENT} VALUES {', '.join([_EVENT_VALUES] * n)} RETURNING id"


_INSERT_EVENT = (
    f"INSERT INTO {AuditEvent._meta.db_table} (occurred_at, actor_id, actor_name, kind, "
    "object_type, object_id, object_repr, before, after, reason, origin)"
)
_EVENT_VALUES = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_INSERT_ONE = f"{_INSERT_EVENT} VALUES {_EVENT_VALUES} RETURNING id"


# --- The sealer ----------------------------------------------------------------------


def _claim_sealing() -> bool:
    """One sealer at a time. On PostgreSQL a transaction-scoped advisory lock that only
    sealers take (a second sealer skips its round); SQLite's write lock, taken at BEGIN,
    already keeps every other writer out."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if len(connection.atomic_blocks) == 1:
            # Each statement must see what committed before it, whatever the connection's
            # default: the head read after the lock includes the last sealer's seals.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEALER_LOCK])
        return cursor.fetchone()[0]


def _horizon() -> int:
    """A mark below which no event can still be appended or committed.

    PostgreSQL: the oldest transaction still running (the snapshot's xmin); every
    transaction below it has ended, so its events, if it committed, are visible now.
    SQLite: the next event id, since no other writer runs while the sealer holds the
    write lock."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            return cursor.fetchone()[0]
    return (AuditEvent.objects.aggregate(last=Max("pk"))["last"] or 0) + 1


def audit_seal(*, batch_size: int = SEAL_BATCH) -> int:
    """Chain the committed events that have no seal yet; return how many were sealed.

    Events are chained after every event sealed before, in the order this round
    reads them (`sealer_order`: by transaction, then as appended). An event whose
    transaction took a lower id but committed after later ones is not skipped: the
    round finds what awaits its seal by the horizon (`sealer_window`), the oldest
    transaction still running when the last round looked, not by id, so it is sealed
    by the first round after its commit. Idempotent; a second sealer skips its round.
    """
    with transaction.atomic():
        if not _claim_sealing():
            return 0
        head = (
            AuditSeal.objects.order_by("-position")
            .values_list("position", "hash", "horizon")
            .first()
        )
        position, previous, since = head or (0, GENESIS_HASH, 0)
        # Read before the events: whatever ended before this mark is visible to the read.
        horizon = _horizon()
        if horizon < since:
            # The transaction counter went back (the database was restored into another
            # cluster): new events sit below the old mark, so look at every event once.
            since = 0
        events = AuditEvent.objects.filter(sealer_window(since), seal__isnull=True)
        order = sealer_order()
        rows = list(events.order_by(*order).values_list(*order, StoredEvent())[:batch_size])
        if not rows:
            return 0
        if len(rows) == batch_size:
            # Events may wait beyond this batch, but none below the last one sealed (in
            # the window's order): the next round starts from there.
            horizon = min(horizon, rows[-1][0])
        sealed_at = connection.ops.adapt_datetimefield_value(timezone.now())
        seals = []
        for *key, stored in rows:
            position += 1
            digest = seal_hash(position, previous, stored)
            seals.append((position, key[-1], previous, digest, sealed_at, horizon))
            previous = digest
        _insert_seals(seals)
    return len(rows)


def _insert_seals(seals: list[tuple]) -> None:
    # Many rows per INSERT, as bulk_create would do, without its cost per object
    # (which is more than the hashing's).
    columns = "position, event_id, previous_hash, hash, sealed_at, horizon"
    with connection.cursor() as cursor:
        for start in range(0, len(seals), _SEALS_PER_INSERT):
            chunk = seals[start : start + _SEALS_PER_INSERT]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {AuditSeal._meta.db_table} ({columns}) VALUES {values}",
                [value for seal in chunk for value in seal],
            )


def audit_checkpoint(*, head: tuple[int, str] | None = None) -> AuditCheckpoint | None:
    """Sign the head of the chain with the seal key, if it moved since the last
    checkpoint; append it to `OMS_AUDIT_CHECKPOINT_FILE` too when one is set.
    None when there is nothing new to sign, or no key. ``head`` (position, hash):
    sign that instead, a head the sealer saw and the chain no longer holds."""
    key = seal_key(create=True)
    if key is None:
        log.error("no audit seal key (OMS_AUDIT_SEAL_KEY): checkpoints are not written")
        return None
    with transaction.atomic():
        if not _claim_sealing():
            return None
        if head is None:
            head = AuditSeal.objects.order_by("-position").values_list("position", "hash").first()
            if head is None:
                return None
            last = (
                AuditCheckpoint.objects.order_by("-pk").values_list("position", flat=True).first()
            )
            if last == head[0]:
                return None
        signed_at = timezone.now()
        position, head_hash = head
        checkpoint = AuditCheckpoint(
            position=position,
            head_hash=head_hash,
            signed_at=signed_at,
            key_id=key_id(key),
            signature=sign(key, position, head_hash, instant(signed_at)),
        )
        AuditCheckpoint.objects.bulk_create([checkpoint])
        if settings.OMS_AUDIT_CHECKPOINT_FILE:
            transaction.on_commit(lambda: checkpoint_export(checkpoint))
    return checkpoint


def checkpoint_export(checkpoint: AuditCheckpoint | Checkpoint, path: str | None = None) -> None:
    """Append a checkpoint to the file an auditor keeps (JSON lines), on disk at once."""
    if isinstance(checkpoint, AuditCheckpoint):
        checkpoint = Checkpoint.stored(checkpoint)
    target = Path(path or settings.OMS_AUDIT_CHECKPOINT_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as file:
        file.write(checkpoint.line() + "\n")
        file.flush()
        os.fsync(file.fileno())
