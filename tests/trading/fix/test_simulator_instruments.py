"""The FIX simulator and the Instrument fields of an order (FIX 4.4): a bond quoted in
percent of par fills and its reports name its SecurityType; an option without its
strike or its right is refused (what a broker would answer)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from trading.brokers import fixmap
from trading.fix.messages import ExecType, OrdStatus, parse

from .test_simulator import broker, nos, reports


def _send_with(peer, typed, extras, begin="FIX.4.4"):
    m = typed.to_message(begin)
    peer.send(m.msg_type, list(m.body) + list(extras))


BOND = {
    "asset_class": "bond",
    "currency": "USD",
    "government": True,
    "issue_date": date(2024, 5, 15),
    "maturity": date(2034, 5, 15),
    "coupon_rate": Decimal("0.04375"),
}
CALL = {
    "asset_class": "option",
    "currency": "USD",
    "expiry": date(2027, 1, 15),
    "multiplier": Decimal("100.000000"),
    "option_right": "call",
    "strike": Decimal("230.00000000"),
}


def test_a_treasury_note_in_percent_of_par_fills_and_is_named_on_the_reports():
    fields = dict(fixmap.instrument_fields(BOND))
    assert (fields[167], fields[423], fields[223]) == ("TNOTE", "1", "0.04375")
    assert (fields[200], fields[541]) == ("203405", "20340515")
    b, _, t, peer, _ = broker()
    b.set_price("T4.375-2034", Decimal("99.2"))
    _send_with(peer, nos(qty=100_000, sym="T4.375-2034"), fixmap.instrument_fields(BOND))
    sent = t.take()
    new, fill = (parse(m) for m in sent)
    assert new.exec_type == ExecType.NEW
    assert fill.ord_status == OrdStatus.FILLED and fill.last_px == Decimal("99.2")
    assert [m.get(167) for m in sent] == ["TNOTE", "TNOTE"]


def test_an_option_without_its_strike_is_refused_and_with_it_fills():
    fields = fixmap.instrument_fields(CALL)
    assert dict(fields)[202] == "230" and dict(fields)[201] == "1"
    b, _, t, peer, _ = broker()
    b.set_price("AAPL270115C230", Decimal("8.50"))
    without_strike = [f for f in fields if f[0] != 202]
    _send_with(peer, nos(cl="c1", qty=5, sym="AAPL270115C230"), without_strike)
    [rejected] = reports(t)
    assert rejected.exec_type == ExecType.REJECTED
    assert "StrikePrice" in rejected.text
    _send_with(peer, nos(cl="c2", qty=5, sym="AAPL270115C230"), fields)
    new, fill = reports(t)
    assert fill.ord_status == OrdStatus.FILLED and fill.last_qty == 5


FORWARD = {
    "asset_class": "fx_forward",
    "currency": "USD",
    "base_currency": "EUR",
    "value_date": date(2027, 3, 4),
}


def test_an_fx_forward_without_its_value_date_is_refused_and_with_it_fills_at_the_rate():
    # FIX 4.4: SecurityType FOR, the dealt currency in Currency (15), SettlType (63) 6
    # "Future" for an outright, its value date in SettlDate (64)
    fields = fixmap.instrument_fields(FORWARD)
    assert dict(fields) == {15: "EUR", 63: "6", 64: "20270304", 167: "FOR"}
    spot = dict(fixmap.instrument_fields(FORWARD | {"asset_class": "fx_spot"}))
    assert spot[63] == "0"  # regular: the spot date
    b, _, t, peer, _ = broker()
    b.set_price("EURUSD-20270304", Decimal("1.09408"))
    _send_with(
        peer,
        nos(cl="c1", qty="250000.50", sym="EURUSD-20270304"),
        [f for f in fields if f[0] != 64],
    )
    [rejected] = reports(t)
    assert rejected.exec_type == ExecType.REJECTED and "SettlDate" in rejected.text
    # a SettlDate that is no LocalMktDate is refused by the session (Reject, RefTagID 64)
    malformed = [(64, "2027-03-04") if tag == 64 else (tag, v) for tag, v in fields]
    _send_with(peer, nos(cl="c2", qty="250000.50", sym="EURUSD-20270304"), malformed)
    [reject] = t.take()
    assert (reject.msg_type, reject.get(371)) == ("3", "64")
    _send_with(peer, nos(cl="c3", qty="250000.50", sym="EURUSD-20270304"), fields)
    new, fill = reports(t)
    assert fill.ord_status == OrdStatus.FILLED
    assert (fill.last_qty, fill.last_px) == (Decimal("250000.50"), Decimal("1.09408"))
