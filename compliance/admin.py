"""The rule book in the admin, read-only: rules, lists and overrides change through the
compliance services (validated, versioned, four eyes, audited), from the pages or the API."""

from django.contrib import admin

from oms.admin import ReadOnlyModelAdmin

from .models import (
    Alert,
    AlertComment,
    Override,
    PretradeResult,
    RestrictedEntry,
    RestrictedList,
    Rule,
    RuleBookStamp,
)

# The fields every rule-book entry has from `RuleBookEntry`, which Django would list
# first: on an entry's page they close it, after what the entry itself says.
_ENTRY_RECORD = (
    "Record",
    {"fields": ["is_active", "version", "created_by", "created_at", "updated_at"]},
)


@admin.register(Rule)
class RuleAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "kind", "severity", "scope", "when", "is_active", "version"]
    list_filter = ["kind", "severity", "is_active"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "description", "kind", "params", "severity"]}),
        (
            "Whom and when",
            {"fields": ["scope", "accounts", "model", "when", "active_from", "active_to"]},
        ),
        _ENTRY_RECORD,
    ]


@admin.register(RestrictedList)
class RestrictedListAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "level", "portfolio", "is_active", "version"]
    list_select_related = ["portfolio"]
    fieldsets = [(None, {"fields": ["name", "description", "level", "portfolio"]}), _ENTRY_RECORD]


@admin.register(RestrictedEntry)
class RestrictedEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["restricted_list", "security", "issuer", "added_at"]
    list_select_related = ["restricted_list", "security"]


@admin.register(PretradeResult)
class PretradeResultAdmin(ReadOnlyModelAdmin):
    list_display = ["order", "rule", "rule_version", "stage", "status", "value", "limit"]
    list_filter = ["status", "stage"]
    list_select_related = ["order", "rule"]


@admin.register(Override)
class OverrideAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "order", "status", "requested_by", "decided_by", "expires_at"]
    list_filter = ["status"]
    list_select_related = ["order", "requested_by", "decided_by"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "portfolio", "rule", "status", "value", "limit", "opened_at"]
    list_filter = ["status", "source"]
    list_select_related = ["portfolio", "rule"]


@admin.register(AlertComment)
class AlertCommentAdmin(ReadOnlyModelAdmin):
    list_display = ["alert", "author", "created_at"]
    list_select_related = ["alert", "author"]


@admin.register(RuleBookStamp)
class RuleBookStampAdmin(ReadOnlyModelAdmin):
    """The stamp a database trigger rewrites with every change to the rule book: shown
    to tell whether the pre-trade check's kept book is current, never edited."""

    list_display = ("id", "stamp")
