"""The simulated broker against FIX 4.4's order state change matrices.

Each test cites the matrix row it follows: FIX 4.4 Volume 4, Appendix D
("Order State Change Matrices"; the rows are the same as in the FIX 5.0 SP2
online edition).  Quantities are the matrices' own where they fit (10000
ordered, fills of 1000 ...), scaled down where the simulator's partial
fills decide them.  The broker runs sans-IO behind a real acceptor session
(``test_simulator.broker``), with a scheduler that collects what it would run
later, so that a fill can be made to arrive while a request is pending.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from trading.fix.messages import (
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdType,
    TimeInForce,
)

from .test_simulator import broker, nos, reports, send

FILL = 1.0  # fill_interval used below
AMEND = 5.0  # amend_delay used below


class Later:
    """Collects what the broker schedules; runs it when told, by delay."""

    def __init__(self) -> None:
        self.queue: list[tuple[float, object]] = []

    def __call__(self, delay, fn) -> None:
        self.queue.append((delay, fn))

    def run(self, delay: float) -> None:
        for i, (d, fn) in enumerate(self.queue):
            if d == delay:
                del self.queue[i]
                fn()
                return
        raise AssertionError(f"nothing scheduled after {delay}s")

    def run_all(self, delay: float) -> None:
        while any(d == delay for d, _ in self.queue):
            self.run(delay)


def limit(cl, qty=10000, price="100", side="1", tif=None):
    return nos(cl=cl, qty=qty, ord_type=OrdType.LIMIT, price=price, side=side, tif=tif)


def cancel(cl, orig):
    return OrderCancelRequest(orig_cl_ord_id=orig, cl_ord_id=cl, symbol="IBM", side="1")


def replace(cl, orig, qty, price="100", ord_type=OrdType.LIMIT):
    return OrderCancelReplaceRequest(
        orig_cl_ord_id=orig,
        cl_ord_id=cl,
        symbol="IBM",
        side="1",
        order_qty=Decimal(qty),
        ord_type=ord_type,
        price=None if ord_type == OrdType.MARKET else Decimal(price),
    )


def row(r):
    """(ExecType, OrdStatus, OrderQty, CumQty, LeavesQty) of a report."""
    return (r.exec_type, r.ord_status, r.order_qty, r.cum_qty, r.leaves_qty)


def working_partly_filled(begin="FIX.4.4", qty=10000, fills=10, **cfg):
    """A buy limit at 100 that has had its first fill of qty/fills (the rest
    scheduled, one slice per FILL seconds): the matrices' "Execution for 1000"."""
    later = Later()
    b, s, t, peer, clock = broker(
        begin=begin, partial_fills=fills, fill_interval=FILL, schedule=later, **cfg
    )
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X", qty), begin)
    (new,) = reports(t)
    assert new.ord_status == "0"
    b.set_price("IBM", Decimal("99"))  # crosses: first slice fills
    (fill,) = reports(t)
    assert fill.last_qty == qty // fills
    return b, s, t, peer, clock, later


# ---------------------------------------------------------------- B: cancel


def test_b_1_a_cancel_of_a_zero_filled_order_with_pending_ack():
    """B.1.a: Cancel Request (Y,X) → Pending Cancel (Y,X), then Canceled (Y,X)."""
    b, s, t, peer, _ = broker(pending_acks=True)
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X"))
    t.take()
    send(peer, cancel("Y", "X"))
    pend, done = reports(t)
    assert row(pend) == ("6", "6", 10000, 0, 10000)
    assert (pend.cl_ord_id, pend.orig_cl_ord_id) == ("Y", "X")
    assert row(done) == ("4", "4", 10000, 0, 0)
    assert (done.cl_ord_id, done.orig_cl_ord_id) == ("Y", "X")


