"""API views of reference data, portfolios, models and rebalance runs: parse, call one
service, render."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from oms.api.base import OMSViewSet
from oms.api.idempotency import idempotent
from oms.roles import Action
from portfolios import reference, services
from portfolios.filters import (
    ModelPortfolioFilter,
    PortfolioFilter,
    PriceFilter,
    RebalanceRunFilter,
    SecurityFilter,
)
from portfolios.models import (
    ModelPortfolio,
    ModelTarget,
    Portfolio,
    Position,
    Price,
    RebalanceRun,
    Security,
)
from portfolios.selectors import (
    drift_by_account,
    drift_of_positions,
    portfolios_visible_to,
    rebalance_runs_visible_to,
)
from trading.models import Order

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
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        security = reference.security_create(actor=request.user, **serializer.validated_data)
        security = self.get_queryset().get(pk=security.pk)
        return Response(self.get_serializer(security).data, status=status.HTTP_201_CREATED)


class PriceViewSet(mixins.ListModelMixin, OMSViewSet):
    """Prices by security and day. A load (POST) is a list of prices, all or nothing."""

    queryset = Price.objects.select_related("security")
    serializer_class = s.PriceSerializer
    filterset_class = PriceFilter
    read_action = Action.REFERENCE_VIEW
    action_permissions = {"create": Action.REFERENCE_MANAGE}

    @extend_schema(
        request=s.PriceSerializer(many=True), responses={201: s.PriceSerializer(many=True)}
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


class PortfolioViewSet(*READ, OMSViewSet):
    """Accounts with positions, cash and drift. Portfolio managers see the accounts they
    manage; compliance and operations see all."""

    filterset_class = PortfolioFilter
    read_action = Action.PORTFOLIO_VIEW
    action_permissions = {"rebalance": Action.REBALANCE_RUN}

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
        if self.action == "rebalance":
            return s.RebalanceRequestSerializer
        return s.PortfolioSerializer

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        drift = drift_by_account([p.pk for p in page])
        serializer = self.get_serializer(page, many=True, context=self._context(drift=drift))
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

    @extend_schema(request=s.RebalanceRequestSerializer, responses={201: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def rebalance(self, request, pk=None):
        """Rebalance this account to its model: a run with its proposed orders."""
        portfolio = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.rebalance_run_create(
            actor=request.user, portfolios=[portfolio], parameters=serializer.validated_data
        )
        if run.status == RebalanceRun.Status.FAILED:
            # The engine refused the book as it stands: the run is kept, failed, with why.
            return Response(
                {"detail": f"The rebalance failed: {run.error}", "run": run.pk},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        run = runs_with_orders(rebalance_runs_visible_to(request.user)).get(pk=run.pk)
        return Response(s.RebalanceRunSerializer(run).data, status=status.HTTP_201_CREATED)


class ModelPortfolioViewSet(*READ, OMSViewSet):
    """Model portfolios: target weights and tolerance bands."""

    queryset = ModelPortfolio.objects.select_related("owner").prefetch_related(
        Prefetch("targets", queryset=ModelTarget.objects.select_related("security"))
    )
    serializer_class = s.ModelPortfolioSerializer
    filterset_class = ModelPortfolioFilter
    read_action = Action.REFERENCE_VIEW
    action_permissions = {"create": Action.MODEL_MANAGE}

    @extend_schema(
        request=s.ModelPortfolioCreateSerializer, responses={201: s.ModelPortfolioSerializer}
    )
    @idempotent
    def create(self, request):
        """Add a model portfolio with its target weights."""
        serializer = s.ModelPortfolioCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = reference.model_create(actor=request.user, **serializer.validated_data)
        model = self.get_queryset().get(pk=model.pk)
        return Response(self.get_serializer(model).data, status=status.HTTP_201_CREATED)


def runs_with_orders(runs):
    return runs.prefetch_related(
        "portfolios",
        Prefetch(
            "orders", queryset=Order.objects.select_related("portfolio", "security").order_by("pk")
        ),
    )


class RebalanceRunViewSet(*READ, OMSViewSet):
    """Rebalance runs: proposed orders and their what-if; approve, release or cancel them."""

    serializer_class = s.RebalanceRunSerializer
    filterset_class = RebalanceRunFilter
    read_action = Action.PORTFOLIO_VIEW
    action_permissions = {
        "approve": Action.REBALANCE_RUN,
        "release": Action.REBALANCE_RUN,
        "cancel": Action.REBALANCE_RUN,
    }

    queryset = RebalanceRun.objects.all()

    def visible_to(self, user):
        return runs_with_orders(rebalance_runs_visible_to(user))

    def _transition(self, service) -> Response:
        run = self.get_object()
        service(actor=self.request.user, run_id=run.pk)
        return Response(self.get_serializer(self.get_queryset().get(pk=run.pk)).data)

    @extend_schema(request=None, responses={200: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        """Approve a proposed run: its draft orders become approved."""
        return self._transition(services.rebalance_run_approve)

    @extend_schema(request=None, responses={200: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def release(self, request, pk=None):
        """Release an approved run's orders to the trading desk (into blocks)."""
        return self._transition(services.rebalance_run_release)

    @extend_schema(request=None, responses={200: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        """Cancel a run that was not released, and its unreleased orders."""
        return self._transition(services.rebalance_run_cancel)
