"""Serializers of reference data, portfolios and models: shapes only."""

from __future__ import annotations

import math
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from oms.api.base import CodeField
from oms.numbers import FIGURE_DIGITS, MONEY_PLACES, input_limits
from portfolios.models import (
    LifecycleEvent,
    Portfolio,
    Position,
    Price,
    Security,
)
from portfolios.selectors import account_realised, cash_lines, cash_unsettled
from portfolios.services.reference import SECURITY_FIELDS


def plain_figures(row: dict) -> dict:
    """Engine output as JSON: numbers as floats (NaN as null), the rest as is."""
    out = {}
    for key, value in row.items():
        if value is None or isinstance(value, bool | str):
            out[key] = value
        elif hasattr(value, "item"):  # numpy scalars
            value = value.item()
            out[key] = None if isinstance(value, float) and math.isnan(value) else value
        elif isinstance(value, float):
            out[key] = None if math.isnan(value) else value
        elif isinstance(value, int | Decimal):
            out[key] = value
        else:
            out[key] = str(value)
    return out


class SecuritySerializer(serializers.ModelSerializer):
    latest_price = serializers.DecimalField(
        max_digits=24, decimal_places=8, read_only=True, allow_null=True
    )
    latest_price_date = serializers.DateField(read_only=True, allow_null=True)
    underlying = CodeField(
        slug_field="ticker",
        queryset=Security.objects.all(),
        required=False,
        allow_null=True,
        help_text="Options: the ticker of the security the contract is written on",
    )

    class Meta:
        model = Security
        fields = ["id", *SECURITY_FIELDS, "latest_price", "latest_price_date"]


class PriceSerializer(serializers.ModelSerializer):
    security = CodeField(slug_field="ticker", queryset=Security.objects.all())
    price = serializers.DecimalField(**input_limits("price", positive=True))

    class Meta:
        model = Price
        fields = ["id", "security", "as_of", "price", "source"]
        # Duplicates are the service's to find (in the load and in the database).
        validators: list = []


class LifecycleEventSerializer(serializers.ModelSerializer):
    """A booked life-cycle event of one holding (portfolios.services.lifecycle)."""

    portfolio = serializers.SlugRelatedField(slug_field="code", read_only=True)
    security = serializers.SlugRelatedField(slug_field="ticker", read_only=True)

    class Meta:
        model = LifecycleEvent
        fields = [
            "id",
            "portfolio",
            "security",
            "event",
            "event_date",
            "outcome",
            "quantity",
            "price",
            "currency",
            "amount",
            "value_date",
            "details",
            "created_at",
        ]
        read_only_fields = fields


class PositionSerializer(serializers.ModelSerializer):
    security = serializers.SlugRelatedField(slug_field="ticker", read_only=True)

    class Meta:
        model = Position
        fields = ["security", "quantity"]


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=FIGURE_DIGITS, decimal_places=MONEY_PLACES, read_only=True, **kwargs
    )


class CashBalanceSerializer(serializers.Serializer):
    """One currency of an account's cash (``portfolios.selectors.CashLine``): ``amount``
    on trade date, of which ``settled`` is in the account and ``unsettled`` still to
    change hands (value dates after today; ``next_value_date`` the first)."""

    currency = serializers.CharField(read_only=True)
    amount = _money(help_text="On trade date: what drift, the rebalancer and compliance use")
    settled = _money(help_text="In the account now: amount less unsettled")
    unsettled = _money(help_text="Still to change hands: movements with a later value date")
    next_value_date = serializers.DateField(read_only=True, allow_null=True)


def _figure(**kwargs) -> serializers.FloatField:
    return serializers.FloatField(read_only=True, allow_null=True, **kwargs)


class DriftSerializer(serializers.Serializer):
    """An account against its model, in its base currency (the drift engine's figures)."""

    value = _figure(help_text="Holdings and cash")
    cash = _figure()
    cash_weight = _figure()
    cash_target = _figure()
    drift = _figure(help_text="Sum of absolute weight differences; null when not computable")
    max_abs_drift = _figure(help_text="Largest absolute weight difference")
    out_of_band = serializers.BooleanField(read_only=True)
    reason = serializers.CharField(
        read_only=True, allow_null=True, help_text="Why drift was not computed; null when it was"
    )

    def to_representation(self, instance):
        return super().to_representation(plain_figures(instance))


