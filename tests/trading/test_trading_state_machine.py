"""A Hypothesis state machine over the trading services: routes to a FIX broker,
acknowledgements, partial and full fills, cancels and cancel rejects, replaces
and replace rejects, broker rejects, expiries, busts, and reports repeated or
arriving out of order, then allocation. After every step:

* a route's cumulative quantity never exceeds its quantity, and a live route's
  leaves are its quantity less what filled;
* a block's fills are its routes' fills, never more than the block; what its
  routes hold of it (live routes their quantity, ended ones what filled) is
  its routed quantity, never more than the block;
* every account's position is its starting position plus its allocations.

The broker is modelled beside the OMS (what it accepted, what it filled), so
that its reports are ones a broker could send, late ones included."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from oms.state import TransitionError
from portfolios.models import Position
from trading.brokers import ExecutionReport, fixmap
from trading.fix.codec import Message
from trading.models import Allocation, Block, Broker, FixInbox, FixSession, Route
from trading.services import breaks as break_services
from trading.services import executions as execution_services
from trading.services import orders as order_services
from trading.services import routes as route_services
from trading.services.allocations import block_allocate

pytestmark = pytest.mark.django_db


@dataclass
class AtBroker:
    """One order as the broker has it."""

    quantity: Decimal = Decimal(0)
    cum: Decimal = Decimal(0)
    acked: bool = False
    open: bool = True
    fills: list[tuple[str, Decimal]] = field(default_factory=list)
    pending_quantity: Decimal | None = None
    sent: list[ExecutionReport] = field(default_factory=list)


def machine(world):
    class Trading(RuleBasedStateMachine):
        routes = Bundle("routes")

        def __init__(self):
            super().__init__()
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            self.n = 0
            self.broker_book: dict[int, AtBroker] = {}
            self.start = {
                (p.portfolio_id, p.security_id): p.quantity for p in Position.objects.all()
            }

        def teardown(self):
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)

        def _id(self, kind: str) -> str:
            self.n += 1
            return f"{kind}{self.n}"

        def _report(self, route, exec_type, ord_status, **extra) -> ExecutionReport:
            report = ExecutionReport(
                broker="FIXB",
                cl_ord_id=route.cl_ord_id,
                exec_id=extra.pop("exec_id", None) or self._id("E"),
                exec_type=exec_type,
                ord_status=ord_status,
                transact_time=timezone.now(),
                order_id="BO",
                **extra,
            )
            return report

        def _apply(self, route, report) -> None:
            # a refused report changes nothing (the invariants check it)
            with contextlib.suppress(execution_services.BookingRefused):
                execution_services.execution_apply(report)
            self.broker_book[route.pk].sent.append(report)

        @initialize(target=routes)
        def a_block(self):
            orders = [
                order_services.order_create(
                    actor=world["pm"],
                    portfolio=account,
                    security=world["security"],
                    side="buy",
                    quantity=Decimal(q),
                )
                for account, q in zip(world["accounts"], ("60", "40"), strict=True)
            ]
            ids = [o.pk for o in orders]
            order_services.orders_approve(actor=world["pm"], order_ids=ids)
            order_services.orders_release(actor=world["pm"], order_ids=ids)
            self.block_id = Block.objects.get(orders__pk=ids[0]).pk
            route = route_services.route_create(
                actor=world["trader"],
                block_id=self.block_id,
                broker=world["broker"],
                quantity=Decimal(50),
            )
            route_services.route_claim_for_sending(route.pk)
            self.broker_book[route.pk] = AtBroker(quantity=Decimal(50))
            return route.pk

        @rule(target=routes, quantity=st.integers(1, 100))
        def route_more(self, quantity):
            try:
                route = route_services.route_create(
                    actor=world["trader"],
                    block_id=self.block_id,
                    broker=world["broker"],
                    quantity=Decimal(quantity),
                )
            except (ValidationError, TransitionError):  # terms, or a block that has ended
                return None
            route_services.route_claim_for_sending(route.pk)
            self.broker_book[route.pk] = AtBroker(quantity=Decimal(quantity))
            return route.pk

        def _route(self, pk):
            return Route.objects.get(pk=pk) if pk is not None else None

        @rule(pk=routes)
        def ack(self, pk):
            route, b = self._route(pk), self.broker_book.get(pk)
            if route is None or not b.open:
                return
            b.acked = True
            self._apply(route, self._report(route, "new", "new", leaves_quantity=b.quantity))

        @rule(pk=routes, part=st.integers(1, 4))
        def fill(self, pk, part):
            route, b = self._route(pk), self.broker_book.get(pk)
            if route is None or not b.open or not b.acked:
                return
            last = max(Decimal(1), ((b.quantity - b.cum) / part).to_integral_value())
            last = min(last, b.quantity - b.cum)
            if last <= 0:
                return
            b.cum += last
            exec_id = self._id("F")
            b.fills.append((exec_id, last))
            status = "filled" if b.cum == b.quantity else "partially_filled"
            if b.cum == b.quantity:
                b.open = False
            self._apply(
                route,
                self._report(
                    route,
                    "trade",
                    status,
                    exec_id=exec_id,
                    last_quantity=last,
                    last_price=Decimal(100 + self.n % 3),
                    cumulative_quantity=b.cum,
                ),
            )

        @rule(pk=routes, broker_first=st.booleans())
        def cancel(self, pk, broker_first):
            route, b = self._route(pk), self.broker_book.get(pk)
            if route is None:
                return
            try:
                route_services.route_cancel(actor=world["trader"], route_id=pk)
            except (ValidationError, TransitionError):
                return
            route.refresh_from_db()
            if route.status != "pending_cancel":
                b.open = False  # cancelled before it was sent
                return
            if b.open and not broker_first:
                b.open = False
                self._apply(route, self._report(route, "canceled", "cancelled"))
            else:
                self._apply(route, self._report(route, "cancel_reject", "filled", text="Too late"))

        @rule(pk=routes, quantity=st.integers(1, 120), accept=st.booleans())
        def replace(self, pk, quantity, accept):
            route, b = self._route(pk), self.broker_book.get(pk)
            if route is None:
                return
            try:
                route_services.route_replace(
                    actor=world["trader"], route_id=pk, quantity=Decimal(quantity)
                )
            except (ValidationError, TransitionError):
                return
            if accept and b.open and Decimal(quantity) > b.cum:
                b.quantity = Decimal(quantity)
                self._apply(
                    route,
                    self._report(
                        route,
                        "replaced",
                        "partially_filled" if b.cum else "new",
                        order_quantity=Decimal(quantity),
                        cumulative_quantity=b.cum,
                    ),
                )
            else:
                self._apply(route, self._report(route, "cancel_reject", "new", text="No"))

        @rule(pk=routes)
        def reject_or_expire(self, pk):
            route, b = self._route(pk), self.broker_book.get(pk)
            if route is None or not b.open:
                return
            b.open = False
            if not b.acked:
                self._apply(route, self._report(route, "rejected", "rejected"))
            else:
                self._apply(route, self._report(route, "expired", "expired"))

        @rule(pk=routes, data=st.data())
        def repeat_or_late(self, pk, data):
            """A report sent again, or an old one arriving after later ones."""
            b = self.broker_book.get(pk)
            if pk is None or not b.sent:
                return
            report = data.draw(st.sampled_from(b.sent))
            execution_services.execution_apply(report)

        @rule(pk=routes)
        def bust_last_fill(self, pk):
            route, b = self._route(pk), self.broker_book.get(pk)
            if route is None or not b.fills:
                return
            exec_id, last = b.fills.pop()
            b.cum -= last
            body = {37: "BO", 17: self._id("X"), 39: "1", 55: "AAA", 54: "1"}
            body |= {11: route.cl_ord_id, 150: "H", 19: exec_id}
            msg = Message("8", sorted(body.items()), begin_string="FIX.4.4", header=[(34, "1")])
            try:
                fixmap.report_from_execution_report(msg, broker_code="FIXB", cl_ord_id="x")
            except fixmap.TradeCorrection as exc:
                error = str(exc)
            inbox = FixInbox.objects.create(
                session=world["session"],
                generation=1,
                seq_num=self.n,
                msg_type="8",
                raw=msg.encode(),
                status=FixInbox.Status.NOT_APPLIED,
                error=error,
            )
            try:
                break_services.correction_apply(actor=world["ops"], inbox_id=inbox.pk)
            except ValidationError:
                b.cum += last  # the fill was refused when it came: nothing to bust
                b.fills.append((exec_id, last))

        @rule()
        def allocate(self):
            block = Block.objects.get(pk=self.block_id)
            if block.status in Block.ALLOCATABLE_STATES and block.filled_quantity > 0:
                block_allocate(block_id=block.pk)

        @invariant()
        def books_agree(self):
            if not hasattr(self, "block_id"):
                return
            block = Block.objects.get(pk=self.block_id)
            routes = list(Route.objects.filter(block=block))
            for route in routes:
                assert route.filled_quantity <= route.quantity, route.cl_ord_id
                if route.status not in Route.TERMINAL_STATES:
                    assert route.leaves_quantity == route.quantity - route.filled_quantity
            assert block.filled_quantity == sum((r.filled_quantity for r in routes), Decimal(0))
            assert block.filled_quantity <= block.quantity
            live = [r for r in routes if r.status not in Route.TERMINAL_STATES]
            assert sum((r.quantity for r in live), Decimal(0)) <= block.quantity
            assert block.routed_quantity == sum((r.reserved_quantity for r in routes), Decimal(0))
            assert block.routed_quantity <= block.quantity
            booked: dict[tuple, Decimal] = {}
            for a in Allocation.objects.select_related("order"):
                key = (a.order.portfolio_id, a.order.security_id)
                booked[key] = booked.get(key, Decimal(0)) + a.quantity
            for position in Position.objects.all():
                key = (position.portfolio_id, position.security_id)
                assert position.quantity == self.start.get(key, Decimal(0)) + booked.get(
                    key, Decimal(0)
                ), key

    return Trading


@pytest.fixture
def world(pm, trader, ops, book):
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    session = FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1
    )
    return {
        "pm": pm,
        "trader": trader,
        "ops": ops,
        "broker": Broker.objects.select_related("fix_session").get(pk=broker.pk),
        "session": session,
        "security": book["securities"]["AAA"],
        "accounts": book["accounts"],
    }


def test_a_bust_after_allocation_keeps_the_books(world):
    """A sequence the machine once found: 12 of the first route filled, the route
    expired (the block done for the day), the block allocated, the fill busted.
    The block's routed quantity must give the 12 back, as before allocation."""
    trading = machine(world)()
    try:
        pk = trading.a_block()
        for step in (
            lambda: trading.ack(pk),
            lambda: trading.fill(pk, part=4),
            lambda: trading.reject_or_expire(pk),
            trading.allocate,
            lambda: trading.bust_last_fill(pk),
        ):
            step()
            trading.books_agree()
        block = Block.objects.get(pk=trading.block_id)
        assert (block.status, block.routed_quantity) == (Block.Status.ALLOCATED, Decimal(0))
    finally:
        trading.teardown()


def test_the_trading_services_keep_their_books_whatever_the_broker_does(world):
    run_state_machine_as_test(
        machine(world),
        settings=settings(
            max_examples=int(os.environ.get("OMS_STATE_EXAMPLES", "25")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
