from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trading.fix import dictionary
from trading.fix.codec import decode
from trading.fix.messages import (
    BusinessMessageReject,
    DontKnowTrade,
    ExecType,
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    parse,
)

T = datetime(2026, 1, 5, 14, 30, 0, 125000, tzinfo=UTC)

SAMPLES = [
    NewOrderSingle(
        cl_ord_id="1",
        symbol="IBM",
        side="1",
        order_qty=Decimal("100"),
        ord_type="2",
        price=Decimal("10.25"),
        time_in_force="0",
        account="ACC",
        transact_time=T,
    ),
    OrderCancelRequest(
        orig_cl_ord_id="1",
        cl_ord_id="2",
        symbol="IBM",
        side="1",
        order_qty=Decimal(100),
        transact_time=T,
    ),
    OrderCancelReplaceRequest(
        orig_cl_ord_id="2",
        cl_ord_id="3",
        symbol="IBM",
        side="1",
        order_qty=Decimal(150),
        ord_type="2",
        price=Decimal("10.5"),
        transact_time=T,
    ),
    OrderCancelReject(
        order_id="O1",
        cl_ord_id="3",
        orig_cl_ord_id="2",
        ord_status="2",
        cxl_rej_response_to="2",
        cxl_rej_reason=0,
        text="too late",
        transact_time=T,
    ),
    ExecutionReport(
        order_id="O1",
        exec_id="E1",
        exec_type=ExecType.TRADE,
        ord_status="1",
        symbol="IBM",
        side="1",
        leaves_qty=Decimal(50),
        cum_qty=Decimal(50),
        avg_px=Decimal("10.2"),
        cl_ord_id="1",
        order_qty=Decimal(100),
        last_qty=Decimal(50),
        last_px=Decimal("10.2"),
        transact_time=T,
    ),
    OrderStatusRequest(cl_ord_id="1", symbol="IBM", side="1", order_id="O1"),
    DontKnowTrade(
        order_id="O1",
        exec_id="E9",
        dk_reason="D",
        symbol="IBM",
        side="1",
        order_qty=Decimal(100),
        last_qty=Decimal(5),
        last_px=Decimal(1),
    ),
    BusinessMessageReject(ref_msg_type="D", business_reject_reason=3, ref_seq_num=7, text="no"),
]


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
@pytest.mark.parametrize("typed", SAMPLES, ids=lambda t: type(t).__name__)
def test_build_validate_parse_roundtrip(typed, begin):
    msg = typed.to_message(begin)
    msg.header = [(34, "5"), (49, "A"), (52, "20260105-14:30:00.000"), (56, "B")]
    raw = msg.encode()
    decoded = decode(raw)
    dictionary.load(begin).validate(decoded)  # valid for the version's dictionary
    back = parse(decoded)
    if begin == "FIX.4.2" and hasattr(typed, "handl_inst"):
        typed = dataclasses.replace(typed, handl_inst="1")  # required in 4.2, defaulted
    assert back == typed


def test_exec_type_mapping_by_version():
    er = SAMPLES[4]
    assert er.to_message("FIX.4.2").get(150) == "1"
    assert er.to_message("FIX.4.2").get(20) == "0"
    assert er.to_message("FIX.4.4").get(150) == "F"
    done = ExecutionReport(
        order_id="O",
        exec_id="E",
        exec_type=ExecType.FILL,
        ord_status="2",
        symbol="X",
        leaves_qty=Decimal(0),
        cum_qty=Decimal(1),
        avg_px=Decimal(1),
    )
    assert done.to_message("FIX.4.2").get(150) == "2"
    assert done.is_fill


def test_decimal_formatting_and_wrong_type():
    m = NewOrderSingle(
        cl_ord_id="x", symbol="S", order_qty=Decimal("100.000"), transact_time=T
    ).to_message()
    assert m.get(38) == "100" and m.get(60) == "20260105-14:30:00.125"
    assert (
        m.get(21) is None and NewOrderSingle(transact_time=T).to_message("FIX.4.2").get(21) == "1"
    )
    with pytest.raises(ValueError):
        ExecutionReport.parse(m)
