"""Overrides with four eyes: asked for with a justification by those who trade, decided
by a compliance officer who did not ask (the service refuses, and so does the
database), expiring, audited; approving one lets the order on."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from compliance.models import Override
from compliance.services import overrides as override_services
from compliance.services import rules as rule_services
from oms.roles import Role
from trading.models import Order
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(pm, over_soft_limit):
    """An order of ACC1 that fails a soft issuer limit: it needs an override."""
    order = over_soft_limit
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    assert order.status == Order.Status.NEEDS_OVERRIDE
    return order


@pytest.fixture
def second_officer(make_user):
    return make_user("compliance2", Role.COMPLIANCE)


def test_request_then_approve_lets_the_order_trade(pm, compliance_officer, held):
    override = override_services.override_request(
        actor=pm, order_id=held.pk, justification="Client asked for a concentrated position."
    )
    assert [r.name for r in override.rules.all()] == ["Issuer 60%"]
    with pytest.raises(ValidationError, match="awaits a compliance override"):
        order_services.orders_release(actor=pm, order_ids=[held.pk])
    with pytest.raises(ValidationError, match="needs a compliance override"):
        order_services.orders_approve(actor=pm, order_ids=[held.pk])
    override_services.override_approve(
        actor=compliance_officer, override_id=override.pk, note="Within mandate."
    )
    held.refresh_from_db()
    assert held.status == Order.Status.APPROVED
    # the release checks again: the rule still fails, the override in force covers it
    order_services.orders_release(actor=pm, order_ids=[held.pk])
    held.refresh_from_db()
    assert held.status == Order.Status.RELEASED
    kinds = list(
        AuditEvent.objects.filter(kind__startswith="override.")
        .order_by("pk")
        .values_list("kind", flat=True)
    )
    assert kinds == ["override.requested", "override.approved"]
    requested = AuditEvent.objects.get(kind="override.requested")
    assert requested.reason == "Client asked for a concentrated position."


def test_the_requester_cannot_decide_their_own_override(make_user, compliance_officer, held):
    # a user who both trades and keeps compliance (several roles) asks...
    both = make_user("both", Role.TRADER)
    both.groups.add(compliance_officer.groups.get())
    override = override_services.override_request(
        actor=both, order_id=held.pk, justification="Needed for the client's cash flows."
    )
    with pytest.raises(PermissionDenied, match="another compliance officer must decide it"):
        override_services.override_approve(actor=both, override_id=override.pk)
    override.refresh_from_db()
    assert override.status == Override.Status.REQUESTED
    held.refresh_from_db()
    assert held.status == Order.Status.NEEDS_OVERRIDE


def test_the_database_refuses_a_decision_by_the_requester(pm, held):
    override = override_services.override_request(
        actor=pm, order_id=held.pk, justification="Needed for the client's cash flows."
    )
    with pytest.raises(IntegrityError, match="override_four_eyes"), transaction.atomic():
        Override.objects.filter(pk=override.pk).update(
            status=Override.Status.APPROVED, decided_by=pm, decided_at=timezone.now()
        )


def test_who_may_request_and_decide(personas, held, second_officer):
    for name in ("compliance", "ops", "outsider"):
        with pytest.raises(PermissionDenied):
            override_services.override_request(
                actor=personas[name], order_id=held.pk, justification="Let me through please."
            )
    override = override_services.override_request(
        actor=personas["trader"], order_id=held.pk, justification="Let me through please."
    )
    for name in ("pm", "trader", "ops", "outsider"):
        with pytest.raises(PermissionDenied):
            override_services.override_approve(actor=personas[name], override_id=override.pk)
    override_services.override_reject(
        actor=second_officer, override_id=override.pk, note="Not within the mandate."
    )
    held.refresh_from_db()
    assert held.status == Order.Status.REJECTED


def test_a_justification_is_needed(pm, held):
    with pytest.raises(ValidationError) as err:
        override_services.override_request(actor=pm, order_id=held.pk, justification="  ok ")
    assert "justification" in err.value.message_dict
    assert not Override.objects.exists()


def test_an_expired_override_no_longer_lets_the_order_out(pm, compliance_officer, held):
    override = override_services.override_request(
        actor=pm,
        order_id=held.pk,
        justification="Only for today's session.",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    override_services.override_approve(actor=compliance_officer, override_id=override.pk)
    Override.objects.filter(pk=override.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ValidationError, match="cannot be released: Needs an override"):
        order_services.orders_release(actor=pm, order_ids=[held.pk])


def test_an_expired_request_cannot_be_approved(pm, compliance_officer, held):
    override = override_services.override_request(
        actor=pm,
        order_id=held.pk,
        justification="Only for today's session.",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    Override.objects.filter(pk=override.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ValidationError, match="expired"):
        override_services.override_approve(actor=compliance_officer, override_id=override.pk)


def test_no_override_of_a_hard_failure(pm, compliance_officer, book):
    rule_services.rule_create(
        actor=compliance_officer,
        name="Value",
        kind="max_order_notional",
        params={"limit": 10},
        severity="hard",
    )
    order = order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(1),
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    with pytest.raises(ValidationError, match="only an order that needs an override"):
        override_services.override_request(
            actor=pm, order_id=order.pk, justification="Please let it through."
        )
