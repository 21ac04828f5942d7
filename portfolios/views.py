"""Portfolio manager pages: accounts with drift, an account (models: model_views).

Thin views: parse input, call one service (or read through a selector), render.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from oms.roles import Action, can, may_act_for, require
from oms.views import action_required, paginate, partial_or_page

from . import quotes, selectors, valuation
from .filters import DEFAULT_ACCOUNT_SORT, PortfolioFilter
from .models import Security


def _drift(portfolio_ids) -> tuple[dict[int, dict], str]:
    """Drift figures per account, or none and the reason (a book the engine refuses)."""
    try:
        return selectors.drift_by_account(portfolio_ids), ""
    except ValueError as exc:
        return {}, str(exc)


@action_required(Action.PORTFOLIO_VIEW)
def portfolio_list(request: HttpRequest) -> HttpResponse:
    """Accounts with their drift from the model; filter, sort, pick some to rebalance."""
    data = request.GET.copy()
    data.setdefault("sort", DEFAULT_ACCOUNT_SORT)
    filterset = PortfolioFilter(data, queryset=selectors.portfolios_visible_to(request.user))
    portfolios = list(filterset.qs)
    drift = filterset.drift
    rows = [{"portfolio": p, "drift": drift.get(p.pk)} for p in portfolios]
    sort = data["sort"]
    out_of_band_only = filterset.form.cleaned_data.get("out_of_band") is True
    context = {
        "filterset": filterset,
        "page": paginate(request, rows),
        "sort": sort,
        "out_of_band_only": out_of_band_only,
        "drift_error": filterset.drift_error,
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
        "live": quotes.positions_valued(portfolio),
        "account": drift.get(portfolio.pk),
        "drift_error": drift_error,
        "positions": positions,
        "cash_balances": selectors.account_cash(portfolio),
        "open_forwards": valuation.open_forwards(portfolio),
        "realised": selectors.account_realised(portfolio),
        "can_rebalance": may_act_for(request.user, Action.REBALANCE_RUN, portfolio),
        "can_create_order": may_act_for(request.user, Action.ORDER_CREATE, portfolio),
        "can_see_orders": can(request.user, Action.ORDER_VIEW),
    }
    return render(request, "portfolios/portfolio_detail.html", context)


@action_required(Action.REFERENCE_VIEW)
def quarantine(request: HttpRequest) -> HttpResponse:
    """Quotes held by the checks (portfolios.marketdata.checks), and what was decided;
    operations release one (it is applied) or discard it, with a reason."""
    from django.contrib import messages
    from django.core.exceptions import ValidationError
    from django.shortcuts import redirect

    from oms.state import TransitionError

    from .models import QuarantinedQuote
    from .services import quotes as quote_services

    may_decide = can(request.user, Action.REFERENCE_MANAGE)
    if request.method == "POST":
        require(request.user, Action.REFERENCE_MANAGE)
        decide = {
            "release": quote_services.quarantine_release,
            "discard": quote_services.quarantine_discard,
        }.get(request.POST.get("decision", ""))
        try:
            held = int(request.POST.get("quote", ""))
        except ValueError:
            held = None
        if decide is None or held is None:
            messages.error(request, "Choose a held quote and release or discard.")
        else:
            try:
                row = decide(
                    actor=request.user, quarantine_id=held, reason=request.POST.get("reason", "")
                )
                messages.success(
                    request, f"{row.symbol} on {row.venue}: {row.get_status_display().lower()}."
                )
            except QuarantinedQuote.DoesNotExist:
                messages.error(request, "No such held quote.")
            except TransitionError:
                messages.error(request, "That quote was already decided.")
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
        return redirect("portfolios:quarantine")
    held = QuarantinedQuote.objects.filter(status=QuarantinedQuote.Status.HELD)
    decided = QuarantinedQuote.objects.exclude(status=QuarantinedQuote.Status.HELD).select_related(
        "decided_by"
    )
    context = {
        "held": paginate(request, held),
        "decided": decided[:50],
        "may_decide": may_decide,
    }
    return render(request, "portfolios/quarantine.html", context)
