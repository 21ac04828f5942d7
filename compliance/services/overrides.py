"""Overrides of soft breaches, with four eyes.

A portfolio manager or trader asks for one on an order that needs it, with a
justification; a compliance officer who is not the requester approves it (the order
goes to approved) or rejects it (the order is rejected). The database refuses a
decision by the requester too (`override_four_eyes`). An override may carry an
expiry: past it, the release's check no longer counts it, and a request past it can
no longer be approved. Every step is audited.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from audit.services import audit_record, audited_transaction, snapshot
from compliance.models import Override, PretradeResult, Rule
from compliance.selectors import latest_results
from oms.roles import Action, require
from oms.state import TransitionError, move
from trading import locks
from trading.models import Order
from trading.services.orders import order_compliance_decided

MIN_JUSTIFICATION = 10


def override_request(
    *, actor, order_id: int, justification: str, expires_at: dt.datetime | None = None
) -> Override:
    """Ask compliance to let an order that failed soft rules trade."""
    require(actor, Action.OVERRIDE_REQUEST)
    justification = (justification or "").strip()
    errors: dict[str, list[str]] = {}
    if len(justification) < MIN_JUSTIFICATION:
        errors["justification"] = [
            f"Say why the order should trade (at least {MIN_JUSTIFICATION} characters)."
        ]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["The expiry must be in the future."]
    if errors:
        raise ValidationError(errors)
    with audited_transaction():
        [order] = locks.lock_orders([order_id]) or [None]
        if order is None:
            raise Order.DoesNotExist(f"No order {order_id}.")
        require(actor, Action.OVERRIDE_REQUEST, order.portfolio)
        if order.status != Order.Status.NEEDS_OVERRIDE:
            raise ValidationError(
                f"{order} is {order.get_status_display().lower()}: only an order that "
                "needs an override can have one."
            )
        if Override.objects.filter(order=order, status=Override.Status.REQUESTED).exists():
            raise ValidationError(f"{order} has an override request waiting already.")
        failed = [
            r.rule_id
            for r in latest_results(order.pk)
            if r.status == PretradeResult.Status.FAIL and r.rule_id
        ]
        hard = Rule.objects.filter(pk__in=failed, severity="hard").values_list("name", flat=True)
        if hard:
            raise ValidationError(f"{order} failed hard rules ({', '.join(hard)}): no override.")
        override = Override.objects.create(
            order=order, justification=justification, requested_by=actor, expires_at=expires_at
        )
        override.rules.set(failed)
        audit_record(
            actor=actor,
            kind="override.requested",
            obj=override,
            after={
                "order": order.pk,
                "rules": sorted(failed),
                "expires_at": expires_at,
            },
            reason=justification,
        )
    return override


def _decide(*, actor, override_id: int, approve: bool, note: str, expires_at=None) -> Override:
    require(actor, Action.OVERRIDE_DECIDE)
    order_id = Override.objects.values_list("order_id", flat=True).get(pk=override_id)
    with audited_transaction():
        [order] = locks.lock_orders([order_id])
        override = (
            Override.objects.select_for_update(of=("self",))
            .select_related("requested_by")
            .get(pk=override_id)
        )
        require(actor, Action.OVERRIDE_DECIDE, order.portfolio)
        if override.requested_by_id == actor.pk:
            raise PermissionDenied(
                "You asked for this override: another compliance officer must decide it."
            )
        target = Override.Status.APPROVED if approve else Override.Status.REJECTED
        if target not in Override.TRANSITIONS[override.status]:
            # a 409 in the API, as every state change its state does not allow
            raise TransitionError(
                override,
                override.status,
                target,
                f"Override {override.pk} was {override.status} already.",
            )
        now = timezone.now()
        # the order may have left needs override since the request (cancelled, or
        # expired at the close): nothing can be approved then, but a rejection closes the
        # request so that it does not wait in the queue for ever
        stale = order.status != Order.Status.NEEDS_OVERRIDE
        if stale and approve:
            raise ValidationError(
                f"{order} is {order.get_status_display().lower()}: it awaits no override. "
                "Reject the request to close it."
            )
        if approve and override.expires_at is not None and override.expires_at <= now:
            raise ValidationError(
                f"Override {override.pk} expired at {override.expires_at:%Y-%m-%d %H:%M} UTC: "
                "the requester must ask again."
            )
        if expires_at is not None:
            if expires_at <= now:
                raise ValidationError({"expires_at": ["The expiry must be in the future."]})
            override.expires_at = expires_at
        before = snapshot(override, Override.AUDIT_FIELDS)
        move(override, Override.Status.APPROVED if approve else Override.Status.REJECTED)
        override.decided_by = actor
        override.decided_at = now
        override.decision_note = (note or "")[:500]
        override.save(update_fields=list(Override.AUDIT_FIELDS[:4]) + ["expires_at"])
        audit_record(
            actor=actor,
            kind="override.approved" if approve else "override.rejected",
            obj=override,
            before=before,
            after=snapshot(override, Override.AUDIT_FIELDS)
            | {"order": order.pk}
            | ({"order_status": order.status} if stale else {}),
            reason=note,
        )
        if not stale:
            order_compliance_decided(
                actor=actor,
                order_id=order.pk,
                approved=approve,
                override_id=override.pk,
                reason=note,
            )
    return override


def override_approve(
    *, actor, override_id: int, note: str = "", expires_at: dt.datetime | None = None
) -> Override:
    """A compliance officer other than the requester lets the order trade: it moves to
    approved. ``expires_at`` may set (or shorten) how long the override holds."""
    return _decide(
        actor=actor, override_id=override_id, approve=True, note=note, expires_at=expires_at
    )


def override_reject(*, actor, override_id: int, note: str = "") -> Override:
    """A compliance officer other than the requester refuses it: the order is rejected."""
    if not (note or "").strip():
        raise ValidationError({"note": ["Say why the override is refused."]})
    return _decide(actor=actor, override_id=override_id, approve=False, note=note)
