"""API views of the audit trail (compliance and operations)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.models import AuditEvent
from audit.selectors import chain_status
from audit.services import verify_audit_chain
from compliance.filters import AuditEventFilter
from oms.api.base import OMSViewSet
from oms.roles import Action

from .serializers import AuditEventSerializer, ChainReportSerializer, ChainStatusSerializer


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OMSViewSet):
    """The audit trail, newest first: who did what to which object, before and after,
    and each event's place in the hash chain."""

    queryset = AuditEvent.objects.select_related("seal")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    read_action = Action.AUDIT_VIEW

    @extend_schema(responses={200: ChainStatusSerializer}, filters=False)
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def chain(self, request):
        """The chain's status: the last sealed event, how many await the sealer, the
        last signed checkpoint."""
        return Response(ChainStatusSerializer(chain_status()).data)

    @extend_schema(request=None, responses={200: ChainReportSerializer}, filters=False)
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def verify(self, request):
        """Walk the whole chain against its signed checkpoints; name every broken link."""
        return Response(ChainReportSerializer(verify_audit_chain()).data)
