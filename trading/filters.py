"""One filter definition per list, shared by the pages and the API."""

import django_filters as filters

from oms.filters import UTCIsoDateTimeFilter

from .models import Block, Execution, Order, Route


class OrderFilter(filters.FilterSet):
    portfolio = filters.CharFilter(field_name="portfolio__code", label="Account")
    security = filters.CharFilter(field_name="security__ticker", label="Ticker")
    status = filters.MultipleChoiceFilter(choices=Order.Status.choices)
    created_from = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_to = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = Order
        fields = ["portfolio", "security", "side", "status", "rebalance_run", "block"]


class BlockFilter(filters.FilterSet):
    security = filters.CharFilter(field_name="security__ticker", label="Ticker")
    status = filters.MultipleChoiceFilter(choices=Block.Status.choices)

    class Meta:
        model = Block
        fields = ["security", "side", "status"]


class RouteFilter(filters.FilterSet):
    broker = filters.CharFilter(field_name="broker__code")
    status = filters.MultipleChoiceFilter(choices=Route.Status.choices)

    class Meta:
        model = Route
        fields = ["block", "broker", "status", "cl_ord_id"]


class ExecutionFilter(filters.FilterSet):
    broker = filters.CharFilter(field_name="broker__code")
    cl_ord_id = filters.CharFilter(field_name="route__cl_ord_id")
    received_from = UTCIsoDateTimeFilter(field_name="received_at", lookup_expr="gte")

    class Meta:
        model = Execution
        fields = ["route", "broker", "exec_type", "cl_ord_id"]
