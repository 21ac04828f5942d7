from django.contrib import admin

from audit.admin import AuditedModelAdmin
from oms.admin import ReadOnlyModelAdmin

from .models import (
    Allocation,
    Block,
    Broker,
    Execution,
    FixInbox,
    FixMessage,
    FixOutbox,
    FixSession,
    Order,
    Route,
    Statement,
    StatementBreak,
)


@admin.register(Broker)
class BrokerAdmin(AuditedModelAdmin):
    list_display = ["code", "name", "adapter", "is_active"]


@admin.register(Order)
class OrderAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "portfolio", "security", "side", "quantity", "status", "created_at"]
    list_filter = ["status", "side"]
    search_fields = ["portfolio__code", "security__ticker"]
    list_select_related = ["portfolio", "security"]


@admin.register(Block)
class BlockAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "security", "side", "quantity", "filled_quantity", "status"]
    list_filter = ["status", "side"]
    list_select_related = ["security"]


@admin.register(Route)
class RouteAdmin(ReadOnlyModelAdmin):
    list_display = ["cl_ord_id", "broker", "block", "quantity", "filled_quantity", "status"]
    list_filter = ["status", "broker"]
    list_select_related = ["broker", "block__security"]


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyModelAdmin):
    list_display = ["exec_id", "broker", "route", "exec_type", "last_quantity", "last_price"]
    list_filter = ["exec_type", "broker"]
    list_select_related = ["broker", "route"]


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyModelAdmin):
    list_display = ["block", "order", "quantity", "price"]
    list_select_related = ["block", "order"]


@admin.register(FixSession)
class FixSessionAdmin(AuditedModelAdmin):
    """Where a FIX broker is and who we are to it. Sequence numbers and status
    belong to the gateway that runs the session: shown, not edited."""

    list_display = ["broker", "__str__", "host", "port", "logged_on", "status_changed_at"]
    readonly_fields = [
        "next_sender_seq",
        "next_target_seq",
        "generation",
        "logged_on",
        "status_changed_at",
        "last_error",
    ]

    def _settings(self) -> list:
        return [
            f
            for f in FixSession._meta.concrete_fields
            if not f.primary_key and f.name not in self.readonly_fields
        ]

    def save_model(self, request, obj, form, change):
        # Only the settings: a full save would write back the sequence numbers and
        # status read when the page was posted, over what the running gateway wrote
        # since.
        if change:
            obj.save(update_fields=[f.name for f in self._settings()])
        else:
            super().save_model(request, obj, form, change)

    def audit_snapshot(self, obj) -> dict:
        # The gateway's columns change under the admin: they are not its change.
        return {f.name: f.value_from_object(obj) for f in self._settings()}


class _RawMessageAdmin(ReadOnlyModelAdmin):
    """A stored FIX message, shown with | for SOH."""

    @admin.display(description="Message")
    def message(self, obj):
        return bytes(obj.raw).decode("latin-1").replace("\x01", "|")

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "message"]


@admin.register(FixOutbox)
class FixOutboxAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "session", "msg_type", "route", "status", "seq_num", "created_at"]
    list_filter = ["status", "msg_type", "session"]
    list_select_related = ["session", "route"]


@admin.register(FixInbox)
class FixInboxAdmin(_RawMessageAdmin):
    list_display = ["pk", "session", "seq_num", "msg_type", "status", "applied_at", "error"]
    list_filter = ["msg_type", "session"]
    list_select_related = ["session"]


@admin.register(FixMessage)
class FixMessageAdmin(_RawMessageAdmin):
    list_display = ["session", "generation", "seq_num", "created_at"]
    list_filter = ["session"]
    list_select_related = ["session"]


@admin.register(Statement)
class StatementAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "source", "as_of", "lines", "imported_by", "imported_at"]


@admin.register(StatementBreak)
class StatementBreakAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "statement", "portfolio", "security", "currency", "ours", "theirs"]
    list_filter = ["status"]
    list_select_related = ["statement", "portfolio", "security"]
