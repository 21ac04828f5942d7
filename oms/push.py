"""The push channel: pages learn of changes as they happen, without polling rows.

Publishing is one call from any layer and any process (web, worker, FIX
gateway)::

    from oms import push
    push.publish("blotter", {"block": block.pk})

The payload (small JSON: ids and versions, never a rendered page or anything a
viewer may not see) goes out **after the current transaction commits**, so a
page never hears of a change it cannot yet read, and a rolled-back change is
never announced. The same payload published twice in one transaction goes out
once.

Delivery:

* **Production (Redis):** ``publish`` is a Redis PUBLISH on ``oms:push:<topic>``;
  each open page holds one Server-Sent Events stream (``/push/stream/?topic=``,
  an async view under the ASGI server) fed by a Redis subscription. A page
  that reconnects sends the Last-Event-ID it saw and is replayed what changed
  since, from the database.
* **Embedded default (no Redis):** nothing is sent; each page polls
  ``/push/poll/?topic=&cursor=`` once a second and gets the same events,
  replayed from the database. One request per page per second, not per row.

A topic is registered once (``register``, from an app's ``ready``) with the
action a viewer needs and the replay that says what changed since a cursor.
The browser side is ``static/js/push.js`` (``OMS.push.subscribe(topic, fn)``).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "oms:push:"
#: Replays look this far before the cursor: a transaction that stamped a row
#: just before the cursor may commit just after it was taken.
REPLAY_OVERLAP = timedelta(seconds=2)

Replay = Callable[[datetime], list[dict]]


@dataclass(frozen=True)
class Topic:
    name: str
    action: str  # oms.roles.Action a viewer needs
    replay: Replay  # events since a moment (rows stamped after it, with the overlap)


_topics: dict[str, Topic] = {}


def register(name: str, *, action: str, replay: Replay) -> None:
    """Declare a topic: who may hear it, and how to say what changed since a moment."""
    _topics[name] = Topic(name, action, replay)


def topic(name: str) -> Topic | None:
    return _topics.get(name)


def channel(name: str) -> str:
    """The Redis channel of a topic, named for the database of ``OMS_PUSH_REDIS_URL``:
    Redis pub/sub ignores database numbers, so deployments that share a server on
    databases of their own would otherwise hear each other's changes."""
    return f"{CHANNEL_PREFIX}{_database(settings.OMS_PUSH_REDIS_URL)}:{name}"


@functools.lru_cache(maxsize=8)
def _database(url: str) -> int:
    from redis.connection import parse_url

    return int(parse_url(url).get("db", 0)) if url else 0


def streaming() -> bool:
    """Whether pages hold a stream (Redis is there) or poll (the embedded default)."""
    return bool(settings.OMS_PUSH_REDIS_URL)


# --- Publishing ------------------------------------------------------------------------


class _Pending:
    """The messages of one transaction, sent together once it commits."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str], None] = {}  # ordered, each once
        self.done = False

    def flush(self) -> None:
        self.done = True
        messages, self.messages = list(self.messages), {}
        if messages:
            _send_many(messages)


def publish(topic_name: str, payload: dict) -> None:
    """Announce a change on ``topic_name`` once the current transaction commits
    (at once outside one). Never raises: a page missing an event catches up on
    its next replay, the change itself is committed."""
    if not streaming():
        return  # pages poll; the replay finds the change in the database
    message = json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True)
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        _send(topic_name, message)
        return
    pending = getattr(conn, "_oms_push_pending", None)
    # a rolled-back transaction drops its on-commit hooks: start afresh then
    if (
        pending is None
        or pending.done
        or not any(hook[1] == pending.flush for hook in conn.run_on_commit)
    ):
        pending = conn._oms_push_pending = _Pending()
        transaction.on_commit(pending.flush)
    pending.messages[(topic_name, message)] = None


_client = None
_client_lock = threading.Lock()


def _redis():
    global _client
    with _client_lock:
        if _client is None:
            import redis

            _client = redis.Redis.from_url(
                settings.OMS_PUSH_REDIS_URL, socket_connect_timeout=1, socket_timeout=1
            )
        return _client


def _send(topic_name: str, message: str) -> None:
    try:
        _redis().publish(channel(topic_name), message)
    except Exception:  # the change is committed; the page catches up on its replay
        log.warning("push: could not publish on %s", topic_name, exc_info=True)


def _send_many(messages: list[tuple[str, str]]) -> None:
    """Publish a transaction's messages in one round trip (a pipeline, not MULTI)."""
    if len(messages) == 1:
        _send(*messages[0])
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for topic_name, message in messages:
            pipe.publish(channel(topic_name), message)
        pipe.execute()
    except Exception:  # the change is committed; the pages catch up on their replay
        log.warning("push: could not publish %d messages", len(messages), exc_info=True)


# --- Cursors ---------------------------------------------------------------------------


def cursor_now() -> str:
    return timezone.now().isoformat()


def parse_cursor(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        return None
    return moment


def replay(topic_name: str, since: datetime) -> list[dict]:
    """What changed on a topic since a moment (with the overlap)."""
    found = _topics[topic_name]
    return found.replay(since - REPLAY_OVERLAP)
