"""The simulator's SettlDate (64; FutSettDate in FIX 4.2) on its execution reports:
the order's, echoed as it came, or the one its cycle gives (SETTLEMENT_DAYS weekdays
after the trade date in the session's time zone: T+1 shares, SEC Rule 15c6-1 from 28
May 2024; T+2 FX spot and European bonds, CSDR art. 5(2))."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from trading.fix.messages import ExecType, parse

from .test_simulator import broker, nos, reports


def _sent_with(peer, typed, extras, begin):
    m = typed.to_message(begin)
    peer.send(m.msg_type, list(m.body) + list(extras))


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
def test_a_share_order_without_a_settlement_date_is_reported_with_t_plus_one(begin):
    b, _, t, peer, _ = broker(begin)  # Monday 5 January 2026
    b.set_price("IBM", Decimal("50"))
    _sent_with(peer, nos(), [], begin)
    sent = t.take()
    assert [m.get(64) for m in sent] == ["20260106", "20260106"]  # the ack and the fill


def test_a_friday_trade_settles_on_monday_and_a_bond_two_days_on():
    b, _, t, peer, clock = broker()
    clock._wall = datetime(2026, 1, 9, 14, 0, tzinfo=UTC)  # a Friday
    b.set_price("IBM", Decimal("50"))
    b.set_price("BUND", Decimal("99"))
    _sent_with(peer, nos(cl="c1"), [], "FIX.4.4")
    _sent_with(peer, nos(cl="c2", sym="BUND"), [(167, "EUSOV")], "FIX.4.4")
    dates = [(m.get(11), m.get(64)) for m in t.take() if m.get(150) == ExecType.TRADE]
    assert dates == [("c1", "20260112"), ("c2", "20260113")]


def test_the_order_s_settlement_date_is_echoed_as_it_came():
    b, _, t, peer, _ = broker()
    b.set_price("EURUSD", Decimal("1.09"))
    extras = [(15, "EUR"), (63, "6"), (64, "20260320"), (167, "FOR")]
    _sent_with(peer, nos(qty=1_000_000, sym="EURUSD"), extras, "FIX.4.4")
    assert [m.get(64) for m in t.take()] == ["20260320", "20260320"]


def test_a_later_fill_settles_from_its_own_day():
    scheduled = []
    b, _, t, peer, clock = broker(
        schedule=lambda delay, fn: scheduled.append(fn), partial_fills=2, fill_interval=60
    )
    b.set_price("IBM", Decimal("50"))
    _sent_with(peer, nos(qty=100), [], "FIX.4.4")
    first = [parse(m) for m in t.take()]
    clock._wall += timedelta(days=1)  # Tuesday: the second half fills then
    for fn in scheduled:
        fn()
    second = reports(t)
    assert [r.settl_date for r in first] == ["20260106", "20260106"]
    assert [r.settl_date for r in second] == ["20260107"]


def test_an_order_naming_a_date_no_calendar_has_is_rejected():
    b, _, t, peer, _ = broker()
    b.set_price("IBM", Decimal("50"))
    _sent_with(peer, nos(), [(64, "20260231")], "FIX.4.4")
    [rejected] = reports(t)
    assert rejected.exec_type == ExecType.REJECTED and "SettlDate" in rejected.text


def test_the_direct_report_body_carries_the_settlement_date_as_the_typed_one_does():
    from trading.fix.messages import ExecutionReport
    from trading.fix.simulator import Order

    b, _, _, _, clock = broker()
    o = Order("O7", "c1", "BUND", "1", Decimal(100), "1", None, "0")
    o.security_type, o.settl_date = "EUSOV", "20260107"
    typed = ExecutionReport(
        order_id=o.order_id, exec_id="E9", exec_type=ExecType.NEW, ord_status=o.status,
        symbol=o.symbol, side=o.side, leaves_qty=o.leaves, cum_qty=o.cum_qty,
        avg_px=o.avg_px, cl_ord_id=o.cl_ord_id, order_qty=o.qty, ord_type=o.ord_type,
        time_in_force=o.tif, transact_time=clock.utcnow(), settl_date=o.settl_date,
        security_type=o.security_type,
    ).to_message("FIX.4.4")  # fmt: skip
    assert b._er_body(o, "E9", ExecType.NEW) == typed.body
