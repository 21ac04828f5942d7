"""The broker's settlement date (SettlDate, tag 64; FutSettDate in FIX 4.2) on its
execution reports: read, kept on the execution, booked (the cash movements' value date,
an FX trade's two legs, a bond's accrued interest), ours kept beside it where the two
differ, for operations on the reconciliation page (decision 49); a malformed one gets a
FIX Reject and the gateway carries on.

Dates: Friday 20 November 2026; a US share settles T+1 (SEC Rule 15c6-1 as amended,
from 28 May 2024), on Monday 23 November.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from portfolios.models import CashBalance, CashMovement
from portfolios.services.holdings import holdings_book_fill
from tests.clients import api_client, page_client
from tests.desk import broker_report, released_block
from tests.portfolios.test_asset_classes import _bond
from tests.portfolios.test_fx_settlement import DEALT, SPOT, fx_spot
from trading.brokers import fixmap
from trading.fix import messages as fixmsg
from trading.fix.codec import Message
from trading.models import Allocation, Block, Execution, FixInbox, Route
from trading.services import allocations as allocation_services
from trading.services import blocks as block_services
from trading.services import breaks as break_services
from trading.services import executions as execution_services
from trading.services import routes as route_services
from trading.services.trading_day import DayBoundary

pytestmark = pytest.mark.django_db

D = Decimal
FILLED_AT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday afternoon
OURS = date(2026, 11, 23)  # T+1: Monday


def _er(
    begin: str,
    settl_date: str | None,
    exec_type: str = fixmsg.ExecType.TRADE,
    at: datetime = FILLED_AT,
    symbol: str = "AAA",
    **fields,
) -> Message:
    report = fixmsg.ExecutionReport(
        order_id="O1",
        exec_id="E1",
        exec_type=exec_type,
        ord_status=fixmsg.OrdStatus.FILLED,
        symbol=symbol,
        side="1",
        leaves_qty=D(0),
        cum_qty=D(10),
        avg_px=D(100),
        cl_ord_id="R1",
        last_qty=D(10),
        last_px=D(100),
        transact_time=at,
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


def test_a_settlement_before_the_trade_date_booked_is_refused_as_business():
    # the trade date the allocation books is the broker's trading day of TransactTime
    # (`trading_day`; midnight UTC without a session): the day before it is refused too
    for before in ("20261118", "20261119"):
        with pytest.raises(fixmap.BusinessRefusal, match="before the trade date 20261120"):
            fixmap.report_from_execution_report(
                _er("FIX.4.4", before), broker_code="B", cl_ord_id="R1"
            )
    report = fixmap.report_from_execution_report(
        _er("FIX.4.4", "20261120"), broker_code="B", cl_ord_id="R1"
    )
    assert report.settlement_date == date(2026, 11, 20)
    # a session whose day ends at 17:00 New York: 17:30 on Friday trades on Monday
    new_york = DayBoundary(time(17), "America/New_York")
    late = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)
    with pytest.raises(fixmap.BusinessRefusal, match="before the trade date 20261123"):
        fixmap.report_from_execution_report(
            _er("FIX.4.4", "20261120", at=late), broker_code="B", cl_ord_id="R1", day=new_york
        )
    report = fixmap.report_from_execution_report(
        _er("FIX.4.4", "20261120"), broker_code="B", cl_ord_id="R1", day=new_york
    )
    assert report.settlement_date == date(2026, 11, 20)  # 10:00 New York: Friday's
    # a status report repeats an old fill's date whenever it is sent: not refused
    status = _er("FIX.4.4", "20261101", fixmsg.ExecType.ORDER_STATUS)
    report = fixmap.report_from_execution_report(status, broker_code="B", cl_ord_id="R1")
    assert (report.exec_type, report.settlement_date) == ("order_status", date(2026, 11, 1))


def test_an_fx_fill_settling_before_its_trade_date_is_refused_at_the_gateway():
    """The engine refuses an FX value date before the trade (`InstrumentError`), which
    would fail the block's whole allocation: the gateway refuses the report first."""
    dealt_at = datetime(2023, 6, 16, 15, 0, tzinfo=UTC)  # DEALT, 11:00 New York
    before = (DEALT - timedelta(days=1)).strftime("%Y%m%d")
    msg = _er("FIX.4.4", before, at=dealt_at, symbol="EURUSD")
    with pytest.raises(fixmap.BusinessRefusal, match="before the trade date 20230616"):
        fixmap.report_from_execution_report(msg, broker_code="B", cl_ord_id="R1")


# --- booked ------------------------------------------------------------------------------


def _filled_route(pm, trader, book, settlement_date, filled=100) -> Route:
    """The book's 60 and 40 of AAA routed and ``filled`` (of 100) on FILLED_AT, the
    broker settling on ``settlement_date``."""
    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(broker_report(route, "N", "new", "new", at=FILLED_AT))
    status = "filled" if filled == 100 else "partially_filled"
    execution_services.execution_apply(
        broker_report(
            route, "F", "trade", status, filled, filled, at=FILLED_AT,
            settlement_date=settlement_date,
        )
    )  # fmt: skip
    return route


