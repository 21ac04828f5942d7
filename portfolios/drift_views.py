"""The drift dashboard: every account the user may see with its stored drift figures
(portfolios.services.drift keeps them), filtered, sorted, paged, with totals and the
distribution of drift; and one account's weights against its model, by security and
by asset class. Thin views: the filter, the selectors, render."""

from __future__ import annotations

import json

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
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

    The results are rendered from the stored figures and kept (DRIFT_RESULTS_SECONDS)
    under a key naming the user, the query and the figures' version, so that many
    managers watching (and the page's own poll) cost one small query each."""
    data = request.GET.copy()
    data.setdefault("sort", DEFAULT_DRIFT_SORT)
    filterset = DriftFilter(data, queryset=selectors.drift_rows_visible_to(request.user))
    version = selectors.drift_version()
    key = selectors.drift_cache_key("results", request.user, sorted(data.lists()), version)
    results = cache.get(key)
    if results is None:
        results = render_to_string(RESULTS, _results(request, filterset, data, version), request)
        cache.set(key, results, DRIFT_RESULTS_SECONDS)
    if getattr(request, "htmx", None) and request.htmx.target and not request.htmx.boosted:
        return HttpResponse(results)
    context = {"filterset": filterset, "sort": data["sort"], "results": mark_safe(results)}
    return render(request, "portfolios/drift_dashboard.html", context)


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
