from django.urls import path

from . import views

app_name = "compliance"

urlpatterns = [
    path("audit/", views.audit_list, name="audit-list"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("audit/verify/", views.audit_verify, name="audit-verify"),
    path("rules/", views.rule_list, name="rule-list"),
    path("rules/new/", views.rule_create, name="rule-create"),
    path("rules/<int:pk>/", views.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/toggle/", views.rule_toggle, name="rule-toggle"),
    path("restricted-lists/", views.restricted_list_list, name="restricted-list-list"),
    path("restricted-lists/new/", views.restricted_list_form, name="restricted-list-create"),
    path("restricted-lists/<int:pk>/", views.restricted_list_form, name="restricted-list-edit"),
    path("orders/<int:pk>/checks/", views.order_checks, name="order-checks"),
    path("orders/<int:pk>/override/", views.order_override_request, name="order-override"),
    path("overrides/", views.override_queue, name="override-queue"),
    path("overrides/<int:pk>/decide/", views.override_decide, name="override-decide"),
    path("alerts/", views.alert_list, name="alert-list"),
    path("alerts/<int:pk>/", views.alert_act, name="alert-act"),
]
