"""The FIX gateway: routes to a FIX broker go out through the outbox and the
gateway's session, and the broker's reports come back through the services.

The broker here is our simulator (`trading.fix.simulator`) on loopback, in the
test's event loop, priced from the database; `tests/integration/` runs the
gateway as its own process against a QuickFIX acceptor.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from audit.services import verify_audit_chain

# The gateway commits on its own connection (the ORM inside an event loop uses
# another one), so these tests run on a database that really commits.
from tests.desk import released_block
from trading.brokers import ReplaceTerms, adapter_for, fixmap
from trading.brokers.fix import FixBroker
from trading.fix.codec import Message, decode
from trading.fix.simulator import build_simulator
from trading.gateway import Gateway, GatewayBusy, SessionLock
from trading.gateway.inbound import GatewayApplication, route_named_by
from trading.gateway.store import DatabaseStore
from trading.models import (
    Block,
    Broker,
    Execution,
    FixInbox,
    FixMessage,
    FixOutbox,
    FixSession,
    Route,
)
from trading.selectors import latest_price_by_ticker
from trading.services import executions as execution_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _orm_in_event_loop(monkeypatch):
    # The gateway calls the ORM from its event loop (its only thread), as the
    # management command allows.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def fix_broker(book):
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    FixSession.objects.create(broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1)
    return Broker.objects.select_related("fix_session").get(pk=broker.pk)


def report_from_execution_report(msg, broker_code):
    """What the gateway does with an inbound ExecutionReport: find its route, translate."""
    return fixmap.report_from_execution_report(
        msg, broker_code=broker_code, cl_ord_id=route_named_by(msg)
    )


def _released_block(pm, book, ticker="AAA", quantity="150", limit_price=None) -> Block:
    half = str(Decimal(quantity) / 2)
    order_type = "limit" if limit_price else "market"
    return released_block(
        pm, book, half, half, ticker=ticker, order_type=order_type, limit_price=limit_price
    )


def _route(trader, block, broker, capture) -> Route:
    with capture(execute=True):  # route_send runs (eagerly) once the route commits
        return route_services.route_create(actor=trader, block_id=block.pk, broker=broker)


async def _run_until(gateway: Gateway, done, timeout: float = 15.0) -> None:
    """Run the gateway until ``done()``. (``done`` is not asked again once the
    gateway has stopped: the ORM inside the loop would open a connection that
    nothing closes.)"""
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    end = time.monotonic() + timeout
    finished = False
    try:
        while time.monotonic() < end:
            if done():
                finished = True
                break
            if task.done():
                task.result()  # raises what stopped the gateway
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert finished, "timed out"


def _simulator(port: int = 0):
    # The simulator looks prices up in the database from the event loop: make
    # sure it shares the loop's connection, which the gateway closes when it
    # stops (tasks and servers started before the loop's first query would
    # each get one of their own).
    connection.ensure_connection()
    return build_simulator(
        port,
        sender_comp_id="BROKER",
        sessions=[("FIX.4.4", "OMS")],
        price_source=latest_price_by_ticker,  # the OMS feeds its prices
        reset_on_logon=False,
    )


def _filled(route):
    return lambda: Route.objects.filter(pk=route.pk, status=Route.Status.FILLED).exists()


def _trade_until(fix_broker, done, capture, *, prepare=None) -> Gateway:
    """Our simulator on loopback and a gateway for ``fix_broker`` pointed at it,
    run in an event loop until ``done()``; on_commit hooks run as they fire."""

    async def go():
        acc, _ = _simulator()
        await acc.start()
        try:
            gateway = Gateway(_point_at(fix_broker, acc.port), poll=0.02)
            if prepare is not None:
                prepare(gateway)
            await _run_until(gateway, done)
        finally:
            await acc.stop()
        return gateway

    with capture(execute=True):
        return asyncio.run(go())


def _point_at(fix_broker, port: int) -> FixSession:
    fs = fix_broker.fix_session
    fs.port = port
    fs.save(update_fields=["port"])
    return FixSession.objects.select_related("broker").get(pk=fs.pk)


# --- the adapter --------------------------------------------------------------------


def test_routing_to_a_fix_broker_writes_a_new_order_single_to_the_outbox(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    block = _released_block(pm, book)
    route = _route(trader, block, fix_broker, django_capture_on_commit_callbacks)

    route.refresh_from_db()
    assert route.status == Route.Status.PENDING_NEW and route.sent_at is not None
    row = FixOutbox.objects.get()
    assert (row.route, row.msg_type, row.status) == (route, "D", FixOutbox.Status.PENDING)
    fields = {int(t): v for t, v in row.fields}
    assert fields[11] == route.cl_ord_id
    assert (fields[55], fields[54], fields[38], fields[40], fields[59]) == (
        "AAA",
        "1",
        "150",
        "1",
        "0",
    )
    assert 44 not in fields  # a market order has no price
    assert fields[21] == "1"


def test_a_broker_set_to_fix_without_a_session_is_refused_clearly(db):
    broker = Broker.objects.create(code="NOSESS", name="x", adapter=Broker.Adapter.FIX)
    with pytest.raises(ValueError, match="no FIX session"):
        adapter_for(broker, print)


def test_cancel_and_status_requests_name_the_route(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    adapter = FixBroker(print, session=fix_broker.fix_session)
    ticket = route_services.route_ticket(route)
    adapter.cancel(ticket, cl_ord_id=fixmap.request_id(route.cl_ord_id, "C"))
    adapter.status(ticket)
    cancel, status = FixOutbox.objects.filter(msg_type__in=["F", "H"]).order_by("pk")
    cancel_fields = {int(t): v for t, v in cancel.fields}
    assert cancel.msg_type == "F" and cancel_fields[41] == route.cl_ord_id
    assert cancel_fields[11] != route.cl_ord_id
    assert status.msg_type == "H" and {int(t): v for t, v in status.fields}[11] == (route.cl_ord_id)


# --- the store and the lock ------------------------------------------------------------


def test_database_store_keeps_sequence_numbers_and_messages_across_instances(fix_broker):
    fs = fix_broker.fix_session
    store = DatabaseStore(fs)
    store.set(1, b"first")
    store.set(2, b"second")
    store.incr_sender()
    store.incr_sender()
    store.incr_target()
    again = DatabaseStore(fs)
    assert (again.next_sender, again.next_target) == (3, 2)
    assert again.get_range(1, 5) == [(1, b"first"), (2, b"second")]
    again.reset()
    assert (again.next_sender, again.next_target, again.generation) == (1, 1, 2)
    assert again.get_range(1, 5) == []  # a new generation numbers from 1 again
    assert FixMessage.objects.filter(session=fs).count() == 2  # the record stays


def test_a_reset_inside_a_read_leaves_the_stored_target_number_right(fix_broker):
    # a read whose messages reset the numbers (a Logon with ResetSeqNumFlag) and then
    # consume as many as the session held before: the number the read ends on is the
    # one stored, not the 1 the reset wrote
    from django.db import transaction

    fs = fix_broker.fix_session
    store = DatabaseStore(fs)
    store.incr_target()  # 2: the session logged on
    with transaction.atomic(), store.receiving():
        store.reset()  # the broker's Logon 141=Y: both numbers back to 1
        store.incr_target()  # and that Logon consumed: 2 again
    assert store.next_target == 2
    assert DatabaseStore(fs).next_target == 2


def test_a_second_gateway_for_the_same_session_is_refused(fix_broker):
    from django.db import connection, connections

    fs = fix_broker.fix_session
    with SessionLock(fs):
        if connection.vendor == "postgresql":
            # another process would hold another connection: use a second one
            other = connections.create_connection("default")
            try:
                with other.cursor() as cur:
                    cur.execute("SELECT pg_try_advisory_lock(%s)", [_key(fs)])
                    assert cur.fetchone()[0] is False
            finally:
                other.close()
        else:
            with pytest.raises(GatewayBusy), SessionLock(fs):
                pass
    with SessionLock(fs):  # released when the first gateway stops
        pass


def _key(fs):
    from trading.gateway.lock import _lock_key

    return _lock_key(fs)


# --- end to end, against our simulator ----------------------------------------------------


def test_gateway_sends_the_route_and_applies_the_fills(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    block = _released_block(pm, book)
    route = _route(trader, block, fix_broker, django_capture_on_commit_callbacks)

    gateway = _trade_until(fix_broker, _filled(route), django_capture_on_commit_callbacks)

    route.refresh_from_db()
    block.refresh_from_db()
    assert route.status == Route.Status.FILLED and route.filled_quantity == Decimal(150)
    assert route.average_price == Decimal(100)  # the database's price of AAA
    assert route.broker_order_id.startswith("O")
    assert block.status == Block.Status.ALLOCATED
    assert Execution.objects.filter(route=route, exec_type="trade").count() == 1

    row = FixOutbox.objects.get()
    assert row.status == FixOutbox.Status.SENT and row.seq_num == 2  # after the Logon
    sent = FixMessage.objects.get(session=fix_broker.fix_session, seq_num=row.seq_num)
    assert decode(bytes(sent.raw)).get(11) == route.cl_ord_id
    inbox = list(FixInbox.objects.order_by("seq_num"))
    assert [m.msg_type for m in inbox] == ["8", "8"]
    assert all(m.applied_at is not None and m.error == "" for m in inbox)

    fs = FixSession.objects.get(pk=fix_broker.fix_session.pk)
    assert fs.next_sender_seq == gateway.session.next_sender >= 3
    assert fs.next_target_seq == gateway.session.next_target >= 4
    assert fs.logged_on is False  # stopped
    fills = AuditEvent.objects.filter(kind="execution.trade")
    assert fills.exists() and all(e.origin.startswith("fix:") for e in fills)
    assert verify_audit_chain().ok


def test_a_restarted_gateway_carries_on_from_the_stored_sequence_numbers(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    first = _route(
        trader, _released_block(pm, book, "AAA"), fix_broker, django_capture_on_commit_callbacks
    )

    async def go():
        acc, broker_app = _simulator()  # keeps its own sequence numbers: no reset on logon
        await acc.start()
        try:
            fs = _point_at(fix_broker, acc.port)
            await _run_until(Gateway(fs, poll=0.02), _filled(first))
            seqs = FixSession.objects.values_list("next_sender_seq", "next_target_seq").get(
                pk=fs.pk
            )
            second = _route(
                trader,
                _released_block(pm, book, "BBB", "20"),
                fix_broker,
                django_capture_on_commit_callbacks,
            )
            restarted = Gateway(FixSession.objects.select_related("broker").get(pk=fs.pk))
            assert (restarted.session.next_sender, restarted.session.next_target) == seqs
            await _run_until(restarted, _filled(second))
            broker_session = next(iter(acc.sessions.values()))
            return seqs, broker_session, second
        finally:
            await acc.stop()

    with django_capture_on_commit_callbacks(execute=True):
        seqs, broker_session, second = asyncio.run(go())
    # the broker saw one unbroken sequence: no resend, no reset
    assert "Sent ResendRequest" not in " ".join(broker_session.events)
    assert broker_session.next_target == FixSession.objects.get().next_sender_seq
    assert Route.objects.get(pk=second.pk).filled_quantity == Decimal(20)


def test_nothing_reaches_the_broker_while_the_gateway_is_down_and_nothing_is_lost(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )

    async def go():
        with __import__("socket").socket() as s:  # a port nobody listens on yet
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        gateway = Gateway(_point_at(fix_broker, port), poll=0.02, reconnect_cap=0.2)
        gateway.initiator.reconnect_base = 0.05
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        await asyncio.sleep(0.5)
        waiting = FixOutbox.objects.get().status
        acc, _ = _simulator(port)  # the broker comes up
        await acc.start()
        try:
            for _ in range(300):
                if _filled(route)():
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
            await acc.stop()
        return waiting

    with django_capture_on_commit_callbacks(execute=True):
        waiting = asyncio.run(go())
    assert waiting == FixOutbox.Status.PENDING
    assert Route.objects.get(pk=route.pk).status == Route.Status.FILLED


def test_a_row_that_cannot_be_sent_is_set_aside_and_the_route_says_so(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    bad = _route(
        trader, _released_block(pm, book, "AAA"), fix_broker, django_capture_on_commit_callbacks
    )
    FixOutbox.objects.filter(route=bad).update(fields=[["not-a-tag", "x"]])
    good = _route(
        trader,
        _released_block(pm, book, "BBB", "20"),
        fix_broker,
        django_capture_on_commit_callbacks,
    )

    gateway = _trade_until(fix_broker, _filled(good), django_capture_on_commit_callbacks)
    row = FixOutbox.objects.get(route=bad)
    assert row.status == FixOutbox.Status.FAILED and "ValueError" in row.error
    bad.refresh_from_db()
    assert bad.status == Route.Status.REJECTED and "not sent to the broker" in bad.text
    assert Block.objects.get(pk=bad.block_id).routed_quantity == 0  # back to route again
    assert AuditEvent.objects.filter(kind="route.not_sent", object_id=str(bad.pk)).exists()
    # the failed row used no sequence number: the good order went out as 2
    assert FixOutbox.objects.get(route=good).seq_num == 2
    assert gateway.session.next_sender == FixSession.objects.get().next_sender_seq


# --- inbound messages, one by one ---------------------------------------------------------


class _Sent:
    """A stand-in session for GatewayApplication.from_app: keeps what is sent."""

    def __init__(self):
        from trading.fix.session import SessionID

        self.sid = SessionID("FIX.4.4", "OMS", "BROKER")
        self.sent: list[Message] = []

    def send(self, msg):
        self.sent.append(msg)
        return True


def _er(seq: int, fields: dict[int, str]) -> Message:
    body = {37: "O1", 17: "E1", 150: "0", 39: "0", 55: "AAA", 54: "1", 151: "150", 14: "0"}
    body.update(fields)
    return Message(
        "8",
        sorted(body.items()),
        begin_string="FIX.4.4",
        header=[(34, str(seq)), (49, "BROKER"), (56, "OMS")],
    )


def test_a_report_for_an_unknown_order_is_kept_with_the_reason_and_answered_dont_know(
    fix_broker,
):
    fs = fix_broker.fix_session
    app = GatewayApplication(fs, DatabaseStore(fs))
    session = _Sent()
    app.from_app(_er(7, {11: "NOT-OURS", 150: "F", 39: "2", 32: "10", 31: "5"}), session)
    row = FixInbox.objects.get(seq_num=7)
    assert row.applied_at is None and "NOT-OURS" in row.error
    assert [m.msg_type for m in session.sent] == ["Q"]
    assert session.sent[0].get(17) == "E1" and session.sent[0].get(127) == "D"


def test_the_same_inbound_message_twice_is_applied_once(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    fs = fix_broker.fix_session
    app = GatewayApplication(fs, DatabaseStore(fs))
    msg = _er(5, {11: route.cl_ord_id})
    app.from_app(msg, _Sent())
    app.from_app(msg, _Sent())  # a resend of seq 5
    assert FixInbox.objects.filter(seq_num=5).count() == 1
    assert Execution.objects.filter(route=route).count() == 1
    assert Route.objects.get(pk=route.pk).status == Route.Status.NEW


#: A read from the broker's socket is stored and applied in one transaction: what it
#: costs beyond its reports (the commit, the next target number written once) does not
#: grow with the reports in it, and each acknowledgement costs the same.
READ = 3  # BEGIN, the next target number, COMMIT
ACK = 17  # two savepoints, the inbox row read and written, the route found, applied
#: The reports of a read of two or more, applied together whatever their number: the
#: routes named, a savepoint (2), blocks and routes locked, ExecIDs and the blocks'
#: routes read, the executions inserted, the routes and blocks written, the events
#: appended, the orders locked, the inbox rows (whose unique numbers refuse a resend).
TOGETHER = 15


def _acks_in_one_read(app, routes, first_seq: int) -> list[str]:
    session = _Sent()
    with CaptureQueriesContext(connection) as queries, app.reading(session):
        for n, route in enumerate(routes):
            seq = first_seq + n
            app.from_app(_er(seq, {11: route.cl_ord_id, 17: f"A{seq}"}), session)
            app.store.set_next_target(seq + 1)  # as the session does once it returns
    return [q["sql"] for q in queries.captured_queries]


def test_the_reports_of_one_read_are_applied_in_one_transaction(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    routes = [
        _route(
            trader,
            _released_block(pm, book, limit_price=Decimal(100 + n)),
            fix_broker,
            django_capture_on_commit_callbacks,
        )
        for n in range(7)
    ]
    fs = fix_broker.fix_session
    app = GatewayApplication(fs, DatabaseStore(fs))
    app.store.set_next_target(1)
    _acks_in_one_read(app, routes[:1], 1)  # warms caches
    one = _acks_in_one_read(app, routes[1:2], 2)
    two = _acks_in_one_read(app, routes[2:4], 3)
    three = _acks_in_one_read(app, routes[4:], 5)
    for statements in (one, two, three):
        assert statements.count("COMMIT") == 1
        assert sum("next_target_seq" in sql for sql in statements) == 1
    assert len(one) == READ + ACK, len(one)
    # two or more: applied together, in the same statements whatever their number
    assert len(two) == len(three) == READ + TOGETHER, (len(two), len(three))
    # each report applied as alone: its inbox row, its execution, its route acknowledged
    assert FixSession.objects.get(pk=fs.pk).next_target_seq == 8
    assert FixInbox.objects.filter(status=FixInbox.Status.APPLIED).count() == 7
    for route in routes:
        route.refresh_from_db()
        assert route.status == Route.Status.NEW
        assert Execution.objects.filter(route=route, exec_type="new").count() == 1
    assert AuditEvent.objects.filter(kind="execution.new").count() == 7


def test_a_read_resent_whole_is_applied_once(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    """A read of reports already stored (the broker resends them): together they are
    refused by the inbox's numbers, with nothing of it written, and one by one each
    is found applied already."""
    routes = _burst(pm, trader, book, fix_broker, django_capture_on_commit_callbacks, 3)
    fs = fix_broker.fix_session
    app = GatewayApplication(fs, DatabaseStore(fs))
    app.store.set_next_target(1)
    _acks_in_one_read(app, routes, 1)
    again = _acks_in_one_read(app, routes, 1)
    assert FixInbox.objects.filter(status=FixInbox.Status.APPLIED).count() == 3
    for route in routes:
        assert Execution.objects.filter(route=route).count() == 1
    assert AuditEvent.objects.filter(kind="execution.new").count() == 3
    assert any("ROLLBACK TO SAVEPOINT" in sql for sql in again)


def test_a_read_that_does_not_commit_consumes_none_of_its_messages(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    from django.db import transaction

    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    fs = fix_broker.fix_session
    app = GatewayApplication(fs, DatabaseStore(fs))
    app.store.set_next_target(5)
    session = _Sent()
    with app.reading(session):
        app.from_app(_er(5, {11: route.cl_ord_id}), session)
        app.store.set_next_target(6)
        transaction.set_rollback(True)  # as when a savepoint cannot be rolled back
    # nothing stored, the numbers read back: the broker has the message again
    assert app.store.next_target == 5 and app.database_unavailable
    assert FixSession.objects.get(pk=fs.pk).next_target_seq == 5
    assert not FixInbox.objects.exists()
    assert not Execution.objects.filter(route=route).exists()
    # and had again, it is applied once
    app.database_unavailable = False
    with app.reading(session):
        app.from_app(_er(5, {11: route.cl_ord_id}), session)
    assert Execution.objects.filter(route=route).count() == 1


@pytest.mark.parametrize(
    ("exec_type", "ord_status", "expected"),
    [
        ("0", "0", ("new", "new")),
        ("F", "1", ("trade", "partially_filled")),
        ("2", "2", ("trade", "filled")),  # FIX 4.2's Fill
        ("1", "1", ("trade", "partially_filled")),  # FIX 4.2's Partial fill
        ("4", "4", ("canceled", "cancelled")),
        ("8", "8", ("rejected", "rejected")),
        ("C", "C", ("expired", "expired")),
        ("3", "3", ("done_for_day", "done_for_day")),
        ("5", "0", ("replaced", "new")),  # FIX 4.4: Replaced, the order is New again
        ("5", "5", ("replaced", "replaced")),  # FIX 4.2's OrdStatus Replaced
        ("6", "6", ("pending_cancel", "pending_cancel")),
        ("E", "E", ("pending_replace", "pending_replace")),
        ("A", "A", ("new", "pending_new")),
        ("I", "1", ("order_status", "partially_filled")),
    ],
)
def test_fix_execution_reports_map_to_ours(
    fix_broker, pm, trader, book, eager_celery, django_capture_on_commit_callbacks,
    exec_type, ord_status, expected,
):  # fmt: skip
    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    report = report_from_execution_report(
        _er(3, {11: route.cl_ord_id, 150: exec_type, 39: ord_status, 32: "10", 31: "99.5"}),
        "FIXB",
    )
    assert (report.exec_type, report.ord_status) == expected
    assert report.cl_ord_id == route.cl_ord_id
    assert (report.last_quantity, report.last_price) == (Decimal(10), Decimal("99.5"))


def test_an_execution_report_with_codes_we_do_not_know_is_refused(fix_broker):
    with pytest.raises(ValueError, match="not understood"):
        fixmap.report_from_execution_report(_er(3, {150: "Z"}), broker_code="FIXB", cl_ord_id="X")


def test_a_report_the_database_cannot_take_is_had_again_after_reconnecting(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import OperationalError

    import trading.gateway.inbound

    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    real_apply = execution_services.execution_apply
    calls = []

    def flaky_apply(report):
        calls.append(report.exec_type)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real_apply(report)

    real_apply_all = execution_services.executions_apply

    def flaky_apply_all(reports):
        # a read's reports applied together (the ack and the fill often come in one)
        first = not calls
        calls.extend(report.exec_type for report in reports)
        if first:
            raise OperationalError("database is locked")
        return real_apply_all(reports)

    monkeypatch.setattr(trading.gateway.inbound, "execution_apply", flaky_apply)
    monkeypatch.setattr(trading.gateway.inbound, "executions_apply", flaky_apply_all)

    def quick_reconnect(gateway):
        gateway.initiator.reconnect_base = 0.05

    gateway = _trade_until(
        fix_broker, _filled(route), django_capture_on_commit_callbacks, prepare=quick_reconnect
    )
    assert gateway.initiator.connects == 2  # dropped once, came back
    # the report the database refused (alone or with the fill of its read), resent
    assert calls[0] == "new" and "new" in calls[1:]
    route.refresh_from_db()
    assert route.filled_quantity == Decimal(150)
    # new + trade, once each (and the answer to the status asked at the second logon)
    assert Execution.objects.filter(route=route, exec_type__in=["new", "trade"]).count() == 2
    assert not FixInbox.objects.filter(applied_at__isnull=True).exists()


def test_export_prices_writes_the_latest_price_of_each_security(book, tmp_path):
    import json

    from django.core.management import call_command

    path = tmp_path / "var" / "fix-prices.json"
    call_command("export_prices", str(path))
    prices = {k: Decimal(v) for k, v in json.loads(path.read_text()).items()}
    assert prices == {"AAA": 100, "BBB": 50, "CCC": 20, "DDD": 40, "EEE": 10}  # today's, not older


def test_a_route_to_a_fix_broker_without_a_session_is_rejected_and_freed(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    broker = Broker.objects.create(code="NOSESS", name="x", adapter=Broker.Adapter.FIX)
    block = _released_block(pm, book)
    route = _route(trader, block, broker, django_capture_on_commit_callbacks)
    route.refresh_from_db()
    assert route.status == Route.Status.REJECTED and "no FIX session" in route.text
    assert Block.objects.get(pk=block.pk).status == Block.Status.OPEN  # route it elsewhere
    assert not FixOutbox.objects.exists()


def test_a_route_to_a_fix_broker_is_in_its_outbox_when_its_creation_commits(
    pm, trader, book, fix_broker, django_capture_on_commit_callbacks, django_assert_num_queries
):
    """No task between the desk and the gateway: the route is claimed and its new
    order written to the session's outbox in the transaction that creates it."""
    block = _released_block(pm, book)
    route_services.route_create(
        actor=trader, block_id=_released_block(pm, book, "BBB").pk, broker=fix_broker
    )  # warms caches
    # the block locked, its security read, the route inserted, the block written, its
    # orders locked and written, three INSERTs of events (the orders'; the route's and
    # the block's; the send's), the outbox row, and the transaction
    with django_capture_on_commit_callbacks() as callbacks, django_assert_num_queries(11):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=fix_broker)
    [row] = FixOutbox.objects.filter(route=route)  # before anything ran after commit
    assert (row.msg_type, row.status) == ("D", FixOutbox.Status.PENDING)
    route.refresh_from_db()
    assert route.sent_at is not None and route.status == Route.Status.PENDING_NEW
    kinds = AuditEvent.objects.filter(object_id=str(route.pk), object_type="trading.route")
    assert sorted(kinds.values_list("kind", flat=True)) == ["route.created", "route.sent"]
    for callback in callbacks:  # the blotter's push; a late task would send nothing again
        callback()
    assert FixOutbox.objects.filter(route=route).count() == 1


