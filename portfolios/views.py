"""Portfolio manager pages: accounts with drift, an account, rebalance runs.

Thin views: parse input, call one service (or read through a selector), render.
"""

from __future__ import annotations

import math

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from oms.roles import Action, can
from oms.state import TransitionError
from oms.views import action_required, add_service_errors, paginate, partial_or_page
from trading.models import Order
from trading.selectors import orders_visible_to

from . import selectors, services
from .filters import PortfolioFilter, RebalanceRunFilter
from .forms import RebalanceForm
from .models import ModelPortfolio, Portfolio, RebalanceRun, Security

# Orders still on their way through the desk (a filled order awaits its allocation).
LIVE_ORDER_STATES = frozenset(
    {
        Order.Status.RELEASED,
        Order.Status.WORKING,
        Order.Status.PARTIALLY_FILLED,
        Order.Status.FILLED,
    }
)

# Sort keys of the accounts list: the account's code, or one of its drift figures.
ACCOUNT_SORTS = {"code": None, "value": "value", "cash": "cash_weight", "drift": "drift"}


def _figure(row: dict, name: str) -> float | None:
    value = (row["drift"] or {}).get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _sorted(rows: list[dict], sort: str) -> list[dict]:
    """Rows sorted by the column named in `sort` ("-" for descending); accounts
    without that figure (no model, no price) come last either way."""
    name = ACCOUNT_SORTS.get(sort.lstrip("-"))
    descending = sort.startswith("-")
    if name is None:
        return sorted(rows, key=lambda row: row["portfolio"].code, reverse=descending)
    known = [row for row in rows if _figure(row, name) is not None]
    unknown = [row for row in rows if _figure(row, name) is None]
    known.sort(key=lambda row: _figure(row, name), reverse=descending)
    return known + unknown


def _drift(portfolio_ids) -> tuple[dict[int, dict], str]:
    """Drift figures per account, or none and the reason (a book the engine refuses)."""
    try:
        return selectors.drift_by_account(portfolio_ids), ""
    except ValueError as exc:
        return {}, str(exc)


@action_required(Action.PORTFOLIO_VIEW)
def portfolio_list(request: HttpRequest) -> HttpResponse:
    """Accounts with their drift from the model; filter, sort, pick some to rebalance."""
    filterset = PortfolioFilter(
        request.GET or None, queryset=selectors.portfolios_visible_to(request.user)
    )
    portfolios = list(filterset.qs)
    # Drift is computed for every account the filter keeps, in one vectorised pass,
    # so that sorting by drift covers all of them and not only the page shown.
    drift, drift_error = _drift([p.pk for p in portfolios])
    rows = [{"portfolio": p, "drift": drift.get(p.pk)} for p in portfolios]
    out_of_band_only = request.GET.get("out_of_band") == "1"
    if out_of_band_only:
        rows = [row for row in rows if row["drift"] and row["drift"].get("out_of_band")]
    sort = request.GET.get("sort", "-drift")
    rows = _sorted(rows, sort)
    context = {
        "filterset": filterset,
        "page": paginate(request, rows),
        "sort": sort,
        "out_of_band_only": out_of_band_only,
        "drift_error": drift_error,
        "out_of_band_count": sum(1 for row in rows if (row["drift"] or {}).get("out_of_band")),
        "can_rebalance": can(request.user, Action.REBALANCE_RUN),
    }
    return partial_or_page(
        request,
        "portfolios/portfolio_list.html",
        "portfolios/partials/portfolio_table.html",
        context,
    )


@action_required(Action.PORTFOLIO_VIEW)
def portfolio_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One account: holdings and weights against the model, cash, recent orders."""
    portfolio = get_object_or_404(selectors.portfolios_visible_to(request.user), pk=pk)
    drift, drift_error = _drift([portfolio.pk])
    positions = []
    if not drift_error:
        positions = selectors.drift_of_positions(portfolio.pk)
        securities = Security.objects.in_bulk({row["security"] for row in positions})
        for row in positions:
            row["security"] = securities.get(row["security"])
    context = {
        "portfolio": portfolio,
        "account": drift.get(portfolio.pk),
        "drift_error": drift_error,
        "positions": positions,
        "cash_balances": portfolio.cash_balances.all(),
        "orders": orders_visible_to(request.user).filter(portfolio=portfolio)[:20],
        "can_rebalance": can(request.user, Action.REBALANCE_RUN)
        and portfolio.manager_id == request.user.pk,
        "can_create_order": can(request.user, Action.ORDER_CREATE)
        and portfolio.manager_id == request.user.pk,
    }
    return render(request, "portfolios/portfolio_detail.html", context)


@action_required(Action.PORTFOLIO_VIEW)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = get_object_or_404(ModelPortfolio, pk=pk)
    targets = model.targets.select_related("security")
    portfolios = selectors.portfolios_visible_to(request.user).filter(model=model)
    context = {"model": model, "targets": targets, "portfolios": portfolios}
    return render(request, "portfolios/model_detail.html", context)


# --- Rebalance runs --------------------------------------------------------------


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
    return render(request, "portfolios/run_list.html", {"filterset": filterset, "page": page})


@action_required(Action.REBALANCE_RUN)
def run_create(request: HttpRequest) -> HttpResponse:
    """Choose accounts and parameters; the run computes its proposed orders."""
    mine = Portfolio.objects.filter(manager=request.user, is_active=True).select_related("model")
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
    return render(request, "portfolios/run_form.html", {"form": form}, status=status)


@action_required(Action.REBALANCE_RUN)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Proposed orders and the what-if per account; approve, release or cancel."""
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    running = run.status in (RebalanceRun.Status.DRAFT, RebalanceRun.Status.RUNNING)
    if request.htmx and request.GET.get("progress"):
        # A large run computes in the worker: the page polls until it is done.
        if running:
            return render(request, "portfolios/partials/run_progress.html", {"run": run})
        return HttpResponseClientRefresh()
    orders = run.orders.select_related("portfolio", "security", "block").order_by(
        "portfolio__code", "side", "security__ticker"
    )
    orders_live = any(order.status in LIVE_ORDER_STATES for order in orders)
    if request.htmx and request.GET.get("orders"):
        # Released orders: the page follows them through the desk until allocated.
        context = {"run": run, "orders": orders, "orders_live": orders_live}
        return render(request, "portfolios/partials/run_orders.html", context)
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
    return render(request, "portfolios/run_detail.html", context)


def _run_step(request: HttpRequest, pk: int, service, done: str) -> HttpResponse:
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    try:
        service(actor=request.user, run_id=run.pk)
    except TransitionError as error:
        messages.error(request, f"{run} is {error.current}: it cannot be {error.target} now.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{run} {done}.")
    return redirect("portfolios:run-detail", pk=run.pk)


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
