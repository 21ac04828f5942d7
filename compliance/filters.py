"""The audit trail's filters, shared by the page, the export and the API."""

import django_filters as filters

from audit.models import AuditEvent
from oms.filters import UTCIsoDateTimeFilter


class AuditEventFilter(filters.FilterSet):
    actor = filters.CharFilter(field_name="actor_name", label="Actor")
    kind = filters.CharFilter(field_name="kind", lookup_expr="startswith", label="Kind (prefix)")
    object_type = filters.CharFilter(field_name="object_type")
    object_id = filters.CharFilter(field_name="object_id")
    occurred_from = UTCIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", label="From")
    occurred_to = UTCIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lte", label="To")

    class Meta:
        model = AuditEvent
        fields = ["actor", "kind", "object_type", "object_id"]
