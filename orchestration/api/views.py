"""API views of rebalance runs: a run over one account (POST
/portfolios/{id}/rebalance/), and the runs themselves with approve, release and
cancel. Parse, call one service, render."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from oms.api.base import OMSViewSet
from oms.api.idempotency import idempotent
from oms.roles import Action
from portfolios.models import ModelPortfolio, Portfolio, RebalanceRun
from portfolios.selectors import portfolios_visible_to, rebalance_runs_visible_to
from trading.models import Order

from .. import services
from ..filters import RebalanceRunFilter
from ..selectors import accounts_in_scope, empty_scope_message, proposal_totals
from . import cashflows as cf
from . import serializers as s

READ = (mixins.ListModelMixin, mixins.RetrieveModelMixin)


class PortfolioRebalanceViewSet(OMSViewSet):
    """Rebalance one account to its model (the account's own resource is in portfolios)."""

    serializer_class = s.RebalanceRequestSerializer
    read_action = Action.PORTFOLIO_VIEW
    action_permissions = {"rebalance": Action.REBALANCE_RUN, "raise_cash": Action.REBALANCE_RUN}

    queryset = Portfolio.objects.all()

    def visible_to(self, user):
        return portfolios_visible_to(user)

    @extend_schema(request=s.RebalanceRequestSerializer, responses={201: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def rebalance(self, request, pk=None):
        """Rebalance this account to its model: a run with its proposed orders."""
        portfolio = self.get_object()
        parameters = self.parsed(s.RebalanceRequestSerializer)
        run = services.rebalance_run_create(
            actor=request.user, portfolios=[portfolio], parameters=parameters
        )
        return _run_answer(request, run, "The rebalance failed")

    @extend_schema(request=cf.RaiseCashSerializer, responses={201: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"], url_path="raise-cash")
    @idempotent
    def raise_cash(self, request, pk=None):
        """Raise cash in this account: a run that only sells, what drifts most first,
        tax-aware, to free `amount` (entered as a withdrawal) or the pending withdrawals."""
        portfolio = self.get_object()
        data = dict(self.parsed(cf.RaiseCashSerializer))
        amount, currency = data.pop("amount", None), data.pop("currency", None)
        run = services.rebalance_raise_cash(
            actor=request.user,
            portfolio=portfolio,
            amount=amount,
            currency=currency,
            parameters=data,
        )
        return _run_answer(request, run, "The run failed")


def _run_answer(request, run: RebalanceRun, failed: str) -> Response:
    """A new run over one account: 201 with the run, or 422 saying why it failed (the
    engine refused the book as it stands: the run is kept, failed, with why)."""
    if run.status == RebalanceRun.Status.FAILED:
        return Response(
            {"detail": f"{failed}: {run.error}", "run": run.pk},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    run = runs_with_orders(rebalance_runs_visible_to(request.user)).get(pk=run.pk)
    return Response(s.RebalanceRunSerializer(run).data, status=status.HTTP_201_CREATED)


def runs_with_orders(runs):
    return runs.prefetch_related(
        "portfolios",
        "reissues",
        Prefetch(
            "orders",
            queryset=Order.objects.select_related(
                "portfolio", "security", "proposal_check"
            ).order_by("pk"),
        ),
    )


class RebalanceRunViewSet(*READ, OMSViewSet):
    """Rebalance runs: proposed orders and their what-if; approve, release or cancel them."""

    serializer_class = s.RebalanceRunSerializer
    filterset_class = RebalanceRunFilter
    read_action = Action.PORTFOLIO_VIEW
    action_permissions = {
        "create": Action.REBALANCE_RUN,
        "approve": Action.REBALANCE_RUN,
        "release": Action.REBALANCE_RUN,
        "cancel": Action.REBALANCE_RUN,
        "edit_order": Action.REBALANCE_RUN,
    }

    queryset = RebalanceRun.objects.all()

    def visible_to(self, user):
        return runs_with_orders(rebalance_runs_visible_to(user))

    @extend_schema(request=s.RunCreateSerializer, responses={201: s.RebalanceRunSerializer})
    @idempotent
    def create(self, request):
        """Rebalance a selection of accounts: a run over all of them. A run of up to
        OMS_REBALANCE_INLINE_LIMIT accounts comes back proposed; a larger one running,
        its progress in the run (poll GET /rebalance-runs/{id}/)."""
        data = dict(self.parsed(s.RunCreateSerializer))
        scope = data.pop("scope")
        codes = list(dict.fromkeys(data.pop("portfolios", [])))
        model_name = data.pop("model", None)
        if scope == "selected":
            found = list(portfolios_visible_to(request.user).filter(code__in=codes))
            missing = sorted(set(codes) - {p.code for p in found})
            if missing:
                raise ValidationError(
                    {"portfolios": [f"No account {', '.join(missing[:10])} among yours."]}
                )
        else:
            model = None
            if scope == "model":
                model = ModelPortfolio.objects.filter(name=model_name).first()
                if model is None:
                    raise ValidationError({"model": [f"No model named {model_name!r}."]})
            found = list(accounts_in_scope(request.user, scope, model=model))
            if not found:
                raise ValidationError({"scope": [empty_scope_message(scope, model)]})
        run = services.rebalance_run_create(actor=request.user, portfolios=found, parameters=data)
        return self.rendered(run, status.HTTP_201_CREATED)

    def _transition(self, service) -> Response:
        run = self.get_object()
        service(actor=self.request.user, run_id=run.pk)
        return self.rendered(run)

    @extend_schema(request=s.RunApproveSerializer, responses={200: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        """Approve a proposed run: its draft orders become approved. With `orders`,
        only those are approved and the run's other drafts are dropped."""
        chosen = self.parsed(s.RunApproveSerializer, optional=True).get("orders")
        run = self.get_object()
        services.rebalance_run_approve(actor=request.user, run_id=run.pk, order_ids=chosen)
        return self.rendered(run)

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

    @extend_schema(request=None, responses={201: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def rerun(self, request, pk=None):
        """Send a proposed, approved or failed run back: it is cancelled and a new run
        over the same accounts, with the same parameters, computes them again (the
        answer is the new run)."""
        run = self.get_object()
        again = services.rebalance_run_rerun(actor=request.user, run_id=run.pk)
        return self.rendered(again, status.HTTP_201_CREATED)

    @extend_schema(request=cf.OrderEditSerializer, responses={200: s.RebalanceRunSerializer})
    @action(detail=True, methods=["post"], url_path=r"orders/(?P<order_id>[0-9]+)/quantity")
    @idempotent
    def edit_order(self, request, pk=None, order_id=None):
        """Change a proposed order's quantity: the what-if of its account and the
        pre-trade check are done again; an edit that breaks a rule is refused (400)."""
        quantity = self.parsed(cf.OrderEditSerializer)["quantity"]
        run = self.get_object()
        services.rebalance_run_order_edit(
            actor=request.user, run_id=run.pk, order_id=int(order_id), quantity=quantity
        )
        return self.rendered(run)

    @extend_schema(responses={200: cf.TotalsSerializer})
    @action(detail=True, methods=["get"])
    def totals(self, request, pk=None):
        """The proposal per security and side, as the desk will see it as blocks."""
        run = self.get_object()
        return Response(cf.TotalsSerializer({"run": run.pk, "totals": proposal_totals(run)}).data)
