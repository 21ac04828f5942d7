from django.contrib import admin

from oms.admin import AuditedModelAdmin, ReadOnlyModelAdmin

from .models import Allocation, Block, Broker, Execution, Order, Route


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
