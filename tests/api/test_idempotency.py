"""Idempotency-Key: a retry returns the first answer and creates nothing."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from oms.models import IdempotencyKey
from portfolios.models import Security
from trading.models import Order, Route

from .utils import API

pytestmark = pytest.mark.django_db


def _order_body(book, quantity=5):
    return {
        "portfolio": book["accounts"][0].code,
        "security": "AAA",
        "side": "buy",
        "quantity": quantity,
    }


def test_retry_with_the_same_key_returns_the_first_answer(pm, book, client_for):
    client = client_for(pm)
    first = client.post(
        f"{API}/orders/", _order_body(book), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    second = client.post(
        f"{API}/orders/", _order_body(book), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 1
    assert AuditEvent.objects.filter(kind="order.created").count() == 1


def test_without_a_key_each_post_creates(pm, book, client_for):
    client = client_for(pm)
    for _ in range(2):
        assert client.post(f"{API}/orders/", _order_body(book), format="json").status_code == 201
    assert Order.objects.count() == 2


def test_same_key_with_another_body_is_refused(pm, book, client_for):
    client = client_for(pm)
    client.post(f"{API}/orders/", _order_body(book, 5), format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = client.post(
        f"{API}/orders/", _order_body(book, 6), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 422
    assert "Idempotency-Key 'k'" in response.json()["detail"]
    assert Order.objects.count() == 1


def test_same_key_on_another_endpoint_is_refused(pm, book, client_for, make_order):
    client = client_for(pm)
    order = make_order()
    client.post(f"{API}/orders/{order.pk}/approve/", HTTP_IDEMPOTENCY_KEY="k")
    response = client.post(
        f"{API}/orders/", _order_body(book), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 422
    assert Order.objects.count() == 1


def test_keys_belong_to_their_user(ops, make_user, book, client_for):
    from oms.roles import Role

    other_ops = make_user("ops2", Role.OPERATIONS)
    for user, ticker in ((ops, "ZZ1"), (other_ops, "ZZ2")):
        response = client_for(user).post(
            f"{API}/securities/",
            {"ticker": ticker, "name": ticker, "asset_class": "equity", "currency": "USD"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="shared",
        )
        assert response.status_code == 201, response.content
    assert set(
        Security.objects.filter(ticker__startswith="ZZ").values_list("ticker", flat=True)
    ) == {
        "ZZ1",
        "ZZ2",
    }


def test_a_failed_request_keeps_no_key(pm, book, client_for):
    client = client_for(pm)
    bad = client.post(
        f"{API}/orders/", _order_body(book, -1), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()
    good = client.post(
        f"{API}/orders/", _order_body(book, 1), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert good.status_code == 201


def test_a_retried_action_answers_as_the_first_time(pm, make_order, client_for):
    client = client_for(pm)
    order = make_order()
    first = client.post(f"{API}/orders/{order.pk}/approve/", HTTP_IDEMPOTENCY_KEY="a")
    again = client.post(f"{API}/orders/{order.pk}/approve/", HTTP_IDEMPOTENCY_KEY="a")
    assert first.status_code == again.status_code == 200
    assert again.json()["status"] == "approved"
    assert AuditEvent.objects.filter(kind="order.approved").count() == 1
    # Without the key, the second approval is what it is: an illegal transition.
    assert client.post(f"{API}/orders/{order.pk}/approve/").status_code == 409


def test_a_retried_route_sends_one_route(trader, make_order, client_for):
    block_id = make_order(upto="released").block_id
    client = client_for(trader)
    answers = [
        client.post(
            f"{API}/blocks/{block_id}/route/",
            {"broker": "SIM"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="r-1",
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["cl_ord_id"] == answers[1].json()["cl_ord_id"]
    assert Route.objects.count() == 1


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "a\x00b", "tab\there"])
def test_unusable_keys_are_bad_input(key, pm, book, client_for):
    response = client_for(pm).post(
        f"{API}/orders/", _order_body(book), format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Order.objects.exists()


def _burst(count: int, send) -> list:
    """`count` requests at once, each from its own thread and database connection."""
    import threading

    from django.db import connection

    start = threading.Barrier(count, timeout=30)
    answers: list = []

    def one():
        try:
            start.wait()
            answers.append(send())
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == count, "a request did not finish"
    return answers


def _postgresql_only():
    from django.db import connection

    from tests.conftest import service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: writers at once (SQLite serialises whole requests)")


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_approvals_with_one_key_all_get_the_first_answer(
    pm, book, client_for, make_order
):
    """Probing found 2 of 20 such retries answered 409: each looked for the key before
    the first had committed, then found the order approved. A request now claims its
    key first, so the others wait for the first to commit and replay its answer."""
    _postgresql_only()
    order = make_order()
    url = f"{API}/orders/{order.pk}/approve/"
    answers = _burst(20, lambda: client_for(pm).post(url, HTTP_IDEMPOTENCY_KEY="approve-once"))
    assert sorted(a.status_code for a in answers) == [200] * 20, [a.content for a in answers]
    assert all(a.json() == answers[0].json() for a in answers)
    assert sorted(a.has_header("Idempotent-Replayed") for a in answers) == [False] + [True] * 19
    assert AuditEvent.objects.filter(kind="order.approved").count() == 1
    assert IdempotencyKey.objects.filter(key="approve-once").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_key_create_once(pm, book, client_for):
    _postgresql_only()
    answers = _burst(
        8,
        lambda: client_for(pm).post(
            f"{API}/orders/", _order_body(book), format="json", HTTP_IDEMPOTENCY_KEY="race"
        ),
    )
    assert [a.status_code for a in answers] == [201] * 8
    assert all(a.json() == answers[0].json() for a in answers)
    assert Order.objects.count() == 1
    assert AuditEvent.objects.filter(kind="order.created").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_waiting_retry_runs_itself_when_the_first_request_failed(pm, book, client_for):
    """A key exists only for a change that committed: if the first request with a key
    fails (here, a sell of more than is held), the one waiting behind it is not given
    that failure but runs, and may succeed where the first could not."""
    _postgresql_only()
    import threading

    from django.db import connection

    from trading.services import orders as order_services

    first_inside = threading.Event()
    release_first = threading.Event()
    create = order_services.order_create
    calls = []

    def create_slowly(**kwargs):
        calls.append(kwargs["quantity"])
        if len(calls) == 1:
            first_inside.set()
            release_first.wait(20)
            raise order_services.ValidationError({"quantity": ["Refused, for the test."]})
        return create(**kwargs)

    answers = {}

    def post(name):
        try:
            answers[name] = client_for(pm).post(
                f"{API}/orders/", _order_body(book), format="json", HTTP_IDEMPOTENCY_KEY="again"
            )
        finally:
            connection.close()

    import unittest.mock

    with unittest.mock.patch.object(order_services, "order_create", create_slowly):
        first = threading.Thread(target=post, args=("first",))
        first.start()
        assert first_inside.wait(20)
        second = threading.Thread(target=post, args=("second",))
        second.start()
        second.join(1)
        assert second.is_alive(), "the retry waits for the first request's outcome"
        release_first.set()
        first.join(20)
        second.join(20)
    assert answers["first"].status_code == 400
    assert answers["second"].status_code == 201
    assert not answers["second"].has_header("Idempotent-Replayed")
    assert Order.objects.count() == 1
