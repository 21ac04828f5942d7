"""The audit trail in the admin (shown, never edited), the admin base class
whose every add, change and delete appends an audit event, and the audited
admin of who may do what: users, their roles (groups) and their API tokens."""

from __future__ import annotations

import hashlib

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.forms.models import model_to_dict
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from oms.admin import ReadOnlyModelAdmin

from .models import AuditEvent
from .services import audit_record, audited_transaction


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin appends an audit event, in
    the admin's own transaction, with the row before and after.

    The row as it was is read when the admin loads it for a change; the event is
    recorded where the admin logs the change (after the form and its inlines
    are saved), so that many-to-many fields and inlines (`audit_snapshot`) are
    in the "after". A change that changes nothing records nothing.
    """

    def audit_snapshot(self, obj) -> dict:
        """What the event records of a row: its fields, many-to-many as keys."""
        return _plain(model_to_dict(obj))

    def _kind(self, obj, action: str) -> str:
        return f"{obj._meta.model_name}.{action}"

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            request._audit_before = self.audit_snapshot(obj)
        return obj

    def log_addition(self, request, obj, message):
        audit_record(
            actor=request.user,
            kind=self._kind(obj, "created"),
            obj=obj,
            after=self.audit_snapshot(obj),
            reason="in the admin",
        )
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        before = getattr(request, "_audit_before", {})
        after = self.audit_snapshot(type(obj).objects.get(pk=obj.pk))
        if after != before:
            audit_record(
                actor=request.user,
                kind=self._kind(obj, "changed"),
                obj=obj,
                before=before,
                after=after,
                reason="in the admin",
            )
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        with audited_transaction():
            for obj in queryset:
                audit_record(
                    actor=request.user,
                    kind=self._kind(obj, "deleted"),
                    obj=obj,
                    before=self.audit_snapshot(obj),
                    reason="in the admin",
                )
        return super().log_deletions(request, queryset)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with audited_transaction():
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        with audited_transaction():
            return super().delete_view(request, object_id, extra_context)

    def changelist_view(self, request, extra_context=None):
        # bulk edits and the delete action change rows from the list
        with audited_transaction():
            return super().changelist_view(request, extra_context)


def _plain(data: dict) -> dict:
    # Many-to-many values come back as model instances: keep their keys, sorted.
    return {
        key: sorted(getattr(v, "pk", v) for v in value) if isinstance(value, list) else value
        for key, value in data.items()
    }


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """The trail is append-only: shown, never edited."""

    list_display = [
        "pk",
        "occurred_at",
        "actor_name",
        "kind",
        "object_type",
        "object_repr",
        "origin",
    ]
    list_filter = ["kind", "object_type"]
    search_fields = ["actor_name", "object_repr", "object_id", "kind"]
    date_hierarchy = "occurred_at"


# --- Users, roles and API tokens ----------------------------------------------------
#
# Granting a role or minting a token for someone changes what they may do: each is
# an event of the trail like any business change. Passwords and token keys are
# never recorded, only that they changed.


class AuditedUserAdmin(AuditedModelAdmin, UserAdmin):
    def audit_snapshot(self, obj) -> dict:
        return {
            "username": obj.get_username(),
            "first_name": obj.first_name,
            "last_name": obj.last_name,
            "email": obj.email,
            "is_active": obj.is_active,
            "is_staff": obj.is_staff,
            "is_superuser": obj.is_superuser,
            "groups": sorted(obj.groups.values_list("name", flat=True)),
            "user_permissions": sorted(obj.user_permissions.values_list("codename", flat=True)),
            # which password, never; that it changed, yes
            "password_set_at": _password_fingerprint(obj.password),
        }

    def user_change_password(self, request, id, form_url=""):
        # the password form saves outside the admin's transaction: give it one
        with audited_transaction():
            return super().user_change_password(request, id, form_url)


class AuditedGroupAdmin(AuditedModelAdmin, GroupAdmin):
    def audit_snapshot(self, obj) -> dict:
        return {
            "name": obj.name,
            "permissions": sorted(obj.permissions.values_list("codename", flat=True)),
            "users": sorted(obj.user_set.values_list("username", flat=True)),
        }


class AuditedTokenAdmin(AuditedModelAdmin, TokenAdmin):
    def audit_snapshot(self, obj) -> dict:
        return {"user": obj.user.get_username(), "created": obj.created}

    def _kind(self, obj, action: str) -> str:
        return {"created": "token.issued", "deleted": "token.revoked"}.get(
            action, f"token.{action}"
        )


def _password_fingerprint(encoded: str) -> str:
    """A short digest of the stored hash: tells a change apart, reveals nothing."""
    return hashlib.sha256(encoded.encode()).hexdigest()[:12] if encoded else ""


User = get_user_model()
for model, model_admin in (
    (User, AuditedUserAdmin),
    (Group, AuditedGroupAdmin),
    (TokenProxy, AuditedTokenAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
