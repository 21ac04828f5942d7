"""The simulated broker keeps its book across a restart (``--state PATH``).

A broker does not forget its orders when its process dies.  In process: a
second broker reading the first one's file knows every order as it was last
reported.  For real: the simulator is killed with SIGKILL while orders are
being filled and started again on the same file; it answers status requests
with the true state, keeps working its orders, refuses a ClOrdID it has seen
as a new order, and never fills an order it reported cancelled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from trading.fix.book_file import BookFile
from trading.fix.client import OrderClient
from trading.fix.clock import FakeClock
from trading.fix.messages import (
    NewOrderSingle,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdType,
    parse,
)
from trading.fix.session import Session, SessionSettings
from trading.fix.simulator import BrokerConfig, SimulatedBroker
from trading.fix.transport import Initiator

from .conftest import Peer, start_listener
from .test_simulator import ValidatingTransport, nos, send
from .test_simulator_matrices import Later, cancel, limit

REPO = Path(__file__).resolve().parents[3]


def restartable(path: Path, clock: FakeClock, schedule=None, **cfg):
    """A broker on ``path`` behind a logged-on session (a new process's)."""
    b = SimulatedBroker(BrokerConfig(**cfg), None, clock, schedule, book_file=BookFile(path))
    s = Session(SessionSettings("FIX.4.4", "BROKER", "OMS"), b, clock=clock)
    t = ValidatingTransport("FIX.4.4")
    s.connect(t)
    peer = Peer(s)
    peer.send("A", [(98, "0"), (108, "30")])
    t.take()
    return b, s, t, peer


def status(peer, t, cl):
    send(peer, OrderStatusRequest(cl_ord_id=cl, symbol="IBM", side="1"))
    (st,) = [parse(m) for m in t.take()]
    return (st.ord_status, st.order_qty, st.cum_qty, st.leaves_qty)


def test_a_new_broker_on_the_same_file_knows_every_order(tmp_path):
    path = tmp_path / "book.jsonl"
    clock = FakeClock(datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    later = Later()
    b, s, t, peer = restartable(
        path, clock, later, partial_fills=4, fill_interval=1.0, amend_delay=5.0
    )
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("REST", 100, price="95"))  # rests
    send(peer, nos(cl="PART", qty=400))  # 100 filled, 300 to come
    send(peer, limit("CXL", 100, price="96"))
    send(peer, cancel("CXL-C", "CXL"))  # pending for 5 s
    later.run(5.0)  # ... then canceled
    send(peer, limit("PEND", 100, price="97"))
    send(peer, cancel("PEND-C", "PEND"))  # still pending when the process dies
    before = [parse(m) for m in t.take()]
    seen = {r.cl_ord_id: r for r in before}
    assert seen["CXL-C"].ord_status == "4" and seen["PART"].cum_qty == 100

    # the process dies; a new one starts a second later on the same file
    clock.advance(1)
    b2, s2, t2, peer2 = restartable(path, clock, Later(), partial_fills=4, fill_interval=1.0)
    b2.walk.set("IBM", Decimal("101"))
    assert status(peer2, t2, "REST") == ("0", 100, 0, 100)
    assert status(peer2, t2, "PART") == ("1", 400, 100, 300)
    assert status(peer2, t2, "CXL") == ("4", 100, 0, 0)
    assert status(peer2, t2, "PEND") == ("6", 100, 0, 100)
    # a ClOrdID it has seen is not a new order
    send(peer2, limit("REST", 100, price="95"))
    (dup,) = [parse(m) for m in t2.take()]
    assert (dup.exec_type, dup.ord_rej_reason, dup.ord_status, dup.order_qty) == ("8", 6, "0", 100)
    # the tick carries out the pending cancel that was due, and resumes the fills
    clock.advance(5)
    b2.on_tick()
    out = [parse(m) for m in t2.take()]
    assert [(r.cl_ord_id, r.exec_type) for r in out if r.cl_ord_id == "PEND-C"] == [("PEND-C", "4")]
    part = [r for r in out if r.cl_ord_id == "PART"]
    assert part and part[0].exec_type == "F" and part[0].cum_qty == 200
    assert not {r.exec_id for r in out} & {r.exec_id for r in before}  # no ExecID twice
    # the price goes through every limit: only the working one fills
    b2.walk.set("IBM", Decimal("90"))
    b2.on_price_change()
    filled = {parse(m).cl_ord_id for m in t2.take() if m[150] == "F"}
    assert filled == {"REST"}


def test_book_file_ignores_a_torn_last_line_and_refuses_a_corrupt_one(tmp_path):
    path = tmp_path / "book.jsonl"
    bf = BookFile(path)
    bf.save("S", {"order_id": "O1", "status": "0"})
    bf.save("S", {"order_id": "O1", "status": "1"})
    bf.save("S", {"order_id": "O2", "status": "0"})
    bf.close()
    assert BookFile(path).load() == {
        "S": {"O1": {"order_id": "O1", "status": "1"}, "O2": {"order_id": "O2", "status": "0"}}
    }
    with open(path, "ab") as f:
        f.write(b'{"session":"S","order":{"order_id":"O3","sta')  # the machine died mid-write
    assert set(BookFile(path).load()["S"]) == {"O1", "O2"}
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match="line 2 is not an order record"):
        BookFile(path).load()