def test_b_1_b_executions_while_a_cancel_is_pending():
    """B.1.b: a part-filled order, Cancel Request (Y,X) pending; a fill for
    1000 while pending is reported on X with OrdStatus Pending Cancel
    (precedence over Partially Filled); then Canceled (Y,X), CumQty 2000,
    LeavesQty 0; the slices still scheduled fill nothing."""
    b, s, t, peer, _, later = working_partly_filled(amend_delay=AMEND)
    send(peer, cancel("Y", "X"))
    (pend,) = reports(t)
    assert row(pend) == ("6", "6", 10000, 1000, 9000)
    later.run(FILL)  # the execution that happens while the cancel is pending
    (fill,) = reports(t)
    assert row(fill) == ("F", "6", 10000, 2000, 8000)
    assert (fill.cl_ord_id, fill.orig_cl_ord_id, fill.last_qty) == ("X", None, 1000)
    later.run(AMEND)
    (done,) = reports(t)
    assert row(done) == ("4", "4", 10000, 2000, 0)
    assert (done.cl_ord_id, done.orig_cl_ord_id) == ("Y", "X")
    later.run_all(FILL)
    b.set_price("IBM", Decimal("90"))
    b.on_tick()
    assert t.take() == []  # no fill, ever, after Canceled


def test_b_1_c_order_filled_before_the_cancel_is_accepted():
    """B.1.c: the fill that completes the order arrives while the cancel is
    pending: reported with OrdStatus Pending Cancel ("takes precedence over
    filled"); the cancel is then rejected, OrdStatus Filled, too late."""
    b, s, t, peer, _, later = working_partly_filled(fills=2, amend_delay=AMEND)
    send(peer, cancel("Y", "X"))
    (pend,) = reports(t)
    assert row(pend) == ("6", "6", 10000, 5000, 5000)
    later.run(FILL)
    (fill,) = reports(t)
    assert row(fill) == ("F", "6", 10000, 10000, 0)
    later.run(AMEND)
    (rej,) = reports(t)
    assert isinstance(rej, OrderCancelReject)
    assert (rej.ord_status, rej.cxl_rej_reason, rej.cxl_rej_response_to) == ("2", 0, "1")
    assert (rej.cl_ord_id, rej.orig_cl_ord_id) == ("Y", "X")


def test_b_1_c_cancel_of_a_filled_order_is_too_late():
    b, s, t, peer, _ = broker()
    send(peer, nos(cl="X", qty=100))
    t.take()
    send(peer, cancel("Y", "X"))
    (rej,) = reports(t)
    assert (rej.ord_status, rej.cxl_rej_reason, rej.cxl_rej_response_to) == ("2", 0, "1")


def test_b_1_f_cancel_of_an_unknown_order():
    """B.1.f: Cancel Reject (Y,X), OrdStatus Rejected, CxlRejReason 1, OrderID NONE."""
    b, s, t, peer, _ = broker()
    send(peer, cancel("Y", "X"))
    (rej,) = reports(t)
    assert (rej.order_id, rej.ord_status, rej.cxl_rej_reason) == ("NONE", "8", 1)
    assert (rej.cl_ord_id, rej.orig_cl_ord_id, rej.cxl_rej_response_to) == ("Y", "X", "1")


# ------------------------------------------------- C: replace quantity changes


def test_c_1_a_zero_filled_order_replaced_to_a_larger_quantity():
    """C.1.a: Replace (Y,X) to 11000: ExecType Replace, OrdStatus New, LeavesQty 11000."""
    b, s, t, peer, _ = broker(pending_acks=True)
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X"))
    t.take()
    send(peer, replace("Y", "X", 11000))
    pend, rep = reports(t)
    assert row(pend) == ("E", "E", 10000, 0, 10000)
    assert row(rep) == ("5", "0", 11000, 0, 11000)
    assert (rep.cl_ord_id, rep.orig_cl_ord_id) == ("Y", "X")


def test_c_1_b_part_filled_order_replaced_up_with_an_execution_while_pending():
    """C.1.b: Replace (Y,X) to 12000 on a part-filled order; a fill for 1000
    while pending is reported on X with the old terms and OrdStatus Pending
    Replace; then Replace (Y,X): OrdStatus Partially Filled, 12000 / 2000 /
    10000; later fills are on Y."""
    b, s, t, peer, _, later = working_partly_filled(amend_delay=AMEND)
    send(peer, replace("Y", "X", 12000))
    (pend,) = reports(t)
    assert row(pend) == ("E", "E", 10000, 1000, 9000)
    assert (pend.cl_ord_id, pend.orig_cl_ord_id) == ("Y", "X")
    later.run(FILL)
    (fill,) = reports(t)
    assert row(fill) == ("F", "E", 10000, 2000, 8000) and fill.cl_ord_id == "X"
    later.run(AMEND)
    rep, *fills = reports(t)
    assert row(rep) == ("5", "1", 12000, 2000, 10000)
    assert (rep.cl_ord_id, rep.orig_cl_ord_id) == ("Y", "X")
    later.run_all(FILL)
    fills += reports(t)
    assert all(f.cl_ord_id == "Y" for f in fills)
    assert fills[-1].cum_qty == 12000 and fills[-1].ord_status == "2"


