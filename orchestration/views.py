"""Rebalance run pages: choose accounts and parameters, review the proposed
orders and the what-if, approve, release or cancel.

Thin views: parse input, call one service (or read through a selector), render.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
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
from .models import ProposalCheck
from .selectors import proposal_totals


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
        form = RebalanceForm(request.POST, portfolios=mine, user=request.user)
        if form.is_valid():
            try:
                run = services.rebalance_run_create(
                    actor=request.user,
                    portfolios=form.cleaned_data["accounts"],
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
            initial={"portfolios": request.GET.getlist("portfolios")},
            portfolios=mine,
            user=request.user,
        )
        status = 200
    return render(request, "orchestration/run_form.html", {"form": form}, status=status)


ORDER_SORTS = {
    "account": ("portfolio__code", "security__ticker"),
    "security": ("security__ticker", "portfolio__code"),
    "side": ("side", "security__ticker", "portfolio__code"),
    "value": ("est_value", "pk"),
    "-value": ("-est_value", "pk"),
}


def _run_orders(run: RebalanceRun, params) -> tuple:
    """The run's orders as the proposal review filters and sorts them."""
    orders = run.orders.select_related("portfolio", "security", "block", "proposal_check")
    filters = {
        "account": "portfolio__code__iexact",
        "security": "security__ticker__iexact",
        "side": "side",
        "check": "proposal_check__status",
        "status": "status",
    }
    chosen = {}
    for name, lookup in filters.items():
        value = (params.get(name) or "").strip()
        if value:
            orders = orders.filter(**{lookup: value})
            chosen[name] = value
    sort = params.get("sort") if params.get("sort") in ORDER_SORTS else "account"
    orders = orders.annotate(
        est_value=F("quantity") * F("estimated_price") * F("security__multiplier")
    )
    return orders.order_by(*ORDER_SORTS[sort]), chosen, sort


@action_required(Action.REBALANCE_RUN)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Proposed orders and the what-if per account; approve, release or cancel. A
    large run shows its progress while its chunks compute."""
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    running = run.status in (RebalanceRun.Status.DRAFT, RebalanceRun.Status.RUNNING)
    if request.htmx and request.GET.get("progress"):
        # A large run computes in the workers: the page polls until it is done.
        if running:
            return render(request, "orchestration/partials/run_progress.html", _progress(run))
        return HttpResponseClientRefresh()
    orders, chosen, sort = _run_orders(run, request.GET)
    page = paginate(request, orders, per_page=ORDERS_PER_PAGE)
    orders_live = (
        run.status == RebalanceRun.Status.RELEASED
        and run.orders.filter(status__in=Order.LIVE_ON_DESK_STATES).exists()
    )
    base = {"run": run, "orders": page.object_list, "page": page, "orders_live": orders_live}
    if request.htmx and request.GET.get("orders"):
        # Released orders: the page follows them through the desk until allocated.
        return render(request, "orchestration/partials/run_orders.html", base)
    summary = Paginator(sorted(run.summary.items()), SUMMARY_PER_PAGE).get_page(
        request.GET.get("wpage")
    )
    checks = dict(
        ProposalCheck.objects.filter(run=run)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    context = (
        base
        | _progress(run)
        | {
            "running": running,
            "summary": summary,
            "skipped": sorted(run.skipped.items())[:SUMMARY_PER_PAGE],
            "skipped_count": len(run.skipped),
            "checks": checks,
            "chosen": chosen,
            "sort": sort,
            "sorts": list(ORDER_SORTS),
            "check_choices": ProposalCheck.Status.choices,
            "draft_count": run.orders.filter(status=Order.Status.DRAFT).count(),
            "totals": [] if running else proposal_totals(run),
            "gains": _gains(run.summary),
            "can_approve": run.status == RebalanceRun.Status.PROPOSED,
            "can_release": run.status == RebalanceRun.Status.APPROVED,
            "can_rerun": run.status
            in (
                RebalanceRun.Status.PROPOSED,
                RebalanceRun.Status.APPROVED,
                RebalanceRun.Status.FAILED,
            ),
            "can_cancel": run.status
            in (
                RebalanceRun.Status.RUNNING,
                RebalanceRun.Status.PROPOSED,
                RebalanceRun.Status.APPROVED,
            ),
        }
    )
    return render(request, "orchestration/run_detail.html", context)


ORDERS_PER_PAGE = 200


def _gains(summary: dict) -> list[dict]:
    """The estimated realised gains of the run, short and long term, per base currency."""
    totals: dict[str, dict] = {}
    for figures in summary.values():
        row = totals.setdefault(
            figures.get("base_currency") or "",
            {"short": 0.0, "long": 0.0, "total": 0.0, "accounts": 0},
        )
        row["short"] += figures.get("short_term_gain") or 0.0
        row["long"] += figures.get("long_term_gain") or 0.0
        row["total"] += figures.get("realised_gain") or 0.0
        row["accounts"] += 1
    return [{"currency": currency, **row} for currency, row in sorted(totals.items())]


SUMMARY_PER_PAGE = 100


def _progress(run: RebalanceRun) -> dict:
    """Accounts done, orders proposed, skipped, elapsed and the time left (estimated
    from the rate so far), and the chunks sent to the workers again."""
    end = run.finished_at or timezone.now()
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    left = None
    if run.accounts_done and run.accounts_total > run.accounts_done and elapsed:
        left = elapsed / run.accounts_done * (run.accounts_total - run.accounts_done)
    return {
        "run": run,
        # what the recovery sweep sent to the workers again, and why (few rows)
        "reissues": list(run.reissues.all()),
        "elapsed": elapsed,
        "left": left,
        "done_pct": (100.0 * run.accounts_done / run.accounts_total) if run.accounts_total else 0,
    }


def _run_step(request: HttpRequest, pk: int, service, done: str) -> HttpResponse:
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    service_step(request, lambda: service(actor=request.user, run_id=run.pk), f"{run} {done}.")
    return redirect("runs:detail", pk=run.pk)


@require_POST
@action_required(Action.REBALANCE_RUN)
def run_approve(request: HttpRequest, pk: int) -> HttpResponse:
    if request.POST.get("selected"):
        # Approve the ticked orders only: the run's other drafts are dropped.
        try:
            chosen = [int(value) for value in request.POST.getlist("orders")]
        except ValueError:
            chosen = []

        def approve(*, actor, run_id):
            return services.rebalance_run_approve(actor=actor, run_id=run_id, order_ids=chosen)

        return _run_step(
            request, pk, approve, f"approved: {len(chosen)} selected orders, the rest dropped"
        )
    return _run_step(
        request, pk, services.rebalance_run_approve, "approved: its orders are approved"
    )


@require_POST
@action_required(Action.REBALANCE_RUN)
def run_order_drop(request: HttpRequest, pk: int, order_id: int) -> HttpResponse:
    def drop(*, actor, run_id):
        return services.rebalance_run_order_drop(actor=actor, run_id=run_id, order_id=order_id)

    return _run_step(request, pk, drop, f"dropped order #{order_id}")


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


@require_POST
@action_required(Action.REBALANCE_RUN)
def run_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the proposal back: this run is cancelled, a new one computes again."""
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    outcome = {}

    def rerun():
        outcome["run"] = services.rebalance_run_rerun(actor=request.user, run_id=run.pk)
        return outcome["run"]

    service_step(request, rerun, lambda again: f"{run} sent back: {again} computes it again.")
    return redirect(outcome.get("run") or run)