def test_book_file_is_compacted_atomically_and_forgets_what_ended_long_ago(tmp_path):
    path = tmp_path / "book.jsonl"
    clock = FakeClock(datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    b, s, t, peer = restartable(path, clock)
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("OLD", 100, price="102"))  # filled
    send(peer, limit("WORK", 100, price="95"))  # works
    for _ in range(1500):  # status requests rewrite the working order's line
        send(peer, OrderStatusRequest(cl_ord_id="WORK", symbol="IBM", side="1"))
    t.take()
    lines = path.read_bytes().count(b"\n")
    assert lines < 4 * 2 + 1000  # compacted on the way (1,502 lines otherwise)
    clock.advance(2 * 86400)
    b2, s2, t2, peer2 = restartable(path, clock)  # compacts at start
    assert path.read_bytes().count(b"\n") == 1  # the filled order ended two days ago
    assert not list(tmp_path.glob("*.tmp"))
    assert status(peer2, t2, "WORK") == ("0", 100, 0, 100)


# ----------------------------------------------------------------- for real


async def _start(state: Path, prices: Path) -> tuple[asyncio.subprocess.Process, int]:
    return await start_listener(
        "-m",
        "trading.fix.simulator",
        "--port",
        "0",
        "--session",
        "FIX.4.4:OMS",
        "--state",
        str(state),
        "--prices",
        str(prices),
        "--prices-reload",
        "0.05",
        "--price-tick",
        "0.05",
        "--partial-fills",
        "4",
        "--fill-interval-ms",
        "400",
    )


async def _client(port: int):
    client = OrderClient()
    settings = SessionSettings(
        "FIX.4.4", "OMS", "BROKER", initiator=True, heartbeat_interval=30, reset_seq_num_flag=True
    )
    ini = Initiator(Session(settings, client), port=port, reconnect_base=0.1, reconnect_cap=0.5)
    await ini.start()
    await asyncio.wait_for(ini.wait_logged_on(), 10)
    return ini, client