def test_c_2_a_replace_not_changing_quantity_is_rejected_once_filled():
    """C.2.a: the order is filled before the replace (new price) is dealt
    with: Cancel Reject (Y,X), OrdStatus Filled, CxlRejReason 0 (too late)."""
    b, s, t, peer, _, later = working_partly_filled(fills=2, amend_delay=AMEND)
    send(peer, replace("Y", "X", 10000, price="101"))
    t.take()  # pending replace
    later.run(FILL)  # filled while pending
    t.take()
    later.run(AMEND)
    (rej,) = reports(t)
    assert isinstance(rej, OrderCancelReject)
    assert (rej.ord_status, rej.cxl_rej_reason, rej.cxl_rej_response_to) == ("2", 0, "2")
    # and at once, without a pending state, the same
    send(peer, replace("Z", "X", 10000, price="102"))
    (rej,) = reports(t)
    assert (rej.ord_status, rej.cxl_rej_reason, rej.orig_cl_ord_id) == ("2", 0, "X")


def test_c_3_a_replace_down_to_above_the_filled_quantity():
    """C.3.a: Replace (Y,X) to 8000 after fills of 1000 and 500 (one while
    pending): Replace, Partially Filled, 8000 / 1500 / 6500."""
    b, s, t, peer, _, later = working_partly_filled(fills=20, amend_delay=AMEND)
    # first slice was 10000/20 = 500; the matrix's 1000 + 500 here is 500 + 500
    send(peer, replace("Y", "X", 8000))
    t.take()
    later.run(FILL)
    (fill,) = reports(t)
    assert row(fill) == ("F", "E", 10000, 1000, 9000)
    later.run(AMEND)
    (rep, *_) = reports(t)
    assert row(rep) == ("5", "1", 8000, 1000, 7000)


def test_c_3_b_replace_to_the_filled_quantity_ends_the_order_filled():
    """C.3.b: Replace (Y,X) to 7000 when 7000 is filled: Replace, Filled,
    7000 / 7000 / 0 ("the balance of the order is canceled")."""
    later = Later()
    b, s, t, peer, _ = broker(partial_fills=2, fill_interval=FILL, schedule=later)
    send(peer, nos(cl="X", qty=14000))  # market: first slice of 7000 fills at once
    t.take()
    send(peer, replace("Y", "X", 7000, ord_type=OrdType.MARKET))
    (rep,) = reports(t)
    assert row(rep) == ("5", "2", 7000, 7000, 0)
    later.run_all(FILL)
    assert t.take() == []  # nothing more is filled


def test_c_3_c_replace_below_the_filled_quantity_amends_it_to_the_filled_quantity():
    """C.3.c: Replace (Y,X) to 7000 when 8000 is filled: Replace, Filled,
    OrderQty 8000 (amended to CumQty), LeavesQty 0."""
    later = Later()
    b, s, t, peer, _ = broker(partial_fills=5, fill_interval=FILL, schedule=later)
    send(peer, nos(cl="X", qty=10000))
    t.take()  # New, fill 2000
    for _ in range(3):
        later.run(FILL)
    (*_, last) = reports(t)
    assert last.cum_qty == 8000
    send(peer, replace("Y", "X", 7000, ord_type=OrdType.MARKET))
    (rep,) = reports(t)
    assert row(rep) == ("5", "2", 8000, 8000, 0)


def test_replace_to_zero_or_a_limit_without_price_is_rejected_and_changes_nothing():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X"))
    t.take()
    send(peer, replace("Y", "X", 0))
    send(
        peer,
        OrderCancelReplaceRequest(
            orig_cl_ord_id="X",
            cl_ord_id="Z",
            symbol="IBM",
            order_qty=Decimal(5),
            ord_type=OrdType.LIMIT,
        ),
    )
    r1, r2 = reports(t)
    assert (r1.cxl_rej_reason, r2.cxl_rej_reason) == (2, 2)
    send(peer, OrderStatusRequest(cl_ord_id="X", symbol="IBM", side="1"))
    (st,) = reports(t)
    assert row(st) == ("I", "0", 10000, 0, 10000)


