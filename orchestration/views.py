"""Rebalance run pages: choose accounts and parameters, review the proposed
orders and the what-if, approve, release or cancel.

Thin views: parse input, call one service (or read through a selector), render.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from oms.roles import Action
from oms.views import action_required, add_service_errors, paginate, service_step
from portfolios import selectors
from portfolios.models import RebalanceRun
from trading.models import Order

from . import services
from .filters import RebalanceRunFilter
from .forms import RebalanceForm


@action_required(Action.REBALANCE_RUN)
def run_list(request: HttpRequest) -> HttpResponse:
    runs = selectors.rebalance_runs_visible_to(request.user).annotate(
        order_count=Count("orders", distinct=True)
    )
    runs = runs.order_by("-created_at", "-pk")
    filterset = RebalanceRunFilter(
        request.GET or None, queryset=runs.prefetch_related("portfolios")
    )
    page = paginate(request, filterset.qs)
    return render(request, "orchestration/run_list.html", {"filterset": filterset, "page": page})


@action_required(Action.REBALANCE_RUN)
def run_create(request: HttpRequest) -> HttpResponse:
    """Choose accounts and parameters; the run computes its proposed orders."""
    mine = selectors.portfolios_for_action(request.user, Action.REBALANCE_RUN)
    if request.method == "POST":
        form = RebalanceForm(request.POST, portfolios=mine)
        if form.is_valid():
            try:
                run = services.rebalance_run_create(
                    actor=request.user,
                    portfolios=list(form.cleaned_data["portfolios"]),
                    parameters=form.parameters(),
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                if run.status == RebalanceRun.Status.FAILED:
                    messages.error(request, f"{run} failed: {run.error}")
                else:
                    messages.success(request, f"{run} computed its proposed orders.")
                return redirect(run)
        status = 422
    else:
        form = RebalanceForm(
            initial={"portfolios": request.GET.getlist("portfolios")}, portfolios=mine
        )
        status = 200
    return render(request, "orchestration/run_form.html", {"form": form}, status=status)


@action_required(Action.REBALANCE_RUN)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Proposed orders and the what-if per account; approve, release or cancel."""
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    running = run.status in (RebalanceRun.Status.DRAFT, RebalanceRun.Status.RUNNING)
    if request.htmx and request.GET.get("progress"):
        # A large run computes in the worker: the page polls until it is done.
        if running:
            return render(request, "orchestration/partials/run_progress.html", {"run": run})
        return HttpResponseClientRefresh()
    orders = run.orders.select_related("portfolio", "security", "block").order_by(
        "portfolio__code", "side", "security__ticker"
    )
    orders_live = any(order.status in Order.LIVE_ON_DESK_STATES for order in orders)
    if request.htmx and request.GET.get("orders"):
        # Released orders: the page follows them through the desk until allocated.
        context = {"run": run, "orders": orders, "orders_live": orders_live}
        return render(request, "orchestration/partials/run_orders.html", context)
    summary = sorted(run.summary.items())
    context = {
        "orders_live": orders_live,
        "run": run,
        "running": running,
        "orders": orders,
        "summary": summary,
        "skipped": sorted(run.skipped.items()),
        "portfolios": run.portfolios.all(),
        "can_approve": run.status == RebalanceRun.Status.PROPOSED,
        "can_release": run.status == RebalanceRun.Status.APPROVED,
        "can_cancel": run.status in (RebalanceRun.Status.PROPOSED, RebalanceRun.Status.APPROVED),
    }
    return render(request, "orchestration/run_detail.html", context)


def _run_step(request: HttpRequest, pk: int, service, done: str) -> HttpResponse:
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    service_step(request, lambda: service(actor=request.user, run_id=run.pk), f"{run} {done}.")
    return redirect("runs:detail", pk=run.pk)


@require_POST
@action_required(Action.REBALANCE_RUN)
def run_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _run_step(
        request, pk, services.rebalance_run_approve, "approved: its orders are approved"
    )


@require_POST
@action_required(Action.REBALANCE_RUN)
def run_release(request: HttpRequest, pk: int) -> HttpResponse:
    return _run_step(
        request, pk, services.rebalance_run_release, "released: its orders are on the trading desk"
    )


@require_POST
@action_required(Action.REBALANCE_RUN)
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _run_step(request, pk, services.rebalance_run_cancel, "cancelled")
