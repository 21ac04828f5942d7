from django.urls import path

from . import review_views, views

app_name = "runs"

urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_create, name="create"),
    path("<int:pk>/", views.run_detail, name="detail"),
    path("<int:pk>/approve/", views.run_approve, name="approve"),
    path("<int:pk>/release/", views.run_release, name="release"),
    path("<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("<int:pk>/rerun/", views.run_rerun, name="rerun"),
    path("<int:pk>/orders/<int:order_id>/drop/", views.run_order_drop, name="order-drop"),
    path("<int:pk>/orders/<int:order_id>/edit/", review_views.run_order_edit, name="order-edit"),
    path("cash-flows/", review_views.cash_flow_list, name="cash-flows"),
    path("cash-flows/new/", review_views.cash_flow_create, name="cash-flow-create"),
    path("cash-flows/import/", review_views.cash_flow_import, name="cash-flow-import"),
    path("cash-flows/<int:pk>/cancel/", review_views.cash_flow_cancel, name="cash-flow-cancel"),
    path(
        "accounts/<int:pk>/cash-flows/",
        review_views.account_cash_flows,
        name="account-cash-flows",
    ),
    path("accounts/<int:pk>/raise-cash/", review_views.raise_cash, name="raise-cash"),
]
