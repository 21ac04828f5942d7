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
INLINED = {"portfolios.ModelTarget", "portfolios.ModelSleeve"}


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


def test_operations_browse_the_audit_trail_in_the_admin(superuser_client, make_order):
    make_order()
    response = superuser_client.get("/admin/audit/auditevent/")
    assert response.status_code == 200
    assert b"order.created" in response.content
    assert superuser_client.get("/admin/oms/idempotencykey/").status_code == 200


# --- Changes made in the admin are checked and audited -------------------------------


def _model_form(model, targets, cash_weight="0.05"):
    """The admin's change form of a model portfolio, with its target inline."""
    data = {
        "name": model.name,
        "description": model.description,
        "cash_weight": cash_weight,
        "band_absolute": str(model.band_absolute),
        "band_relative": str(model.band_relative),
        "owner": "",
        "targets-TOTAL_FORMS": str(len(targets)),
        "targets-INITIAL_FORMS": str(model.targets.count()),
        "targets-MIN_NUM_FORMS": "0",
        "targets-MAX_NUM_FORMS": "1000",
    }
    existing = {t.security_id: t.pk for t in model.targets.all()}
    for i, (security, weight) in enumerate(targets):
        data[f"targets-{i}-security"] = str(security.pk)
        data[f"targets-{i}-weight"] = weight
        data[f"targets-{i}-model"] = str(model.pk)
        if security.pk in existing:
            data[f"targets-{i}-id"] = str(existing[security.pk])
    return data


def test_the_admin_shows_a_model_but_its_targets_change_only_through_the_service(
    superuser_client, book
):
    """One place for the sum-to-100% rule: the model's page and the API, through
    portfolios.services.models; the admin shows the model and refuses a change."""
    model, s = book["model"], book["securities"]
    url = f"/admin/portfolios/modelportfolio/{model.pk}/change/"
    before = dict(model.targets.values_list("security__ticker", "weight"))
    events = AuditEvent.objects.count()
    page = superuser_client.get(url)
    assert page.status_code == 200
    assert b"AAA" in page.content
    targets = [(s["AAA"], "0.35"), (s["BBB"], "0.35"), (s["CCC"], "0.15"), (s["DDD"], "0.10")]
    response = superuser_client.post(url, _model_form(model, targets))
    assert response.status_code == 403
    assert dict(model.targets.values_list("security__ticker", "weight")) == before
    assert AuditEvent.objects.count() == events


def test_granting_a_role_in_the_admin_is_audited(superuser_client, pm):
    from django.contrib.auth.models import Group

    traders = Group.objects.get_or_create(name="Traders")[0]
    managers = Group.objects.get_or_create(name="Portfolio managers")[0]
    data = {
        "username": pm.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "groups": [str(managers.pk), str(traders.pk)],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    response = superuser_client.post(f"/admin/auth/user/{pm.pk}/change/", data)
    assert response.status_code == 302, response.content[:3000]
    event = AuditEvent.objects.get(kind="user.changed", object_id=str(pm.pk))
    assert event.before["groups"] == ["Portfolio managers"]
    assert event.after["groups"] == ["Portfolio managers", "Traders"]


def test_minting_a_token_for_someone_in_the_admin_is_audited(superuser_client, trader):
    from rest_framework.authtoken.models import Token

    response = superuser_client.post("/admin/authtoken/tokenproxy/add/", {"user": trader.pk})
    assert response.status_code == 302
    token = Token.objects.get(user=trader)
    event = AuditEvent.objects.get(kind="token.issued")
    assert event.after == {"user": "trader", "created": event.after["created"]}
    assert token.key not in str(event.after)


def test_a_password_changed_in_the_admin_is_audited_without_the_password(superuser_client, trader):
    response = superuser_client.post(
        f"/admin/auth/user/{trader.pk}/password/",
        {"password1": "a-new-Secret-42", "password2": "a-new-Secret-42", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(kind="user.changed", object_id=str(trader.pk))
    assert event.before["password_set_at"] != event.after["password_set_at"]
    assert "a-new-Secret-42" not in str(event.after)
