"""Interoperability with the QuickFIX engine (the ``quickfix`` binding), both roles.

* our initiator (``OrderClient`` on ``Initiator``) trading with a QuickFIX
  acceptor acting as a broker;
* a QuickFIX initiator trading with our simulated broker.

QuickFIX runs in this process, on its own threads, on a loopback port chosen
at run time, with its file store under ``tmp_path``.  Without the binding the
tests skip, except under ``OMS_REQUIRE_SERVICES=1`` where they fail.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from trading.fix.client import OrderClient
from trading.fix.messages import (
    NewOrderSingle,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrdType,
)
from trading.fix.session import Session, SessionSettings
from trading.fix.simulator import build_simulator
from trading.fix.transport import Initiator

from . import qfhelpers
from .conftest import free_port, require

pytestmark = pytest.mark.interop

fix = qfhelpers.fix
BROKER_SESSIONS = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"]


@pytest.fixture(scope="module")
def qf_broker(tmp_path_factory):
    require(fix is not None, "quickfix binding not installed")
    tmp = tmp_path_factory.mktemp("qfbroker")
    port = free_port()
    sessions = [("FIX.4.4", "QFB", c, {}) for c in BROKER_SESSIONS] + [
        ("FIX.4.2", "QFB", "T42", {})
    ]
    cfg = qfhelpers.write_config(tmp / "broker.cfg", "acceptor", port, sessions, tmp / "store")
    with qfhelpers.running_acceptor(qfhelpers.QFBroker(), cfg) as app:
        yield port, app


async def until(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def our_initiator(port, comp_id, begin="FIX.4.4"):
    app = OrderClient()
    s = Session(
        SessionSettings(
            begin, comp_id, "QFB", initiator=True, heartbeat_interval=30, reset_seq_num_flag=True
        ),
        app,
    )
    return Initiator(s, port=port, reconnect_base=0.1, reconnect_cap=0.5), app


def order(cl, sym="IBM", qty=100, ord_type=OrdType.MARKET, price=None):
    return NewOrderSingle(
        cl_ord_id=cl,
        symbol=sym,
        order_qty=Decimal(qty),
        ord_type=ord_type,
        price=None if price is None else Decimal(price),
    )


def trade(port, comp_id, body, begin="FIX.4.4"):
    async def go():
        ini, app = our_initiator(port, comp_id, begin)
        await ini.start()
        try:
            await ini.wait_logged_on()
            await body(ini, app, ini.session)
        finally:
            await ini.stop()
        return ini, app

    return asyncio.run(go())


def test_order_partial_and_full_fill(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        app.send(s, order("f1"))
        await until(lambda: len(app.reports) >= 3, what="three execution reports")

    ini, app = trade(port, "T1", body)
    assert [(r.exec_type, r.ord_status) for r in app.reports] == [
        ("0", "0"),
        ("F", "1"),
        ("F", "2"),
    ]
    assert app.reports[-1].cum_qty == 100 and app.reports[-1].leaves_qty == 0
    assert broker.logouts >= 1 and broker.rejects == []


def test_fix42_order_fills(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        app.send(s, order("g1"))
        await until(lambda: len(app.reports) >= 3)

    ini, app = trade(port, "T42", body, "FIX.4.2")
    assert [r.ord_status for r in app.reports] == ["0", "1", "2"]
    assert broker.rejects == []


def test_cancel_and_replace(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        app.send(s, order("r1", sym="REST", ord_type=OrdType.LIMIT, price="10"))
        await until(lambda: len(app.reports) >= 1)
        app.send(
            s,
            OrderCancelReplaceRequest(
                orig_cl_ord_id="r1",
                cl_ord_id="r2",
                symbol="REST",
                side="1",
                order_qty=Decimal(150),
                ord_type=OrdType.LIMIT,
                price=Decimal("10.5"),
            ),
        )
        await until(lambda: len(app.reports) >= 2)
        app.send(
            s,
            OrderCancelRequest(
                orig_cl_ord_id="r2", cl_ord_id="r3", symbol="REST", side="1", order_qty=Decimal(150)
            ),
        )
        await until(lambda: len(app.reports) >= 3)

    ini, app = trade(port, "T2", body)
    new, rep, cxl = app.reports
    assert (rep.exec_type, rep.cl_ord_id, rep.orig_cl_ord_id, rep.order_qty) == (
        "5",
        "r2",
        "r1",
        150,
    )
    assert (cxl.exec_type, cxl.ord_status, cxl.cl_ord_id, cxl.orig_cl_ord_id) == (
        "4",
        "4",
        "r3",
        "r2",
    )
    assert [mt for mt, _ in broker.received if _[11] in ("r1", "r2", "r3")] == ["D", "G", "F"]


def test_order_rejected(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        app.send(s, order("x1", sym="REJ"))
        await until(lambda: len(app.reports) >= 1)

    ini, app = trade(port, "T3", body)
    (rej,) = app.reports
    assert (rej.exec_type, rej.ord_status, rej.ord_rej_reason) == ("8", "8", 0)


def test_our_sequence_gap_is_resent_to_quickfix(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        s.store.incr_sender()  # lose one outgoing sequence number
        app.send(s, order("gap1"))
        await until(lambda: len(app.reports) >= 3, what="fills after resend")

    ini, app = trade(port, "T4", body)
    s = ini.session
    assert any(e.startswith("Received ResendRequest") for e in s.events)
    assert any(e.startswith("Sent SequenceReset-GapFill") for e in s.events)
    assert [r.ord_status for r in app.reports] == ["0", "1", "2"]
    assert broker.rejects == []


def test_quickfix_gap_triggers_our_resend_request_and_gap_fill(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        app.send(s, order("gap2", sym="GAP"))
        await until(lambda: len(app.reports) >= 3, what="reports after gap fill")

    ini, app = trade(port, "T5", body)
    s = ini.session
    assert any(e.startswith("Sent ResendRequest") for e in s.events)
    assert any(e.startswith("SequenceReset: next expected") for e in s.events)
    assert [r.ord_status for r in app.reports] == ["0", "1", "2"]
    assert s.resend_range is None and not s.queue


def test_test_request_answered_by_quickfix(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        s.generate_test_request("PING-1")
        await until(lambda: any(m.msg_type == "0" and m.get(112) == "PING-1" for m in app.admin))

    trade(port, "T6", body)


def test_disconnect_and_reconnect_keeps_sequence(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        app.send(s, order("c1"))
        await until(lambda: len(app.reports) >= 3)
        s.settings.reset_seq_num_flag = False  # reconnect continues the sequence
        sent_before = s.next_sender
        ini.drop_connection()
        await until(lambda: ini.connects >= 2 and s.logged_on, what="reconnect")
        assert s.next_sender > sent_before  # logon used the next number, no reset
        app.send(s, order("c2"))
        await until(lambda: len(app.reports) >= 6)

    ini, app = trade(port, "T7", body)
    assert [r.cl_ord_id for r in app.reports] == ["c1"] * 3 + ["c2"] * 3
    assert broker.rejects == []


def test_duplicate_execution_report_ignored(qf_broker):
    port, broker = qf_broker

    async def body(ini, app, s):
        app.send(s, order("d1", sym="DUP"))
        await until(lambda: app.duplicates >= 1, what="duplicate report")

    ini, app = trade(port, "T8", body)
    assert len(app.reports) == 3 and len({r.exec_id for r in app.reports}) == 3
    assert app.duplicates == 1


# ---------------------------------------------------------------------------
# QuickFIX initiator -> our simulated broker


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
def test_quickfix_initiator_trades_with_simulator(tmp_path, begin):
    require(fix is not None, "quickfix binding not installed")
    target = "QFC44" if begin == "FIX.4.4" else "QFC42"

    async def go():
        acc, broker = build_simulator(0, sessions=[(begin, target)])
        broker.set_price("IBM", Decimal("50"))
        await acc.start()
        cfg = qfhelpers.write_config(
            tmp_path / "client.cfg",
            "initiator",
            acc.port,
            [(begin, target, "BROKER", {})],
            tmp_path / "store",
        )
        app = qfhelpers.QFClient()
        settings = fix.SessionSettings(str(cfg))
        store, logs = fix.FileStoreFactory(settings), fix.FileLogFactory(settings)
        ini = fix.ThreadedSocketInitiator(app, store, settings, logs)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ini.start)
        try:
            await until(app.logged_on.is_set, what="QuickFIX logon")
            ts = qfhelpers._timestamp()
            extra42 = [(21, "1")] if begin == "FIX.4.2" else []
            app.send(
                "D",
                [(11, "m1"), (55, "IBM"), (54, "1"), (38, "100"), (40, "1"), (60, ts), *extra42],
            )
            await until(lambda: len(app.received) >= 2, what="market order fill")
            app.send(
                "D",
                [
                    (11, "l1"),
                    (55, "IBM"),
                    (54, "1"),
                    (38, "10"),
                    (40, "2"),
                    (44, "1"),
                    (60, ts),
                    *extra42,
                ],
            )
            await until(lambda: len(app.received) >= 3)
            app.send(
                "G",
                [
                    (41, "l1"),
                    (11, "l2"),
                    (55, "IBM"),
                    (54, "1"),
                    (38, "20"),
                    (40, "2"),
                    (44, "2"),
                    (60, ts),
                    *extra42,
                ],
            )
            await until(lambda: len(app.received) >= 4)
            app.send("H", [(11, "l2"), (55, "IBM"), (54, "1")])
            await until(lambda: len(app.received) >= 5)
            app.send("F", [(41, "l2"), (11, "l3"), (55, "IBM"), (54, "1"), (38, "20"), (60, ts)])
            await until(lambda: len(app.received) >= 6)
            app.send("F", [(41, "l3"), (11, "l4"), (55, "IBM"), (54, "1"), (38, "20"), (60, ts)])
            await until(lambda: len(app.received) >= 7)
        finally:
            await loop.run_in_executor(None, ini.stop)
            await acc.stop()
            del ini, store, logs
        return app

    app = asyncio.run(go())
    assert app.errors == [] and app.rejects == []
    got = [(m[35], m[150], m[39], m[11]) for m in app.received]
    fill = "F" if begin == "FIX.4.4" else "2"
    status = "I" if begin == "FIX.4.4" else "0"
    replaced_status = "0" if begin == "FIX.4.4" else "5"
    assert got == [
        ("8", "0", "0", "m1"),
        ("8", fill, "2", "m1"),
        ("8", "0", "0", "l1"),
        ("8", "5", replaced_status, "l2"),
        ("8", status, "0", "l2"),
        ("8", "4", "4", "l3"),
        ("9", None, "4", "l4"),
    ]
    assert app.received[1][31] == "50" and app.received[-1][102] == "0"


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
def test_quickfix_initiator_takes_the_simulators_pending_rejects_status_and_expiry(tmp_path, begin):
    """Everything the order state matrices added, validated by QuickFIX with
    its own dictionaries: Pending Replace, a second replace refused while one
    is pending (102=3), a request ClOrdID used before, a duplicate order, a
    PossResend order that is known (status), FIX 4.2 status (ExecTransType 3),
    expiry at the close."""
    require(fix is not None, "quickfix binding not installed")
    target = "QFP44" if begin == "FIX.4.4" else "QFP42"
    from trading.fix.simulator import BrokerConfig

    async def go():
        cfg_ = BrokerConfig(amend_delay=0.3)
        acc, broker = build_simulator(0, sessions=[(begin, target)], config=cfg_)
        broker.set_price("IBM", Decimal("50"))
        await acc.start()
        cfg = qfhelpers.write_config(
            tmp_path / "client.cfg",
            "initiator",
            acc.port,
            [(begin, target, "BROKER", {})],
            tmp_path / "store",
        )
        app = qfhelpers.QFClient()
        settings = fix.SessionSettings(str(cfg))
        store, logs = fix.FileStoreFactory(settings), fix.FileLogFactory(settings)
        ini = fix.ThreadedSocketInitiator(app, store, settings, logs)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ini.start)
        try:
            await until(app.logged_on.is_set, what="QuickFIX logon")
            ts = qfhelpers._timestamp()
            x42 = [(21, "1")] if begin == "FIX.4.2" else []
            lim = [(55, "IBM"), (54, "1"), (38, "10"), (40, "2"), (44, "1"), (60, ts), *x42]
            app.send("D", [(11, "l1"), *lim])
            await until(lambda: len(app.received) >= 1)
            rep = [(55, "IBM"), (54, "1"), (40, "2"), (44, "2"), (60, ts), *x42]
            app.send("G", [(41, "l1"), (11, "l2"), (38, "20"), *rep])
            app.send("G", [(41, "l2"), (11, "l3"), (38, "30"), *rep])
            await until(lambda: len(app.received) >= 4, what="pending, reject, replaced")
            app.send("F", [(41, "l2"), (11, "l1"), (55, "IBM"), (54, "1"), (38, "20"), (60, ts)])
            await until(lambda: len(app.received) >= 5)
            app.send("D", [(11, "l1"), *lim])  # a duplicate order
            await until(lambda: len(app.received) >= 6)
            m = qfhelpers.qf_message(begin, "D", [(11, "l2"), *lim])
            m.getHeader().setField(97, "Y")
            fix.Session.sendToTarget(m, app.sid)  # known, PossResend: its status
            await until(lambda: len(app.received) >= 7)
            app.send("H", [(11, "l2"), (55, "IBM"), (54, "1")])
            await until(lambda: len(app.received) >= 8)
            assert broker.expire_day_orders() == 1  # the close
            await until(lambda: len(app.received) >= 9)
        finally:
            await loop.run_in_executor(None, ini.stop)
            await acc.stop()
            del ini, store, logs
        return app

    app = asyncio.run(go())
    assert app.errors == [] and app.rejects == []
    got = [(m[35], m[150], m[39], m[11], m[41], m[102]) for m in app.received]
    v44 = begin == "FIX.4.4"
    status = "I" if v44 else "0"  # 4.2: ExecType repeats the status
    dup = "6" if v44 else "2"
    assert got == [
        ("8", "0", "0", "l1", None, None),
        ("8", "E", "E", "l2", "l1", None),
        ("9", None, "E", "l3", "l1", "3"),  # D.2.b: OrigClOrdID is the last accepted
        ("8", "5", "0" if v44 else "5", "l2", "l1", None),  # 4.2: Replaced, nothing filled
        ("9", None, "0", "l1", "l2", dup),
        ("8", "8", "0", "l1", None, None),
        ("8", status, "0", "l2", "l1", None),
        ("8", status, "0", "l2", "l1", None),
        ("8", "C", "C", "l2", "l1", None),
    ]
    assert app.received[5][103] == "6" and app.received[5][38] == "20"
    if not v44:
        assert [m[20] for m in app.received[6:8]] == ["3", "3"]
        assert app.received[-1][20] == "0"
