"""Admin base classes: reference data edits are audited; lifecycle data is read-only."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import model_to_dict

from compliance.services import audit_record, audited_transaction

from .models import IdempotencyKey


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin appends an audit event."""

    def save_model(self, request, obj, form, change):
        before = model_to_dict(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else {}
        with audited_transaction():
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,
                kind=f"admin.{'changed' if change else 'added'}",
                obj=obj,
                before=_plain(before),
                after=_plain(model_to_dict(obj)),
            )

    def delete_model(self, request, obj):
        before = _plain(model_to_dict(obj))
        with audited_transaction():
            audit_record(actor=request.user, kind="admin.deleted", obj=obj, before=before)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with audited_transaction():
            for obj in queryset:
                self.delete_model(request, obj)


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Shown, never edited: these rows change only through the services."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _plain(data: dict) -> dict:
    # Many-to-many values come back as model instances: keep their keys only.
    return {
        key: [getattr(v, "pk", v) for v in value] if isinstance(value, list) else value
        for key, value in data.items()
    }


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyModelAdmin):
    """The API's stored first answers: shown to operations, written only by the API."""

    list_display = ["key", "user", "method", "path", "status_code", "created_at"]
    list_filter = ["method", "status_code"]
    search_fields = ["key", "user__username", "path"]
    list_select_related = ["user"]
