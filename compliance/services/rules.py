"""The rule book and the restricted lists: create, edit, deactivate.

Every rule is validated by building the engine's rule from it
(`compliance.rules.Rule`), so that the pages, the API and the command line refuse
the same things in the same words; a `RuleError` becomes a ValidationError on the
field it names. Each change bumps the version and is audited with its before and
after, in the transaction of the change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError

from audit.services import audit_record, audited_transaction, snapshot
from compliance import rules as engine
from compliance.models import RestrictedEntry, RestrictedList, Rule
from oms.roles import Action, require
from portfolios.models import ModelPortfolio, Portfolio, Security

#: Fields a rule's edit may change.
RULE_FIELDS = (
    "name",
    "description",
    "kind",
    "params",
    "severity",
    "scope",
    "accounts",
    "model",
    "when",
    "active_from",
    "active_to",
)


def _plain_params(params: dict) -> dict:
    """The engine's normalised parameters as JSON (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _words(err: engine.RuleError, name: str) -> str:
    """The engine's message without its "rule NAME: " prefix: the form shows it beside
    the rule's own field."""
    message = str(err)
    prefix = f"rule {name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def rule_check(
    *,
    name: str,
    kind: str,
    params: dict | None,
    severity: str | None,
    scope: str,
    accounts: Iterable[Portfolio] = (),
    model: ModelPortfolio | None = None,
    when: str = Rule.When.BOTH,
    active_from: dt.date | None = None,
    active_to: dt.date | None = None,
    **_: Any,
) -> dict:
    """Validate a rule; return its normalised parameters and severity. Raises
    ValidationError naming each bad field (a parameter's error names the parameter:
    ``limit``, ``group_by``, ``list``...)."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["A rule needs a name."]
    if params is not None and not isinstance(params, dict):
        raise ValidationError({"params": ["The parameters must be an object of names and values."]})
    params = dict(params or {})
    if scope not in Rule.Scope.values:
        errors["scope"] = [f"Unknown scope {scope!r}: one of {', '.join(Rule.Scope.values)}."]
    elif scope == Rule.Scope.ACCOUNTS and not list(accounts):
        errors["accounts"] = ["Choose at least one account for a rule on chosen accounts."]
    elif scope == Rule.Scope.MODEL and model is None:
        errors["model"] = ["Choose the model whose accounts the rule binds."]
    if when not in Rule.When.values:
        errors["when"] = [f"Unknown stage {when!r}: one of {', '.join(Rule.When.values)}."]
    if active_from and active_to and active_to < active_from:
        errors["active_to"] = ["The rule cannot end before it starts."]
    built = None
    try:
        built = engine.Rule(id=name or "new", kind=kind, params=params, severity=severity or None)
    except engine.RuleError as err:
        errors.setdefault(err.field or "params", []).append(_words(err, name or "new"))
    if built is not None and built.kind == "restricted":
        known = set(RestrictedList.objects.filter(is_active=True).values_list("name", flat=True))
        unknown = [n for n in built.params["list"] if n not in known]
        if unknown:
            errors.setdefault("list", []).append(
                f"No active restricted list named {', '.join(unknown)}."
            )
    if errors:
        raise ValidationError(errors)
    return {"params": _plain_params(dict(built.params)), "severity": built.severity}


def rule_terms(rule: Rule) -> dict:
    """A rule's terms (`RULE_FIELDS`) as `rule_check` reads them (and its form starts from)."""
    terms = {name: getattr(rule, name) for name in RULE_FIELDS if name != "accounts"}
    return terms | {"accounts": list(rule.accounts.all())}


def _rule_snapshot(rule: Rule) -> dict:
    data = snapshot(rule, Rule.AUDIT_FIELDS)
    data["accounts"] = sorted(rule.accounts.values_list("code", flat=True)) if rule.pk else []
    return data


