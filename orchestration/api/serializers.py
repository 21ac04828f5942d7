"""Serializers of rebalance runs: shapes only.

The request's parameter fields are built from `orchestration.parameters`, the
list the run form and the service's check are built from too."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from portfolios.models import RebalanceRun
from trading.api.serializers import OrderHeadSerializer

from ..models import ChunkReissue
from ..parameters import PARAMETERS, Parameter
from ..selectors import SCOPES


class RunOrderSerializer(OrderHeadSerializer):
    check = serializers.SerializerMethodField(
        help_text="The pre-trade verdict when the run was proposed: approved, "
        "needs_override or rejected (null for an order proposed before checks were kept)"
    )

    class Meta(OrderHeadSerializer.Meta):
        fields = [
            *OrderHeadSerializer.Meta.fields,
            "side",
            "quantity",
            "estimated_price",
            "status",
            "check",
        ]

    def get_check(self, order) -> str | None:
        try:
            return order.proposal_check.status
        except ObjectDoesNotExist:
            return None


class ChunkReissueSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChunkReissue
        fields = ["chunk", "attempt", "pending", "reason", "reissued_at"]
        extra_kwargs = {"chunk": {"help_text": "The chunk's index from 0; null: the run's start"}}


class RebalanceRunSerializer(serializers.ModelSerializer):
    portfolios = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    orders = RunOrderSerializer(many=True, read_only=True)
    reissues = ChunkReissueSerializer(
        many=True,
        read_only=True,
        help_text="Chunks the recovery sweep sent to the workers again (their tasks lost)",
    )
    summary = serializers.JSONField(read_only=True, help_text="What-if per account code")
    skipped = serializers.JSONField(read_only=True, help_text="Account code → why it was skipped")
    parameters = serializers.JSONField(read_only=True)

    class Meta:
        model = RebalanceRun
        fields = [
            "id",
            "status",
            "portfolios",
            "parameters",
            "summary",
            "skipped",
            "error",
            "accounts_total",
            "accounts_done",
            "accounts_skipped",
            "orders_proposed",
            "chunks_total",
            "started_at",
            "finished_at",
            "created_by",
            "created_at",
            "updated_at",
            "reissues",
            "orders",
        ]


def _field(parameter: Parameter) -> serializers.Field:
    help_text = f"{parameter.help} Default {parameter.default!r}."
    if parameter.is_choice:
        return serializers.ChoiceField(
            choices=list(parameter.choices), required=False, help_text=help_text
        )
    if parameter.integer:
        return serializers.IntegerField(
            required=False,
            min_value=parameter.minimum,
            max_value=parameter.maximum,
            help_text=help_text,
        )
    return serializers.FloatField(
        required=False,
        allow_null=parameter.optional,
        min_value=parameter.minimum,
        max_value=parameter.maximum,
        help_text=help_text,
    )


class RebalanceRequestSerializer(serializers.Serializer):
    """The parameters of a rebalance, each optional; the service checks them again."""

    def get_fields(self):
        return {parameter.name: _field(parameter) for parameter in PARAMETERS}


class RunApproveSerializer(serializers.Serializer):
    """Approve all of a run's proposed orders, or only those named (the rest dropped)."""

    orders = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=False,
        max_length=1_000_000,
        help_text="Ids of the run's draft orders to approve; the others are dropped.",
    )


class RunCreateSerializer(RebalanceRequestSerializer):
    """A run over a selection of accounts, named by code, with the run's parameters."""

    def get_fields(self):
        return {
            "scope": serializers.ChoiceField(
                choices=list(SCOPES.items()),
                default="selected",
                help_text="selected: the accounts in `portfolios`; all: every account of "
                "yours; out_of_band: those out of band (by their stored drift); model: "
                "those on `model`",
            ),
            "portfolios": serializers.ListField(
                child=serializers.CharField(max_length=32),
                required=False,
                max_length=1_000_000,
                help_text="Codes of the accounts to rebalance (scope `selected`)",
            ),
            "model": serializers.CharField(
                max_length=100, required=False, help_text="The model's name (scope `model`)"
            ),
            **super().get_fields(),
        }

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["scope"] == "selected" and not attrs.get("portfolios"):
            raise serializers.ValidationError({"portfolios": ["Name at least one account."]})
        if attrs["scope"] == "model" and not attrs.get("model"):
            raise serializers.ValidationError(
                {"model": ["Name the model whose accounts to rebalance."]}
            )
        return attrs
