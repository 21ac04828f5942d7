"""{% push_meta %}: tells static/js/push.js how this deployment pushes (see oms/push.py)."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from oms import push

register = template.Library()


@register.simple_tag
def push_meta() -> str:
    """A <meta> naming the push mode (``sse`` with Redis, ``poll`` without) and
    the two URLs; pages that follow a topic put it in their head."""
    return format_html(
        '<meta name="oms-push" data-mode="{}" data-stream="{}" data-poll="{}">',
        "sse" if push.streaming() else "poll",
        reverse("push:stream"),
        reverse("push:poll"),
    )