def rule_create(
    *,
    actor,
    name: str,
    kind: str,
    params: dict | None = None,
    severity: str | None = None,
    scope: str = Rule.Scope.ALL,
    accounts: Iterable[Portfolio] = (),
    model: ModelPortfolio | None = None,
    when: str = Rule.When.BOTH,
    active_from: dt.date | None = None,
    active_to: dt.date | None = None,
    description: str = "",
) -> Rule:
    """Add a rule to the rule book (version 1)."""
    require(actor, Action.RULE_MANAGE)
    values = {
        "name": name,
        "kind": kind,
        "params": params,
        "severity": severity,
        "scope": scope,
        "accounts": list(accounts),
        "model": model,
        "when": when,
        "active_from": active_from,
        "active_to": active_to,
    }
    clean = rule_check(**values)
    with audited_transaction():
        rule = Rule(description=description, created_by=actor)
        _rule_write(rule, values, clean)
        audit_record(actor=actor, kind="rule.created", obj=rule, after=_rule_snapshot(rule))
    return rule


def _rule_write(rule: Rule, values: dict, clean: dict) -> None:
    """Give the rule its checked values (`clean`: the engine's parameters and severity)
    and save it with its accounts; a name another rule has is refused."""
    name = values["name"].strip()
    if Rule.objects.filter(name=name).exclude(pk=rule.pk).exists():
        raise ValidationError({"name": [f"A rule named {name!r} exists already."]})
    rule.name = name
    rule.kind = values["kind"]
    rule.params = clean["params"]
    rule.severity = clean["severity"]
    rule.scope = values["scope"]
    rule.model = values["model"] if rule.scope == Rule.Scope.MODEL else None
    rule.when = values["when"]
    rule.active_from = values["active_from"]
    rule.active_to = values["active_to"]
    rule.save()
    rule.accounts.set(values["accounts"] if rule.scope == Rule.Scope.ACCOUNTS else [])


def rule_update(*, actor, rule_id: int, reason: str = "", **changes) -> Rule:
    """Edit a rule: what is not given keeps its value; the version goes up by one."""
    require(actor, Action.RULE_MANAGE)
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["This field cannot be changed."]})
    with audited_transaction():
        rule = Rule.objects.select_for_update(of=("self",)).get(pk=rule_id)
        before = _rule_snapshot(rule)
        values = rule_terms(rule) | changes
        if "kind" in changes and "params" not in changes and changes["kind"] != rule.kind:
            values["params"] = {}
        clean = rule_check(**values)
        rule.description = values["description"]
        rule.version += 1
        _rule_write(rule, values, clean)
        audit_record(
            actor=actor,
            kind="rule.changed",
            obj=rule,
            before=before,
            after=_rule_snapshot(rule),
            reason=reason,
        )
    return rule


def rule_set_active(*, actor, rule_id: int, active: bool, reason: str = "") -> Rule:
    """Deactivate a rule (it is no longer checked; its results keep naming it), or
    bring it back; either way the version goes up."""
    require(actor, Action.RULE_MANAGE)
    with audited_transaction():
        rule = Rule.objects.select_for_update(of=("self",)).get(pk=rule_id)
        if rule.is_active == active:
            return rule
        before = snapshot(rule, ("is_active", "version"))
        rule.is_active = active
        rule.version += 1
        rule.save(update_fields=["is_active", "version", "updated_at"])
        audit_record(
            actor=actor,
            kind="rule.activated" if active else "rule.deactivated",
            obj=rule,
            before=before,
            after=snapshot(rule, ("is_active", "version")),
            reason=reason,
        )
    return rule


def _clean_entries(tickers: Iterable[str], issuers: Iterable[str]) -> tuple[list, list[str]]:
    errors: dict[str, list[str]] = {}
    wanted = sorted({t.strip().upper() for t in tickers if t and t.strip()})
    found = {s.ticker: s for s in Security.objects.filter(ticker__in=wanted)}
    missing = [t for t in wanted if t not in found]
    if missing:
        errors["tickers"] = [
            f"Unknown ticker{'s' if len(missing) > 1 else ''}: {', '.join(missing)}."
        ]
    names = sorted({i.strip() for i in issuers if i and i.strip()})
    known = set(Security.objects.filter(issuer__in=names).values_list("issuer", flat=True))
    unknown = [n for n in names if n not in known]
    if unknown:
        errors["issuers"] = [f"No security has the issuer {', '.join(repr(n) for n in unknown)}."]
    if errors:
        raise ValidationError(errors)
    return [found[t] for t in wanted], names