# ----------------------------------------- D: replace sequencing and chaining


def test_d_1_a_two_replaces_accepted_one_after_the_other():
    """D.1.a: Replace (Y,X) accepted, then Replace (Z,Y) accepted; fills on Z."""
    b, s, t, peer, _, later = working_partly_filled()
    send(peer, replace("Y", "X", 8000))
    (rep1,) = reports(t)
    assert row(rep1) == ("5", "1", 8000, 1000, 7000)
    assert (rep1.cl_ord_id, rep1.orig_cl_ord_id) == ("Y", "X")
    send(peer, replace("Z", "Y", 6000))
    (rep2,) = reports(t)
    assert row(rep2) == ("5", "1", 6000, 1000, 5000)
    assert (rep2.cl_ord_id, rep2.orig_cl_ord_id) == ("Z", "Y")
    later.run_all(FILL)
    fills = reports(t)
    assert {f.cl_ord_id for f in fills} == {"Z"} and fills[-1].cum_qty == 6000


def test_d_1_b_rejected_replace_then_another_from_the_last_accepted_clordid():
    """D.1.b: Replace (Y,X) rejected (here: no price for a limit), then
    Replace (Z,X) — OrigClOrdID X, the last non-rejected — accepted."""
    b, s, t, peer, _, later = working_partly_filled()
    send(
        peer,
        OrderCancelReplaceRequest(
            orig_cl_ord_id="X",
            cl_ord_id="Y",
            symbol="IBM",
            order_qty=Decimal(8000),
            ord_type=OrdType.LIMIT,
        ),
    )
    (rej,) = reports(t)
    assert isinstance(rej, OrderCancelReject) and rej.ord_status == "1"
    assert (rej.cl_ord_id, rej.orig_cl_ord_id) == ("Y", "X")
    send(peer, replace("Z", "X", 6000))
    (rep,) = reports(t)
    assert row(rep) == ("5", "1", 6000, 1000, 5000)
    assert (rep.cl_ord_id, rep.orig_cl_ord_id) == ("Z", "X")


def test_d_2_b_second_replace_while_the_first_is_pending_is_rejected():
    """D.2.b: Replace (Y,X) pending, Replace (Z,Y) arrives: Cancel Reject
    (Z,X), OrdStatus Pending Replace, CxlRejReason 3, OrigClOrdID X (the last
    accepted); then Replace (Y,X) is carried out."""
    b, s, t, peer, _, later = working_partly_filled(amend_delay=AMEND)
    send(peer, replace("Y", "X", 8000))
    t.take()
    send(peer, replace("Z", "Y", 7000))
    (rej,) = reports(t)
    assert isinstance(rej, OrderCancelReject)
    assert (rej.cl_ord_id, rej.orig_cl_ord_id, rej.ord_status) == ("Z", "X", "E")
    assert (rej.cxl_rej_reason, rej.cxl_rej_response_to) == (3, "2")
    later.run(AMEND)
    (rep,) = reports(t)
    assert row(rep) == ("5", "1", 8000, 1000, 7000) and rep.cl_ord_id == "Y"


def test_replace_while_a_cancel_is_pending_and_cancel_while_a_replace_is_pending():
    b, s, t, peer, _, later = working_partly_filled(amend_delay=AMEND)
    send(peer, cancel("Y", "X"))
    t.take()
    send(peer, replace("Z", "X", 5000))
    (rej,) = reports(t)
    assert (rej.ord_status, rej.cxl_rej_reason, rej.cxl_rej_response_to) == ("6", 3, "2")
    later.run(AMEND)
    (done,) = reports(t)
    assert done.ord_status == "4"

    b, s, t, peer, _, later = working_partly_filled(amend_delay=AMEND)
    send(peer, replace("Y", "X", 5000))
    t.take()
    send(peer, cancel("Z", "X"))
    (rej,) = reports(t)
    assert (rej.ord_status, rej.cxl_rej_reason, rej.cxl_rej_response_to) == ("E", 3, "1")


def test_a_clordid_used_before_is_refused_for_a_request():
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X"))
    send(peer, limit("W"))
    t.take()
    send(peer, cancel("W", "X"))  # W names another order already
    (rej,) = reports(t)
    assert (rej.cxl_rej_reason, rej.ord_status, rej.orig_cl_ord_id) == (6, "0", "X")