def test_the_claim_and_the_outbox_row_commit_together(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    def broken_send(self, ticket):
        FixOutbox.objects.create(session=self.session, msg_type="D", fields=[])
        raise KeyError("no such side")  # after writing: the write must not stay

    def cannot_build(self, routes_and_tickets):
        raise KeyError("no such side")  # at creation: left to the routing worker

    monkeypatch.setattr(FixBroker, "new_orders", cannot_build)
    monkeypatch.setattr(FixBroker, "send", broken_send)
    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    route.refresh_from_db()
    assert not FixOutbox.objects.exists()
    assert route.status == Route.Status.REJECTED and "could not be queued" in route.text
    assert route.sent_at is None  # the claim went with the failed write


def test_a_fix_42_status_report_books_nothing_and_busts_are_left_to_operations(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    from trading.brokers.fixmap import TradeCorrection

    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    status = report_from_execution_report(
        _er(3, {11: route.cl_ord_id, 150: "2", 39: "2", 20: "3", 32: "10", 31: "5"}), "FIXB"
    )
    assert status.exec_type == "order_status"  # not a second fill
    for fields in ({150: "H", 19: "E1"}, {150: "G"}, {150: "2", 20: "1"}, {150: "2", 20: "2"}):
        with pytest.raises(TradeCorrection, match="not booked"):
            fixmap.report_from_execution_report(_er(3, fields), broker_code="FIXB", cl_ord_id="X")


def test_an_order_from_an_earlier_day_is_not_resent_and_its_route_is_flagged(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    from datetime import UTC, datetime, timedelta

    from trading.fix.session import DoNotSend

    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    fs = fix_broker.fix_session
    app = GatewayApplication(fs, DatabaseStore(fs))

    def resent(sent_at: datetime) -> Message:
        stamp = sent_at.strftime("%Y%m%d-%H:%M:%S.000")
        return Message(
            "D",
            [(11, route.cl_ord_id), (55, "AAA")],
            begin_string="FIX.4.4",
            header=[(43, "Y"), (122, stamp)],
        )

    app.to_app(resent(datetime.now(UTC)), _Sent(), True)  # today's: resent as is
    app.to_app(resent(datetime.now(UTC) - timedelta(days=1)), _Sent(), False)  # not a resend
    assert Route.objects.get(pk=route.pk).status == Route.Status.PENDING_NEW
    with pytest.raises(DoNotSend):
        app.to_app(resent(datetime.now(UTC) - timedelta(days=1)), _Sent(), True)
    route.refresh_from_db()
    assert route.status == Route.Status.UNCONFIRMED and "not resent" in route.text


def test_bytes_of_a_send_whose_transaction_fails_never_reach_the_broker(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import DataError

    bad = _route(
        trader, _released_block(pm, book, "AAA"), fix_broker, django_capture_on_commit_callbacks
    )
    good = _route(
        trader,
        _released_block(pm, book, "BBB", "20"),
        fix_broker,
        django_capture_on_commit_callbacks,
    )
    real_save = FixOutbox.save

    def save(self, *args, **kwargs):
        if self.route_id == bad.pk and self.status == FixOutbox.Status.SENT:
            raise DataError("value too long")  # after session.send, inside the transaction
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(FixOutbox, "save", save)
    import trading.gateway.outbox as outbox_module

    real_update_rows = outbox_module.update_rows

    def update_rows(model, rows, fields):  # the batch's write of the rows it sent
        if any(row.route_id == bad.pk for row in rows):
            raise DataError("value too long")
        return real_update_rows(model, rows, fields)

    monkeypatch.setattr(outbox_module, "update_rows", update_rows)
    received = []

    async def go():
        acc, broker_app = _simulator()
        original = broker_app._new_order

        def spy(msg, session):
            received.append(msg.get(11))
            original(msg, session)

        broker_app._handlers["D"] = lambda self, msg, session: spy(msg, session)
        await acc.start()
        try:
            gateway = Gateway(_point_at(fix_broker, acc.port), poll=0.02)
            await _run_until(gateway, _filled(good))
        finally:
            await acc.stop()

    with django_capture_on_commit_callbacks(execute=True):
        asyncio.run(go())
    assert received == [good.cl_ord_id]  # the failed one's bytes were dropped
    assert FixOutbox.objects.get(route=good).seq_num == 2  # and its number reused
    assert not FixMessage.objects.filter(raw__contains=bad.cl_ord_id.encode()).exists()
    assert Route.objects.get(pk=bad.pk).status == Route.Status.REJECTED


def _burst(pm, trader, book, fix_broker, capture, n: int) -> list[Route]:
    """``n`` routes whose new orders wait in the outbox together (before the gateway runs)."""
    return [
        _route(trader, _released_block(pm, book, limit_price=Decimal(100 + k)), fix_broker, capture)
        for k in range(n)
    ]


def _spy_new_orders(broker_app, received: list) -> None:
    """The simulator notes the ClOrdID of each new order it gets, in arrival order."""
    original = broker_app._new_order

    def spy(msg, session):
        received.append(msg.get(11))
        original(msg, session)

    broker_app._handlers["D"] = lambda self, msg, session: spy(msg, session)


def _send_until_filled(fix_broker, routes, capture, *, prepare=None) -> tuple[Gateway, list]:
    """A gateway runs against the simulator until every one of ``routes`` is filled;
    with the ClOrdIDs of the new orders the simulator got, in arrival order."""
    received = []

    async def go():
        acc, broker_app = _simulator()
        _spy_new_orders(broker_app, received)
        await acc.start()
        try:
            gateway = Gateway(_point_at(fix_broker, acc.port), poll=0.02)
            if prepare is not None:
                prepare(gateway)
            await _run_until(gateway, lambda: all(_filled(r)() for r in routes))
        finally:
            await acc.stop()
        return gateway

    with capture(execute=True):
        return asyncio.run(go()), received


def _batches(monkeypatch) -> list[tuple[int, int]]:
    """Each outbox batch the gateway sends: (rows sent, statements it took)."""
    import trading.gateway.outbox as outbox_module

    batches = []
    real = outbox_module.Outbox._send_batch

    def send_batch(self, pks):
        with CaptureQueriesContext(connection) as queries:
            sent = real(self, pks)
        batches.append((sent, len(queries.captured_queries)))
        return sent

    monkeypatch.setattr(outbox_module.Outbox, "_send_batch", send_batch)
    return batches


@pytest.mark.parametrize("n", [2, 6])
def test_a_burst_of_outbox_rows_goes_in_one_transaction_in_sequence_order(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, monkeypatch, n
):
    routes = _burst(pm, trader, book, fix_broker, django_capture_on_commit_callbacks, n)
    batches = _batches(monkeypatch)
    _, received = _send_until_filled(fix_broker, routes, django_capture_on_commit_callbacks)
    # one transaction for the burst, in a fixed number of statements whatever its size:
    # BEGIN, the rows locked, the messages stored, the next number, the rows marked, COMMIT
    assert [sent for sent, _ in batches if sent] == [n]
    assert [statements for sent, statements in batches if sent] == [BURST]
    rows = list(FixOutbox.objects.filter(route__in=routes).order_by("pk"))
    assert [row.route_id for row in rows] == [route.pk for route in routes]
    first = rows[0].seq_num
    assert [row.seq_num for row in rows] == list(range(first, first + n))  # in their order
    assert received == [route.cl_ord_id for route in routes]  # each once, in that order
    stored = FixMessage.objects.filter(seq_num__gte=first, seq_num__lt=first + n)
    assert stored.count() == n


#: an outbox batch: BEGIN, the rows locked, the messages stored, the next number, the
#: rows marked sent, COMMIT
BURST = 6


def test_a_burst_whose_commit_fails_after_its_send_is_sent_once_when_the_database_is_back(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    """The gateway crashes, as far as the database is concerned, between sending a
    batch (held) and committing it: none of its bytes left, its rows are still pending,
    and once the database is back each goes once, under the numbers it then takes."""
    from django.db import OperationalError

    routes = _burst(pm, trader, book, fix_broker, django_capture_on_commit_callbacks, 4)
    import trading.gateway.outbox as outbox_module

    real_update_rows = outbox_module.update_rows
    failed = []

    def update_rows(model, rows, fields):  # the batch's last write, after every send
        if not failed:
            failed.append(len(rows))
            raise OperationalError("server closed the connection unexpectedly")
        return real_update_rows(model, rows, fields)

    monkeypatch.setattr(outbox_module, "update_rows", update_rows)

    def quick(gateway):
        gateway.initiator.reconnect_base = 0.05

    gateway, received = _send_until_filled(
        fix_broker, routes, django_capture_on_commit_callbacks, prepare=quick
    )
    assert failed == [4] and gateway.recoveries == 1
    assert received == [route.cl_ord_id for route in routes]  # nothing twice, none lost
    rows = list(FixOutbox.objects.filter(route__in=routes).order_by("pk"))
    assert all(row.status == FixOutbox.Status.SENT for row in rows)
    seqs = [row.seq_num for row in rows]
    assert seqs == list(range(seqs[0], seqs[0] + 4))
    stored = [bytes(raw) for raw in FixMessage.objects.values_list("raw", flat=True)]
    for row, route in zip(rows, routes, strict=True):  # stored once, under the number it went with
        assert [raw for raw in stored if f"11={route.cl_ord_id}\x01".encode() in raw] == [
            bytes(FixMessage.objects.get(seq_num=row.seq_num).raw)
        ]


def test_a_message_already_applied_is_not_applied_again_when_resent(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    import trading.gateway.inbound

    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    calls = []
    real_apply = execution_services.execution_apply
    monkeypatch.setattr(
        trading.gateway.inbound,
        "execution_apply",
        lambda report: calls.append(report.exec_id) or real_apply(report),
    )
    fs = fix_broker.fix_session
    app = GatewayApplication(fs, DatabaseStore(fs))
    msg = _er(5, {11: route.cl_ord_id})
    app.from_app(msg, _Sent())
    app.from_app(msg, _Sent())  # the same MsgSeqNum again (a resend)
    assert calls == ["E1"]


def test_a_report_naming_only_a_replace_request_finds_its_route(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    adapter = FixBroker(print, session=fix_broker.fix_session)
    adapter.replace(
        route_services.route_ticket(route),
        ReplaceTerms(
            cl_ord_id=fixmap.request_id(route.cl_ord_id, "R"),
            quantity=Decimal(100),
            order_type=route.order_type,
            time_in_force=route.time_in_force,
        ),
    )
    request_id = {int(t): v for t, v in FixOutbox.objects.get(msg_type="G").fields}[11]
    assert request_id.startswith(route.cl_ord_id + "-R")
    fill = report_from_execution_report(
        _er(9, {11: request_id, 150: "F", 39: "1", 32: "10", 31: "100"}), "FIXB"
    )
    assert fill.cl_ord_id == route.cl_ord_id


def test_a_day_order_queued_yesterday_is_not_sent_today(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    stale = _route(
        trader, _released_block(pm, book, "AAA"), fix_broker, django_capture_on_commit_callbacks
    )
    FixOutbox.objects.filter(route=stale).update(created_at=timezone.now() - timedelta(days=1))
    fresh = _route(
        trader,
        _released_block(pm, book, "BBB", "20"),
        fix_broker,
        django_capture_on_commit_callbacks,
    )
    _trade_until(fix_broker, _filled(fresh), django_capture_on_commit_callbacks)
    stale.refresh_from_db()
    assert stale.status == Route.Status.REJECTED and "not sent on a later day" in stale.text
    assert FixOutbox.objects.get(route=stale).status == FixOutbox.Status.FAILED
    assert FixOutbox.objects.get(route=fresh).seq_num == 2


def test_a_cancel_from_the_desk_goes_out_as_an_order_cancel_request(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    block = _released_block(pm, book, limit_price=Decimal(50))  # AAA at 100: it rests
    route = _route(trader, block, fix_broker, django_capture_on_commit_callbacks)

    def status_is(status):
        return lambda: Route.objects.filter(pk=route.pk, status=status).exists()

    async def go():
        acc, _ = _simulator()
        await acc.start()
        try:
            fs = _point_at(fix_broker, acc.port)
            await _run_until(Gateway(fs, poll=0.02), status_is(Route.Status.NEW))
            route_services.route_cancel(actor=trader, route_id=route.pk)
            request = FixOutbox.objects.get(msg_type="F")  # written with the state change
            assert Route.objects.get(pk=route.pk).status == Route.Status.PENDING_CANCEL
            await _run_until(Gateway(fs, poll=0.02), status_is(Route.Status.CANCELLED))
            return request
        finally:
            await acc.stop()

    with django_capture_on_commit_callbacks(execute=True):
        request = asyncio.run(go())
    fields = {int(t): v for t, v in request.fields}
    assert fields[41] == route.cl_ord_id and fields[11].startswith(route.cl_ord_id + "-C")
    assert FixOutbox.objects.get(pk=request.pk).status == FixOutbox.Status.SENT
    block.refresh_from_db()
    assert (block.status, block.routed_quantity) == (Block.Status.OPEN, 0)
    assert Execution.objects.filter(route=route, exec_type="canceled").exists()


# --- what the review found: each of these fails if its fix is taken out ----------------


def test_the_same_exec_id_on_two_routes_is_two_reports(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    first = _route(
        trader, _released_block(pm, book, "AAA"), fix_broker, django_capture_on_commit_callbacks
    )
    second = _route(
        trader,
        _released_block(pm, book, "BBB", "20"),
        fix_broker,
        django_capture_on_commit_callbacks,
    )
    for route in (first, second):  # a broker that numbers its ExecIDs from 1 each day
        execution_services.execution_apply(
            report_from_execution_report(_er(3, {11: route.cl_ord_id}), "FIXB")
        )
    assert Execution.objects.filter(exec_id="E1").count() == 2


def test_a_stored_message_advances_the_sender_number_with_it_and_is_never_overwritten(
    fix_broker,
):
    from django.db import IntegrityError

    fs = fix_broker.fix_session
    store = DatabaseStore(fs)
    store.set(1, b"first")
    assert FixSession.objects.get(pk=fs.pk).next_sender_seq == 2  # in the same transaction
    with pytest.raises(IntegrityError):
        store.set(1, b"other")
    assert store.get_range(1, 1) == [(1, b"first")]


def test_a_taken_sequence_number_holds_up_nothing(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    fs = fix_broker.fix_session
    # a message stored under 2 whose number did not advance (as after a crash)
    FixMessage.objects.create(session=fs, generation=1, seq_num=2, raw=b"8=FIX.4.4\x01")
    routes = [
        _route(trader, _released_block(pm, book, t, q), fix_broker, django_capture_on_commit_callbacks)
        for t, q in (("AAA", "150"), ("BBB", "20"))
    ]  # fmt: skip
    _trade_until(
        fix_broker,
        lambda: all(_filled(r)() for r in routes),
        django_capture_on_commit_callbacks,
    )
    assert not FixOutbox.objects.exclude(status=FixOutbox.Status.SENT).exists()
    assert sorted(FixOutbox.objects.values_list("seq_num", flat=True)) == [3, 4]


def test_the_gateway_reads_the_sequence_numbers_once_it_has_the_lock(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )

    def meanwhile(gateway):
        # another gateway ran between this one's start and its taking the lock
        FixSession.objects.filter(pk=gateway.fix_session.pk).update(next_sender_seq=20)

    _trade_until(fix_broker, _filled(route), django_capture_on_commit_callbacks, prepare=meanwhile)
    assert FixOutbox.objects.get(route=route).seq_num == 21  # after the Logon as 20


def test_a_database_outage_while_sending_pauses_the_session_until_it_is_back(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import OperationalError

    route = _route(
        trader, _released_block(pm, book), fix_broker, django_capture_on_commit_callbacks
    )
    real_drain = Gateway.drain_outbox
    outages = []

    def drain(self, limit=200):
        if self.session.logged_on and not outages:
            outages.append(self.initiator.connects)
            raise OperationalError("server closed the connection unexpectedly")
        return real_drain(self, limit)

    monkeypatch.setattr(Gateway, "drain_outbox", drain)

    def quick(gateway):
        gateway.initiator.reconnect_base = 0.05

    gateway = _trade_until(
        fix_broker, _filled(route), django_capture_on_commit_callbacks, prepare=quick
    )
    assert outages == [1]
    assert gateway.recoveries == 1 and gateway.initiator.connects == 2
    assert gateway.session.settings.allow_unknown_fields  # brokers' own tags are accepted


def test_after_a_sequence_reset_the_gateway_asks_where_each_open_order_stands(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    resting = _route(  # a buy limit at 50 with AAA at 100: acknowledged, never filled
        trader,
        _released_block(pm, book, limit_price=Decimal(50)),
        fix_broker,
        django_capture_on_commit_callbacks,
    )

    async def go():
        acc, _ = _simulator()
        await acc.start()
        try:
            fs = _point_at(fix_broker, acc.port)
            await _run_until(
                Gateway(fs, poll=0.02),
                lambda: Route.objects.filter(pk=resting.pk, status=Route.Status.NEW).exists(),
            )
            # an order that went out but never reached the broker (lost in flight)
            lost = _route(
                trader,
                _released_block(pm, book, "BBB", "20"),
                fix_broker,
                django_capture_on_commit_callbacks,
            )
            FixOutbox.objects.filter(route=lost).update(status=FixOutbox.Status.SENT)
            # the next logon resets the sequence numbers on both sides
            FixSession.objects.filter(pk=fs.pk).update(reset_on_logon=True)
            fs = FixSession.objects.select_related("broker").get(pk=fs.pk)
            await _run_until(
                Gateway(fs, poll=0.02),
                lambda: Route.objects.filter(pk=lost.pk, status=Route.Status.REJECTED).exists(),
            )
            return lost
        finally:
            await acc.stop()

    with django_capture_on_commit_callbacks(execute=True):
        lost = asyncio.run(go())
    asked = FixOutbox.objects.filter(msg_type="H", status=FixOutbox.Status.SENT)
    assert sorted(asked.values_list("route_id", flat=True)) == sorted([resting.pk, lost.pk])
    assert Route.objects.get(pk=resting.pk).status == Route.Status.NEW  # still working there
    assert Execution.objects.filter(route=resting, exec_type="order_status").exists()
    lost.refresh_from_db()
    assert "Unknown order" in lost.text  # the broker never had it: rejected, quantity freed
    assert Block.objects.get(pk=lost.block_id).routed_quantity == 0
