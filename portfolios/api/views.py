"""API views of reference data, portfolios and models: parse, call one service, render."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from oms.api.base import OMSViewSet
from oms.api.idempotency import idempotent
from oms.api.parsers import JSONParser
from oms.roles import Action
from portfolios.filters import (
    DriftFilter,
    LifecycleEventFilter,
    PortfolioFilter,
    PriceFilter,
    SecurityFilter,
)
from portfolios.models import (
    LifecycleEvent,
    Portfolio,
    Position,
    Price,
    Security,
)
from portfolios.selectors import (
    cash_unsettled,
    drift_by_account,
    drift_of_positions,
    drift_rows_visible_to,
    lifecycle_events_visible_to,
    portfolios_visible_to,
)
from portfolios.services import reference

from . import serializers as s

READ = (mixins.ListModelMixin, mixins.RetrieveModelMixin)


class SecurityViewSet(*READ, OMSViewSet):
    """Securities: the reference data of what can be held and traded."""

    serializer_class = s.SecuritySerializer
    filterset_class = SecurityFilter
    read_action = Action.REFERENCE_VIEW
    action_permissions = {"create": Action.REFERENCE_MANAGE}

    queryset = Security.objects.all()

    def visible_to(self, user):
        return Security.objects.with_latest_price()

    @idempotent
    def create(self, request):
        security = reference.security_create(
            actor=request.user, **self.parsed(s.SecuritySerializer)
        )
        return self.rendered(security, status.HTTP_201_CREATED)


class PriceViewSet(mixins.ListModelMixin, OMSViewSet):
    """Prices by security and day. A load (POST) is a list of prices, all or nothing."""

    queryset = Price.objects.select_related("security")
    serializer_class = s.PriceSerializer
    # A load is a list, which only JSON can carry (a form has no list of objects).
    parser_classes = [JSONParser]
    filterset_class = PriceFilter
    read_action = Action.REFERENCE_VIEW
    action_permissions = {"create": Action.REFERENCE_MANAGE}

    @extend_schema(
        request=s.PriceSerializer(many=True),
        responses={201: s.PriceSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Two closing prices",
                request_only=True,
                value=[
                    {"security": "AAA", "as_of": "2026-01-02", "price": "101.25"},
                    {"security": "BBB", "as_of": "2026-01-02", "price": "49.80", "source": "close"},
                ],
            )
        ],
    )
    @idempotent
    def create(self, request):
        serializer = self.get_serializer(
            data=request.data,
            many=True,
            allow_empty=False,
            max_length=reference.MAX_PRICES_PER_LOAD,
        )
        serializer.is_valid(raise_exception=True)
        created = reference.prices_create(actor=request.user, prices=serializer.validated_data)
        prices = self.get_queryset().filter(pk__in=[p.pk for p in created]).order_by("pk")
        return Response(self.get_serializer(prices, many=True).data, status=status.HTTP_201_CREATED)


class LifecycleEventViewSet(*READ, OMSViewSet):
    """Booked life-cycle events: coupons, redemptions, futures' final settlements,
    options' exercise, assignment, cash settlement and expiry, one per holding and
    event, of the accounts you may see; filter by event, outcome, account, security and
    date (since, until)."""

    serializer_class = s.LifecycleEventSerializer
    filterset_class = LifecycleEventFilter
    read_action = Action.PORTFOLIO_VIEW
    queryset = LifecycleEvent.objects.all()

    def visible_to(self, user):
        return lifecycle_events_visible_to(user)


class PortfolioViewSet(*READ, OMSViewSet):
    """Accounts with positions, cash and drift. Portfolio managers see the accounts they
    manage; compliance and operations see all."""

    filterset_class = PortfolioFilter
    read_action = Action.PORTFOLIO_VIEW
    queryset = Portfolio.objects.all()

    def visible_to(self, user):
        return portfolios_visible_to(user).prefetch_related(
            Prefetch(
                "positions",
                queryset=Position.objects.select_related("security").exclude(quantity=0),
            ),
            "cash_balances",
        )

    def get_serializer_class(self):
        if self.action == "retrieve":
            return s.PortfolioDetailSerializer
        return s.PortfolioSerializer

    def list(self, request):
        filterset = PortfolioFilter(request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        drift = filterset.drift_of(page)
        context = self._context(drift=drift, unsettled=cash_unsettled([p.pk for p in page]))
        serializer = self.get_serializer(page, many=True, context=context)
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request, pk=None):
        portfolio = self.get_object()
        weights = drift_of_positions(portfolio.pk)
        tickers = dict(
            Security.objects.filter(pk__in=[w["security"] for w in weights]).values_list(
                "pk", "ticker"
            )
        )
        weights = [w | {"security": tickers.get(w["security"])} for w in weights]
        context = self._context(drift=drift_by_account([portfolio.pk]), weights=weights)
        return Response(self.get_serializer(portfolio, context=context).data)

    def _context(self, **extra) -> dict:
        return self.get_serializer_context() | extra


class DriftViewSet(mixins.ListModelMixin, OMSViewSet):
    """The drift dashboard's rows: every account you may see with its stored drift
    figures, with the dashboard's filters (model, manager, currency, out_of_band=yes|no,
    cash=above|below, stale) and sort (drift, largest, value, cash, code; '-' for
    descending; largest drift first by default)."""

    serializer_class = s.DriftRowSerializer
    filterset_class = DriftFilter
    read_action = Action.PORTFOLIO_VIEW
    queryset = Portfolio.objects.all()

    def visible_to(self, user):
        return drift_rows_visible_to(user)

    def list(self, request):
        filterset = DriftFilter(request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