class WeightSerializer(serializers.Serializer):
    """One security held or targeted: its weight against the model's."""

    security = serializers.CharField(read_only=True, help_text="Ticker")
    quantity = _figure()
    price = _figure(help_text="Latest price, in the account's base currency")
    value = _figure()
    weight = _figure()
    target = _figure()
    drift = _figure(help_text="Weight minus target")
    tolerance = _figure()
    out_of_band = serializers.BooleanField(read_only=True)

    def to_representation(self, instance):
        return super().to_representation(plain_figures(instance))


class PortfolioSerializer(serializers.ModelSerializer):
    manager = serializers.SlugRelatedField(slug_field="username", read_only=True)
    model = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    model_id = serializers.IntegerField(read_only=True, allow_null=True)
    positions = PositionSerializer(many=True, read_only=True)
    cash = serializers.SerializerMethodField()
    drift = serializers.SerializerMethodField()

    class Meta:
        model = Portfolio
        fields = [
            "id",
            "code",
            "name",
            "base_currency",
            "manager",
            "model",
            "model_id",
            "cash_floor",
            "long_only",
            "is_active",
            "created_at",
            "positions",
            "cash",
            "drift",
        ]

    @extend_schema_field(CashBalanceSerializer(many=True))
    def get_cash(self, portfolio) -> list:
        # the view puts every listed account's unsettled movements in the context
        # (`portfolios.selectors.cash_unsettled`, one query for the page)
        unsettled = self.context.get("unsettled")
        if unsettled is None:
            unsettled = cash_unsettled([portfolio.pk])
        lines = cash_lines(portfolio.cash_balances.all(), unsettled)
        return CashBalanceSerializer(lines, many=True).data

    @extend_schema_field(DriftSerializer(allow_null=True))
    def get_drift(self, portfolio) -> dict | None:
        row = self.context.get("drift", {}).get(portfolio.pk)
        return DriftSerializer(row).data if row is not None else None


class RealisedFiguresSerializer(serializers.Serializer):
    """Realised P&L in the account's base currency (null: a gain with no FX rate)."""

    short_term = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    long_term = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    total = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)


class RealisedPnlSerializer(serializers.Serializer):
    """What the account's sales realised, as booked: trades dated today and in total."""

    currency = serializers.CharField()
    today = RealisedFiguresSerializer()
    total = RealisedFiguresSerializer()


class PortfolioDetailSerializer(PortfolioSerializer):
    weights = serializers.SerializerMethodField()
    realised_pnl = serializers.SerializerMethodField()

    class Meta(PortfolioSerializer.Meta):
        fields = [*PortfolioSerializer.Meta.fields, "weights", "realised_pnl"]

    @extend_schema_field(RealisedPnlSerializer)
    def get_realised_pnl(self, portfolio) -> dict:
        return RealisedPnlSerializer(account_realised(portfolio)).data

    @extend_schema_field(WeightSerializer(many=True))
    def get_weights(self, portfolio) -> list[dict]:
        return WeightSerializer(self.context.get("weights", []), many=True).data


class StoredDriftSerializer(serializers.Serializer):
    """An account's stored drift figures (weights as fractions: 0.05 is 5%)."""

    value = serializers.DecimalField(max_digits=24, decimal_places=4, allow_null=True)
    cash_weight = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    cash_target = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    drift = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    max_abs_drift = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    largest_drift = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    largest_drift_security = serializers.CharField(
        source="largest_drift_security.ticker",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The ticker of the security that drifts most; null: the cash",
    )
    out_of_band = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why the account cannot be valued (empty if it can)")
    prices_as_of = serializers.DateField(allow_null=True)
    computed_at = serializers.DateTimeField()
    inputs_changed_at = serializers.DateTimeField(allow_null=True)


class DriftRowSerializer(serializers.ModelSerializer):
    """One row of the drift dashboard: the account and its stored figures (null when
    never computed), `stale` when they are older than their inputs."""

    manager = serializers.SlugRelatedField(slug_field="username", read_only=True)
    model = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    stale = serializers.BooleanField(source="drift_stale", read_only=True)
    figures = serializers.SerializerMethodField()

    class Meta:
        model = Portfolio
        fields = ["id", "code", "name", "base_currency", "manager", "model", "stale", "figures"]

    @extend_schema_field(StoredDriftSerializer(allow_null=True))
    def get_figures(self, portfolio) -> dict | None:
        figures = getattr(portfolio, "drift_figures", None)
        return StoredDriftSerializer(figures).data if figures is not None else None
