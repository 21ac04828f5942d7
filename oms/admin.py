"""Admin base classes of the kernel: rows shown but never edited there."""

from __future__ import annotations

from django.contrib import admin

from .models import IdempotencyKey


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


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyModelAdmin):
    """The API's stored first answers: shown to operations, written only by the API."""

    list_display = ["key", "user", "method", "path", "status_code", "created_at"]
    list_filter = ["method", "status_code"]
    search_fields = ["key", "user__username", "path"]
    list_select_related = ["user"]
