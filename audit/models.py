"""The audit trail: append-only, hash-chained, one row per business event."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """The audit trail is append-only."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be changed")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted")


class AuditEvent(models.Model):
    """Who did what to which object, before and after, why, when and from where.

    Each row carries the hash of the previous row, so that a changed or removed
    row breaks the chain at a place `verify_audit_chain` can name. The database
    refuses UPDATE and DELETE on the table (triggers, see the migration).
    """

    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(
        max_length=150, help_text="Username, or 'system' for automated steps"
    )
    kind = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, db_index=True)
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(max_length=200)
    before = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    reason = models.TextField(blank=True)
    origin = models.CharField(max_length=100, blank=True, help_text="Channel and address")
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        # The table keeps the name it had when the trail was part of compliance.
        db_table = "compliance_auditevent"
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="compliance__object__53cfe7_idx")
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.object_repr} by {self.actor_name}"

    def save(self, *args, **kwargs):
        raise AppendOnlyError("append audit events with audit.services.audit_record")

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted")

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    def canonical_bytes(self) -> bytes:
        # Everything that makes the event what it is, in a fixed order and form.
        body = {
            "previous_hash": self.previous_hash,
            "occurred_at": self.occurred_at.isoformat(timespec="microseconds"),
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "kind": self.kind,
            "object_type": self.object_type,
            "object_id": str(self.object_id),
            "object_repr": self.object_repr,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "origin": self.origin,
        }
        return json.dumps(
            body, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":")
        ).encode()
