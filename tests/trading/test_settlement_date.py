"""The broker's settlement date (SettlDate, tag 64; FutSettDate in FIX 4.2) on its
execution reports: read, kept on the execution, booked (the cash movements' value date,
an FX trade's two legs, a bond's accrued interest), ours kept beside it where the two
differ, for operations on the reconciliation page (decision 49); a malformed one gets a
FIX Reject and the gateway carries on.

Dates: Friday 20 November 2026; a US share settles T+1 (SEC Rule 15c6-1 as amended,
from 28 May 2024), on Monday 23 November.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from portfolios.models import CashMovement
from portfolios.services.holdings import holdings_book_fill
from tests.clients import api_client, page_client
from tests.desk import broker_report, released_block
from tests.portfolios.test_fx_settlement import DEALT, SPOT, fx_spot
from trading.brokers import fixmap
from trading.fix import messages as fixmsg
from trading.fix.codec import Message
from trading.models import Allocation, Execution, FixInbox, Route
from trading.services import allocations as allocation_services
from trading.services import executions as execution_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db

D = Decimal
FILLED_AT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday afternoon
OURS = date(2026, 11, 23)  # T+1: Monday


def _er(
    begin: str, settl_date: str | None, exec_type: str = fixmsg.ExecType.TRADE, **fields
) -> Message:
    report = fixmsg.ExecutionReport(
        order_id="O1",
        exec_id="E1",
        exec_type=exec_type,
        ord_status=fixmsg.OrdStatus.FILLED,
        symbol="AAA",
        side="1",
        leaves_qty=D(0),
        cum_qty=D(10),
        avg_px=D(100),
        cl_ord_id="R1",
        last_qty=D(10),
        last_px=D(100),
        transact_time=FILLED_AT,
        settl_date=settl_date,
        **fields,
    )
    return report.to_message(begin)


# --- read from the report --------------------------------------------------------------


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
def test_the_broker_s_settlement_date_is_read_from_the_report_in_4_2_and_4_4(begin):
    msg = _er(begin, "20261124")
    assert msg.get(64) == "20261124"  # FutSettDate in 4.2, SettlDate in 4.4: one tag
    report = fixmap.report_from_execution_report(msg, broker_code="B", cl_ord_id="R1")
    assert report.settlement_date == date(2026, 11, 24)
    none = fixmap.report_from_execution_report(_er(begin, None), broker_code="B", cl_ord_id="R1")
    assert none.settlement_date is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [("2026-11-24", 6), ("2026112", 6), ("2026112X", 6), ("20260231", 5), ("20261300", 5)],
)
def test_a_malformed_settlement_date_is_refused_with_the_session_reject_reason(value, reason):
    with pytest.raises(fixmap.IncorrectTagValue) as refused:
        fixmap.report_from_execution_report(_er("FIX.4.4", value), broker_code="B", cl_ord_id="R1")
    assert (refused.value.tag, refused.value.reason) == (64, reason)


def test_a_settlement_before_the_trade_is_refused_as_business():
    with pytest.raises(fixmap.BusinessRefusal, match="before the trade"):
        fixmap.report_from_execution_report(
            _er("FIX.4.4", "20261118"), broker_code="B", cl_ord_id="R1"
        )
    # the day before TransactTime's UTC day is still some market's trade date
    report = fixmap.report_from_execution_report(
        _er("FIX.4.4", "20261119"), broker_code="B", cl_ord_id="R1"
    )
    assert report.settlement_date == date(2026, 11, 19)
    # a status report repeats an old fill's date whenever it is sent: not refused
    status = _er("FIX.4.4", "20261101", fixmsg.ExecType.ORDER_STATUS)
    report = fixmap.report_from_execution_report(status, broker_code="B", cl_ord_id="R1")
    assert (report.exec_type, report.settlement_date) == ("order_status", date(2026, 11, 1))


# --- booked ------------------------------------------------------------------------------


def _filled_block(pm, trader, book, settlement_date):
    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(broker_report(route, "N", "new", "new", at=FILLED_AT))
    execution_services.execution_apply(
        broker_report(
            route, "F", "trade", "filled", 100, 100, at=FILLED_AT, settlement_date=settlement_date
        )
    )
    allocation_services.block_allocate(block_id=block.pk)
    return block, route


def _value_dates(block) -> set[date]:
    allocations = Allocation.objects.filter(block=block).values("pk")
    return set(
        CashMovement.objects.filter(allocation_id__in=allocations).values_list(
            "value_date", flat=True
        )
    )


def test_without_the_broker_s_date_the_allocation_settles_on_ours(pm, trader, book):
    block, route = _filled_block(pm, trader, book, None)
    assert Execution.objects.get(route=route, exec_id="F").settlement_date is None
    allocations = Allocation.objects.filter(block=block)
    assert {(a.settlement_date, a.computed_settlement_date) for a in allocations} == {(OURS, None)}
    assert _value_dates(block) == {OURS}


def test_the_broker_s_date_agreeing_with_ours_is_booked_and_not_flagged(pm, trader, book):
    block, _ = _filled_block(pm, trader, book, OURS)
    allocations = Allocation.objects.filter(block=block)
    assert {(a.settlement_date, a.computed_settlement_date) for a in allocations} == {(OURS, None)}


def test_the_broker_s_date_apart_from_ours_is_booked_and_ours_kept_for_operations(
    pm, trader, ops, book
):
    theirs = date(2026, 11, 24)
    block, route = _filled_block(pm, trader, book, theirs)
    assert Execution.objects.get(route=route, exec_id="F").settlement_date == theirs
    allocations = Allocation.objects.filter(block=block)
    assert {(a.settlement_date, a.computed_settlement_date) for a in allocations} == {
        (theirs, OURS)
    }
    assert _value_dates(block) == {theirs}  # the cash moves on the broker's day
    # the block's allocation event names both
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(kind="block.allocated", object_id=str(block.pk))
    assert event.after["settlement_date"] == "2026-11-24"
    assert event.after["computed_settlement_date"] == "2026-11-23"
    # operations see it on the reconciliation page, and through the API
    page = page_client(ops).get(reverse("trading:reconciliation"))
    assert page.status_code == 200
    section = page.content.decode().split('id="settlement-dates"')[1].split("</section>")[0]
    assert section.count("data-allocation=") == 2  # one per account
    assert "2026-11-24" in section and "2026-11-23" in section and f"#{block.pk}" in section
    rows = api_client(ops).get("/api/v1/allocations/", {"block": block.pk}).json()
    rows = rows.get("results", rows)
    assert {(r["settlement_date"], r["computed_settlement_date"]) for r in rows} == {
        ("2026-11-24", "2026-11-23")
    }


def test_an_fx_fill_s_two_legs_settle_on_the_broker_s_value_date(ops, book):
    eurusd = fx_spot(ops)
    theirs = date(2023, 6, 21)  # a day after the spot date the payment systems give
    holdings_book_fill(
        portfolio=book["accounts"][0],
        security=eurusd,
        buying=True,
        quantity=D(1_000_000),
        price=D("1.0925"),
        on_date=DEALT,
        commission=D(10),
        allocation_id=9101,
        settles=theirs,
    )
    dates = set(
        CashMovement.objects.filter(allocation_id=9101).values_list("value_date", flat=True)
    )
    assert dates == {theirs} and theirs != SPOT


# --- refused on the wire, and the gateway carries on ------------------------------------


def _gateway_logged_on(fix_broker):
    from tests.trading.fix.conftest import FakeTransport, Peer
    from trading.gateway import Gateway

    gateway = Gateway(fix_broker.fix_session)
    transport = FakeTransport()
    gateway.session.connect(transport)
    peer = Peer(gateway.session)
    peer.send("A", [(98, "0"), (108, "30")])
    assert gateway.session.logged_on
    transport.take()
    return gateway, transport, peer


@pytest.fixture
def fix_broker(book):
    from trading.models import Broker, FixSession

    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    FixSession.objects.create(broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1)
    return Broker.objects.select_related("fix_session").get(pk=broker.pk)


def _route_to(pm, trader, book, broker) -> Route:
    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=broker)
    route_services.route_claim_for_sending(route.pk)
    return route


def _fill(route, exec_id: str, settl_date: str) -> list[tuple[int, str]]:
    return [
        (6, "100"), (11, route.cl_ord_id), (14, "100"), (17, exec_id), (31, "100"),
        (32, "100"), (37, "O1"), (38, "100"), (39, "2"), (54, "1"), (55, "AAA"),
        (60, "20261120-15:00:00"), (64, settl_date), (150, "F"), (151, "0"),
    ]  # fmt: skip


@pytest.mark.parametrize(("value", "reason"), [("20260231", "5"), ("20261131", "5")])
def test_a_report_with_a_settlement_date_no_calendar_has_is_rejected_and_kept(
    pm, trader, book, fix_broker, value, reason
):
    # the dictionary (as QuickFIX's) checks only the shape: 20260231 reaches the gateway
    route = _route_to(pm, trader, book, fix_broker)
    gateway, transport, peer = _gateway_logged_on(fix_broker)
    peer.send("8", _fill(route, "BAD", value))
    [reject] = transport.take()
    assert reject.msg_type == "3"
    assert (reject.get(45), reject.get(371), reject.get(372), reject.get(373)) == (
        "2", "64", "8", reason
    )  # fmt: skip
    inbox = FixInbox.objects.get(session=fix_broker.fix_session, seq_num=2)
    assert inbox.status == FixInbox.Status.NOT_APPLIED and "SettlDate" in inbox.error
    assert not Execution.objects.filter(route=route, exec_id="BAD").exists()
    # the session carries on: the broker's corrected report is applied
    peer.send("8", _fill(route, "GOOD", "20261124"))
    assert transport.take() == []
    assert gateway.session.logged_on
    assert Execution.objects.get(route=route, exec_id="GOOD").settlement_date == date(2026, 11, 24)
    assert Route.objects.get(pk=route.pk).status == Route.Status.FILLED


def test_a_report_settling_before_its_trade_gets_a_business_reject(pm, trader, book, fix_broker):
    route = _route_to(pm, trader, book, fix_broker)
    gateway, transport, peer = _gateway_logged_on(fix_broker)
    peer.send("8", _fill(route, "EARLY", "20261101"))
    [reject] = transport.take()
    assert reject.msg_type == "j"
    assert (reject.get(45), reject.get(372), reject.get(379), reject.get(380)) == (
        "2", "8", "EARLY", "0"
    )  # fmt: skip
    assert "before the trade" in reject.get(58)
    assert FixInbox.objects.get(seq_num=2).status == FixInbox.Status.NOT_APPLIED
    assert gateway.session.logged_on


def test_a_settlement_date_not_shaped_as_a_date_is_rejected_by_the_session(
    pm, trader, book, fix_broker
):
    route = _route_to(pm, trader, book, fix_broker)
    gateway, transport, peer = _gateway_logged_on(fix_broker)
    peer.send("8", _fill(route, "DASHES", "2026-11-24"))
    [reject] = transport.take()
    assert (reject.msg_type, reject.get(371), reject.get(373)) == ("3", "64", "6")
    assert not Execution.objects.filter(route=route, exec_id="DASHES").exists()
    assert gateway.session.logged_on