# ------------------------------------------------------- F: order reject


def test_f_1_b_possresend_and_duplicate_clordid():
    """F.1.b: New Order (X) PossResend=Y, already received: Order Status of X;
    New Order (X) 20000 without PossResend: Rejected (duplicate), with X's
    state (OrderQty 10000, New); New Order (Y) PossResend=Y, not received:
    a new order."""
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X"))
    (new,) = reports(t)
    m = limit("X").to_message("FIX.4.4")
    peer.send("D", m.body, header=[(97, "Y")])
    (st,) = reports(t)
    assert row(st) == ("I", "0", 10000, 0, 10000) and st.order_id == new.order_id
    send(peer, limit("X", qty=20000))
    (rej,) = reports(t)
    assert row(rej) == ("8", "0", 10000, 0, 10000) and rej.ord_rej_reason == 6
    assert rej.cl_ord_id == "X"
    m = limit("Y", qty=15000).to_message("FIX.4.4")
    peer.send("D", m.body, header=[(97, "Y")])
    (new_y,) = reports(t)
    assert row(new_y) == ("0", "0", 15000, 0, 15000) and new_y.cl_ord_id == "Y"
    # the original order was not touched by the duplicate
    send(peer, OrderStatusRequest(cl_ord_id="X", symbol="IBM", side="1"))
    (st,) = reports(t)
    assert row(st) == ("I", "0", 10000, 0, 10000)


def test_a_session_level_resend_of_a_known_order_gets_its_status_too():
    """A NewOrderSingle resent with PossDup=Y after a restart lost the
    peer's sequence number: it is the same order, not a duplicate."""
    b, s, t, peer, clock = broker()
    send(peer, nos(cl="X", qty=100))
    t.take()
    m = nos(cl="X", qty=100).to_message("FIX.4.4")
    ts = "20260105-13:59:59.000"
    peer.send("D", m.body, header=[(43, "Y"), (122, ts)])
    (st,) = reports(t)
    assert row(st) == ("I", "2", 100, 100, 0)


def test_a_cancel_resent_after_it_was_taken_gets_the_orders_status_not_a_reject():
    """The peer lost the Canceled report (say the broker died before sending
    it) and resends the request with PossDup=Y: the answer is the order's
    state (canceled), not "duplicate ClOrdID", which it would take to mean
    the cancel failed. The same for a PossResend replace."""
    b, s, t, peer, _ = broker()
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X"))
    send(peer, limit("W"))
    send(peer, cancel("Y", "X"))
    send(peer, replace("V", "W", 500))
    t.take()
    m = cancel("Y", "X").to_message("FIX.4.4")
    peer.send("F", m.body, header=[(43, "Y"), (122, "20260105-13:59:59.000")])
    m = replace("V", "W", 500).to_message("FIX.4.4")
    peer.send("G", m.body, header=[(97, "Y")])
    st_x, st_w = reports(t)
    assert (st_x.exec_type, st_x.ord_status, st_x.cl_ord_id) == ("I", "4", "Y")
    assert (st_w.exec_type, st_w.ord_status, st_w.order_qty, st_w.cl_ord_id) == ("I", "0", 500, "V")
    send(peer, cancel("V", "X"))  # not resent: V names another order, a duplicate
    (rej,) = reports(t)
    assert isinstance(rej, OrderCancelReject) and rej.cxl_rej_reason == 6


# ------------------------------------------------------------ status, 4.2


def test_g_1_c_status_request_during_the_life_of_an_order_in_fix_42():
    """G.1.c in FIX 4.2: a status report is ExecTransType 3 (Status) with
    ExecType stating the order's status; it books nothing."""
    b, s, t, peer, _, later = working_partly_filled(begin="FIX.4.2")
    send(peer, OrderStatusRequest(cl_ord_id="X", symbol="IBM", side="1"), "FIX.4.2")
    (st,) = t.take()
    assert (st[20], st[150], st[39], st[14], st[151]) == ("3", "1", "1", "1000", "9000")
    assert 32 not in st


