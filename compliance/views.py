"""Compliance pages: the audit trail with its chain's status, its verification and its
export."""

from __future__ import annotations

import csv
import json

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import chain_status, object_kind_name
from audit.services import verify_audit_chain
from oms.roles import Action
from oms.views import action_required, paginate, partial_or_page

from .filters import AuditEventFilter

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
    filterset = AuditEventFilter(request.GET or None, queryset=events)
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
