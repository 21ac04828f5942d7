"""{% push_meta %}: tells static/js/push.js how this deployment pushes (see oms/push.py)."""

from django import template
from django.core.handlers.asgi import ASGIRequest
from django.urls import reverse
from django.utils.html import format_html

from oms import push

register = template.Library()


@register.simple_tag(takes_context=True)
def push_meta(context) -> str:
    """A <meta> naming the push mode (``sse`` with Redis under an ASGI server, ``poll``
    otherwise: a WSGI server cannot hold a stream, so the page polls without first
    asking for one it would be refused) and the two URLs; pages that follow a topic
    put it in their head."""
    request = context.get("request")
    streams = push.streaming() and isinstance(request, ASGIRequest)
    return format_html(
        '<meta name="oms-push" data-mode="{}" data-stream="{}" data-poll="{}">',
        "sse" if streams else "poll",
        reverse("push:stream"),
        reverse("push:poll"),
    )
