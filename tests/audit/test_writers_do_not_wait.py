"""No lock shared by every writer is held for the length of a business transaction.

Issue 9 found that an inline rebalance run under an API Idempotency-Key held the
audit chain's lock for the whole engine run, so that every audited write of the
system waited for it. Each test keeps one audited transaction open in a thread
and makes another audited write meanwhile; `lock_timeout` turns a wait for a lock
into an error, so that a writer stuck behind a shared lock fails the test rather
than hanging it.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import audit_record, audited_transaction
from orchestration import services as run_services
from portfolios.models import RebalanceRun
from portfolios.services.reference import security_create
from tests.audit.trail import in_thread
from trading.services.orders import order_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql")]

WAIT = 30  # seconds a thread waits for its cue before the test gives up on it


def _fail_instead_of_waiting_for_a_lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")


def test_an_audited_write_completes_while_another_audited_transaction_is_open(pm, ops, book):
    opened, finish = threading.Event(), threading.Event()

    def long_business_transaction() -> None:
        with audited_transaction():
            audit_record(actor=pm, kind="test.long", obj=book["accounts"][0])
            opened.set()
            finish.wait(WAIT)

    errors: list[BaseException] = []
    thread = in_thread(long_business_transaction, errors)
    try:
        assert opened.wait(WAIT)
        _fail_instead_of_waiting_for_a_lock()
        security = security_create(
            actor=ops, ticker="ZZZ", name="Zed Corp", asset_class="equity", currency="USD"
        )
        assert AuditEvent.objects.filter(kind="security.created", object_id=str(security.pk))
        assert not AuditEvent.objects.filter(kind="test.long").exists()  # still open
    finally:
        finish.set()
        thread.join(WAIT)
    assert not errors
    assert AuditEvent.objects.filter(kind="test.long").count() == 1


def test_an_inline_rebalance_under_an_idempotency_key_stalls_no_other_writer(
    pm, trader, book, monkeypatch
):
    in_engine, finish = threading.Event(), threading.Event()
    engine = run_services.rebalance

    def slow_engine(*args, **kwargs):
        in_engine.set()
        finish.wait(WAIT)  # a long engine run, inside the request's transaction
        return engine(*args, **kwargs)

    monkeypatch.setattr(run_services, "rebalance", slow_engine)
    account = book["accounts"][0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=pm).key}")
    answers = []

    def rebalance_through_the_api() -> None:
        answers.append(
            client.post(
                f"/api/v1/portfolios/{account.pk}/rebalance/",
                {},
                format="json",
                HTTP_IDEMPOTENCY_KEY="run-1",
            )
        )

    errors: list[BaseException] = []
    thread = in_thread(rebalance_through_the_api, errors)
    try:
        assert in_engine.wait(WAIT)
        _fail_instead_of_waiting_for_a_lock()
        order = order_create(
            actor=pm,
            portfolio=book["accounts"][1],
            security=book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(3),
        )
        assert AuditEvent.objects.filter(kind="order.created", object_id=str(order.pk)).exists()
        assert not RebalanceRun.objects.exists()  # the run's transaction is still open
    finally:
        finish.set()
        thread.join(WAIT)
    assert not errors
    [answer] = answers
    assert answer.status_code == 201, answer.content
    assert RebalanceRun.objects.get().status == RebalanceRun.Status.PROPOSED
