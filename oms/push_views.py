"""The browser's end of the push channel (see oms/push.py): a Server-Sent
Events stream under the ASGI server when Redis is there, a poll otherwise."""

from __future__ import annotations

import json
import logging

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone

from . import push
from .roles import can

log = logging.getLogger(__name__)

#: A comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE_SECONDS = 15


def _refusal(user, name: str) -> HttpResponse | None:
    found = push.topic(name)
    if found is None:
        return JsonResponse({"error": f"no topic {name!r}"}, status=404)
    if not user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=403)
    if not can(user, found.action):
        return JsonResponse({"error": "your role does not see this"}, status=403)
    return None


def poll(request: HttpRequest) -> HttpResponse:
    """What changed on a topic since the cursor the page last got (the embedded
    default's one request per page per second). A first call only gets a cursor."""
    name = request.GET.get("topic", "")
    refused = _refusal(request.user, name)
    if refused:
        return refused
    cursor = push.cursor_now()
    since = push.parse_cursor(request.GET.get("cursor"))
    events = [] if since is None else push.replay(name, since)
    return JsonResponse({"cursor": cursor, "events": events})


def _sse(data: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return head + "".join(f"data: {line}\n" for line in data.splitlines()) + "\n"


async def stream(request: HttpRequest) -> HttpResponse:
    """A Server-Sent Events stream of a topic, fed by its Redis channel. Under a
    WSGI server, or without Redis, the page is told to poll instead (409)."""
    name = request.GET.get("topic", "")
    user = await request.auser()
    refused = await sync_to_async(_refusal)(user, name)
    if refused:
        return refused
    if not isinstance(request, ASGIRequest) or not push.streaming():
        return JsonResponse({"error": "no stream here: poll", "poll": True}, status=409)
    since = push.parse_cursor(request.headers.get("Last-Event-ID"))

    async def events():
        import redis.asyncio as aioredis
        from django.conf import settings

        client = aioredis.Redis.from_url(settings.OMS_PUSH_REDIS_URL)
        subscription = client.pubsub()
        await subscription.subscribe(push.channel(name))
        try:
            yield "retry: 1000\n\n"
            if since is not None:  # a reconnect: what changed while away
                for event in await sync_to_async(push.replay)(name, since):
                    yield _sse(json.dumps(event), push.cursor_now())
            yield _sse(json.dumps({"open": True}), push.cursor_now())
            while True:
                message = await subscription.get_message(
                    ignore_subscribe_messages=True, timeout=KEEP_ALIVE_SECONDS
                )
                if message is None:
                    yield ": keep-alive\n\n"
                    continue
                data = message["data"]
                text = data.decode() if isinstance(data, bytes) else str(data)
                yield _sse(text, timezone.now().isoformat())
        finally:
            await subscription.aclose()
            await client.aclose()

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy in front must not buffer it
    return response
