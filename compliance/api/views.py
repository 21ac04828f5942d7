"""API views of the audit trail (compliance and operations)."""

from __future__ import annotations

from rest_framework import mixins

from audit.models import AuditEvent
from compliance.filters import AuditEventFilter
from oms.api.base import OMSViewSet
from oms.roles import Action

from .serializers import AuditEventSerializer


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OMSViewSet):
    """The audit trail, newest first: who did what to which object, before and after."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    read_action = Action.AUDIT_VIEW
