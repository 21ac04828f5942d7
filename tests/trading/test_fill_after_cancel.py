"""Faults of issue 11 found by probing, each with the test that failed before its fix.

* The in-worker simulated broker kept filling after it had reported a route
  cancelled; the OMS booked those fills and routed the freed quantity again:
  a 1,000-share block ended 1,500 filled. A block's filled quantity never
  exceeds it (the service refuses, a database constraint backs it), and a fill
  after a cancel is booked against what is left of the block, never re-freed.
* A route of 0.5 shares of a whole-unit security was accepted and filled.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.desk import broker_report, released_block
from trading.brokers import ExecutionReport
from trading.brokers.simulated import SimulatedBroker
from trading.models import Block, Broker, Execution, Route
from trading.selectors import latest_price_by_ticker, simulated_book_order
from trading.services import executions as execution_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def _block(pm, book, quantity="500", ticker="AAA") -> Block:
    return released_block(pm, book, quantity, quantity, ticker=ticker)


def test_the_simulated_broker_fills_no_more_once_it_has_cancelled(pm, trader, book):
    """The trader cancels between the broker's first and second partial fill."""
    block = _block(pm, book)  # 1,000 shares
    broker = Broker.objects.create(code="SIMX", name="Sim", settings={"partial_fills": 4})
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=broker)
    route_services.route_claim_for_sending(route.pk)
    sleeps = []

    def sleep(seconds):
        # the broker waits before each fill: after the first, the trader cancels
        sleeps.append(seconds)
        if len(sleeps) == 3:
            route_services.route_cancel(actor=trader, route_id=route.pk)
            route_services.route_cancel_send(route.pk)

    sim = SimulatedBroker(
        execution_services.apply_in_order,
        price_of=latest_price_by_ticker,
        order_state=simulated_book_order,
        sleep=sleep,
        default_latency=0.01,
    )
    route.refresh_from_db()
    sim.send(
        route_services.route_ticket(
            Route.objects.select_related("broker", "block").get(pk=route.pk)
        )
    )
    route.refresh_from_db()
    block.refresh_from_db()
    assert route.status == Route.Status.CANCELLED
    assert route.filled_quantity == Decimal(250)  # one of four pieces, then nothing
    assert Execution.objects.filter(route=route, exec_type="trade").count() == 1
    assert (block.filled_quantity, block.routed_quantity) == (Decimal(250), Decimal(250))

    # the rest goes to the broker again and fills: 1,000 in all, never 1,500
    again = route_services.route_create(actor=trader, block_id=block.pk, broker=broker)
    assert again.quantity == Decimal(750)
    route_services.route_claim_for_sending(again.pk)
    sim.sleep = lambda s: None
    sim.send(
        route_services.route_ticket(
            Route.objects.select_related("broker", "block").get(pk=again.pk)
        )
    )
    block.refresh_from_db()
    assert block.filled_quantity == block.quantity == Decimal(1000)


def _fill(route, exec_id, last, price="100"):
    return broker_report(route, exec_id, "trade", "partially_filled", last, price=price)


def _cancelled_route(pm, trader, book, quantity):
    block = _block(pm, book)
    route = route_services.route_create(
        actor=trader, block_id=block.pk, broker=book["broker"], quantity=Decimal(quantity)
    )
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(
        ExecutionReport(
            broker="SIM",
            cl_ord_id=route.cl_ord_id,
            exec_id="C1",
            exec_type="canceled",
            ord_status="cancelled",
            transact_time=timezone.now(),
        )
    )
    block.refresh_from_db()
    route.refresh_from_db()
    assert route.status == Route.Status.CANCELLED and block.routed_quantity == 0
    return block, route


def test_a_fill_after_a_cancel_is_booked_against_what_is_left_and_not_freed_again(pm, trader, book):
    block, route = _cancelled_route(pm, trader, book, "600")
    other = route_services.route_create(
        actor=trader, block_id=block.pk, broker=book["broker"], quantity=Decimal(300)
    )
    # the broker filled 100 of the cancelled order after all: booked, and held again
    execution_services.execution_apply(_fill(route, "LATE1", 100))
    block.refresh_from_db()
    route.refresh_from_db()
    assert route.status == Route.Status.CANCELLED and route.filled_quantity == Decimal(100)
    assert (block.filled_quantity, block.routed_quantity) == (Decimal(100), Decimal(400))
    assert block.unrouted_quantity == Decimal(600)
    with pytest.raises(ValidationError, match="Only 600 of the block is left"):
        route_services.route_create(
            actor=trader, block_id=block.pk, broker=book["broker"], quantity=Decimal(601)
        )
    assert other.status == Route.Status.PENDING_NEW


def test_a_late_fill_beyond_what_is_left_of_the_block_is_refused_and_changes_nothing(
    pm, trader, book
):
    block, route = _cancelled_route(pm, trader, book, "600")
    route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])  # 1,000
    with pytest.raises(execution_services.BookingRefused, match="would put 1100"):
        execution_services.execution_apply(_fill(route, "LATE1", 100))
    block.refresh_from_db()
    route.refresh_from_db()
    assert (block.filled_quantity, block.routed_quantity) == (0, Decimal(1000))
    assert route.filled_quantity == 0
    assert not Execution.objects.filter(exec_id="LATE1").exists()


def test_a_fill_beyond_the_route_is_refused(pm, trader, book):
    block = _block(pm, book)
    route = route_services.route_create(
        actor=trader, block_id=block.pk, broker=book["broker"], quantity=Decimal(100)
    )
    execution_services.execution_apply(_fill(route, "F1", 60))
    with pytest.raises(execution_services.BookingRefused, match="would fill 120 of its 100"):
        execution_services.execution_apply(_fill(route, "F2", 60))
    assert Route.objects.get(pk=route.pk).filled_quantity == Decimal(60)


def test_the_database_refuses_an_overfilled_block_or_route(pm, trader, book):
    block = _block(pm, book)
    route = route_services.route_create(
        actor=trader, block_id=block.pk, broker=book["broker"], quantity=Decimal(100)
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Block.objects.filter(pk=block.pk).update(filled_quantity=Decimal(1001))
    with pytest.raises(IntegrityError), transaction.atomic():
        Block.objects.filter(pk=block.pk).update(routed_quantity=Decimal(1001))
    with pytest.raises(IntegrityError), transaction.atomic():
        Route.objects.filter(pk=route.pk).update(filled_quantity=Decimal(101))


def test_half_a_share_of_a_whole_unit_security_is_refused(pm, trader, book):
    block = _block(pm, book, quantity="10")
    with pytest.raises(ValidationError, match="in whole units: 0.5 is not a whole number"):
        route_services.route_create(
            actor=trader, block_id=block.pk, broker=book["broker"], quantity=Decimal("0.5")
        )
    assert not Route.objects.exists()
    assert Block.objects.get(pk=block.pk).routed_quantity == 0


def test_a_fractional_block_goes_to_a_whole_share_broker_in_whole_shares(pm, trader, book):
    security = book["securities"]["EEE"]
    security.fractional = True
    security.save()
    block = _block(pm, book, quantity="219.237996", ticker="EEE")  # 438.475992 in all
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    assert route.quantity == Decimal(438)
    with pytest.raises(ValidationError, match="less than one unit SIM takes"):
        route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    fractional = Broker.objects.create(code="FRAC", name="Fractions", settings={"fractional": True})
    rest = route_services.route_create(actor=trader, block_id=block.pk, broker=fractional)
    assert rest.quantity == Decimal("0.475992")
