"""Simulated broker behaviour, driven sans-IO through a real acceptor session."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

import pytest

from trading.fix import dictionary
from trading.fix.clock import FakeClock
from trading.fix.messages import (
    ExecType,
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    TimeInForce,
    parse,
)
from trading.fix.session import Session, SessionSettings
from trading.fix.simulator import BrokerConfig, SimulatedBroker

from .conftest import FakeTransport, Peer


class ValidatingTransport(FakeTransport):
    def __init__(self, begin):
        super().__init__()
        self.dd = dictionary.load(begin)

    def send(self, data):
        super().send(data)
        self.dd.validate(self.sent[-1])  # everything the broker sends is valid FIX


def broker(begin="FIX.4.4", price_source=None, schedule=None, **cfg):
    clock = FakeClock(datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    b = SimulatedBroker(BrokerConfig(**cfg), price_source, clock, schedule)
    s = Session(SessionSettings(begin, "BROKER", "OMS"), b, clock=clock)
    t = ValidatingTransport(begin)
    s.connect(t)
    peer = Peer(s)
    peer.send("A", [(98, "0"), (108, "30")])
    t.take()
    return b, s, t, peer, clock


def send(peer, typed, begin="FIX.4.4"):
    m = typed.to_message(begin)
    peer.send(m.msg_type, m.body)


def reports(t):
    return [parse(m) for m in t.take()]


def nos(cl="c1", qty=100, ord_type=OrdType.MARKET, price=None, side="1", tif=None, sym="IBM"):
    return NewOrderSingle(
        cl_ord_id=cl,
        symbol=sym,
        side=side,
        order_qty=Decimal(qty),
        ord_type=ord_type,
        price=None if price is None else Decimal(price),
        time_in_force=tif,
    )


def test_market_order_fills_at_reference_price():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("50.25"))
    send(peer, nos())
    new, fill = reports(t)
    assert (new.exec_type, new.ord_status, new.leaves_qty) == ("0", "0", 100)
    assert fill.exec_type == ExecType.TRADE and fill.ord_status == OrdStatus.FILLED
    assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty) == (
        100,
        Decimal("50.25"),
        100,
        0,
    )
    assert fill.avg_px == Decimal("50.25") and fill.order_id == new.order_id


def test_price_callback_hook():
    b, s, t, peer, _ = broker(price_source=lambda sym: Decimal("7.5") if sym == "X" else None)
    send(peer, nos(sym="X"))
    assert reports(t)[1].last_px == Decimal("7.5")


def test_limit_rests_until_marketable():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, nos(ord_type=OrdType.LIMIT, price="100"))
    (new,) = reports(t)
    assert new.ord_status == "0"
    b.set_price("IBM", Decimal("99.5"))
    (fill,) = reports(t)
    assert fill.last_px == Decimal("99.5") and fill.ord_status == "2"


def test_marketable_limit_fills_at_better_of_limit_and_reference():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("10"))
    send(peer, nos(ord_type=OrdType.LIMIT, price="9", side="2"))
    assert reports(t)[1].last_px == Decimal("10")


def test_partial_fills():
    b, s, t, peer, _ = broker(partial_fills=3)
    send(peer, nos(qty=100))
    rs = reports(t)
    fills = [r for r in rs if r.exec_type == ExecType.TRADE]
    assert len(fills) == 3 and sum(f.last_qty for f in fills) == 100
    assert [f.ord_status for f in fills] == ["1", "1", "2"]
    assert fills[-1].cum_qty == 100 and fills[-1].leaves_qty == 0


def test_cancel_open_order_and_cancel_too_late_and_unknown():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, nos(cl="a", ord_type=OrdType.LIMIT, price="100"))
    t.take()
    send(peer, OrderCancelRequest(orig_cl_ord_id="a", cl_ord_id="a2", symbol="IBM", side="1"))
    (cxl,) = reports(t)
    assert (cxl.exec_type, cxl.ord_status, cxl.cl_ord_id, cxl.orig_cl_ord_id) == (
        "4",
        "4",
        "a2",
        "a",
    )
    assert cxl.leaves_qty == 0
    send(peer, OrderCancelRequest(orig_cl_ord_id="a2", cl_ord_id="a3", symbol="IBM", side="1"))
    (rej,) = reports(t)
    assert isinstance(rej, OrderCancelReject)
    assert (rej.cxl_rej_reason, rej.ord_status, rej.cxl_rej_response_to) == (0, "4", "1")
    send(peer, OrderCancelRequest(orig_cl_ord_id="zzz", cl_ord_id="a4", symbol="IBM", side="1"))
    (rej,) = reports(t)
    assert rej.cxl_rej_reason == 1 and rej.order_id == "NONE"


def test_replace_quantity_and_price():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, nos(cl="a", ord_type=OrdType.LIMIT, price="100"))
    t.take()
    send(
        peer,
        OrderCancelReplaceRequest(
            orig_cl_ord_id="a",
            cl_ord_id="b",
            symbol="IBM",
            side="1",
            order_qty=Decimal(200),
            ord_type=OrdType.LIMIT,
            price=Decimal("100.5"),
        ),
    )
    (rep,) = reports(t)
    assert (rep.exec_type, rep.ord_status, rep.order_qty, rep.price) == (
        "5",
        "0",
        200,
        Decimal("100.5"),
    )
    assert (rep.cl_ord_id, rep.orig_cl_ord_id, rep.leaves_qty) == ("b", "a", 200)
    # replacing to a marketable price fills
    send(
        peer,
        OrderCancelReplaceRequest(
            orig_cl_ord_id="b",
            cl_ord_id="c",
            symbol="IBM",
            side="1",
            order_qty=Decimal(200),
            ord_type=OrdType.LIMIT,
            price=Decimal("102"),
        ),
    )
    rep, fill = reports(t)
    assert (
        rep.exec_type == "5" and fill.exec_type == ExecType.TRADE and fill.last_px == Decimal("101")
    )
    # C.1.c: a filled order replaced to a larger quantity works again
    send(
        peer,
        OrderCancelReplaceRequest(
            orig_cl_ord_id="c",
            cl_ord_id="d",
            symbol="IBM",
            side="1",
            order_qty=Decimal(300),
            ord_type=OrdType.LIMIT,
            price=Decimal("102"),
        ),
    )
    rep, fill = reports(t)
    assert (rep.exec_type, rep.ord_status, rep.order_qty, rep.cum_qty, rep.leaves_qty) == (
        "5",
        "1",
        300,
        200,
        100,
    )
    assert (fill.cl_ord_id, fill.last_qty, fill.ord_status) == ("d", 100, "2")


def test_replace_below_filled_quantity_ends_the_order_filled():
    """C.3.c: a replace to less than is filled is taken as "cancel the rest":
    Replace, OrdStatus Filled, the quantity amended to the filled quantity."""
    b, s, t, peer, _ = broker(partial_fills=2, fill_interval=5, schedule=lambda d, fn: None)
    send(peer, nos(cl="a", qty=100))
    t.take()  # new + first partial fill of 50; second fill never scheduled
    send(
        peer,
        OrderCancelReplaceRequest(
            orig_cl_ord_id="a",
            cl_ord_id="b",
            symbol="IBM",
            side="1",
            order_qty=Decimal(40),
            ord_type=OrdType.MARKET,
        ),
    )
    (rep,) = reports(t)
    assert (rep.exec_type, rep.ord_status, rep.cl_ord_id, rep.orig_cl_ord_id) == (
        "5",
        "2",
        "b",
        "a",
    )
    assert (rep.order_qty, rep.cum_qty, rep.leaves_qty) == (50, 50, 0)


def test_order_status_request():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, nos(cl="a", ord_type=OrdType.LIMIT, price="100"))
    t.take()
    send(peer, OrderStatusRequest(cl_ord_id="a", symbol="IBM", side="1"))
    (st,) = reports(t)
    assert (st.exec_type, st.ord_status, st.leaves_qty) == ("I", "0", 100)
    send(peer, OrderStatusRequest(cl_ord_id="nope", symbol="IBM", side="1"))
    (st,) = reports(t)
    assert st.ord_status == "8" and st.ord_rej_reason == 5


def test_day_orders_expire_at_session_end_gtc_survive():
    b, s, t, peer, clock = broker(session_end=time(14, 30))
    b.set_price("IBM", Decimal("101"))
    send(peer, nos(cl="day", ord_type=OrdType.LIMIT, price="50"))
    send(peer, nos(cl="gtc", ord_type=OrdType.LIMIT, price="50", tif=TimeInForce.GTC))
    t.take()
    b.walk.step = 0.0
    b.on_tick()
    assert t.take() == []
    clock.advance(30 * 60)
    b.on_tick()
    (exp,) = reports(t)
    assert (exp.exec_type, exp.ord_status, exp.cl_ord_id, exp.leaves_qty) == ("C", "C", "day", 0)
    b.on_tick()
    assert t.take() == []  # once per session end


def test_reject_rate_and_duplicate_clordid():
    b, s, t, peer, _ = broker(reject_rate=1.0)
    send(peer, nos(cl="x"))
    (rej,) = reports(t)
    assert rej.exec_type == "8" and rej.ord_status == "8"
    b.config.reject_rate = 0
    send(peer, nos(cl="x"))
    (rej,) = reports(t)
    assert rej.exec_type == "8" and rej.ord_rej_reason == 6


def test_fault_repeat_exec_reports_same_exec_id():
    b, s, t, peer, _ = broker(repeat_rate=1.0)
    send(peer, nos())
    msgs = t.take()
    assert len(msgs) == 4
    assert msgs[0][17] == msgs[1][17] and msgs[1][97] == "Y"
    assert int(msgs[1][34]) == int(msgs[0][34]) + 1


def test_fault_skip_sequence_numbers():
    b, s, t, peer, _ = broker(skip_seq_every=2)
    send(peer, nos())
    seqs = [int(m[34]) for m in t.take()]
    assert seqs[1] - seqs[0] == 2


def test_fault_drop_connection():
    b, s, t, peer, _ = broker(drop_every=1)
    send(peer, nos())
    assert t.closed


def test_latency_uses_scheduler():
    calls = []
    b, s, t, peer, _ = broker(latency=0.25, schedule=lambda d, fn: calls.append((d, fn)))
    send(peer, nos())
    assert t.take() == [] and calls[0][0] == 0.25
    calls[0][1]()
    assert [m.msg_type for m in t.take()] == ["8", "8"]


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_version_specific_exec_reports(begin):
    b, s, t, peer, _ = broker(begin=begin)
    send(peer, nos(), begin)
    new, fill = t.take()
    if begin == "FIX.4.2":
        assert new[20] == "0" and fill[150] == "2"
    else:
        assert 20 not in fill and fill[150] == "F"
    assert ExecutionReport.parse(fill).exec_type == ExecType.TRADE


def test_unsupported_message_gets_business_reject():
    b, s, t, peer, _ = broker()
    peer.send("R", [(131, "q1"), (146, "1"), (55, "IBM")])
    (bmr,) = t.take()
    assert bmr.msg_type == "j" and bmr[380] == "3"


def test_pending_acks_before_cancel_and_replace():
    b, s, t, peer, _ = broker(pending_acks=True)
    b.set_price("IBM", Decimal("101"))
    send(peer, nos(cl="a", ord_type=OrdType.LIMIT, price="100"))
    t.take()
    send(
        peer,
        OrderCancelReplaceRequest(
            orig_cl_ord_id="a",
            cl_ord_id="b",
            symbol="IBM",
            side="1",
            order_qty=Decimal(50),
            ord_type=OrdType.LIMIT,
            price=Decimal("99"),
        ),
    )
    pend, rep = reports(t)
    assert (pend.exec_type, pend.ord_status, pend.cl_ord_id, pend.orig_cl_ord_id) == (
        "E",
        "E",
        "b",
        "a",
    )
    assert pend.order_qty == 100 and rep.exec_type == "5" and rep.order_qty == 50
    send(peer, OrderCancelRequest(orig_cl_ord_id="b", cl_ord_id="c", symbol="IBM", side="1"))
    pend, cxl = reports(t)
    assert (pend.exec_type, pend.ord_status, pend.cl_ord_id) == ("6", "6", "c")
    assert (cxl.exec_type, cxl.ord_status, cxl.orig_cl_ord_id) == ("4", "4", "b")


@pytest.mark.parametrize(
    "order_kw, exec_type, extra",
    [
        ({}, ExecType.NEW, {}),
        ({"cum_qty": Decimal(100), "notional": Decimal("1234.5")}, ExecType.TRADE, {}),
        (
            {"cum_qty": Decimal(40), "notional": Decimal("400.10"), "status": "1"},
            ExecType.TRADE,
            {"last_qty": Decimal(40), "last_px": Decimal("10.0025")},
        ),
        (
            {"price": Decimal("12.50"), "ord_type": "2", "account": "ACC", "tif": "1"},
            ExecType.NEW,
            {},
        ),
        ({"orig_cl_ord_id": "c0", "qty": Decimal("0.5")}, ExecType.NEW, {}),
        ({"status": "8"}, ExecType.NEW, {}),
    ],
)
def test_direct_exec_report_body_equals_typed(order_kw, exec_type, extra):
    """The simulator builds New/Trade ExecutionReports without the typed
    layer; the body must be exactly what ExecutionReport.to_message gives."""
    from trading.fix.simulator import Order

    b, s, t, peer, clock = broker()
    kw = {
        "order_id": "O7",
        "cl_ord_id": "c1",
        "symbol": "IBM",
        "side": "1",
        "qty": Decimal(100),
        "ord_type": "1",
        "price": None,
        "tif": "0",
    }
    kw.update(order_kw)
    o = Order(**kw)
    typed = ExecutionReport(
        order_id=o.order_id,
        exec_id="E9",
        exec_type=exec_type,
        ord_status=o.status,
        symbol=o.symbol,
        side=o.side,
        leaves_qty=o.leaves,
        cum_qty=o.cum_qty,
        avg_px=o.avg_px,
        cl_ord_id=o.cl_ord_id,
        orig_cl_ord_id=o.orig_cl_ord_id,
        order_qty=o.qty,
        ord_type=o.ord_type,
        price=o.price,
        time_in_force=o.tif,
        account=o.account,
        transact_time=clock.utcnow(),
        **extra,
    ).to_message("FIX.4.4")
    assert b._er_body(o, "E9", exec_type, **extra) == typed.body


def test_price_file_feeds_reference_prices_and_is_read_again_when_it_changes(tmp_path):
    import json
    import os

    from trading.fix.clock import FakeClock
    from trading.fix.simulator import PriceFile

    path = tmp_path / "prices.json"
    clock = FakeClock()
    prices = PriceFile(path, clock)
    assert prices("IBM") is None  # no file yet: the simulator falls back to its walk
    path.write_text(json.dumps({"IBM": "101.25", "BAD": -1}))
    clock.advance(1.5)
    assert prices("IBM") == Decimal("101.25")
    assert prices("BAD") is None and prices("MSFT") is None
    path.write_text(json.dumps({"IBM": 99}))
    os.utime(path, (1, 1))  # a different modification time
    assert prices("IBM") == Decimal("101.25")  # checked at most once a second
    clock.advance(1.5)
    assert prices("IBM") == Decimal(99)
    path.write_text("{not json")
    os.utime(path, (2, 2))
    clock.advance(1.5)
    assert prices("IBM") == Decimal(99)  # an unreadable file keeps the last prices


def test_simulator_fills_market_orders_at_the_price_file(tmp_path):
    import json

    from trading.fix.simulator import PriceFile

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"IBM": "123.45"}))
    broker = SimulatedBroker(price_source=PriceFile(path))
    assert broker.price("IBM") == Decimal("123.45")
    assert broker.price("ZZZ") == broker.walk("ZZZ")  # not in the file: the walk


def test_price_file_replaced_within_the_same_second_is_read_again(tmp_path):
    """A feed that writes a new file and renames it over the old one is seen
    even when the modification time and size do not change (the inode does)."""
    import json
    import os

    from trading.fix.simulator import PriceFile

    path = tmp_path / "prices.json"
    clock = FakeClock()
    prices = PriceFile(path, clock, reload=0.25)
    path.write_text(json.dumps({"IBM": "101.25"}))
    os.utime(path, (5, 5))
    assert prices("IBM") == Decimal("101.25")
    tmp = tmp_path / "prices.tmp"
    tmp.write_text(json.dumps({"IBM": "101.50"}))  # same size
    os.utime(tmp, (5, 5))  # same modification time
    os.replace(tmp, path)
    clock.advance(0.1)
    assert prices("IBM") == Decimal("101.25")  # not looked at again before 0.25 s
    clock.advance(0.2)
    assert prices("IBM") == Decimal("101.50")
    reads = prices.reads
    for _ in range(100):  # unchanged: stat only, never read again
        clock.advance(0.3)
        prices("IBM")
    assert prices.reads == reads == 2


def test_fills_follow_the_price_file_market_now_limit_when_it_crosses(tmp_path):
    import json
    import os

    from trading.fix.simulator import PriceFile

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"IBM": "100"}))
    b, s, t, peer, clock = broker()
    b.price_source = PriceFile(path, clock)
    send(peer, nos(cl="buy-lim", ord_type=OrdType.LIMIT, price="98"))
    send(peer, nos(cl="sell-lim", ord_type=OrdType.LIMIT, price="103", side="2"))
    assert [r.exec_type for r in reports(t)] == ["0", "0"]  # both rest at 100
    send(peer, nos(cl="mkt1"))
    assert reports(t)[1].last_px == Decimal("100")
    path.write_text(json.dumps({"IBM": "97.5"}))
    os.utime(path, (10, 10))
    clock.advance(1.5)
    b.on_tick()
    (fill,) = reports(t)
    assert (fill.cl_ord_id, fill.last_px) == ("buy-lim", Decimal("97.5"))
    send(peer, nos(cl="mkt2"))
    assert reports(t)[1].last_px == Decimal("97.5")  # market orders at the current price
    path.write_text(json.dumps({"IBM": "104"}))
    os.utime(path, (20, 20))
    clock.advance(1.5)
    b.on_tick()
    (fill,) = reports(t)
    assert (fill.cl_ord_id, fill.last_px) == ("sell-lim", Decimal("104"))


def test_prices_reload_option_is_checked():
    from trading.fix.simulator import main

    with pytest.raises(SystemExit):
        main(["--port", "0", "--prices-reload", "0"])
