"""Live valuation and exposure through the API (portfolios.valuation): totals of the
firm, each manager, each model or each account, and the exposure by asset class,
currency, sector or country, over the accounts the caller may see (a portfolio
manager: their own) and the exposure filters. Parse, call the selector, render."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from oms.api.base import Error, FieldErrors, OMSViewSet
from oms.roles import Action
from portfolios.filters import ExposureFilter
from portfolios.models import Portfolio
from portfolios.selectors import portfolios_visible_to
from portfolios.valuation import DIMENSIONS, FIGURES, LEVELS, book_valuation


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=22, decimal_places=2, read_only=True, **kwargs)


class BaseFiguresSerializer(serializers.Serializer):
    """An account's figures in its own base currency."""

    currency = serializers.CharField()
    market_value = _money()
    cash = _money()
    nav = _money()
    unrealised_pnl = _money()
    day_pnl = _money()
    realised_pnl = _money()


class CountsSerializer(serializers.Serializer):
    positions = serializers.IntegerField(help_text="Positions counted")
    stale = serializers.IntegerField(help_text="Positions valued at a stale price or FX rate")
    missing = serializers.IntegerField(
        help_text="Positions with no price or FX rate: not in the figures"
    )
    cash_missing = serializers.IntegerField(
        help_text="Cash balances in a currency with no FX rate: not in the figures"
    )
    incomplete = serializers.BooleanField(help_text="Any of stale, missing, cash_missing")


class ValuationTotalSerializer(CountsSerializer):
    """The totals of one firm, manager, model or account, in the firm's currency."""

    id = serializers.IntegerField(
        allow_null=True, help_text="The manager's, model's or account's id; null for the firm"
    )
    label = serializers.CharField(help_text="Firm, a manager's username, a model, an account")
    accounts = serializers.IntegerField()
    currency = serializers.CharField(help_text="The firm's base currency")
    market_value = _money()
    cash = _money()
    nav = _money()
    unrealised_pnl = _money(help_text="Market value less the open tax lots' cost")
    day_pnl = _money(help_text="Against the previous close")
    realised_pnl = _money(help_text="What the sales realised, from the tax lots they closed")
    manager = serializers.CharField(allow_null=True, help_text="An account's manager")
    model = serializers.CharField(allow_null=True, help_text="An account's model")
    base = BaseFiguresSerializer(allow_null=True, help_text="An account's figures in its base")


class ValuationTotalsPageSerializer(serializers.Serializer):
    level = serializers.CharField(help_text="firm, manager, model or account")
    currency = serializers.CharField()
    valued_at = serializers.DateTimeField()
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ValuationTotalSerializer(many=True)


class ExposureRowSerializer(CountsSerializer):
    key = serializers.CharField(help_text="The asset class, currency, sector or country; Cash")
    label = serializers.CharField()
    market_value = _money()
    weight = serializers.DecimalField(
        max_digits=14, decimal_places=6, allow_null=True, help_text="Of NAV (null when NAV is 0)"
    )


class ExposureSerializer(serializers.Serializer):
    dimension = serializers.CharField(help_text="asset_class, currency, sector or country")
    currency = serializers.CharField()
    valued_at = serializers.DateTimeField()
    nav = _money()
    results = ExposureRowSerializer(many=True)


class ValuationTotalsQuery(serializers.Serializer):
    level = serializers.ChoiceField(choices=LEVELS, default="firm")


class BreakdownQuery(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=list(DIMENSIONS))


FILTERS = [
    OpenApiParameter("manager", OpenApiTypes.INT, description="A manager's user id"),
    OpenApiParameter("model", OpenApiTypes.INT, description="A model's id"),
    OpenApiParameter("currency", OpenApiTypes.STR, description="Accounts in this base currency"),
]


class ExposureViewSet(OMSViewSet):
    """Valuation at the latest prices, stale and missing prices counted, in the firm's
    base currency (OMS_BASE_CURRENCY): a portfolio manager's "firm" is the accounts
    they manage; compliance and operations see every account."""

    read_action = Action.PORTFOLIO_VIEW
    queryset = Portfolio.objects.all()
    filter_backends: list = []

    def visible_to(self, user):
        return portfolios_visible_to(user)

    def _valuation(self, request):
        filterset = ExposureFilter(request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return book_valuation(filterset.qs)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "level",
                OpenApiTypes.STR,
                enum=list(LEVELS),
                description="firm (default), manager, model or account",
            ),
            *FILTERS,
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses={200: ValuationTotalsPageSerializer, 400: FieldErrors, 404: Error},
        description=(
            "Market value, cash, NAV, unrealised and day P&L of the firm, each manager, "
            "each model or each account (also in its own base currency), with the number "
            "of positions priced stale or missing."
        ),
    )
    @action(detail=False, methods=["get"], url_path="totals")
    def totals(self, request):
        query = ValuationTotalsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        level = query.validated_data["level"]
        valuation = self._valuation(request)
        rows = [_total(level, row) for row in valuation.totals(level)]
        page = self.paginate_queryset(rows)
        response = self.get_paginated_response(page)
        response.data = {
            "level": level,
            "currency": valuation.currency,
            "valued_at": valuation.at,
            **response.data,
        }
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "dimension",
                OpenApiTypes.STR,
                enum=list(DIMENSIONS),
                required=True,
                description="asset_class, currency, sector or country",
            ),
            *FILTERS,
        ],
        responses={200: ExposureSerializer, 400: FieldErrors},
        description=(
            "Market value and weight of NAV by asset class, currency, sector or country; "
            "cash is a row of its own (in its currency for the currency breakdown)."
        ),
    )
    @action(detail=False, methods=["get"], url_path="breakdown", pagination_class=None)
    def breakdown(self, request):
        query = BreakdownQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        dimension = query.validated_data["dimension"]
        valuation = self._valuation(request)
        rows = valuation.exposure(dimension)
        (firm,) = valuation.totals("firm")
        body = {
            "dimension": dimension,
            "currency": valuation.currency,
            "valued_at": valuation.at,
            "nav": firm["nav"],
            "results": rows,
        }
        return Response(ExposureSerializer(body).data)


def _total(level: str, row: dict) -> dict:
    return ValuationTotalSerializer(
        {
            **row,
            "id": {"firm": None, "account": row.get("account")}.get(level, row.get("key")),
            "label": row["code"] if level == "account" else row["label"],
            "accounts": 1 if level == "account" else row["accounts"],
            "manager": row.get("manager"),
            "model": row.get("model"),
            "base": (
                {"currency": row["base_currency"], **{f: row["base"][f] for f in FIGURES}}
                if level == "account"
                else None
            ),
        }
    ).data
