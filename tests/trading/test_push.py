"""The push channel (oms/push.py): a change is announced after its transaction
commits, once, never for a rollback; pages without Redis poll one URL and get
the same events replayed from the database; the stream refuses a WSGI server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from oms import push
from tests.desk import released_block
from trading.models import Block
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch, settings):
    settings.OMS_PUSH_REDIS_URL = "redis://127.0.0.1:1/0"  # never reached: _send is replaced
    messages: list[tuple[str, str]] = []
    monkeypatch.setattr(push, "_send", lambda topic, message: messages.append((topic, message)))
    monkeypatch.setattr(push, "_send_many", messages.extend)  # a transaction's, in one go
    return messages


@pytest.mark.django_db(transaction=True)
def test_a_change_is_announced_after_commit_once_and_never_for_a_rollback(sent):
    with transaction.atomic():
        push.publish("blotter", {"block": 1})
        push.publish("blotter", {"block": 1})
        push.publish("blotter", {"block": 2})
        assert sent == []  # not before the commit
    assert sent == [("blotter", '{"block": 1}'), ("blotter", '{"block": 2}')]
    sent.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        push.publish("blotter", {"block": 3})
        raise RuntimeError("rolled back")
    with transaction.atomic():
        push.publish("blotter", {"block": 4})
    assert sent == [("blotter", '{"block": 4}')]


def test_without_redis_nothing_is_sent(monkeypatch, settings):
    settings.OMS_PUSH_REDIS_URL = ""
    monkeypatch.setattr(push, "_send", lambda *a: pytest.fail("sent without Redis"))
    push.publish("blotter", {"block": 1})


def test_a_fill_and_a_release_are_announced_on_the_blotter_topic(
    sent, pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    order = order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(10),
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    with django_capture_on_commit_callbacks(execute=True):
        order_services.orders_release(actor=pm, order_ids=[order.pk])
    block = Block.objects.get()
    assert sent == [("blotter", f'{{"block": {block.pk}}}')]
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    # the route, then the reports and the allocation (which, inside this test's one
    # transaction, share a commit and so go out once)
    assert len(sent) == 2 and set(sent) == {("blotter", f'{{"block": {block.pk}}}')}


def test_one_poll_per_page_replays_what_changed(pm, trader, book, client):
    client.force_login(trader)
    url = reverse("push:poll")
    first = client.get(url, {"topic": "blotter"}).json()
    assert first["events"] == [] and first["cursor"]
    block = released_block(pm, book, "10")
    answer = client.get(url, {"topic": "blotter", "cursor": first["cursor"]}).json()
    assert answer["events"] == [{"block": block.pk, "v": block.updated_at.isoformat()}]
    # a cursor from well after the change replays nothing
    later = (timezone.now() + timedelta(seconds=5)).isoformat()
    assert client.get(url, {"topic": "blotter", "cursor": later}).json()["events"] == []
    assert client.get(url, {"topic": "nope"}).status_code == 404
    client.force_login(pm)  # portfolio managers do not see the blotter
    assert client.get(url, {"topic": "blotter"}).status_code == 403


def test_the_stream_tells_a_wsgi_page_to_poll(trader, client, settings):
    settings.OMS_PUSH_REDIS_URL = "redis://127.0.0.1:6379/0"
    client.force_login(trader)
    response = client.get(reverse("push:stream"), {"topic": "blotter"})
    assert response.status_code == 409 and response.json()["poll"] is True


def test_deployments_on_other_redis_databases_do_not_hear_each_other(settings):
    """Redis pub/sub ignores the database number ("Pub/Sub has no relation to the key
    space ... including database numbers", redis.io/docs, Pub/Sub): two deployments on
    one Redis server, each on its own database, must not hear each other's changes (a
    test run beside a bench on this machine fetched another run's blocks)."""
    if not settings.REDIS_URL:
        from tests.conftest import service_missing

        service_missing("REDIS_URL is not set")
    import redis

    base = settings.REDIS_URL.rsplit("/", 1)[0]
    ours, theirs = f"{base}/14", f"{base}/15"
    settings.OMS_PUSH_REDIS_URL = ours
    listener = redis.Redis.from_url(ours).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(push.channel("blotter"))
    try:
        settings.OMS_PUSH_REDIS_URL = theirs
        redis.Redis.from_url(theirs).publish(push.channel("blotter"), '{"block": 196}')
        settings.OMS_PUSH_REDIS_URL = ours
        redis.Redis.from_url(ours).publish(push.channel("blotter"), '{"block": 1150}')
        heard = []
        for _ in range(20):
            message = listener.get_message(timeout=0.1)
            if message:
                heard.append(message["data"])
            if heard:
                break
        assert heard == [b'{"block": 1150}']
    finally:
        listener.close()
