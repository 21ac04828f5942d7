"""API of cash flows (deposits to invest, withdrawals to raise) and of the proposal
review's additions: edit a proposed quantity, the totals per security, raise cash.
Parse, call one service, render."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from oms.api.base import OMSViewSet
from oms.api.idempotency import idempotent
from oms.roles import Action
from portfolios.selectors import portfolios_visible_to

from .. import services
from ..cashflows import MAX_CSV_BYTES, csv_text
from ..models import CashFlow


class CashFlowSerializer(serializers.ModelSerializer):
    portfolio = serializers.SlugRelatedField(slug_field="code", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    kind = serializers.CharField(read_only=True, help_text="deposit or withdrawal")

    class Meta:
        model = CashFlow
        fields = [
            "id",
            "portfolio",
            "kind",
            "currency",
            "amount",
            "status",
            "run",
            "note",
            "created_by",
            "created_at",
            "updated_at",
        ]


class CashFlowCreateSerializer(serializers.Serializer):
    """A deposit or a withdrawal; the service checks the amount, currency and kind."""

    portfolio = serializers.CharField(max_length=32, help_text="Account code")
    kind = serializers.CharField(max_length=20, help_text="'deposit' or 'withdrawal'")
    currency = serializers.CharField(max_length=10, help_text="ISO code, e.g. USD")
    amount = serializers.CharField(
        max_length=40, help_text="Positive; the kind says which way the cash goes"
    )
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)


class CashFlowImportSerializer(serializers.Serializer):
    file = serializers.FileField(
        required=False, help_text="CSV with the columns account, currency, amount, kind"
    )
    text = serializers.CharField(
        required=False, max_length=MAX_CSV_BYTES, help_text="The same CSV as text"
    )


class CashFlowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OMSViewSet):
    """Cash flows of the accounts you see; enter one or a CSV of them; cancel a pending one."""

    serializer_class = CashFlowSerializer
    read_action = Action.PORTFOLIO_VIEW
    action_permissions = {
        "create": Action.REBALANCE_RUN,
        "import_csv": Action.REBALANCE_RUN,
        "cancel": Action.REBALANCE_RUN,
    }
    queryset = CashFlow.objects.all()

    def visible_to(self, user):
        flows = CashFlow.objects.select_related("portfolio", "created_by").filter(
            portfolio__in=portfolios_visible_to(user)
        )
        params = self.request.query_params
        if params.get("portfolio"):
            flows = flows.filter(portfolio__code=params["portfolio"])
        if params.get("status"):
            flows = flows.filter(status=params["status"])
        return flows.order_by("-pk")

    @extend_schema(request=CashFlowCreateSerializer, responses={201: CashFlowSerializer})
    @idempotent
    def create(self, request):
        """Enter a deposit or a withdrawal: the account's next rebalance uses it."""
        data = dict(self.parsed(CashFlowCreateSerializer))
        code = data.pop("portfolio")
        portfolio = portfolios_visible_to(request.user).filter(code=code).first()
        if portfolio is None:
            raise ValidationError({"portfolio": [f"No account {code} among yours."]})
        flow = services.cash_flow_create(actor=request.user, portfolio=portfolio, **data)
        return Response(CashFlowSerializer(flow).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CashFlowImportSerializer, responses={201: CashFlowSerializer(many=True)})
    @action(detail=False, methods=["post"], url_path="import")
    @idempotent
    def import_csv(self, request):
        """Enter the cash flows of a CSV (account, currency, amount, kind): all, or none
        when a line is wrong (each bad line named)."""
        data = self.parsed(CashFlowImportSerializer)
        upload = data.get("file")
        text = csv_text(upload) if upload else data.get("text", "")
        flows = services.cash_flows_import(actor=request.user, text=text)
        return Response(CashFlowSerializer(flows, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: CashFlowSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        """Cancel a pending cash flow."""
        flow = self.get_object()
        flow = services.cash_flow_cancel(actor=request.user, cash_flow_id=flow.pk)
        return Response(CashFlowSerializer(flow).data)


class OrderEditSerializer(serializers.Serializer):
    quantity = serializers.CharField(max_length=40, help_text="The new quantity (> 0)")


class RaiseCashSerializer(serializers.Serializer):
    amount = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="Cash to raise (a withdrawal entered first); blank: the pending withdrawals",
    )
    currency = serializers.CharField(max_length=10, required=False, help_text="Default: base")
    lot_selection = serializers.CharField(max_length=20, required=False)
    gains_cap = serializers.FloatField(required=False, allow_null=True, min_value=0)
    wash_sale_days = serializers.IntegerField(required=False, min_value=0, max_value=365)


class TotalSerializer(serializers.Serializer):
    security = serializers.CharField()
    side = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=30, decimal_places=6)
    accounts = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=30, decimal_places=4, help_text="In `currency`")
    currency = serializers.CharField(help_text="The security's currency")
    base_values = serializers.DictField(
        child=serializers.DecimalField(max_digits=30, decimal_places=2, allow_null=True),
        help_text="The value in each base currency of the accounts (null: no FX rate)",
    )


class TotalsSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    totals = TotalSerializer(many=True, help_text="One line per security and side")
