"""Writes to the audit trail. Every service that changes state calls `audit_record`
inside its own transaction, so that the change and its event commit together."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from oms.context import current_origin

from .models import GENESIS_HASH, AuditEvent

# Any constant works: it names the lock that serialises appends to the chain.
_AUDIT_CHAIN_LOCK = 7_340_001
SYSTEM = "system"


def snapshot(obj, fields) -> dict:
    """The named fields of ``obj``, for an event's before and after."""
    return {name: getattr(obj, name) for name in fields}


def _json_safe(value: dict | None) -> dict:
    return json.loads(json.dumps(value or {}, cls=DjangoJSONEncoder))


def _lock_chain() -> None:
    # PostgreSQL: a transaction-scoped advisory lock, so two writers never read the
    # same last hash. SQLite already runs one writing transaction at a time.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_CHAIN_LOCK])


@contextlib.contextmanager
def audited_transaction() -> Iterator[None]:
    """The transaction of a service that appends audit events.

    The chain's lock is taken first, before any row lock: a writer that took row
    locks and then waited for the chain could deadlock with one that holds the
    chain and waits for those rows. Audited writes therefore commit one at a time
    on PostgreSQL, as they do on SQLite; see docs/architecture.md.
    """
    with transaction.atomic():
        _lock_chain()
        yield


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
    """Append one event to the chain. Must run inside the caller's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    _lock_chain()
    previous = AuditEvent.objects.order_by("-pk").values_list("hash", flat=True).first()
    event = AuditEvent(
        occurred_at=timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=actor_name or (actor.get_username() if getattr(actor, "pk", None) else SYSTEM),
        kind=kind,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else type(obj).__name__,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=_json_safe(before),
        after=_json_safe(after),
        reason=reason,
        origin=str(current_origin())[:100],
        previous_hash=previous or GENESIS_HASH,
    )
    event.hash = event.compute_hash()
    AuditEvent.objects.bulk_create([event])  # bulk_create: save() is closed to updates
    return event


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_id: int | None
    problem: str

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def verify_audit_chain(batch_size: int = 5000) -> ChainReport:
    """Walk the chain in order; name the first event whose link or content is broken."""
    previous = GENESIS_HASH
    checked = 0
    last_pk = 0
    with transaction.atomic():
        while True:
            batch = list(AuditEvent.objects.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
            if not batch:
                return ChainReport(checked, None, "")
            for event in batch:
                if event.previous_hash != previous:
                    return ChainReport(
                        checked, event.pk, "link to the previous event does not match"
                    )
                if event.compute_hash() != event.hash:
                    return ChainReport(checked, event.pk, "content does not match its hash")
                previous = event.hash
                checked += 1
                last_pk = event.pk
