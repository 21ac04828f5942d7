"""Routes to a FIX broker, end to end on real parts: PostgreSQL, Redis, a Celery
worker process, the gateway as its own process (`manage.py fix_gateway`), and
a FIX peer we did not write — a QuickFIX acceptor acting as the broker.

The trader routes through the API; the worker writes the NewOrderSingle to the
outbox; the gateway sends it; QuickFIX acknowledges, fills half, then the rest
(for symbol DUP it sends the last fill twice; REJ it rejects; REST it only
acknowledges, until the trader cancels it through the API); the gateway applies
the reports and the worker allocates the filled blocks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolios.models import Price, Security
from tests.conftest import service_missing
from tests.integration.conftest import ROOT, _database_url
from trading.models import Block, Broker, Execution, FixInbox, FixOutbox, FixSession, Route
from trading.services import orders as order_services

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

sys.path.insert(0, str(ROOT / "tests" / "trading" / "fix"))
import qfhelpers  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def quickfix_broker(tmp_path):
    if qfhelpers.fix is None:
        service_missing("the quickfix binding (make test INTEROP=1 installs it)")
    port = _free_port()
    cfg = qfhelpers.write_config(
        tmp_path / "broker.cfg", "acceptor", port, [("FIX.4.4", "QFB", "OMS", {})], tmp_path
    )
    with qfhelpers.running_acceptor(qfhelpers.QFBroker(), cfg) as app:
        yield port, app


def _gateway(code: str, log: Path, poll: float = 0.05) -> subprocess.Popen:
    env = os.environ | {"DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "fix_gateway", code, "--poll", str(poll), "-v", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _block(pm, book, security, quantity: str) -> Block:
    orders = [
        order_services.order_create(
            actor=pm,
            portfolio=account,
            security=security,
            side="buy",
            quantity=Decimal(quantity),
        )
        for account in book["accounts"]
    ]
    ids = [o.pk for o in orders]
    order_services.orders_approve(actor=pm, order_ids=ids)
    order_services.orders_release(actor=pm, order_ids=ids)
    return Block.objects.get(orders__pk=ids[0])


def _route_through_the_api(trader, blocks) -> APIClient:
    """The trader routes each block to QFIX through the API; the client, to go on."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=trader).key}")
    for block in blocks:
        response = api.post(f"/api/v1/blocks/{block.pk}/route/", {"broker": "QFIX"}, format="json")
        assert response.status_code == 201, response.content
    return api


def test_routes_reach_a_quickfix_broker_through_the_gateway_process(
    celery_worker_process, quickfix_broker, wait_for, pm, trader, book, tmp_path
):
    port, qf = quickfix_broker
    broker = Broker.objects.create(code="QFIX", name="QuickFIX broker", adapter="fix")
    FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="QFB", port=port, heartbeat_interval=5
    )
    today = timezone.now().date()
    for ticker in ("DUP", "REJ", "REST"):
        security = Security.objects.create(ticker=ticker, name=ticker, currency="USD")
        Price.objects.create(security=security, as_of=today - timedelta(days=1), price=10)
    blocks = {
        "AAA": _block(pm, book, book["securities"]["AAA"], "30"),
        "DUP": _block(pm, book, Security.objects.get(ticker="DUP"), "20"),
        "REJ": _block(pm, book, Security.objects.get(ticker="REJ"), "10"),
        "REST": _block(pm, book, Security.objects.get(ticker="REST"), "5"),
    }

    log = tmp_path / "gateway.log"
    gateway = _gateway("QFIX", log)
    try:
        assert wait_for(lambda: FixSession.objects.get(broker=broker).logged_on, 30), (
            log.read_text()
        )
        # a second gateway for the same session refuses to start
        second = subprocess.run(
            [sys.executable, "manage.py", "fix_gateway", "QFIX"],
            cwd=ROOT,
            env=os.environ | {"DATABASE_URL": _database_url()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and "already runs" in second.stderr

        api = _route_through_the_api(trader, blocks.values())

        def settled() -> bool:
            return all(
                Block.objects.get(pk=b.pk).status == s
                for b, s in (
                    (blocks["AAA"], Block.Status.ALLOCATED),
                    (blocks["DUP"], Block.Status.ALLOCATED),
                    (blocks["REJ"], Block.Status.OPEN),
                )
            )

        assert wait_for(settled, 60), log.read_text()

        # the resting order: acknowledged, never filled; the trader cancels it
        resting = Route.objects.get(block=blocks["REST"])
        assert wait_for(lambda: Route.objects.get(pk=resting.pk).status == "new", 30)
        response = api.post(f"/api/v1/routes/{resting.pk}/cancel/", {}, format="json")
        assert response.status_code == 200 and response.data["status"] == "pending_cancel"
        assert wait_for(
            lambda: Block.objects.get(pk=blocks["REST"].pk).status == Block.Status.OPEN, 30
        ), log.read_text()
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0, log.read_text()

    aaa = Route.objects.get(block=blocks["AAA"])
    assert aaa.status == Route.Status.FILLED and aaa.filled_quantity == Decimal(60)
    assert aaa.average_price == Decimal(10) and aaa.broker_order_id.startswith("QO")
    assert Execution.objects.filter(route=aaa, exec_type="trade").count() == 2  # half, rest

    dup = Route.objects.get(block=blocks["DUP"])
    assert dup.status == Route.Status.FILLED and dup.filled_quantity == Decimal(40)
    assert Execution.objects.filter(route=dup, exec_type="trade").count() == 2  # not 3

    rej = Route.objects.get(block=blocks["REJ"])
    assert rej.status == Route.Status.REJECTED and "rejected by QuickFIX" in rej.text
    assert Block.objects.get(pk=blocks["REJ"].pk).routed_quantity == 0

    rest = Route.objects.get(block=blocks["REST"])
    assert rest.status == Route.Status.CANCELLED and rest.filled_quantity == 0
    cancels = [f for mt, f in qf.received if mt == "F"]
    assert [f[41] for f in cancels] == [rest.cl_ord_id]

    # QuickFIX got each order once, with our ClOrdIDs, and rejected nothing of ours
    got = [f[11] for mt, f in qf.received if mt == "D"]
    assert sorted(got) == sorted(r.cl_ord_id for r in Route.objects.filter(broker=broker))
    assert qf.rejects == []
    assert FixOutbox.objects.filter(status=FixOutbox.Status.SENT).count() == 5  # 4 D, 1 F
    inbox = FixInbox.objects.filter(session__broker=broker)
    # AAA: new, half, rest; DUP: the same + the repeat; REJ: reject; REST: new, canceled
    assert inbox.count() == 3 + 4 + 1 + 2
    assert not inbox.filter(applied_at__isnull=True).exists()
    fs = FixSession.objects.get(broker=broker)
    assert fs.logged_on is False and fs.next_sender_seq > 4


def test_a_new_route_and_its_cancel_go_without_waiting_for_the_gateways_poll(
    celery_worker_process, quickfix_broker, wait_for, pm, trader, book, tmp_path
):
    """On PostgreSQL the outbox's trigger NOTIFYs the session's gateway when a row
    commits (decision 53): with a poll of 5 minutes, the route is sent, acknowledged
    and cancelled within the test's waits, which a poll never reached."""
    from trading.services import routes as route_services

    port, qf = quickfix_broker
    broker = Broker.objects.create(code="QFIX", name="QuickFIX broker", adapter="fix")
    FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="QFB", port=port, heartbeat_interval=5
    )
    today = timezone.now().date()
    security = Security.objects.create(ticker="REST", name="REST", currency="USD")
    Price.objects.create(security=security, as_of=today - timedelta(days=1), price=10)
    block = _block(pm, book, security, "5")

    log = tmp_path / "gateway.log"
    gateway = _gateway("QFIX", log, poll=300)
    try:
        assert wait_for(lambda: FixSession.objects.get(broker=broker).logged_on, 30), (
            log.read_text()
        )
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=broker)
        assert wait_for(lambda: Route.objects.get(pk=route.pk).status == "new", 30), log.read_text()
        route_services.route_cancel(actor=trader, route_id=route.pk)
        assert wait_for(
            lambda: Route.objects.get(pk=route.pk).status == Route.Status.CANCELLED, 30
        ), log.read_text()
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0, log.read_text()
    assert [mt for mt, _ in qf.received if mt in "DF"] == ["D", "F"]


