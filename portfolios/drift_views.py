"""The drift dashboard: every account the user may see with its stored drift figures
(portfolios.services.drift keeps them), filtered, sorted, paged, with totals and the
distribution of drift; and one account's weights against its model, by security and
by asset class. Thin views: the filter, the selectors, render."""

from __future__ import annotations

import json

from django.contrib.messages import get_messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from oms.roles import Action
from oms.views import action_required

from . import selectors
from .filters import DEFAULT_DRIFT_SORT, DriftFilter
from .models import AccountDrift, Security


def _chart_number(value) -> float | None:
    return None if value is None else round(float(value) * 100, 4)


#: How long the rendered results (totals, chart, a page of rows) are kept for the same
#: user, query and stored figures: a refresh or a mark changes the key at once.
DRIFT_RESULTS_SECONDS = 15
RESULTS = "portfolios/partials/drift_results.html"


@action_required(Action.PORTFOLIO_VIEW)
def drift_dashboard(request: HttpRequest) -> HttpResponse:
    """Accounts by drift: filters, sort, totals, the histogram; a page of rows.

    What it answers (the whole page, or the results alone to an HTMX swap or the
    page's poll) is kept (DRIFT_RESULTS_SECONDS) under a key naming the user, the
    query and the figures' version, so that many managers watching (and the page's
    own poll) cost the login's queries and one small query each, and no rendering.
    The results alone are kept apart too (a page with other filters or sort around
    the same results, the poll after the page)."""
    data = request.GET.copy()
    data.setdefault("sort", DEFAULT_DRIFT_SORT)
    partial = bool(
        getattr(request, "htmx", None) and request.htmx.target and not request.htmx.boosted
    )
    version = selectors.drift_version()
    key = _answer_key(request, data, version, partial)
    # A message waiting is shown once: the page that shows it is neither served from
    # the cache nor kept.
    waiting = bool(len(get_messages(request)))
    if key is not None and not waiting:
        body = cache.get(key)
        if body is not None:
            if not partial:
                get_token(request)  # renews the CSRF cookie, as rendering the page does
            return HttpResponse(body)
    filterset = DriftFilter(data, queryset=selectors.drift_rows_visible_to(request.user))
    results_key = selectors.drift_cache_key("results", request.user, sorted(data.lists()), version)
    results = cache.get(results_key)
    if results is None:
        results = render_to_string(RESULTS, _results(request, filterset, data, version), request)
        cache.set(results_key, results, DRIFT_RESULTS_SECONDS)
    if partial:
        response = HttpResponse(results)
    else:
        context = {"filterset": filterset, "sort": data["sort"], "results": mark_safe(results)}
        response = render(request, "portfolios/drift_dashboard.html", context)
    key = _answer_key(request, data, version, partial)  # a first visit's CSRF secret is new
    if key is not None and not waiting and response.status_code == 200:
        cache.set(key, response.content, DRIFT_RESULTS_SECONDS)
    return response


def _answer_key(request, data, version, partial: bool) -> str | None:
    """The cache key of a whole answer. The page carries the CSRF token of this
    browser's secret (the cookie): it is part of the key, and a browser with none yet
    is not served from the cache; the results alone carry no token."""
    secret = None
    if not partial:
        secret = request.META.get("CSRF_COOKIE")
        if not secret:
            return None
    return selectors.drift_cache_key(
        "answer", request.user, (sorted(data.lists()), partial, secret), version
    )


def _results(request, filterset, data, version) -> dict:
    accounts = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    summary = selectors.drift_summary_cached(request.user, filterset.form.data, accounts, version)
    page = selectors.drift_page(accounts, summary["accounts"], request.GET.get("page"))
    chart = {
        "bins": [
            {"x": round((b["from"] + b["to"]) * 50, 4), "y": b["accounts"]}
            for b in summary["histogram"]
        ],
        "width": selectors.DRIFT_BIN * 100,
    }
    return {
        "filterset": filterset,
        "page": page,
        "sort": data["sort"],
        "summary": summary,
        "chart": chart,
        "chart_json": json.dumps(chart),
    }


@action_required(Action.PORTFOLIO_VIEW)
def drift_account(request: HttpRequest, pk: int) -> HttpResponse:
    """One account's weights against its model, by security and by asset class, as
    the engine computes them now (one account: cheap), beside its stored figures."""
    portfolio = get_object_or_404(selectors.drift_rows_visible_to(request.user), pk=pk)
    stored = AccountDrift.objects.filter(portfolio=portfolio).first()
    live = selectors.drift_by_account([portfolio.pk]).get(portfolio.pk) or {}
    positions = []
    if not live.get("reason") and live:
        positions = selectors.drift_of_positions(portfolio.pk)
        securities = Security.objects.in_bulk({row["security"] for row in positions})
        for row in positions:
            row["security"] = securities.get(row["security"])
    by_class = selectors.drift_by_asset_class(
        positions, live.get("cash_weight"), live.get("cash_target")
    )
    ordered = sorted(positions, key=lambda row: -float(row["target"] or 0))
    chart = {
        "securities": {
            "labels": [row["security"].ticker if row["security"] else "?" for row in ordered]
            + ["Cash"],
            "weight": [_chart_number(row["weight"]) for row in ordered]
            + [_chart_number(live.get("cash_weight"))],
            "target": [_chart_number(row["target"]) for row in ordered]
            + [_chart_number(live.get("cash_target"))],
        },
        "classes": {
            "labels": [row["label"] for row in by_class],
            "weight": [_chart_number(row["weight"]) for row in by_class],
            "target": [_chart_number(row["target"]) for row in by_class],
        },
    }
    context = {
        "portfolio": portfolio,
        "stored": stored,
        "live": live,
        "positions": ordered,
        "by_class": by_class,
        "chart": chart,
        "chart_json": json.dumps(chart),
    }
    return render(request, "portfolios/drift_account.html", context)
