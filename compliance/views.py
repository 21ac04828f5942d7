"""Compliance pages: the audit trail with its chain's status, its verification and its
export."""

from __future__ import annotations

import csv
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.models import AuditEvent
from audit.selectors import chain_status, object_kind_name
from audit.services import verify_audit_chain
from oms.roles import Action, can, may_act_for
from oms.state import TransitionError
from oms.views import action_required, add_service_errors, paginate, partial_or_page
from trading.models import Order
from trading.selectors import orders_visible_to

from . import selectors
from .filters import AuditEventFilter
from .forms import (
    OverrideDecisionForm,
    OverrideRequestForm,
    RestrictedListForm,
    RuleForm,
    rule_terms_shown,
)
from .models import Alert, Override, RestrictedList, Rule
from .services import overrides as override_services
from .services import posttrade as posttrade_services
from .services import rules as rule_services

EXPORT_COLUMNS = [
    ("id", "id"),
    ("occurred_at", "occurred_at"),
    ("actor_name", "actor_name"),
    ("kind", "kind"),
    ("object_type", "object_type"),
    ("object_id", "object_id"),
    ("object_repr", "object_repr"),
    ("before", "before"),
    ("after", "after"),
    ("reason", "reason"),
    ("origin", "origin"),
    ("position", "seal__position"),
    ("previous_hash", "seal__previous_hash"),
    ("hash", "seal__hash"),
]
#: A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
#: Injection"): such a cell goes out with a leading apostrophe, shown as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Findings shown on the verify page; the command names them all.
SHOWN_BREAKS = 200


def _filtered(request: HttpRequest) -> AuditEventFilter:
    events = AuditEvent.objects.select_related("seal", "actor").order_by("-pk")
    data = request.GET.copy()
    if "feed" not in data and not data.get("kind", "").startswith("prices"):
        data["feed"] = "hide"  # a page of the feed's flushes hides the business events
    filterset = AuditEventFilter(data, queryset=events)
    fields = filterset.form.fields
    for name in ("occurred_from", "occurred_to"):
        # The browser's date-time picker; the filter reads its value as ISO 8601 (UTC).
        fields[name].widget.input_type = "datetime-local"
    # The form filters as a person types (0.4 s after the last keystroke).
    fields["actor"].widget.attrs["placeholder"] = "Pat Morgan"
    fields["object"].widget.attrs["placeholder"] = "Order 42"
    return filterset


@action_required(Action.AUDIT_VIEW)
def audit_list(request: HttpRequest) -> HttpResponse:
    """The trail, newest first, filtered by actor, object, kind and time, with the
    chain's status (the last sealed event, what awaits the sealer, the last checkpoint)."""
    filterset = _filtered(request)
    context = {"filterset": filterset, "page": paginate(request, filterset.qs)}
    htmx = getattr(request, "htmx", None)
    if not (htmx and htmx.target):
        context["chain"] = chain_status()
    return partial_or_page(
        request, "compliance/audit_list.html", "compliance/partials/audit_table.html", context
    )


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class _Echo:
    def write(self, value: str) -> str:
        return value


