"""The project's own pages: each role's landing page, and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from oms.roles import Action, can


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own first page; a user without a role is told so."""
    user = request.user
    for action, url in (
        (Action.REBALANCE_RUN, "portfolios:portfolio-list"),
        (Action.BLOCK_ROUTE, "trading:blotter"),
        (Action.AUDIT_VIEW, "compliance:audit-list"),
        (Action.PORTFOLIO_VIEW, "portfolios:portfolio-list"),
        (Action.ORDER_VIEW, "trading:order-list"),
    ):
        if can(user, action):
            return redirect(url)
    return render(request, "no_role.html", status=403)


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
