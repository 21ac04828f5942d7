"""Pages of cash flows (enter one, a CSV of them, cancel), raise cash for an account,
and the proposal review's edit of a quantity. Thin: a form parses, one service acts."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from oms.roles import Action, can
from oms.views import action_required, add_service_errors, paginate, service_step
from portfolios import selectors
from trading.models import Order

from . import services
from .cashflows import csv_text
from .forms import CashFlowForm, CashFlowImportForm, OrderEditForm, RaiseCashForm
from .models import CashFlow
from .selectors import account_what_if


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _flows(request: HttpRequest):
    flows = CashFlow.objects.select_related("portfolio", "run", "created_by").filter(
        portfolio__in=selectors.portfolios_visible_to(request.user)
    )
    code = (request.GET.get("portfolio") or "").strip()
    if code:
        flows = flows.filter(portfolio__code__iexact=code)
    status = (request.GET.get("status") or "").strip()
    if status in CashFlow.Status.values:
        flows = flows.filter(status=status)
    return flows.order_by("-pk"), {"portfolio": code, "status": status}


def _list_page(request, *, form=None, upload=None, status=200) -> HttpResponse:
    mine = selectors.portfolios_for_action(request.user, Action.REBALANCE_RUN)
    flows, chosen = _flows(request)
    context = {
        "page": paginate(request, flows),
        "chosen": chosen,
        "status_choices": CashFlow.Status.choices,
        "form": form or CashFlowForm(portfolios=mine),
        "upload": upload or CashFlowImportForm(),
        "can_enter": can(request.user, Action.REBALANCE_RUN),
    }
    return render(request, "orchestration/cash_flows.html", context, status=status)


@action_required(Action.PORTFOLIO_VIEW)
def cash_flow_list(request: HttpRequest) -> HttpResponse:
    """Every cash flow of the accounts you see; enter one or a CSV of them."""
    return _list_page(request)


@action_required(Action.PORTFOLIO_VIEW)
def account_cash_flows(request: HttpRequest, pk: int) -> HttpResponse:
    """An account's cash flows, a form to enter one, and raise cash (on the account page)."""
    portfolio = get_object_or_404(selectors.portfolios_visible_to(request.user), pk=pk)
    mine = selectors.portfolios_for_action(request.user, Action.REBALANCE_RUN)
    may_act = mine.filter(pk=portfolio.pk).exists()
    flows = CashFlow.objects.filter(portfolio=portfolio).select_related("run").order_by("-pk")
    return render(
        request,
        "orchestration/partials/account_cash_flows.html",
        {
            "portfolio": portfolio,
            "flows": flows[:20],
            "may_act": may_act,
            "form": CashFlowForm(
                portfolios=mine,
                initial={"portfolio": portfolio.pk, "currency": portfolio.base_currency},
            ),
            "raise_form": RaiseCashForm(initial={"currency": portfolio.base_currency}),
        },
    )


