from django.urls import path

from . import drift_views, exposure_views, model_views, views

app_name = "portfolios"

urlpatterns = [
    path("", views.portfolio_list, name="portfolio-list"),
    path("<int:pk>/", views.portfolio_detail, name="portfolio-detail"),
    path("models/", model_views.model_list, name="model-list"),
    path("models/new/", model_views.model_edit, name="model-new"),
    path("models/<int:pk>/", model_views.model_detail, name="model-detail"),
    path("models/<int:pk>/edit/", model_views.model_edit, name="model-edit"),
    path("models/<int:pk>/import/", model_views.model_import, name="model-import"),
    path("models/<int:pk>/targets.csv", model_views.model_export, name="model-export"),
    path("models/<int:pk>/copy/", model_views.model_copy, name="model-copy"),
    path("models/<int:pk>/assign/", model_views.model_assign, name="model-assign"),
    path("quarantine/", views.quarantine, name="quarantine"),
    path("lifecycle/", views.lifecycle, name="lifecycle"),
    path("drift/", drift_views.drift_dashboard, name="drift-dashboard"),
    path("drift/<int:pk>/", drift_views.drift_account, name="drift-account"),
    path("exposure/", exposure_views.exposure, name="exposure"),
    path("exposure/<str:table>.csv", exposure_views.exposure_csv, name="exposure-csv"),
]
