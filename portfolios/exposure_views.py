"""The firm's exposure: live totals by manager and model and the exposure by asset
class, currency, sector and country over the accounts the user may see (a portfolio
manager: their own; compliance and operations: the firm), with CSV of each table.
Thin views: the filter, the selector (portfolios.valuation), render."""

from __future__ import annotations

import csv
import io
import json

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from oms.roles import Action, sees_all_accounts
from oms.views import action_required

from . import selectors
from .filters import ExposureFilter
from .valuation import COUNTS, DIMENSIONS, FIGURES, LEVELS, BookValuation, book_valuation

RESULTS = "portfolios/partials/exposure_results.html"
#: A spreadsheet runs a cell that starts with one of these as a formula: a label that
#: does goes out with a leading apostrophe (shown as text).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def exposure_of(user, params) -> tuple[ExposureFilter, BookValuation | None]:
    """The filter over the accounts the user may see, and their valuation (None when
    a filter is not valid: the filter's errors say why)."""
    filterset = ExposureFilter(params, queryset=selectors.portfolios_visible_to(user))
    if not filterset.is_valid():
        return filterset, None
    return filterset, book_valuation(filterset.qs)


def _chart(rows: list[dict]) -> str:
    return json.dumps(
        {
            "labels": [row["label"] for row in rows],
            "values": [float(row["market_value"]) for row in rows],
            "weights": [None if row["weight"] is None else float(row["weight"]) for row in rows],
            "incomplete": [row["incomplete"] for row in rows],
        }
    )


@action_required(Action.PORTFOLIO_VIEW)
def exposure(request: HttpRequest) -> HttpResponse:
    """Totals for the firm (a PM: their accounts), by manager and by model, and the
    breakdowns with their charts; the results alone for the page's own refresh."""
    filterset, valuation = exposure_of(request.user, request.GET)
    context = {
        "filterset": filterset,
        "scope": "Firm" if sees_all_accounts(request.user) else "Your accounts",
        "query": request.GET.urlencode(),
    }
    if valuation is not None:
        context |= {
            "valuation": valuation,
            "firm": valuation.totals("firm")[0],
            "managers": valuation.totals("manager"),
            "models": valuation.totals("model"),
            "breakdowns": [
                {"key": key, "label": label, "rows": rows, "chart": _chart(rows)}
                for key, label in DIMENSIONS.items()
                for rows in [valuation.exposure(key)]
            ],
        }
    htmx = getattr(request, "htmx", None)
    if htmx and htmx.target and not htmx.boosted:
        return render(request, RESULTS, context)
    return render(request, "portfolios/exposure.html", context)


def _cell(value) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


@action_required(Action.PORTFOLIO_VIEW)
def exposure_csv(request: HttpRequest, table: str) -> HttpResponse:
    """One table of the page as CSV, with the page's filters: a breakdown (asset_class,
    currency, sector, country) or the totals of a level (firm, manager, model, account)."""
    if table not in DIMENSIONS and table not in LEVELS:
        raise Http404(f"No table {table}.")
    filterset, valuation = exposure_of(request.user, request.GET)
    if valuation is None:
        errors = "; ".join(f"{f}: {' '.join(e)}" for f, e in filterset.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    flags = [*COUNTS, "incomplete"]
    if table in DIMENSIONS:
        header = [table, "valuation_currency", "market_value", "weight", *flags]
        rows = [
            [row["label"], row["currency"], row["market_value"], row["weight"]]
            + [row[f] for f in flags]
            for row in valuation.exposure(table)
        ]
    elif table == "account":
        header = ["account", "name", "manager", "model", "valuation_currency", *FIGURES]
        header += ["base_currency"]
        header += [f"{f}_base" for f in FIGURES] + flags
        rows = [
            [row["code"], row["name"], row["manager"], row["model"], row["currency"]]
            + [row[f] for f in FIGURES]
            + [row["base_currency"]]
            + [row["base"][f] for f in FIGURES]
            + [row[f] for f in flags]
            for row in valuation.totals("account")
        ]
    else:
        header = [table, "accounts", "valuation_currency", *FIGURES, *flags]
        rows = [
            [row["label"], row["accounts"], row["currency"]]
            + [row[f] for f in FIGURES]
            + [row[f] for f in flags]
            for row in valuation.totals(table)
        ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="exposure-{table}.csv"'
    return response
