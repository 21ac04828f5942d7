"""One filter definition per list, shared by the pages and the API."""

import django_filters as filters
from django.db.models import Q

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
    """The blotter's views: by status, trader (who routed), broker, security,
    account, and a search by ticker or account."""

    security = filters.CharFilter(field_name="security__ticker", label="Ticker")
    status = filters.MultipleChoiceFilter(choices=Block.Status.choices)
    trader = filters.CharFilter(method="by_trader", label="Trader")
    broker = filters.CharFilter(method="by_broker", label="Broker")
    account = filters.CharFilter(method="by_account", label="Account")
    q = filters.CharFilter(method="search", label="Ticker or account")

    class Meta:
        model = Block
        fields = ["security", "side", "status"]

    # Each looks through a join with a subquery, so a block is listed once.
    def by_trader(self, queryset, name, value):
        routed = Route.objects.filter(created_by__username=value).values("block_id")
        return queryset.filter(pk__in=routed)

    def by_broker(self, queryset, name, value):
        return queryset.filter(pk__in=Route.objects.filter(broker__code=value).values("block_id"))

    def by_account(self, queryset, name, value):
        return queryset.filter(
            pk__in=Order.objects.filter(portfolio__code=value).values("block_id")
        )

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        accounts = Order.objects.filter(portfolio__code__iexact=value).values("block_id")
        return queryset.filter(Q(security__ticker__istartswith=value) | Q(pk__in=accounts))


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