def _list_snapshot(rlist: RestrictedList) -> dict:
    entries = list(rlist.entries.select_related("security")) if rlist.pk else []
    return snapshot(rlist, ("name", "level", "portfolio_id", "is_active", "version")) | {
        "tickers": sorted(e.security.ticker for e in entries if e.security_id),
        "issuers": sorted(e.issuer for e in entries if not e.security_id),
    }


def _set_entries(rlist: RestrictedList, securities: list, issuers: list[str], reason: str) -> None:
    rlist.entries.all().delete()
    RestrictedEntry.objects.bulk_create(
        [RestrictedEntry(restricted_list=rlist, security=s, reason=reason) for s in securities]
        + [RestrictedEntry(restricted_list=rlist, issuer=i, reason=reason) for i in issuers]
    )


def restricted_list_create(
    *,
    actor,
    name: str,
    level: str = RestrictedList.Level.FIRM,
    portfolio: Portfolio | None = None,
    tickers: Iterable[str] = (),
    issuers: Iterable[str] = (),
    description: str = "",
    reason: str = "",
) -> RestrictedList:
    """A new restricted list, firm-wide or for one account, with its securities (by
    ticker) and issuers (by name)."""
    require(actor, Action.RULE_MANAGE)
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["A restricted list needs a name."]
    if level not in RestrictedList.Level.values:
        errors["level"] = [f"Unknown level {level!r}: firm or account."]
    elif level == RestrictedList.Level.ACCOUNT and portfolio is None:
        errors["portfolio"] = ["An account-level list needs its account."]
    elif level == RestrictedList.Level.FIRM and portfolio is not None:
        errors["portfolio"] = ["A firm-wide list is for no one account."]
    if errors:
        raise ValidationError(errors)
    securities, issuer_names = _clean_entries(tickers, issuers)
    with audited_transaction():
        if RestrictedList.objects.filter(name=name).exists():
            raise ValidationError({"name": [f"A restricted list named {name!r} exists already."]})
        rlist = RestrictedList.objects.create(
            name=name, level=level, portfolio=portfolio, description=description, created_by=actor
        )
        _set_entries(rlist, securities, issuer_names, reason)
        audit_record(
            actor=actor,
            kind="restricted_list.created",
            obj=rlist,
            after=_list_snapshot(rlist),
            reason=reason,
        )
    return rlist


def restricted_list_update(
    *,
    actor,
    list_id: int,
    tickers: Iterable[str] | None = None,
    issuers: Iterable[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
    reason: str = "",
) -> RestrictedList:
    """Change a list's entries (what is given replaces what was there), its description,
    or whether it is active; the version goes up."""
    require(actor, Action.RULE_MANAGE)
    with audited_transaction():
        rlist = RestrictedList.objects.select_for_update(of=("self",)).get(pk=list_id)
        before = _list_snapshot(rlist)
        if is_active is False:
            used = [
                r.name
                for r in Rule.objects.filter(kind="restricted", is_active=True)
                if rlist.name in r.params.get("list", ())
            ]
            if used:
                raise ValidationError(
                    {"is_active": [f"Active rules use this list: {', '.join(used)}."]}
                )
        if tickers is not None or issuers is not None:
            current = before
            securities, issuer_names = _clean_entries(
                current["tickers"] if tickers is None else tickers,
                current["issuers"] if issuers is None else issuers,
            )
            _set_entries(rlist, securities, issuer_names, reason)
        fields = ["version", "updated_at"]
        if description is not None:
            rlist.description = description
            fields.append("description")
        if is_active is not None:
            rlist.is_active = is_active
            fields.append("is_active")
        rlist.version += 1
        try:
            rlist.save(update_fields=fields)
        except IntegrityError as exc:  # pragma: no cover - guarded above
            raise ValidationError(str(exc)) from exc
        audit_record(
            actor=actor,
            kind="restricted_list.changed",
            obj=rlist,
            before=before,
            after=_list_snapshot(rlist),
            reason=reason,
        )
    return rlist
