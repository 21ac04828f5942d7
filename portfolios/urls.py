from django.urls import path

from . import drift_views, views

app_name = "portfolios"

urlpatterns = [
    path("", views.portfolio_list, name="portfolio-list"),
    path("<int:pk>/", views.portfolio_detail, name="portfolio-detail"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
    path("quarantine/", views.quarantine, name="quarantine"),
    path("drift/", drift_views.drift_dashboard, name="drift-dashboard"),
    path("drift/<int:pk>/", drift_views.drift_account, name="drift-account"),
]
