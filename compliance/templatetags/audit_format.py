"""Template filters of the audit trail's pages."""

from django import template

from audit.selectors import object_kind_name

register = template.Library()


@register.filter
def object_kind(label: str) -> str:
    """An event's object kind as the pages name it: "trading.order" → "Order"."""
    return object_kind_name(label)