async def _until(pred, what, timeout=10.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _last(client, cl):
    """The last report on the order ``cl`` names (None before the first)."""
    about = [r for r in client.reports if cl in (r.cl_ord_id, r.orig_cl_ord_id)]
    return about[-1] if about else None


def _is(cl, client, **want):
    r = _last(client, cl)
    return r is not None and all(getattr(r, k) == v for k, v in want.items())


def test_killed_with_sigkill_mid_flow_and_restarted_it_knows_its_book(tmp_path):
    state, prices = tmp_path / "book.jsonl", tmp_path / "prices.json"
    prices.write_text(json.dumps({"IBM": "101"}))

    def order(cl, qty, price=None):
        return NewOrderSingle(
            cl_ord_id=cl,
            symbol="IBM",
            order_qty=Decimal(qty),
            ord_type=OrdType.LIMIT if price else OrdType.MARKET,
            price=Decimal(price) if price else None,
        )

    async def go():
        proc, port = await _start(state, prices)
        try:
            ini, client = await _client(port)
            s = ini.session
            client.send(s, order("REST", 100, "95"))
            client.send(s, order("CXL", 100, "96"))
            await _until(lambda: len(client.reports) >= 2, "two acks")
            client.send(
                s, OrderCancelRequest(orig_cl_ord_id="CXL", cl_ord_id="CXL-C", symbol="IBM")
            )
            await _until(lambda: _is("CXL", client, ord_status="4"), "the cancel")
            client.send(s, order("MKT", 400))  # 100 every 400 ms
            await _until(lambda: _is("MKT", client, ord_status="1"), "a first fill")
            proc.send_signal(signal.SIGKILL)  # mid-flow: 300 still to fill
            await proc.wait()
            await ini.stop()
        finally:
            if proc.returncode is None:  # the test failed before the kill
                proc.kill()
                await proc.wait()
        seen_mkt = _last(client, "MKT").cum_qty
        assert seen_mkt < 400
        seen_exec_ids = {r.exec_id for r in client.reports}

        proc, port = await _start(state, prices)
        try:
            ini, client = await _client(port)
            s = ini.session
            for cl in ("REST", "CXL", "MKT"):
                client.send(s, OrderStatusRequest(cl_ord_id=cl, symbol="IBM", side="1"))
            await _until(
                lambda: (
                    {r.cl_ord_id for r in client.reports if r.exec_type == "I"}
                    >= {"REST", "CXL-C", "MKT"}
                ),
                "three status reports",
            )
            st = {r.cl_ord_id: r for r in client.reports if r.exec_type == "I"}
            assert (st["REST"].ord_status, st["REST"].leaves_qty) == ("0", 100)
            assert (st["CXL-C"].ord_status, st["CXL-C"].cum_qty) == ("4", 0)
            # never behind what was reported before the kill, and still working
            assert st["MKT"].cum_qty >= seen_mkt and st["MKT"].order_qty == 400
            await _until(lambda: _is("MKT", client, ord_status="2"), "MKT filled", 15)
            fills = [r for r in client.reports if r.cl_ord_id == "MKT" and r.exec_type == "F"]
            base = fills[0].cum_qty - fills[0].last_qty  # filled when it was killed
            assert base >= seen_mkt and base + sum(f.last_qty for f in fills) == 400
            assert not seen_exec_ids & {r.exec_id for r in client.reports}  # new ExecIDs only
            # a ClOrdID it knows is refused as a new order, with the order's state
            client.send(s, order("REST", 100, "95"))
            await _until(lambda: any(r.exec_type == "8" for r in client.reports), "reject")
            dup = [r for r in client.reports if r.exec_type == "8"][0]
            assert (dup.ord_rej_reason, dup.ord_status, dup.cl_ord_id) == (6, "0", "REST")
            # the price feed moves through both limits: only the working one fills
            tmp = prices.with_suffix(".tmp")
            tmp.write_text(json.dumps({"IBM": "94"}))
            os.replace(tmp, prices)
            await _until(lambda: _is("REST", client, ord_status="2"), "REST filled")
            await asyncio.sleep(0.5)
            assert not [r for r in client.reports if r.cl_ord_id in ("CXL", "CXL-C") and r.is_fill]
            # (every report passed the client session's validation to get here)
            await ini.stop()
        finally:
            proc.terminate()
            await proc.wait()

    asyncio.run(go())


def test_expired_while_down_it_expires_at_its_first_tick(tmp_path):
    """A DAY order whose close passed while the broker was not running."""
    path = tmp_path / "book.jsonl"
    clock = FakeClock(datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    from datetime import time as tod

    b, s, t, peer = restartable(path, clock, session_end=tod(16, 0))
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("DAY", 100, price="95"))
    t.take()
    clock.advance(timedelta(hours=20).total_seconds())  # the next morning
    b2, s2, t2, peer2 = restartable(path, clock, session_end=tod(16, 0))
    b2.walk.step = 0.0
    b2.on_tick()
    (exp,) = [parse(m) for m in t2.take()]
    assert (exp.exec_type, exp.ord_status, exp.cl_ord_id) == ("C", "C", "DAY")