def test_a_quickfix_broker_s_settlement_date_is_booked_and_a_malformed_one_rejected(
    celery_worker_process, quickfix_broker, wait_for, pm, trader, book, tmp_path
):
    """QuickFIX fills SETL with its SettlDate five days on (never our T+1) and BADSETL
    first with a SettlDate no calendar has, then right: the gateway rejects the bad one
    with a session Reject naming tag 64, which QuickFIX takes, carries on, and the
    blocks settle on the broker's date with ours kept beside it (decision 49)."""
    from trading.models import Allocation

    port, qf = quickfix_broker
    theirs = timezone.now().date() + timedelta(days=5)
    qf.settl_date = theirs.strftime("%Y%m%d")
    broker = Broker.objects.create(code="QFIX", name="QuickFIX broker", adapter="fix")
    FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="QFB", port=port, heartbeat_interval=5
    )
    today = timezone.now().date()
    blocks = {}
    for ticker in ("SETL", "BADSETL"):
        security = Security.objects.create(ticker=ticker, name=ticker, currency="USD")
        Price.objects.create(security=security, as_of=today - timedelta(days=1), price=10)
        blocks[ticker] = _block(pm, book, security, "10")

    log = tmp_path / "gateway.log"
    gateway = _gateway("QFIX", log)
    try:
        assert wait_for(lambda: FixSession.objects.get(broker=broker).logged_on, 30), (
            log.read_text()
        )
        _route_through_the_api(trader, blocks.values())
        assert wait_for(
            lambda: all(
                Block.objects.get(pk=b.pk).status == Block.Status.ALLOCATED for b in blocks.values()
            ),
            60,
        ), log.read_text()
        assert FixSession.objects.get(broker=broker).logged_on  # the Reject stopped nothing
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0, log.read_text()

    for block in blocks.values():
        booked = {
            (a.settlement_date, a.computed_settlement_date is not None)
            for a in Allocation.objects.filter(block=block)
        }
        assert booked == {(theirs, True)}
        [fill] = Execution.objects.filter(route__block=block, exec_type="trade")
        assert fill.settlement_date == theirs
    rejects = [f for mt, f in qf.admin if mt == "3"]
    assert [(f[371], f[372], f[373]) for f in rejects] == [("64", "8", "5")]
    kept = FixInbox.objects.get(session__broker=broker, seq_num=int(rejects[0][45]))
    assert kept.status == FixInbox.Status.NOT_APPLIED and "20260231" in kept.error
    assert qf.rejects == [] and qf.errors == []