@action_required(Action.AUDIT_VIEW)
def audit_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered trail as CSV, oldest first, streamed: any filter, any length. A filter
    it cannot read is refused (400, naming it), never dropped: a typo in a date must
    not export the whole trail."""
    filterset = _filtered(request)
    if filterset.is_bound and not filterset.is_valid():
        problems = "; ".join(
            f"{filterset.form.fields[name].label}: {' '.join(errors)}"
            for name, errors in filterset.form.errors.items()
        )
        return HttpResponse(
            f"The filter cannot be read: {problems}\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    events = filterset.qs.order_by("pk").values_list(*(source for _, source in EXPORT_COLUMNS))
    writer = csv.writer(_Echo())

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True, ensure_ascii=False)
        elif hasattr(value, "isoformat"):
            value = value.isoformat(timespec="microseconds")
        return spreadsheet_safe(str(value))

    def rows():
        yield writer.writerow([name for name, _ in EXPORT_COLUMNS] + ["object_kind"])
        for row in events.iterator(chunk_size=2000):
            yield writer.writerow([cell(value) for value in row] + [object_kind_name(row[4])])

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return StreamingHttpResponse(
        rows(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


@action_required(Action.AUDIT_VIEW)
def audit_verify(request: HttpRequest) -> HttpResponse:
    """Walk the whole chain (on POST) and name every broken link."""
    report = verify_audit_chain() if request.method == "POST" else None
    context = {
        "report": report,
        "chain": chain_status(),
        "breaks": report.breaks[:SHOWN_BREAKS] if report else [],
        "hidden_breaks": max(0, report.broken - SHOWN_BREAKS) if report else 0,
    }
    template = (
        "compliance/partials/verify_result.html" if request.htmx else "compliance/audit_verify.html"
    )
    return render(request, template, context)


# --- The rule book, restricted lists, pre-trade results, overrides -------------------


def _form_errors(form, error: ValidationError, rename: dict[str, str] | None = None) -> None:
    """A service's errors on the form's fields (the engine names `list`, the form
    `lists`)."""
    if hasattr(error, "error_dict") and rename:
        error = ValidationError(
            {rename.get(field, field): messages for field, messages in error.message_dict.items()}
        )
    add_service_errors(form, error)


@action_required(Action.COMPLIANCE_VIEW)
def rule_list(request: HttpRequest) -> HttpResponse:
    """The rule book: every rule, what it measures, its limit, severity, scope, version."""
    rules = list(selectors.rules_visible_to(request.user))
    for rule in rules:
        rule.terms_shown = rule_terms_shown(rule.kind, rule.params)
    context = {
        "rules": rules,
        "can_manage": can(request.user, Action.RULE_MANAGE),
    }
    return render(request, "compliance/rule_list.html", context)


def _rule_form_page(request: HttpRequest, rule: Rule | None) -> HttpResponse:
    if request.method == "POST":
        form = RuleForm(request.POST)
        if form.is_valid():
            terms = form.rule_terms()
            try:
                if rule is None:
                    rule = rule_services.rule_create(actor=request.user, **terms)
                else:
                    rule = rule_services.rule_update(
                        actor=request.user,
                        rule_id=rule.pk,
                        reason=request.POST.get("reason", ""),
                        **terms,
                    )
            except ValidationError as error:
                _form_errors(form, error, {"list": "lists", "params": "limit"})
            else:
                messages.success(request, f"Rule {rule.name} saved (version {rule.version}).")
                return redirect("compliance:rule-list")
        status = 422
    else:
        form = RuleForm(initial=RuleForm.initial_for(rule) if rule else None)
        status = 200
    return render(request, "compliance/rule_form.html", {"form": form, "rule": rule}, status=status)


@action_required(Action.RULE_MANAGE)
def rule_create(request: HttpRequest) -> HttpResponse:
    return _rule_form_page(request, None)


@action_required(Action.RULE_MANAGE)
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _rule_form_page(request, get_object_or_404(Rule, pk=pk))


@require_POST
@action_required(Action.RULE_MANAGE)
def rule_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    rule = rule_services.rule_set_active(
        actor=request.user,
        rule_id=rule.pk,
        active=not rule.is_active,
        reason=request.POST.get("reason", ""),
    )
    messages.success(
        request, f"Rule {rule.name} {'activated' if rule.is_active else 'deactivated'}."
    )
    return redirect("compliance:rule-list")


@action_required(Action.COMPLIANCE_VIEW)
def restricted_list_list(request: HttpRequest) -> HttpResponse:
    context = {
        "lists": selectors.restricted_lists_visible_to(request.user),
        "can_manage": can(request.user, Action.RULE_MANAGE),
    }
    return render(request, "compliance/restricted_list_list.html", context)


@action_required(Action.RULE_MANAGE)
def restricted_list_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rlist = get_object_or_404(RestrictedList, pk=pk) if pk else None
    if request.method == "POST":
        form = RestrictedListForm(request.POST)
        if rlist is not None:
            for name in ("name", "level"):
                form.fields[name].required = False
        if form.is_valid():
            data = form.cleaned_data
            try:
                if rlist is None:
                    rlist = rule_services.restricted_list_create(
                        actor=request.user,
                        name=data["name"],
                        level=data["level"],
                        portfolio=data.get("portfolio"),
                        tickers=data["tickers"],
                        issuers=data["issuers"],
                        description=data.get("description", ""),
                        reason=data.get("reason", ""),
                    )
                else:
                    rlist = rule_services.restricted_list_update(
                        actor=request.user,
                        list_id=rlist.pk,
                        tickers=data["tickers"],
                        issuers=data["issuers"],
                        description=data.get("description", ""),
                        reason=data.get("reason", ""),
                    )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                messages.success(request, f"Restricted list {rlist.name} saved.")
                return redirect("compliance:restricted-list-list")
        status = 422
    else:
        initial = None
        if rlist is not None:
            entries = list(rlist.entries.select_related("security"))
            initial = {
                "name": rlist.name,
                "description": rlist.description,
                "level": rlist.level,
                "portfolio": rlist.portfolio,
                "tickers": "\n".join(e.security.ticker for e in entries if e.security_id),
                "issuers": "\n".join(e.issuer for e in entries if not e.security_id),
            }
        form = RestrictedListForm(initial=initial)
        status = 200
    if rlist is not None:
        for name in ("name", "level", "portfolio"):
            form.fields[name].disabled = True
    return render(
        request,
        "compliance/restricted_list_form.html",
        {"form": form, "rlist": rlist},
        status=status,
    )


@action_required(Action.COMPLIANCE_VIEW)
def order_checks(request: HttpRequest, pk: int) -> HttpResponse:
    """The order's latest pre-trade results (loaded into the order page), and the
    override request form where the order needs one."""
    order = get_object_or_404(orders_visible_to(request.user), pk=pk)
    overrides = list(selectors.overrides_visible_to(request.user).filter(order=order))
    context = {
        "order": order,
        "results": selectors.latest_results(order.pk),
        "overrides": overrides,
        "can_request": order.status == Order.Status.NEEDS_OVERRIDE
        and may_act_for(request.user, Action.OVERRIDE_REQUEST, order.portfolio)
        and not any(o.status == Override.Status.REQUESTED for o in overrides),
        "form": OverrideRequestForm(),
    }
    return render(request, "compliance/partials/order_checks.html", context)


@require_POST
@action_required(Action.OVERRIDE_REQUEST)
def order_override_request(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(orders_visible_to(request.user), pk=pk)
    form = OverrideRequestForm(request.POST)
    if form.is_valid():
        try:
            override_services.override_request(
                actor=request.user,
                order_id=order.pk,
                justification=form.cleaned_data["justification"],
                expires_at=form.cleaned_data.get("expires_at"),
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Override requested for {order}: compliance decides.")
    else:
        messages.error(request, " ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    return redirect(order)


@action_required(Action.COMPLIANCE_VIEW)
def override_queue(request: HttpRequest) -> HttpResponse:
    """Overrides waiting for a decision first, then the decided ones."""
    overrides = selectors.overrides_visible_to(request.user)
    status = request.GET.get("status", Override.Status.REQUESTED)
    if status in Override.Status.values:
        overrides = overrides.filter(status=status)
    context = {
        "page": paginate(request, overrides),
        "status": status,
        "statuses": Override.Status.choices,
        "can_decide": can(request.user, Action.OVERRIDE_DECIDE),
        "form": OverrideDecisionForm(),
    }
    return render(request, "compliance/override_queue.html", context)


@require_POST
@action_required(Action.OVERRIDE_DECIDE)
def override_decide(request: HttpRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(selectors.overrides_visible_to(request.user), pk=pk)
    form = OverrideDecisionForm(request.POST)
    decide = {
        "approve": override_services.override_approve,
        "reject": override_services.override_reject,
    }.get(request.POST.get("decision", ""))
    if decide is None:
        # a decision is never guessed: a missing or unknown one changes nothing
        messages.error(request, "Approve or reject the override.")
        return redirect("compliance:override-queue")
    if not form.is_valid():
        messages.error(request, " ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("compliance:override-queue")
    note = form.cleaned_data["note"]
    try:
        decide(actor=request.user, override_id=override.pk, note=note)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except TransitionError as error:
        messages.error(request, str(error))
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        override.refresh_from_db()
        messages.success(request, f"Override {override.pk} {override.status}.")
    return redirect("compliance:override-queue")


@action_required(Action.COMPLIANCE_VIEW)
def alert_list(request: HttpRequest) -> HttpResponse:
    """Post-trade alerts, open ones first; ``?portfolio=CODE`` for one account (the
    account page loads it), ``?status=resolved`` for the closed ones."""
    alerts = selectors.alerts_visible_to(request.user)
    status = request.GET.get("status", Alert.Status.OPEN)
    if status in Alert.Status.values:
        alerts = alerts.filter(status=status)
    code = request.GET.get("portfolio")
    if code:
        alerts = alerts.filter(portfolio__code=code)
    context = {
        "page": paginate(request, alerts),
        "status": status,
        "statuses": Alert.Status.choices,
        "can_manage": can(request.user, Action.ALERT_MANAGE),
    }
    return render(request, "compliance/alert_list.html", context)


@require_POST
@action_required(Action.ALERT_MANAGE)
def alert_act(request: HttpRequest, pk: int) -> HttpResponse:
    """Take an alert, comment on it or resolve it."""
    alert = get_object_or_404(selectors.alerts_visible_to(request.user), pk=pk)
    do, text = request.POST.get("do"), request.POST.get("text", "")
    try:
        if do == "take":
            posttrade_services.alert_assign(
                actor=request.user, alert_id=alert.pk, assignee=request.user
            )
        elif do == "comment":
            posttrade_services.alert_comment(actor=request.user, alert_id=alert.pk, text=text)
        elif do == "resolve":
            posttrade_services.alert_resolve(actor=request.user, alert_id=alert.pk, resolution=text)
        else:
            raise ValidationError("Take, comment or resolve.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Alert {alert.pk}: done.")
    return redirect("compliance:alert-list")
