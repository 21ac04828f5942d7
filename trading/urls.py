from django.urls import path

from . import views

app_name = "trading"

urlpatterns = [
    path("orders/", views.order_list, name="order-list"),
    path("orders/new/", views.order_create, name="order-create"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("orders/<int:pk>/approve/", views.order_approve, name="order-approve"),
    path("orders/<int:pk>/release/", views.order_release, name="order-release"),
    path("orders/<int:pk>/cancel/", views.order_cancel, name="order-cancel"),
    path("blotter/", views.blotter, name="blotter"),
    path("brokers/", views.broker_list, name="broker-list"),
    path("blotter/rows/", views.blotter_rows, name="blotter-rows"),
    path("blocks/<int:pk>/", views.block_detail, name="block-detail"),
    path("blocks/<int:pk>/row/", views.block_row, name="block-row"),
    path("blocks/<int:pk>/route/", views.block_route, name="block-route"),
    path("blocks/<int:pk>/done-for-day/", views.block_done_for_day, name="block-done-for-day"),
    path("routes/<int:pk>/cancel/", views.route_cancel, name="route-cancel"),
    path("routes/<int:pk>/replace/", views.route_replace, name="route-replace"),
    path("routes/<int:pk>/ask-again/", views.route_ask_again, name="route-ask-again"),
    path("routes/<int:pk>/close/", views.route_close_by_hand, name="route-close"),
    path("reconciliation/", views.reconciliation, name="reconciliation"),
    path("reconciliation/corrections/<int:pk>/", views.correction_resolve, name="correction"),
    path("reconciliation/statements/", views.statement_upload, name="statement-upload"),
    path(
        "reconciliation/breaks/<int:pk>/",
        views.statement_break_resolve,
        name="statement-break",
    ),
]
