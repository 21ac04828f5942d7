"""Portfolio manager pages: accounts with drift, an account (models: model_views).

Thin views: parse input, call one service (or read through a selector), render.
"""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from oms.roles import Action, can, may_act_for, require, sees_all_accounts
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
    account = drift.get(portfolio.pk)
    # the forwards' points at the rates the stored value was converted at (the daily FX
    # table the drift refresh reads), not the live spot beside it
    forwards = valuation.open_forwards(portfolio, drift_rates=True)
    points = valuation.forward_points(forwards)
    value = None
    if account is not None and account.get("value") is not None:
        value = Decimal(str(account["value"])) + (points or 0)
    context = {
        "portfolio": portfolio,
        "live": quotes.positions_valued(portfolio),
        "account": account,
        "account_value": value,
        "forward_points": points,
        "drift_error": drift_error,
        "positions": positions,
        "cash_balances": selectors.account_cash(portfolio),
        "open_forwards": forwards,
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


@action_required(Action.PORTFOLIO_VIEW)
def lifecycle(request: HttpRequest) -> HttpResponse:
    """Life-cycle events: what was booked (coupons, redemptions, final settlements,
    exercises, expiries), what is due and not booked (with why, when the books cannot),
    and what falls due next; operations book a day's events again by hand."""
    import datetime as dt

    from django.conf import settings
    from django.contrib import messages
    from django.core.exceptions import ValidationError
    from django.shortcuts import redirect
    from django.utils import timezone

    from .filters import LifecycleEventFilter
    from .models import Portfolio
    from .services import lifecycle as lifecycle_services

    may_book = can(request.user, Action.REFERENCE_MANAGE)
    if request.method == "POST":
        require(request.user, Action.REFERENCE_MANAGE)
        try:
            day = dt.date.fromisoformat(request.POST.get("date", ""))
        except ValueError:
            messages.error(request, "Give the day to book as YYYY-MM-DD.")
            return redirect("portfolios:lifecycle")
        try:
            run = lifecycle_services.lifecycle_book(on=day, actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("portfolios:lifecycle")
        messages.success(
            request, f"{day}: {len(run.booked)} event(s) booked, {len(run.refused)} refused."
        )
        for _, reason in run.refused:
            messages.error(request, reason)
        return redirect("portfolios:lifecycle")
    today = timezone.now().date()
    visible = selectors.portfolios_visible_to(request.user)
    ids = None if sees_all_accounts(request.user) else list(visible.values_list("pk", flat=True))
    since = today - dt.timedelta(days=settings.OMS_LIFECYCLE_CATCH_UP_DAYS)
    pending = _planned(lifecycle_services.lifecycle_due(on=today, since=since, portfolio_ids=ids))
    upcoming = _planned(
        lifecycle_services.lifecycle_due(
            on=today + dt.timedelta(days=30), since=today + dt.timedelta(days=1), portfolio_ids=ids
        )
    )
    codes = dict(
        Portfolio.objects.filter(
            pk__in={row["due"].portfolio_id for row in pending + upcoming}
        ).values_list("pk", "code")
    )
    for row in pending + upcoming:
        row["account"] = codes.get(row["due"].portfolio_id)
    filterset = LifecycleEventFilter(
        request.GET, queryset=selectors.lifecycle_events_visible_to(request.user)
    )
    context = {
        "filterset": filterset,
        "booked": paginate(request, filterset.qs),
        "pending": pending,
        "upcoming": upcoming,
        "today": today,
        "catch_up_days": settings.OMS_LIFECYCLE_CATCH_UP_DAYS,
        "may_book": may_book,
    }
    return render(request, "portfolios/lifecycle.html", context)


def _planned(due: list) -> list[dict]:
    """Each due event with what booking it would do, or why it cannot be booked."""
    from .services.lifecycle import LifecycleRefused, lifecycle_plans

    rows = []
    for item, plan in zip(due, lifecycle_plans(due), strict=True):
        if isinstance(plan, LifecycleRefused):
            rows.append({"due": item, "plan": None, "refused": str(plan)})
        else:
            rows.append({"due": item, "plan": plan, "refused": ""})
    return rows