@require_POST
@action_required(Action.REBALANCE_RUN)
def cash_flow_create(request: HttpRequest) -> HttpResponse:
    mine = selectors.portfolios_for_action(request.user, Action.REBALANCE_RUN)
    form = CashFlowForm(request.POST, portfolios=mine)
    if form.is_valid():
        data = form.cleaned_data
        try:
            flow = services.cash_flow_create(
                actor=request.user,
                portfolio=data["portfolio"],
                kind=data["kind"],
                currency=data["currency"],
                amount=data["amount"],
                note=data["note"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                f"{flow.get_kind_display()} of {flow.amount:,.2f} {flow.currency} entered for "
                f"{flow.portfolio.code}: the account's next rebalance uses it.",
            )
            return redirect(_back(request, "runs:cash-flows"))
    return _list_page(request, form=form, status=422)


@require_POST
@action_required(Action.REBALANCE_RUN)
def cash_flow_import(request: HttpRequest) -> HttpResponse:
    upload = CashFlowImportForm(request.POST, request.FILES)
    if upload.is_valid():
        try:
            flows = services.cash_flows_import(
                actor=request.user, text=csv_text(upload.cleaned_data["file"])
            )
        except ValidationError as error:
            add_service_errors(upload, error)
        else:
            messages.success(request, f"{len(flows)} cash flows entered.")
            return redirect("runs:cash-flows")
    return _list_page(request, upload=upload, status=422)


@require_POST
@action_required(Action.REBALANCE_RUN)
def cash_flow_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    service_step(
        request,
        lambda: services.cash_flow_cancel(actor=request.user, cash_flow_id=pk),
        f"Cash flow #{pk} cancelled.",
    )
    return redirect(_back(request, "runs:cash-flows"))


@action_required(Action.REBALANCE_RUN)
def raise_cash(request: HttpRequest, pk: int) -> HttpResponse:
    """Raise cash in one account: a run that only sells, what drifts most first."""
    portfolio = get_object_or_404(
        selectors.portfolios_for_action(request.user, Action.REBALANCE_RUN), pk=pk
    )
    pending = CashFlow.objects.filter(portfolio=portfolio, status=CashFlow.Status.PENDING)
    if request.method == "POST":
        form = RaiseCashForm(request.POST)
        if form.is_valid():
            try:
                run = services.rebalance_raise_cash(
                    actor=request.user,
                    portfolio=portfolio,
                    amount=form.cleaned_data["amount"] or None,
                    currency=form.cleaned_data["currency"] or None,
                    parameters=form.parameters(),
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                skipped = run.skipped.get(portfolio.code)
                if run.error:
                    messages.error(request, f"{run} failed: {run.error}")
                elif skipped:
                    messages.error(
                        request,
                        f"{run} cannot raise the cash in {portfolio.code}: {skipped}. "
                        "A withdrawal entered here is cancelled.",
                    )
                else:
                    messages.success(request, f"{run} proposes the sells that raise the cash.")
                return redirect(run)
        status = 422
    else:
        form = RaiseCashForm(initial={"currency": portfolio.base_currency})
        status = 200
    return render(
        request,
        "orchestration/raise_cash.html",
        {"portfolio": portfolio, "form": form, "pending": pending},
        status=status,
    )


@action_required(Action.REBALANCE_RUN)
def run_order_edit(request: HttpRequest, pk: int, order_id: int) -> HttpResponse:
    """Change a proposed order's quantity: the account's what-if and pre-trade check
    are done again; an edit that breaks a rule of the account is refused."""
    run = get_object_or_404(selectors.rebalance_runs_visible_to(request.user), pk=pk)
    order = get_object_or_404(
        run.orders.select_related("portfolio", "security"), pk=order_id, status=Order.Status.DRAFT
    )
    if request.method == "POST":
        form = OrderEditForm(request.POST)
        if form.is_valid():
            try:
                services.rebalance_run_order_edit(
                    actor=request.user,
                    run_id=run.pk,
                    order_id=order.pk,
                    quantity=form.cleaned_data["quantity"],
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    f"Order #{order.pk} now {order.get_side_display().lower()}s "
                    f"{form.cleaned_data['quantity'].normalize():f} {order.security.ticker}; "
                    f"{order.portfolio.code}'s what-if and pre-trade check are updated.",
                )
                return redirect(f"{run.get_absolute_url()}?account={order.portfolio.code}")
        status = 422
    else:
        form = OrderEditForm(initial={"quantity": order.quantity.normalize()})
        status = 200
    return render(
        request,
        "orchestration/order_edit.html",
        {
            "run": run,
            "order": order,
            "form": form,
            "figures": run.summary.get(order.portfolio.code, {}),
            "weights": _weights(run, order),
        },
        status=status,
    )


def _weights(run, order) -> list[dict]:
    """The account's proposed orders with their weights before and after, as proposed
    (measured on the book as it stands)."""
    orders = list(
        run.orders.select_related("security")
        .filter(portfolio=order.portfolio, status=Order.Status.DRAFT)
        .order_by("security__ticker")
    )
    try:
        proposed, _ = account_what_if(run, order.portfolio, orders)
    except ValueError:
        return []
    by_security = {row["security"]: row for row in proposed.trades.to_dict("records")}
    return [{"order": o, **by_security.get(o.security_id, {})} for o in orders]
