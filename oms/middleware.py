"""Request middleware: where a request came from (for the audit trail), and the
Content-Security-Policy every answer carries."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .context import origin


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith("/api/") else "web"
        if request.path.startswith("/admin/"):
            channel = "admin"
        with origin(channel, request.META.get("REMOTE_ADDR", "")):
            return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Send OMS_CONTENT_SECURITY_POLICY with every answer that has none of its own.

    The pages load scripts and styles from this site only, with no inline script,
    event handler or style attribute (tests/pages/test_csp.py reads every template
    for them, tests/e2e/test_csp.py watches a browser for violations), and HTMX is
    configured to need neither eval nor injected styles (templates/base.html). The
    vendored API documentation (Swagger UI, Redoc) sets element styles from its
    scripts and Redoc searches in a worker: OMS_CSP_PATH_EXCEPTIONS replaces those
    directives under those paths only. Scripts stay this site's everywhere.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = settings.OMS_CONTENT_SECURITY_POLICY
        self.exceptions = [
            (prefix, _with(self.policy, directives))
            for prefix, directives in settings.OMS_CSP_PATH_EXCEPTIONS.items()
        ]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            policy = next(
                (policy for prefix, policy in self.exceptions if request.path.startswith(prefix)),
                self.policy,
            )
            response["Content-Security-Policy"] = policy
        return response


def _with(policy: str, directives: dict[str, str]) -> str:
    """The policy with some directives replaced (or added)."""
    parts = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return "; ".join(f"{name} {value}" for name, value in (parts | directives).items())
