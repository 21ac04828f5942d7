"""Serializers of the audit trail: shapes only."""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    before = serializers.JSONField(read_only=True)
    after = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "actor_name",
            "kind",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "reason",
            "origin",
            "previous_hash",
            "hash",
        ]