def _filled_block(pm, trader, book, settlement_date):
    route = _filled_route(pm, trader, book, settlement_date)
    allocation_services.block_allocate(block_id=route.block_id)
    return route.block, route


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


def test_a_fill_settling_before_the_session_s_trading_day_gets_a_business_reject(
    pm, trader, book, fix_broker
):
    # the session's day ends at 17:00 New York: a fill at 17:30 on Friday is Monday's
    # trade, and the allocation would book 23 November; Friday 20th is before it
    route = _route_to(pm, trader, book, fix_broker)
    gateway, transport, peer = _gateway_logged_on(fix_broker)
    late = [
        (60, "20261120-22:30:00") if tag == 60 else (tag, v)
        for tag, v in _fill(route, "LATE", "20261120")
    ]
    peer.send("8", late)
    [reject] = transport.take()
    assert (reject.msg_type, reject.get(379), reject.get(380)) == ("j", "LATE", "0")
    assert "before the trade date 20261123" in reject.get(58)
    inbox = FixInbox.objects.get(session=fix_broker.fix_session, seq_num=2)
    assert inbox.status == FixInbox.Status.NOT_APPLIED and "before the trade" in inbox.error
    assert not Execution.objects.filter(route=route, exec_id="LATE").exists()
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


# --- kept through a bust or a correction -------------------------------------------------


def _correction(fix_broker, route, exec_id: str, seq: int, **fields) -> FixInbox:
    """The broker's bust (150=H) of ``exec_id``, or its correction (150=G with ``fields``:
    LastQty 32, LastPx 31), kept in the inbox for operations."""
    body = {37: "O1", 17: f"X{seq}", 39: "2", 55: route.block.security.ticker, 54: "1"}
    body |= {11: route.cl_ord_id, 150: "G" if fields else "H", 19: exec_id}
    body |= {int(tag[1:]): value for tag, value in fields.items()}
    msg = Message("8", sorted(body.items()), begin_string="FIX.4.4", header=[(34, str(seq))])
    return FixInbox.objects.create(
        session=fix_broker.fix_session,
        generation=1,
        seq_num=seq,
        msg_type="8",
        raw=msg.encode(),
        status=FixInbox.Status.NOT_APPLIED,
        error="bust",
    )


def test_a_bond_s_bust_gives_back_the_cash_booked_on_the_broker_s_date(
    pm, trader, ops, book, fix_broker
):
    book["securities"]["ACME6"] = _bond(ops, ticker="ACME6")
    accounts = book["accounts"]
    cash_before = {
        a.pk: CashBalance.objects.get(portfolio=a, currency="USD").amount for a in accounts
    }
    block = released_block(pm, book, "6000", "4000", ticker="ACME6")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    now = timezone.now()
    execution_services.execution_apply(broker_report(route, "N", "new", "new", at=now))
    # the broker settles two weeks after our cycle: two weeks more accrued interest
    theirs = timezone.localdate(now) + timedelta(days=14)
    execution_services.execution_apply(
        broker_report(
            route, "F", "trade", "filled", 10000, 10000, price="99.5", at=now,
            settlement_date=theirs,
        )
    )  # fmt: skip
    allocation_services.block_allocate(block_id=block.pk)
    allocations = Allocation.objects.filter(block=block)
    assert {a.settlement_date for a in allocations} == {theirs}
    assert None not in {a.computed_settlement_date for a in allocations}

    break_services.correction_apply(actor=ops, inbox_id=_correction(fix_broker, route, "F", 7).pk)

    assert Block.objects.get(pk=block.pk).filled_quantity == 0
    # every dollar the fill moved comes back, as the ledger's offsetting rows say
    for account in accounts:
        cash = CashBalance.objects.get(portfolio=account, currency="USD").amount
        ledger = CashMovement.objects.filter(portfolio=account, currency="USD").aggregate(
            total=Sum("amount")
        )["total"]
        assert ledger == 0
        assert cash == cash_before[account.pk], (account.code, cash - cash_before[account.pk])


def test_an_allocation_a_correction_makes_settles_as_its_block_s_others(
    pm, trader, ops, book, fix_broker
):
    theirs = date(2026, 11, 24)
    route = _filled_route(pm, trader, book, theirs, filled=1)
    block = route.block
    route_services.route_cancel(actor=trader, route_id=route.pk)
    execution_services.execution_apply(
        broker_report(route, "C", "canceled", "cancelled", 0, 1, at=FILLED_AT)
    )
    block_services.block_done_for_day(actor=trader, block_id=block.pk, reason="enough")
    if Block.objects.get(pk=block.pk).status != Block.Status.ALLOCATED:
        allocation_services.block_allocate(block_id=block.pk)
    [first] = Allocation.objects.filter(block=block)  # one share: one account
    assert (first.settlement_date, first.computed_settlement_date) == (theirs, OURS)
    # the broker corrects the fill to 10: the other account gets its share, booked new
    inbox = _correction(fix_broker, route, "F", 8, f32="10", f31="100")
    break_services.correction_apply(actor=ops, inbox_id=inbox.pk)
    allocations = Allocation.objects.filter(block=block)
    assert len(allocations) == 2
    assert {(a.settlement_date, a.computed_settlement_date) for a in allocations} == {
        (theirs, OURS)
    }
    assert _value_dates(block) == {theirs}
