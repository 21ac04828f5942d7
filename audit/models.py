"""The audit trail: append-only, one row per business event, sealed into a hash chain.

A writer appends its events, unchained, in the transaction of the change they
record (`AuditEvent`). The sealer (`audit.sealing`, run by `manage.py seal_audit`)
chains committed events shortly after, one `AuditSeal` per event, in the order it
seals them, hashing each event as the database stores it. From time to time it
signs the head of the chain with a key the database does not hold
(`AuditCheckpoint`), so that cutting events off the end, or recomputing the
hashes from some point on, is found out too. The database refuses UPDATE, DELETE
and TRUNCATE on all three tables (PostgreSQL triggers, see the migrations).
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """The audit trail is append-only."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("the audit trail cannot be changed")

    def delete(self):
        raise AppendOnlyError("the audit trail cannot be deleted")


class AppendOnlyModel(models.Model):
    """A row of the trail: written once with bulk_create by the audit services."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        raise AppendOnlyError("append to the audit trail through audit.services")

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the audit trail cannot be deleted")


class AuditEvent(AppendOnlyModel):
    """Who did what to which object, before and after, why, when and from where.

    Appended unchained by `audit_record`; `seal` (an `AuditSeal`) gives its place
    in the chain once the sealer has reached it.
    """

    occurred_at = models.DateTimeField(db_index=True)
    # No foreign key in the database: every audited write would otherwise lock its
    # actor's row (FOR KEY SHARE) to check it, and a busy integration user's row would
    # churn through shared locks. The ORM still protects users with events; the event
    # names its actor in actor_name anyway.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
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
    xact = models.BigIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="PostgreSQL: the transaction that appended the event (set by a trigger), "
        "which tells the sealer when no event older than it can still commit",
    )

    class Meta:
        # The table keeps the name it had when the trail was part of compliance.
        db_table = "compliance_auditevent"
        ordering = ["-pk"]
        indexes = [
            models.Index(
                fields=["object_type", "object_id"], name="compliance__object__53cfe7_idx"
            ),
            # The sealer's window, in its order.
            models.Index(fields=["xact", "id"], name="audit_event_xact_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.object_repr} by {self.actor_name}"


class AuditSeal(AppendOnlyModel):
    """An event's place in the chain.

    ``hash`` is SHA-256 over the seal (position, previous hash, when sealed) and
    the event as the database stores it (`audit.sealing.seal_hash`); each seal
    carries the hash of the one before it, so a changed, removed or inserted
    event or seal breaks a link that verification names.
    """

    position = models.BigIntegerField(primary_key=True)
    # No foreign key in the database: events cannot be deleted anyway (a trigger), the
    # key's check would lock every sealed event, and verification names a missing one.
    event = models.OneToOneField(
        AuditEvent, on_delete=models.PROTECT, related_name="seal", db_constraint=False
    )
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()
    horizon = models.BigIntegerField(
        help_text="Every event appended below this mark (a PostgreSQL transaction id, or an "
        "event id on SQLite) was sealed by the round that wrote this seal or before"
    )

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"seal {self.position} of event #{self.event_id}"


class AuditCheckpoint(AppendOnlyModel):
    """The head of the chain at a moment, signed (HMAC-SHA256) with the seal key.

    The key lives outside the database (`OMS_AUDIT_SEAL_KEY`), so whoever can
    rewrite the tables cannot sign a checkpoint: a trail cut short, or rehashed
    from some point on, no longer matches the checkpoints signed before.
    """

    position = models.BigIntegerField(help_text="The last sealed position this checkpoint covers")
    head_hash = models.CharField(max_length=64, help_text="The hash of the seal at that position")
    signed_at = models.DateTimeField()
    key_id = models.CharField(
        max_length=16, help_text="Which key signed it (a digest, not the key)"
    )
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-pk"]
        get_latest_by = "pk"

    def __str__(self) -> str:
        return f"checkpoint at position {self.position}"
