from django.contrib import admin

from oms.admin import ReadOnlyModelAdmin

from .models import AuditEvent


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
