"""The project's own pages: each role's landing page, the health check, and the
error answers of addresses no view matched (JSON under /api/, a page elsewhere)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults

from oms import throttling
from oms.api.parsers import too_large
from oms.auth import LoginForm
from oms.roles import Action, can
from oms.templatetags.oms_format import asset_url


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


class LoginView(auth_views.LoginView):
    """Django's login page, throttled: a refused login is a 429 that says when to retry."""

    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.is_throttled():
            response.status_code = 429
            response["Retry-After"] = str(throttling.retry_after())
        return response


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask every site for /favicon.ico, the admin's pages name none: the mark."""
    return redirect(asset_url("img/favicon.svg"))


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """A request Django refused before any view (a body over the size limit, too many
    fields, a forged host): JSON under /api/, as every other API error."""
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            detail = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        else:
            detail = "Bad request."
        return JsonResponse({"detail": detail}, status=400)
    return defaults.bad_request(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its security token, or with a stale one (the page was open
    across a logout, or cookies are off): said so, not as Django's "CSRF verification
    failed" page."""
    message = (
        "This form has expired or was sent from elsewhere, so it was not accepted: "
        "reload the page and send it again (cookies must be allowed for this site)."
    )
    if _is_api(request):
        return JsonResponse({"detail": message}, status=403)
    return render(request, "403.html", {"exception": message}, status=403)


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """An address under /api/ that names no resource (an id that is not a number, a
    path that does not exist) is answered as the API answers, in JSON."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """The API's clients read JSON even when the server fails."""
    if _is_api(request):
        return JsonResponse(
            {"detail": "The server could not answer this request; it has been logged."},
            status=500,
        )
    return defaults.server_error(request)