def test_fix_42_replace_says_replaced_only_with_nothing_filled():
    """FIX 4.2 Appendix D (D6, D7): Replace of a zero-filled order, OrdStatus
    Replaced; of a part-filled one, Partially Filled (precedence)."""
    b, s, t, peer, _ = broker(begin="FIX.4.2")
    b.set_price("IBM", Decimal("101"))
    send(peer, limit("X"), "FIX.4.2")
    t.take()
    send(peer, replace("Y", "X", 11000), "FIX.4.2")
    (rep,) = t.take()
    assert (rep[150], rep[39], rep[20]) == ("5", "5", "0")
    b, s, t, peer, _, later = working_partly_filled(begin="FIX.4.2")
    send(peer, replace("Y", "X", 12000), "FIX.4.2")
    (rep,) = t.take()
    assert (rep[150], rep[39], rep[151]) == ("5", "1", "11000")


# ------------------------------------------------- the close: DAY orders


def ny_broker(**cfg):
    """A broker whose close is 16:00 New York; its clock at 20:00 UTC on a
    winter Monday (15:00 in New York)."""
    b, s, t, peer, clock = broker(session_end=time(16, 0), session_tz="America/New_York", **cfg)
    clock._wall = datetime(2026, 1, 5, 20, 0, tzinfo=UTC)
    return b, s, t, peer, clock


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_day_orders_expire_at_the_close_in_the_session_time_zone(begin):
    b, s, t, peer, clock = ny_broker(begin=begin)
    b.set_price("IBM", Decimal("101"))
    b.walk.step = 0.0
    send(peer, limit("DAY", 100), begin)
    send(peer, limit("GTC", 100, tif=TimeInForce.GTC), begin)
    t.take()
    clock.advance(59 * 60 + 59)  # 15:59:59 New York
    b.on_tick()
    assert t.take() == []
    clock.advance(1)  # 16:00 New York = 21:00 UTC in January
    b.on_tick()
    (exp,) = t.take()
    assert (exp[150], exp[39], exp[11], exp[151]) == ("C", "C", "DAY", "0")
    if begin == "FIX.4.2":
        assert exp[20] == "0"
    b.set_price("IBM", Decimal("90"))  # crosses both limits
    fills = t.take()
    assert [(f[11], f[39]) for f in fills] == [("GTC", "2")]  # never the expired one
    b.on_tick()
    assert t.take() == []


def test_a_day_order_entered_after_the_close_belongs_to_the_next_close():
    b, s, t, peer, clock = ny_broker()
    b.set_price("IBM", Decimal("101"))
    b.walk.step = 0.0
    clock.advance(2 * 3600)  # 17:00 New York
    send(peer, limit("LATE", 100))
    t.take()
    b.on_tick()
    assert t.take() == []
    clock.advance(23 * 3600)  # 16:00 the next day
    b.on_tick()
    (exp,) = reports(t)
    assert (exp.exec_type, exp.cl_ord_id) == ("C", "LATE")


def test_an_order_that_expires_with_a_cancel_pending_gets_the_cancel_rejected():
    b, s, t, peer, clock = ny_broker(amend_delay=7200.0, schedule=lambda d, fn: None)
    b.set_price("IBM", Decimal("101"))
    b.walk.step = 0.0
    send(peer, limit("X", 100))
    t.take()
    send(peer, cancel("Y", "X"))
    (pend,) = reports(t)
    assert pend.ord_status == "6"
    clock.advance(3600)
    b.on_tick()
    exp, rej = reports(t)
    assert (exp.exec_type, exp.ord_status) == ("C", "C")
    assert isinstance(rej, OrderCancelReject) and (rej.ord_status, rej.cxl_rej_reason) == ("C", 0)


def test_the_close_options_are_checked():
    from trading.fix.simulator import main

    with pytest.raises(SystemExit):
        main(["--port", "0", "--session-end", "4pm"])
    with pytest.raises(SystemExit):
        main(["--port", "0", "--session-tz", "Mars/Olympus"])


def test_expiry_happens_on_the_next_tick_after_a_close_missed_while_down():
    """A broker that was not running at the close expires yesterday's DAY
    orders at its first tick (the close each order belongs to is kept)."""
    b, s, t, peer, clock = ny_broker()
    b.set_price("IBM", Decimal("101"))
    b.walk.step = 0.0
    send(peer, limit("X", 100))
    t.take()
    clock._wall += timedelta(days=1, hours=-5)  # next day 10:00 New York, no tick in between
    b.on_tick()
    (exp,) = reports(t)
    assert exp.exec_type == "C"
