"""Serializers of the audit trail and the rule book: shapes only."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from audit.models import AuditEvent
from audit.selectors import object_kind_name
from compliance.models import (
    Alert,
    Override,
    PretradeResult,
    RestrictedList,
    Rule,
    RuleKind,
    Severity,
)
from compliance.services.rules import RULE_FIELDS
from oms.api.base import CodeField
from portfolios.models import ModelPortfolio, Portfolio


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


# --- The rule book, restricted lists, pre-trade results, overrides -------------------


class RuleSerializer(serializers.ModelSerializer):
    accounts = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    model = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    params = serializers.JSONField(read_only=True)

    class Meta:
        model = Rule
        fields = ["id", *RULE_FIELDS, "is_active", "version", "updated_at"]
        read_only_fields = fields


class RuleWriteSerializer(serializers.Serializer):
    """A rule as written: its parameters (``limit`` as a fraction: 0.1 is 10%) are
    checked by the engine's own rule, and an error names the parameter."""

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    params = serializers.JSONField(
        required=False, help_text='e.g. {"group_by": "issuer", "limit": 0.1}'
    )
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    scope = serializers.ChoiceField(choices=Rule.Scope.choices, required=False)
    accounts = CodeField(
        slug_field="code", queryset=Portfolio.objects.all(), many=True, required=False
    )
    model = CodeField(
        slug_field="name",
        queryset=ModelPortfolio.objects.all(),
        required=False,
        allow_null=True,
        missing="No model {value}.",
    )
    when = serializers.ChoiceField(choices=Rule.When.choices, required=False)
    active_from = serializers.DateField(required=False, allow_null=True)
    active_to = serializers.DateField(required=False, allow_null=True)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class RestrictedListSerializer(serializers.ModelSerializer):
    portfolio = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    tickers = serializers.SerializerMethodField()
    issuers = serializers.SerializerMethodField()

    class Meta:
        model = RestrictedList
        fields = [
            "id",
            "name",
            "description",
            "level",
            "portfolio",
            "tickers",
            "issuers",
            "is_active",
            "version",
        ]
        read_only_fields = fields

    def get_tickers(self, obj) -> list[str]:
        return sorted(e.security.ticker for e in obj.entries.all() if e.security_id)

    def get_issuers(self, obj) -> list[str]:
        return sorted(e.issuer for e in obj.entries.all() if not e.security_id)


class RestrictedListWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    level = serializers.ChoiceField(choices=RestrictedList.Level.choices, required=False)
    portfolio = CodeField(
        slug_field="code", queryset=Portfolio.objects.all(), required=False, allow_null=True
    )
    tickers = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, max_length=10000
    )
    issuers = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=10000
    )
    is_active = serializers.BooleanField(required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class PretradeResultSerializer(serializers.ModelSerializer):
    rule = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = PretradeResult
        fields = [
            "id",
            "order",
            "rule",
            "rule_version",
            "stage",
            "severity",
            "status",
            "value",
            "limit",
            "group",
            "passive",
            "message",
            "checked_at",
        ]
        read_only_fields = fields


class OverrideSerializer(serializers.ModelSerializer):
    rules = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Override
        fields = [
            "id",
            "order",
            "rules",
            "status",
            "justification",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
            "expires_at",
        ]
        read_only_fields = fields


class OverrideRequestSerializer(serializers.Serializer):
    order = serializers.IntegerField(min_value=1, max_value=2**62)
    justification = serializers.CharField(max_length=2000)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class OverrideDecisionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class AlertCommentSerializer(serializers.Serializer):
    author = serializers.CharField(source="author.username", read_only=True)
    text = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class AlertSerializer(serializers.ModelSerializer):
    portfolio = serializers.SlugRelatedField(slug_field="code", read_only=True)
    rule = serializers.SlugRelatedField(slug_field="name", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    resolved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    comments = AlertCommentSerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "portfolio",
            "rule",
            "rule_version",
            "status",
            "severity",
            "value",
            "limit",
            "group",
            "message",
            "source",
            "opened_at",
            "last_seen_at",
            "assignee",
            "resolved_by",
            "resolved_at",
            "resolution",
            "comments",
        ]
        read_only_fields = fields


class AlertActionSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    assignee = CodeField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
        missing="No user {value}.",
    )
