"""The project's URLs: each app's pages and API resources, included by name."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

# Version 1 of the REST API: every app's resources under one "api" namespace.
api_v1 = [
    path("", include("portfolios.api.urls")),
    path("", include("orchestration.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("compliance.api.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("portfolios/", include("portfolios.urls")),
    path("portfolios/runs/", include("orchestration.urls")),
    path("trading/", include("trading.urls")),
    path("compliance/", include("compliance.urls")),
    path("push/", include("oms.push_urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
]
