"""The trading day: day orders end at their exchange's close (holidays and early
closes from exchange_calendars), good-till-date ones at their date; a FIX
session's day ends at its own time; at the close open routes are asked their
status, what is left comes back and what filled is allocated; the order status
sweep settles what only the broker can, and lists what it cannot for a person.

Session times: NYSE 2026 holidays and early closes as published by NYSE
(Thanksgiving 26 November closed, 27 November closes 13:00; 24 December closes
13:00; Christmas closed), London Stock Exchange 24 December 12:30, as the
exchange_calendars library has them.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from portfolios.models import TaxLot
from tests.desk import broker_report, released_block
from trading.models import Allocation, Block, Broker, FixOutbox, FixSession, Order, Route
from trading.services import day_end, trading_day
from trading.services import executions as execution_services
from trading.services import routes as route_services
from trading.services.trading_day import DayBoundary

NY = DayBoundary(time(17, 0), "America/New_York")


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- pure rules --------------------------------------------------------------------


def test_a_session_day_ends_at_its_own_time_not_midnight_utc():
    # 16:59 New York on Monday 30 November 2026 is Monday; 17:00 starts Tuesday
    assert trading_day.trading_day(_utc(2026, 11, 30, 21, 59), NY).isoformat() == "2026-11-30"
    assert trading_day.trading_day(_utc(2026, 11, 30, 22, 0), NY).isoformat() == "2026-12-01"
    # 01:00 UTC Tuesday is still Monday evening in New York: Tuesday's trading day
    assert trading_day.trading_day(_utc(2026, 12, 1, 1, 0), NY).isoformat() == "2026-12-01"
    assert trading_day.trading_day(_utc(2026, 12, 1, 1, 0)).isoformat() == "2026-12-01"
    # a day order queued at 16:00 New York is not sent at 17:30, the next session day
    with pytest.raises(trading_day.StaleDayOrder):
        trading_day.check_may_send(
            time_in_force="day",
            queued_at=_utc(2026, 11, 30, 21, 0),
            now=_utc(2026, 11, 30, 22, 30),
            boundary=NY,
        )
    # queued at 17:30 and sent at 23:00 New York: the same session day
    trading_day.check_may_send(
        time_in_force="day",
        queued_at=_utc(2026, 11, 30, 22, 30),
        now=_utc(2026, 12, 1, 4, 0),
        boundary=NY,
    )
    with pytest.raises(ValueError, match="unknown time zone"):
        DayBoundary(time(17), "Mars/Olympus")


def test_a_session_day_rolled_on_a_friday_evening_is_mondays():
    # 17:30 New York on Friday 20 November 2026 is after the session's day ended: the
    # next trading day is Monday the 23rd, not Saturday (a fill then books Monday's
    # trade date, and a day order entered then is Monday's)
    assert trading_day.trading_day(_utc(2026, 11, 20, 22, 30), NY).isoformat() == "2026-11-23"
    # Saturday and Sunday evenings roll to Monday too (an FX session opens Sunday 17:00)
    assert trading_day.trading_day(_utc(2026, 11, 21, 22, 30), NY).isoformat() == "2026-11-23"
    assert trading_day.trading_day(_utc(2026, 11, 22, 22, 30), NY).isoformat() == "2026-11-23"
    # before the roll, the day is the local date, whatever it is; midnight UTC never rolls
    assert trading_day.trading_day(_utc(2026, 11, 20, 21, 59), NY).isoformat() == "2026-11-20"
    assert trading_day.trading_day(_utc(2026, 11, 21, 12, 0)).isoformat() == "2026-11-21"
    # a day order entered after Friday's roll is Monday's: it may go out on Monday
    trading_day.check_may_send(
        time_in_force="day",
        queued_at=_utc(2026, 11, 20, 22, 30),
        now=_utc(2026, 11, 23, 14, 0),
        boundary=NY,
    )


def test_day_orders_end_at_the_close_with_holidays_and_early_closes():
    close = trading_day.session_close
    # an ordinary Monday: 16:00 New York (EST) is 21:00 UTC
    assert close("XNYS", _utc(2026, 11, 30, 15, 0)) == _utc(2026, 11, 30, 21, 0)
    # entered after the close: the next session's close
    assert close("XNYS", _utc(2026, 11, 30, 21, 0)) == _utc(2026, 12, 1, 21, 0)
    # Thanksgiving is shut: the day after, which closes early at 13:00 New York
    assert close("XNYS", _utc(2026, 11, 26, 15, 0)) == _utc(2026, 11, 27, 18, 0)
    # Christmas Eve closes at 13:00; entered that evening, the next session is the 28th
    assert close("XNYS", _utc(2026, 12, 24, 15, 0)) == _utc(2026, 12, 24, 18, 0)
    assert close("XNYS", _utc(2026, 12, 24, 19, 0)) == _utc(2026, 12, 28, 21, 0)
    # London's Christmas Eve closes at 12:30
    assert close("XLON", _utc(2026, 12, 24, 9, 0)) == _utc(2026, 12, 24, 12, 30)
    with pytest.raises(trading_day.UnknownExchange):
        close("NOPE", _utc(2026, 12, 1))
    ends = trading_day.order_ends_at
    assert ends(time_in_force="gtc", entered_at=_utc(2026, 12, 1), mic="XNYS") is None
    assert ends(
        time_in_force="gtd",
        entered_at=_utc(2026, 12, 1),
        mic="XNYS",
        expire_at=_utc(2026, 12, 9, 20),
    ) == _utc(2026, 12, 9, 20)
    assert ends(time_in_force="ioc", entered_at=_utc(2026, 12, 1, 15), mic="XNYS") == _utc(
        2026, 12, 1, 21
    )


def test_the_trading_day_rules_import_without_django():
    code = "import sys; import trading.services.trading_day; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the close, with the simulated broker ---------------------------------------------


def _block(pm, book, limit="50", quantities=("10", "10")) -> Block:
    return released_block(pm, book, *quantities, order_type="limit", limit_price=Decimal(limit))


# The limit orders' reports (fills at their limit, 50), for the broker's order BO-1.
_report = partial(broker_report, price="50", order_id="BO-1")


@pytest.mark.django_db
def test_a_day_route_is_asked_at_the_close_and_the_block_expires(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    block = _block(pm, book)  # rests at the simulated broker: AAA trades at 100
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route.refresh_from_db()
    assert route.status == Route.Status.NEW
    assert route.ends_at == trading_day.session_close("XNYS", route.created_at)
    # the close has passed (as if the clock had moved on)
    Route.objects.filter(pk=route.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        result = day_end.routes_sweep_status()
    assert result.asked == 1
    route.refresh_from_db()
    block.refresh_from_db()
    assert route.status == Route.Status.EXPIRED and route.status_requests == 0
    assert (block.status, block.routed_quantity) == (Block.Status.OPEN, 0)  # what is left is back

    # the block's own day is over too: nothing filled, so its orders expire
    later = day_end.block_day_ends_at(block) + timedelta(seconds=1)
    assert day_end.blocks_close_day(now=later) == [block.pk]
    block.refresh_from_db()
    assert block.status == Block.Status.DONE_FOR_DAY
    assert set(block.orders.values_list("status", flat=True)) == {Order.Status.EXPIRED}
    assert AuditEvent.objects.filter(kind="block.day_ended").exists()
    assert day_end.blocks_close_day(now=later) == []  # once


@pytest.mark.django_db
def test_a_partly_filled_day_block_is_allocated_at_the_close(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    block = _block(pm, book, quantities=("60", "40"))
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(_report(route, "N", "new", "new"))
    execution_services.execution_apply(_report(route, "F", "trade", "partially_filled", 30))
    Route.objects.filter(pk=route.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        day_end.routes_sweep_status()
    block.refresh_from_db()
    assert block.status == Block.Status.ALLOCATED and block.filled_quantity == Decimal(30)
    orders = {o.quantity: o for o in block.orders.all()}
    assert orders[Decimal(60)].allocation.quantity == Decimal(18)  # 60% of 30
    assert orders[Decimal(40)].allocation.quantity == Decimal(12)
    assert {o.status for o in orders.values()} == {Order.Status.ALLOCATED}


@pytest.mark.django_db
def test_a_block_allocated_days_after_its_fills_books_them_on_their_trading_day(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    # a block filled partly two days ago and allocated only now (its day ended late): the
    # lots opened are that day's purchase (the holding period and wash-sale window start
    # then), not the day the allocation ran
    block = _block(pm, book, quantities=("60", "40"))
    held_before = set(TaxLot.objects.values_list("pk", flat=True))
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    filled_at = timezone.now() - timedelta(days=2)
    execution_services.execution_apply(_report(route, "N", "new", "new"))
    execution_services.execution_apply(
        _report(route, "F", "trade", "partially_filled", 30, at=filled_at)
    )
    Route.objects.filter(pk=route.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        day_end.routes_sweep_status()
    block.refresh_from_db()
    assert block.status == Block.Status.ALLOCATED
    lots = TaxLot.objects.exclude(pk__in=held_before)
    assert len(lots) == 2
    assert {lot.acquired_on for lot in lots} == {trading_day.trading_day(filled_at)}
    assert {a.trade_date for a in Allocation.objects.filter(block=block)} == {
        trading_day.trading_day(filled_at)
    }
    assert trading_day.trading_day(filled_at) != timezone.now().date()


@pytest.mark.django_db
def test_a_fill_after_fridays_roll_books_mondays_trade_date(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    # the broker's session day ends at 17:00 New York: a fill at 17:30 on Friday 20
    # November 2026 is Monday the 23rd's trade, not Saturday's (no market settles a
    # Saturday trade; the lots' purchase date and the settlement count from Monday)
    FixSession.objects.create(
        broker=book["broker"], sender_comp_id="OMS", target_comp_id="BROKER", port=1
    )
    block = _block(pm, book, quantities=("60", "40"))
    held_before = set(TaxLot.objects.values_list("pk", flat=True))
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(_report(route, "N", "new", "new"))
    execution_services.execution_apply(
        _report(route, "F", "trade", "partially_filled", 30, at=_utc(2026, 11, 20, 22, 30))
    )
    Route.objects.filter(pk=route.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        day_end.routes_sweep_status()
    block.refresh_from_db()
    assert block.status == Block.Status.ALLOCATED
    monday = date(2026, 11, 23)
    assert {a.trade_date for a in Allocation.objects.filter(block=block)} == {monday}
    assert {lot.acquired_on for lot in TaxLot.objects.exclude(pk__in=held_before)} == {monday}


@pytest.mark.django_db
def test_a_route_left_half_filled_by_a_dead_worker_is_filled_on_when_swept(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks, settings
):
    block = _block(pm, book, limit="100")  # marketable at 100
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(_report(route, "N", "new", "new"))
    execution_services.execution_apply(
        _report(route, "F", "trade", "partially_filled", 5, price="100")
    )
    # the worker died here; the task's redelivery finds the route claimed
    route_services.route_send(route.pk)
    assert Route.objects.get(pk=route.pk).filled_quantity == Decimal(5)
    settings.OMS_ROUTE_QUIET_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        assert day_end.routes_sweep_status().asked == 1
    route.refresh_from_db()
    block.refresh_from_db()
    assert (route.status, route.filled_quantity) == (Route.Status.FILLED, Decimal(20))
    assert block.status == Block.Status.ALLOCATED


@pytest.mark.django_db
def test_a_route_claimed_but_never_sent_is_rejected_when_swept(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks, settings
):
    block = _block(pm, book)
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)  # the worker died before sending
    settings.OMS_ROUTE_PENDING_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        day_end.routes_sweep_status()
    route.refresh_from_db()
    block.refresh_from_db()
    assert route.status == Route.Status.REJECTED and route.text == "Unknown order"
    assert (block.status, block.routed_quantity) == (Block.Status.OPEN, 0)


def _gateway_sent() -> None:
    """The gateway sent what the outbox held."""
    FixOutbox.objects.filter(status=FixOutbox.Status.PENDING).update(status=FixOutbox.Status.SENT)


@pytest.fixture
def fix_broker(book):
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    FixSession.objects.create(broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1)
    return Broker.objects.select_related("fix_session").get(pk=broker.pk)


@pytest.mark.django_db
def test_an_unanswered_route_is_asked_three_times_then_listed_for_a_person(
    pm,
    trader,
    ops,
    book,
    fix_broker,
    client,
    eager_celery,
    django_capture_on_commit_callbacks,
    settings,
):
    block = _block(pm, book)
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=fix_broker)
    _gateway_sent()
    route_services.route_mark_unconfirmed(route.pk, "send failed: connection reset")
    settings.OMS_ROUTE_PENDING_SECONDS = 0
    for n in (1, 2, 3):
        result = day_end.routes_sweep_status()
        assert result.asked == 1
        assert FixOutbox.objects.filter(msg_type="H").count() == n
        # while a request waits in the outbox the route is not asked again
        assert day_end.routes_sweep_status().asked == 0
        _gateway_sent()
    assert day_end.routes_sweep_status().asked == 0  # no fourth time
    assert list(day_end.routes_needing_a_person()) == [Route.objects.get(pk=route.pk)]

    client.force_login(ops)
    page = client.get(reverse("trading:reconciliation")).content.decode()
    assert route.cl_ord_id in page and "Ask again" not in page  # ops sees, the desk acts
    client.force_login(trader)
    page = client.get(reverse("trading:reconciliation")).content.decode()
    assert "Ask again" in page
    client.post(reverse("trading:route-ask-again", args=[route.pk]))
    assert FixOutbox.objects.filter(msg_type="H").count() == 4
    assert not day_end.routes_needing_a_person().exists()

    # the broker confirmed by phone that it cancelled it
    response = client.post(
        reverse("trading:route-close", args=[route.pk]), {"status": "cancelled", "reason": ""}
    )
    assert Route.objects.get(pk=route.pk).status == Route.Status.UNCONFIRMED  # a reason is needed
    client.post(
        reverse("trading:route-close", args=[route.pk]),
        {"status": "cancelled", "reason": "J. Smith at FIXB desk, by phone 16:05"},
    )
    route.refresh_from_db()
    assert route.status == Route.Status.CANCELLED
    assert Block.objects.get(pk=block.pk).routed_quantity == 0
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_day_order_a_broker_still_works_after_the_close_is_cancelled(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks, settings
):
    block = _block(pm, book)
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=fix_broker)
    execution_services.execution_apply(_report(route, "N", "new", "new"))
    settings.OMS_ROUTE_PENDING_SECONDS = 0
    Route.objects.filter(pk=route.pk).update(ends_at=timezone.now() - timedelta(minutes=5))
    _gateway_sent()
    day_end.routes_sweep_status()  # asks first
    assert FixOutbox.objects.filter(msg_type="H").count() == 1
    # the broker answers it still works the order
    execution_services.execution_apply(_report(route, "S1", "order_status", "new"))
    day_end.routes_sweep_status()
    route.refresh_from_db()
    assert route.status == Route.Status.PENDING_CANCEL
    cancel = {int(t): v for t, v in FixOutbox.objects.get(msg_type="F").fields}
    assert cancel[41] == route.cl_ord_id
    event = AuditEvent.objects.get(kind="route.cancel_requested")
    assert event.actor_name == "system" and "after its close" in event.reason
