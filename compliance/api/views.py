"""API views of the audit trail (compliance and operations)."""

from __future__ import annotations

from django.db.models import Prefetch
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.models import AuditEvent
from audit.selectors import chain_status
from audit.services import verify_audit_chain
from compliance import selectors
from compliance.filters import AuditEventFilter
from compliance.models import Alert, Override, PretradeResult, RestrictedEntry, RestrictedList, Rule
from compliance.services import overrides as override_services
from compliance.services import posttrade as posttrade_services
from compliance.services import rules as rule_services
from oms.api.base import OMSViewSet
from oms.api.idempotency import idempotent
from oms.filters import IdFilter
from oms.roles import Action

from . import serializers as s
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


# --- The rule book, restricted lists, pre-trade results, overrides -------------------


READ = (mixins.ListModelMixin, mixins.RetrieveModelMixin)


class RuleViewSet(*READ, OMSViewSet):
    """The rule book. Compliance officers create, edit and deactivate rules; every
    change makes a new version."""

    queryset = Rule.objects.select_related("model").prefetch_related("accounts")
    serializer_class = s.RuleSerializer
    read_action = Action.COMPLIANCE_VIEW
    action_permissions = {
        "create": Action.RULE_MANAGE,
        "change": Action.RULE_MANAGE,
        "deactivate": Action.RULE_MANAGE,
    }

    def visible_to(self, user):
        return selectors.rules_visible_to(user)

    @extend_schema(request=s.RuleWriteSerializer, responses={201: s.RuleSerializer})
    @idempotent
    def create(self, request):
        """Add a rule (its parameters checked by the rule engine)."""
        terms = dict(self.parsed(s.RuleWriteSerializer))
        terms.pop("reason", None)
        rule = rule_services.rule_create(actor=request.user, **terms)
        return self.rendered(rule, status.HTTP_201_CREATED)

    @extend_schema(request=s.RuleWriteSerializer, responses={200: s.RuleSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def change(self, request, pk=None):
        """Change a rule: what is not given keeps its value; the version goes up."""
        rule = self.get_object()
        terms = dict(self.parsed(s.RuleWriteSerializer, partial=True))
        reason = terms.pop("reason", "")
        rule = rule_services.rule_update(
            actor=request.user, rule_id=rule.pk, reason=reason, **terms
        )
        return self.rendered(rule)

    @extend_schema(request=None, responses={200: s.RuleSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def deactivate(self, request, pk=None):
        """Stop checking a rule (its stored results keep naming it)."""
        rule = self.get_object()
        rule = rule_services.rule_set_active(actor=request.user, rule_id=rule.pk, active=False)
        return self.rendered(rule)


class RestrictedListViewSet(*READ, OMSViewSet):
    """Restricted lists: securities (by ticker) and issuers, firm-wide or per account."""

    queryset = RestrictedList.objects.select_related("portfolio").prefetch_related(
        Prefetch("entries", queryset=RestrictedEntry.objects.select_related("security"))
    )
    serializer_class = s.RestrictedListSerializer
    read_action = Action.COMPLIANCE_VIEW
    action_permissions = {"create": Action.RULE_MANAGE, "change": Action.RULE_MANAGE}

    def visible_to(self, user):
        return selectors.restricted_lists_visible_to(user)

    @extend_schema(
        request=s.RestrictedListWriteSerializer, responses={201: s.RestrictedListSerializer}
    )
    @idempotent
    def create(self, request):
        """A new restricted list with its tickers and issuers."""
        v = self.parsed(s.RestrictedListWriteSerializer)
        rlist = rule_services.restricted_list_create(
            actor=request.user,
            name=v.get("name", ""),
            level=v.get("level", RestrictedList.Level.FIRM),
            portfolio=v.get("portfolio"),
            tickers=v.get("tickers", ()),
            issuers=v.get("issuers", ()),
            description=v.get("description", ""),
            reason=v.get("reason", ""),
        )
        return self.rendered(rlist, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.RestrictedListWriteSerializer, responses={200: s.RestrictedListSerializer}
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def change(self, request, pk=None):
        """Replace a list's tickers or issuers, its description, or whether it is active."""
        rlist = self.get_object()
        v = self.parsed(s.RestrictedListWriteSerializer, partial=True)
        rlist = rule_services.restricted_list_update(
            actor=request.user,
            list_id=rlist.pk,
            tickers=v.get("tickers"),
            issuers=v.get("issuers"),
            description=v.get("description"),
            is_active=v.get("is_active"),
            reason=v.get("reason", ""),
        )
        return self.rendered(rlist)


class PretradeResultFilter(filters.FilterSet):
    order = IdFilter(field_name="order_id")
    status = filters.ChoiceFilter(choices=PretradeResult.Status.choices)
    stage = filters.CharFilter()

    class Meta:
        model = PretradeResult
        fields = ["order", "status", "stage"]


class PretradeResultViewSet(*READ, OMSViewSet):
    """What each rule found of each order at each check, with the rule's version and the
    numbers (value, limit, group) that drove it. Filter by ``order``."""

    queryset = PretradeResult.objects.select_related("rule")
    serializer_class = s.PretradeResultSerializer
    filterset_class = PretradeResultFilter
    read_action = Action.COMPLIANCE_VIEW

    def visible_to(self, user):
        return selectors.results_visible_to(user)


class OverrideFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Override.Status.choices)
    order = IdFilter(field_name="order_id")

    class Meta:
        model = Override
        fields = ["status", "order"]


class OverrideViewSet(*READ, OMSViewSet):
    """Overrides of soft breaches: requested by those who trade, decided by a compliance
    officer who is not the requester."""

    queryset = Override.objects.all()
    serializer_class = s.OverrideSerializer
    filterset_class = OverrideFilter
    read_action = Action.COMPLIANCE_VIEW
    action_permissions = {
        "create": Action.OVERRIDE_REQUEST,
        "approve": Action.OVERRIDE_DECIDE,
        "reject": Action.OVERRIDE_DECIDE,
    }

    def visible_to(self, user):
        return selectors.overrides_visible_to(user)

    @extend_schema(request=s.OverrideRequestSerializer, responses={201: s.OverrideSerializer})
    @idempotent
    def create(self, request):
        """Ask for an override of an order that needs one, with a justification."""
        from django.core.exceptions import ValidationError

        from trading.selectors import orders_visible_to

        v = self.parsed(s.OverrideRequestSerializer)
        if not orders_visible_to(request.user).filter(pk=v["order"]).exists():
            raise ValidationError({"order": [f"No order {v['order']}."]})
        override = override_services.override_request(
            actor=request.user,
            order_id=v["order"],
            justification=v["justification"],
            expires_at=v.get("expires_at"),
        )
        return self.rendered(override, status.HTTP_201_CREATED)

    @extend_schema(request=s.OverrideDecisionSerializer, responses={200: s.OverrideSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        """Approve: the order is approved (never by the requester)."""
        return self.acted(
            s.OverrideDecisionSerializer,
            lambda override, v: override_services.override_approve(
                actor=request.user,
                override_id=override.pk,
                note=v.get("note", ""),
                expires_at=v.get("expires_at"),
            ),
        )

    @extend_schema(request=s.OverrideDecisionSerializer, responses={200: s.OverrideSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request, pk=None):
        """Reject, with a note: the order is rejected (never by the requester)."""
        return self.acted(
            s.OverrideDecisionSerializer,
            lambda override, v: override_services.override_reject(
                actor=request.user, override_id=override.pk, note=v.get("note", "")
            ),
        )


class AlertFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Alert.Status.choices)
    portfolio = filters.CharFilter(field_name="portfolio__code")

    class Meta:
        model = Alert
        fields = ["status", "portfolio"]


class AlertViewSet(*READ, OMSViewSet):
    """Post-trade alerts: a breach found after an allocation or in the nightly check,
    open until compliance resolves it."""

    queryset = Alert.objects.all()
    serializer_class = s.AlertSerializer
    filterset_class = AlertFilter
    read_action = Action.COMPLIANCE_VIEW
    action_permissions = {
        "assign": Action.ALERT_MANAGE,
        "comment": Action.ALERT_MANAGE,
        "resolve": Action.ALERT_MANAGE,
    }

    def visible_to(self, user):
        return selectors.alerts_visible_to(user)

    @extend_schema(request=s.AlertActionSerializer, responses={200: s.AlertSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def assign(self, request, pk=None):
        """Give the alert to a compliance officer (``assignee``: a username; default you)."""
        return self.acted(
            s.AlertActionSerializer,
            lambda alert, v: posttrade_services.alert_assign(
                actor=request.user, alert_id=alert.pk, assignee=v.get("assignee", request.user)
            ),
        )

    @extend_schema(request=s.AlertActionSerializer, responses={200: s.AlertSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def comment(self, request, pk=None):
        """Add a comment (``text``)."""
        return self.acted(
            s.AlertActionSerializer,
            lambda alert, v: posttrade_services.alert_comment(
                actor=request.user, alert_id=alert.pk, text=v.get("text", "")
            ),
        )

    @extend_schema(request=s.AlertActionSerializer, responses={200: s.AlertSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def resolve(self, request, pk=None):
        """Close the alert, saying how it was resolved (``text``)."""
        return self.acted(
            s.AlertActionSerializer,
            lambda alert, v: posttrade_services.alert_resolve(
                actor=request.user, alert_id=alert.pk, resolution=v.get("text", "")
            ),
        )
