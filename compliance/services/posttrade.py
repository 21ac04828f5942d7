"""The post-trade check: after an allocation (the accounts it booked) and every night
(every active account), the holdings as they stand against the post-trade rules. A
breach opens an alert (or refreshes the open one of that account and rule); compliance
assigns, comments on and resolves alerts. Everything audited."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import audit_record, audited_transaction, snapshot
from compliance import rules as engine
from compliance.models import Alert, AlertComment
from compliance.selectors import engine_book, rule_key, rules_in_force
from compliance.services.pretrade import build_book, describe
from oms.roles import Action, can, require
from oms.state import move
from portfolios.models import Portfolio


def _num(value):
    if value is None:
        return None
    value = float(value)
    return value if value - value == 0 else None


#: The longest resolution an alert keeps (``Alert.resolution``).
RESOLUTION_MAX = Alert._meta.get_field("resolution").max_length

#: What a check that finds an open alert's breach again changes of it.
_REFRESHED = ("value", "group", "message", "last_seen_at", "rule_version")


def posttrade_check(*, portfolio_ids: Iterable[int] | None = None, source: str) -> list[Alert]:
    """Check these accounts (every active one when None) as they stand; open or refresh
    an alert per breached account rule. Returns the alerts opened."""
    now = timezone.now()
    accounts = Portfolio.objects.filter(is_active=True)
    if portfolio_ids is not None:
        accounts = accounts.filter(pk__in=list(portfolio_ids))
    model_of = dict(accounts.values_list("pk", "model_id"))
    rules = rules_in_force(timezone.localdate(now), "post")
    if not rules or not model_of:
        return []
    ebook = engine_book(rules, model_of)
    account_rules = [r for r in ebook.rules if engine.KINDS[r.kind].level == "account"]
    if not account_rules:
        return []
    book, securities = build_book([], now=now, account_ids=sorted(model_of), duplicates=False)
    result = engine.check(book, account_rules, ebook.lists)
    breaches = [r for r in result.records("account_results") if r["status"] != "pass"]
    opened: list[Alert] = []
    with audited_transaction():
        existing = {
            (a.portfolio_id, a.rule_id): a
            for a in Alert.objects.select_for_update(of=("self",)).filter(
                status=Alert.Status.OPEN, portfolio_id__in=list(model_of)
            )
        }
        for row in breaches:
            rule = ebook.by_id[rule_key(row["rule"])]
            if row["kind"] == "no_short" and row["group"] is not None:
                row["group"] = securities.get(row["group"], (row["group"], None))[0]
            key = (row["account"], rule.pk)
            words = describe(
                rule, row["kind"], "fail", row["value"], row["limit"], row["group"], account_row=row
            )
            alert = existing.get(key)
            if alert is not None:
                before = snapshot(alert, _REFRESHED)
                alert.value = _num(row["value"])
                alert.group = str(row["group"] or "")[:200]
                alert.message = words[:500]
                alert.last_seen_at = now
                alert.rule_version = row["version"]
                alert.save(update_fields=list(_REFRESHED))
                audit_record(
                    actor=None,
                    actor_name="system",
                    kind="alert.refreshed",
                    obj=alert,
                    before=before,
                    after=snapshot(alert, _REFRESHED) | {"source": source},
                )
                continue
            alert = Alert.objects.create(
                portfolio_id=row["account"],
                rule=rule,
                rule_version=row["version"],
                severity=row["severity"],
                value=_num(row["value"]),
                limit=_num(row["limit"]),
                group=str(row["group"] or "")[:200],
                message=words[:500],
                source=source,
                opened_at=now,
                last_seen_at=now,
            )
            audit_record(
                actor=None,
                actor_name="system",
                kind="alert.opened",
                obj=alert,
                after={
                    "account": row["account"],
                    "rule": rule.name,
                    "version": row["version"],
                    "value": alert.value,
                    "limit": alert.limit,
                    "group": alert.group,
                    "source": source,
                },
            )
            opened.append(alert)
    return opened


def _locked(alert_id: int) -> Alert:
    return (
        Alert.objects.select_for_update(of=("self",)).select_related("portfolio").get(pk=alert_id)
    )


def alert_assign(*, actor, alert_id: int, assignee) -> Alert:
    """Give an open alert to a compliance officer (or take it)."""
    require(actor, Action.ALERT_MANAGE)
    if assignee is not None and not can(assignee, Action.ALERT_MANAGE):
        raise ValidationError(
            {
                "assignee": [
                    f"{assignee.username} is not a compliance officer: an alert goes to one "
                    "who may resolve it."
                ]
            }
        )
    with audited_transaction():
        alert = _locked(alert_id)
        if alert.status != Alert.Status.OPEN:
            raise ValidationError(f"Alert {alert.pk} is resolved.")
        before = snapshot(alert, ("assignee_id",))
        alert.assignee = assignee
        alert.save(update_fields=["assignee"])
        audit_record(
            actor=actor,
            kind="alert.assigned",
            obj=alert,
            before=before,
            after=snapshot(alert, ("assignee_id",)),
        )
    return alert


def alert_comment(*, actor, alert_id: int, text: str) -> AlertComment:
    require(actor, Action.ALERT_MANAGE)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": ["Write the comment."]})
    with audited_transaction():
        alert = _locked(alert_id)
        comment = AlertComment.objects.create(alert=alert, author=actor, text=text[:5000])
        audit_record(actor=actor, kind="alert.commented", obj=alert, after={"comment": text[:5000]})
    return comment


def alert_resolve(*, actor, alert_id: int, resolution: str) -> Alert:
    """Close an alert, saying how it was resolved."""
    require(actor, Action.ALERT_MANAGE)
    resolution = (resolution or "").strip()
    if not resolution:
        raise ValidationError({"resolution": ["Say how the breach was resolved."]})
    if len(resolution) > RESOLUTION_MAX:
        # the resolution is kept whole or not at all, never cut
        raise ValidationError(
            {
                "resolution": [
                    f"Say it in at most {RESOLUTION_MAX} characters (this is {len(resolution)})."
                ]
            }
        )
    with audited_transaction():
        alert = _locked(alert_id)
        if alert.status != Alert.Status.OPEN:
            raise ValidationError(f"Alert {alert.pk} is resolved already.")
        before = snapshot(alert, ("status",))
        move(alert, Alert.Status.RESOLVED)
        alert.resolved_by = actor
        alert.resolved_at = timezone.now()
        alert.resolution = resolution
        alert.save(update_fields=["status", "resolved_by", "resolved_at", "resolution"])
        audit_record(
            actor=actor,
            kind="alert.resolved",
            obj=alert,
            before=before,
            after={"status": alert.status},
            reason=resolution,
        )
    return alert
