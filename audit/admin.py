"""The audit trail in the admin (shown, never edited), and the admin base class
whose every add, change and delete appends an audit event."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import model_to_dict

from oms.admin import ReadOnlyModelAdmin

from .models import AuditEvent
from .services import audit_record, audited_transaction


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


def _plain(data: dict) -> dict:
    # Many-to-many values come back as model instances: keep their keys only.
    return {
        key: [getattr(v, "pk", v) for v in value] if isinstance(value, list) else value
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
