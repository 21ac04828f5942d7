"""The audit trail's filters, shared by the page, the export and the API.

They take what a person types: an actor by name or username, or part of either
("casey", "Pat Morgan", "broker:SIM"); an object as the pages name it ("Order 42",
"Rebalance run 7", "Account ACC1", or just "Block" for every block).
"""

from __future__ import annotations

import re

import django_filters as filters
from django.db.models import Q

from audit.models import AuditEvent
from audit.selectors import read_object_kind
from oms.filters import UTCIsoDateTimeFilter

#: What a price feed records each time it writes its bars and the day's prices.
FEED_FLUSH = "prices.flushed"


class AuditEventFilter(filters.FilterSet):
    actor = filters.CharFilter(
        method="filter_actor",
        label="Actor",
        help_text="A name or username, or the start of one; every word must match.",
    )
    object = filters.CharFilter(
        method="filter_object",
        label="Object",
        help_text='As the pages name it: "Order 42", "Rebalance run 7", "Account ACC1", '
        '"Block"; otherwise matched against the object\'s description.',
    )
    kind = filters.CharFilter(
        field_name="kind",
        lookup_expr="startswith",
        label="Event (prefix)",
        help_text='An event kind or its start: "order." finds every order event.',
    )
    object_type = filters.CharFilter(
        method="filter_object_type",
        label="Object kind",
        help_text='A kind as the pages name it ("Order") or its label ("trading.order").',
    )
    object_id = filters.CharFilter(field_name="object_id", label="Object id")
    occurred_from = UTCIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", label="From")
    occurred_to = UTCIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lte", label="To")
    feed = filters.ChoiceFilter(
        method="filter_feed",
        label="Price feed",
        choices=[("hide", "Flushes hidden"), ("show", "Flushes shown")],
        empty_label="Flushes shown",
        help_text="The price feed records each write of its prices (prices.flushed), "
        "every few seconds: the pages hide them unless asked.",
    )

    class Meta:
        model = AuditEvent
        fields = ["actor", "object", "kind", "object_type", "object_id"]

    def filter_feed(self, queryset, name, value):
        return queryset.exclude(kind=FEED_FLUSH) if value == "hide" else queryset

    def filter_actor(self, queryset, name, value):
        # "Pat Morgan", "Morgan, Pat": the words of a name, in any order.
        for word in re.split(r"[\s,;]+", value.strip()):
            if not word:
                continue
            queryset = queryset.filter(
                Q(actor_name__icontains=word)
                | Q(actor__first_name__istartswith=word)
                | Q(actor__last_name__istartswith=word)
            )
        return queryset

    def filter_object(self, queryset, name, value):
        label, rest = read_object_kind(value)
        if label is not None:
            queryset = queryset.filter(object_type=label)
            if not rest:
                return queryset
        elif not rest:
            return queryset
        if rest.isdigit():  # an id: "Order 42" is not Order 142
            return queryset.filter(object_id=rest)
        if label is not None:
            # A kind and a name ("Account ACC1"): that object, not every one whose
            # description contains the name (ACC10): the name as a whole word of it.
            return queryset.filter(Q(object_id=rest) | Q(object_repr__iregex=_whole_word(rest)))
        return queryset.filter(Q(object_id=rest) | Q(object_repr__icontains=rest))

    def filter_object_type(self, queryset, name, value):
        label, rest = read_object_kind(value)
        if label is None or rest:
            return queryset.filter(object_type=value.strip())
        return queryset.filter(object_type=label)


def _whole_word(text: str) -> str:
    """A pattern (the same on PostgreSQL and SQLite) that finds ``text`` as a whole word
    or phrase: not followed or preceded by a letter, a digit or an underscore."""
    return rf"(^|[^0-9A-Za-z_]){re.escape(text)}($|[^0-9A-Za-z_])"
