"""The project's URLs: each app's pages and API resources, included by name."""

from importlib import import_module

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import APIRootView

from oms.auth import AdminLoginForm

from . import views

# The admin's login is throttled as the login page is (oms.throttling).
admin.site.login_form = AdminLoginForm

# Version 1 of the REST API: every app's resources under one "api" namespace.
API_URLCONFS = (
    "portfolios.api.urls",
    "orchestration.api.urls",
    "trading.api.urls",
    "compliance.api.urls",
)


def _api_root():
    """GET /api/v1/: the list of resources, as the single router of before answered."""
    resources: dict[str, str] = {}
    for urlconf in API_URLCONFS:
        for prefix, _viewset, basename in import_module(urlconf).router.registry:
            resources.setdefault(prefix, f"{basename}-list")
    return APIRootView.as_view(api_root_dict=resources)


api_v1 = [path("", _api_root(), name="api-root")] + [
    path("", include(urlconf)) for urlconf in API_URLCONFS
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("portfolios/", include("portfolios.urls")),
    path("portfolios/runs/", include("orchestration.urls")),
    path("trading/", include("trading.urls")),
    path("compliance/", include("compliance.urls")),
    path("push/", include("oms.push_urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The docs' templates load every script from a file (Content-Security-Policy).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("admin/", admin.site.urls),
]

handler400 = "config.views.bad_request"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
