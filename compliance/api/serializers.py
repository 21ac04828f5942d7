"""Serializers of the audit trail: shapes only."""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditEvent
from audit.selectors import object_kind_name


class AuditEventSerializer(serializers.ModelSerializer):
    before = serializers.JSONField(read_only=True)
    after = serializers.JSONField(read_only=True)
    object_kind = serializers.SerializerMethodField(
        help_text='The object\'s kind as the pages name it ("Order", "Rebalance run")'
    )
    position = serializers.IntegerField(
        source="seal.position",
        read_only=True,
        allow_null=True,
        help_text="Its place in the chain; null while it awaits the sealer (a second or so)",
    )
    previous_hash = serializers.CharField(
        source="seal.previous_hash", read_only=True, allow_null=True
    )
    hash = serializers.CharField(source="seal.hash", read_only=True, allow_null=True)
    sealed_at = serializers.DateTimeField(source="seal.sealed_at", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "actor_name",
            "kind",
            "object_type",
            "object_kind",
            "object_id",
            "object_repr",
            "before",
            "after",
            "reason",
            "origin",
            "position",
            "previous_hash",
            "hash",
            "sealed_at",
        ]

    def get_object_kind(self, event: AuditEvent) -> str:
        return object_kind_name(event.object_type)


class ChainStatusSerializer(serializers.Serializer):
    """Where the sealer and the last signed checkpoint have got to."""

    last_position = serializers.IntegerField(help_text="Events in the chain")
    last_event_id = serializers.IntegerField(allow_null=True)
    last_sealed_at = serializers.DateTimeField(allow_null=True)
    awaiting = serializers.IntegerField(help_text="Committed events not sealed yet")
    oldest_awaiting = serializers.DateTimeField(allow_null=True)
    checkpoint_position = serializers.IntegerField(allow_null=True)
    checkpoint_signed_at = serializers.DateTimeField(allow_null=True)


class ChainBreakSerializer(serializers.Serializer):
    problem = serializers.CharField()
    position = serializers.IntegerField(allow_null=True)
    event_id = serializers.IntegerField(allow_null=True)


class ChainReportSerializer(serializers.Serializer):
    """A verification of the whole chain: every finding, named."""

    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Sealed events whose hash and link were checked")
    broken = serializers.IntegerField(help_text="Findings in all")
    breaks = ChainBreakSerializer(many=True, help_text="The findings (the first 1,000)")
    awaiting = serializers.IntegerField()
    head_position = serializers.IntegerField()
    head_event_id = serializers.IntegerField(allow_null=True)
    checkpoints_checked = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField())
