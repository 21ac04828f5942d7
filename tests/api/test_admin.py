"""Issue item 10: the admin shows every model; the audit trail and the API's stored
answers are read-only there."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

from audit.models import AuditEvent
from oms.models import IdempotencyKey

pytestmark = pytest.mark.django_db

# Edited as part of their parent's page.
INLINED = {"portfolios.ModelTarget"}


def test_every_model_of_the_project_is_in_the_admin():
    missing = [
        model._meta.label
        for model in apps.get_models()
        if model._meta.app_label in {"oms", "portfolios", "trading", "compliance"}
        and model not in admin.site._registry
        and model._meta.label not in INLINED
    ]
    assert missing == []


@pytest.mark.parametrize("model", [AuditEvent, IdempotencyKey])
def test_read_only_in_the_admin(model, ops, rf):
    model_admin = admin.site._registry[model]
    request = rf.get("/admin/")
    request.user = ops
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_operations_browse_the_audit_trail_in_the_admin(ops, client, make_order):
    ops.is_superuser = True
    ops.save(update_fields=["is_superuser"])
    make_order()
    client.force_login(ops)
    response = client.get("/admin/audit/auditevent/")
    assert response.status_code == 200
    assert b"order.created" in response.content
    assert client.get("/admin/oms/idempotencykey/").status_code == 200
