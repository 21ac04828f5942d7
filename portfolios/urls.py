from django.urls import path

from . import views

app_name = "portfolios"

urlpatterns = [
    path("", views.portfolio_list, name="portfolio-list"),
    path("<int:pk>/", views.portfolio_detail, name="portfolio-detail"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/new/", views.run_create, name="run-create"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/approve/", views.run_approve, name="run-approve"),
    path("runs/<int:pk>/release/", views.run_release, name="run-release"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
]
