"""Serializers of orders, blocks, routes, executions, allocations and brokers: shapes only."""

from __future__ import annotations

from rest_framework import serializers

from oms.api.base import CodeField
from oms.numbers import FIGURE_DIGITS, QTY_PLACES, input_limits
from portfolios.models import Portfolio, Security
from trading.models import (
    Allocation,
    Block,
    Broker,
    Execution,
    LotMethod,
    Order,
    OrderType,
    Route,
    Side,
    TimeInForce,
)

QTY = {"max_digits": FIGURE_DIGITS, "decimal_places": QTY_PLACES}


# What every representation of an order starts with: its id, its account by code and its
# security by ticker (the order list's and a rebalance run's orders). A comment, not a
# docstring: the schema would give it to each subclass as its description.
class OrderHeadSerializer(serializers.ModelSerializer):
    portfolio = serializers.SlugRelatedField(slug_field="code", read_only=True)
    security = serializers.SlugRelatedField(slug_field="ticker", read_only=True)

    class Meta:
        model = Order
        fields = ["id", "portfolio", "security"]


class OrderSerializer(OrderHeadSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    # Null until the order is approved, released.
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    released_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta(OrderHeadSerializer.Meta):
        fields = [
            *OrderHeadSerializer.Meta.fields,
            *Order.TERM_FIELDS,
            "status",
            "compliance_note",
            "filled_quantity",
            "average_price",
            "estimated_price",
            "rebalance_run",
            "block",
            "notes",
            "lot_method",
            "lots",
            "created_by",
            "approved_by",
            "released_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderCreateSerializer(serializers.Serializer):
    """A new order for one account. Accounts are named by code, securities by ticker."""

    portfolio = CodeField(
        slug_field="code",
        queryset=Portfolio.objects.none(),
        missing="No account {value} among yours.",
        help_text="Account code",
    )
    security = CodeField(slug_field="ticker", queryset=Security.objects.all(), help_text="Ticker")
    side = serializers.ChoiceField(choices=Side.choices)
    quantity = serializers.DecimalField(**input_limits("quantity"))
    order_type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.MARKET)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.DAY)
    limit_price = serializers.DecimalField(**input_limits("price"), required=False, allow_null=True)
    stop_price = serializers.DecimalField(**input_limits("price"), required=False, allow_null=True)
    expire_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Good-till-date orders only"
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=500)
    lot_method = serializers.ChoiceField(
        choices=LotMethod.choices,
        default=LotMethod.FIFO,
        help_text="Which tax lots a sell closes when it fills (sells only)",
    )

    def __init__(self, *args, portfolios=None, **kwargs):
        super().__init__(*args, **kwargs)
        if portfolios is not None:
            # Only the accounts the user may see: another manager's account does not exist.
            self.fields["portfolio"].queryset = portfolios


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RouteBriefSerializer(serializers.ModelSerializer):
    broker = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Route
        fields = ["id", "cl_ord_id", "broker", "status", "quantity", "filled_quantity"]


class BlockSerializer(serializers.ModelSerializer):
    security = serializers.SlugRelatedField(slug_field="ticker", read_only=True)
    unrouted_quantity = serializers.DecimalField(**QTY, read_only=True)
    orders = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    routes = RouteBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Block
        fields = [
            "id",
            "security",
            "side",
            "order_type",
            "limit_price",
            "stop_price",
            "time_in_force",
            "expire_at",
            "status",
            "quantity",
            "routed_quantity",
            "unrouted_quantity",
            "filled_quantity",
            "average_price",
            "commission",
            "created_at",
            "updated_at",
            "orders",
            "routes",
        ]


class RouteRequestSerializer(serializers.Serializer):
    broker = CodeField(
        slug_field="code", queryset=Broker.objects.all(), help_text="Broker code, e.g. SIM"
    )
    quantity = serializers.DecimalField(
        **input_limits("quantity"),
        required=False,
        allow_null=True,
        help_text="Default: what is left to route",
    )


class RouteReplaceSerializer(serializers.Serializer):
    """A cancel/replace of a working route: give the terms that change."""

    quantity = serializers.DecimalField(
        **input_limits("quantity", positive=True), required=False, allow_null=True
    )
    limit_price = serializers.DecimalField(
        **input_limits("price", positive=True), required=False, allow_null=True
    )
    stop_price = serializers.DecimalField(
        **input_limits("price", positive=True), required=False, allow_null=True
    )
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, required=False)
    expire_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Good-till-date only"
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RouteSerializer(serializers.ModelSerializer):
    broker = serializers.SlugRelatedField(slug_field="code", read_only=True)
    security = serializers.CharField(source="block.security.ticker", read_only=True)
    side = serializers.CharField(source="block.side", read_only=True)
    leaves_quantity = serializers.DecimalField(**QTY, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Route
        fields = [
            "id",
            "block",
            "broker",
            "cl_ord_id",
            "broker_order_id",
            "security",
            "side",
            "status",
            "quantity",
            "order_type",
            "limit_price",
            "stop_price",
            "time_in_force",
            "expire_at",
            "ends_at",
            "filled_quantity",
            "leaves_quantity",
            "average_price",
            "commission",
            "working_cl_ord_id",
            "pending_quantity",
            "pending_limit_price",
            "pending_stop_price",
            "pending_time_in_force",
            "status_requested_at",
            "text",
            "sent_at",
            "created_by",
            "created_at",
            "updated_at",
        ]


class ExecutionSerializer(serializers.ModelSerializer):
    broker = serializers.SlugRelatedField(slug_field="code", read_only=True)
    cl_ord_id = serializers.CharField(source="route.cl_ord_id", read_only=True)
    block = serializers.IntegerField(source="route.block_id", read_only=True)
    security = serializers.CharField(source="route.block.security.ticker", read_only=True)

    class Meta:
        model = Execution
        fields = [
            "id",
            "route",
            "block",
            "cl_ord_id",
            "broker",
            "security",
            "exec_id",
            "exec_type",
            "ord_status",
            "last_quantity",
            "last_price",
            "cumulative_quantity",
            "average_price",
            "leaves_quantity",
            "commission",
            "text",
            "transact_time",
            "received_at",
        ]


class AllocationSerializer(serializers.ModelSerializer):
    portfolio = serializers.CharField(source="order.portfolio.code", read_only=True)
    security = serializers.CharField(source="block.security.ticker", read_only=True)
    side = serializers.CharField(source="order.side", read_only=True)

    class Meta:
        model = Allocation
        fields = [
            "id",
            "block",
            "order",
            "portfolio",
            "security",
            "side",
            "quantity",
            "price",
            "gross_amount",
            "commission",
            "net_amount",
            "trade_date",
            "settlement_date",
            "computed_settlement_date",
            "created_at",
        ]


class BrokerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Broker
        # Adapter settings stay out: they will hold session details.
        fields = ["id", "code", "name", "adapter", "is_active"]
