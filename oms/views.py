from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from oms.roles import Action, can


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own first page."""
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
    return (
        redirect("no-role")
        if False
        else HttpResponse(
            "Your account has no role yet: ask operations to add you to a group.", status=403
        )
    )


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
