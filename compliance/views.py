"""Compliance pages: the audit trail, its verification and its export."""

from __future__ import annotations

import csv
import json

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import verify_audit_chain
from oms.roles import Action
from oms.views import action_required, paginate, partial_or_page

from .filters import AuditEventFilter

EXPORT_COLUMNS = [
    "id",
    "occurred_at",
    "actor_name",
    "kind",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "reason",
    "origin",
    "previous_hash",
    "hash",
]


def _filtered(request: HttpRequest) -> AuditEventFilter:
    filterset = AuditEventFilter(request.GET or None, queryset=AuditEvent.objects.order_by("-pk"))
    for name in ("occurred_from", "occurred_to"):
        # The browser's date-time picker; the filter reads its value as ISO 8601 (UTC).
        filterset.form.fields[name].widget.input_type = "datetime-local"
    return filterset


@action_required(Action.AUDIT_VIEW)
def audit_list(request: HttpRequest) -> HttpResponse:
    """The trail, newest first, filtered by actor, kind, object and time."""
    filterset = _filtered(request)
    context = {"filterset": filterset, "page": paginate(request, filterset.qs)}
    return partial_or_page(
        request, "compliance/audit_list.html", "compliance/partials/audit_table.html", context
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@action_required(Action.AUDIT_VIEW)
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered trail as CSV, oldest first, streamed."""
    events = _filtered(request).qs.order_by("pk").values_list(*EXPORT_COLUMNS)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(EXPORT_COLUMNS)
        for row in events.iterator(chunk_size=2000):
            values = list(row)
            values[1] = values[1].isoformat(timespec="microseconds")
            values[7] = json.dumps(values[7], sort_keys=True)
            values[8] = json.dumps(values[8], sort_keys=True)
            yield writer.writerow(values)

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return StreamingHttpResponse(
        rows(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


@action_required(Action.AUDIT_VIEW)
def audit_verify(request: HttpRequest) -> HttpResponse:
    """Walk the hash chain (on POST) and name the first broken link, if any."""
    report = verify_audit_chain() if request.method == "POST" else None
    context = {"report": report, "total": AuditEvent.objects.count()}
    if report and not report.ok:
        context["broken"] = AuditEvent.objects.filter(pk=report.first_broken_id).first()
    template = (
        "compliance/partials/verify_result.html" if request.htmx else "compliance/audit_verify.html"
    )
    return render(request, template, context)
