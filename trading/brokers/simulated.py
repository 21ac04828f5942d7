"""The built-in simulated broker: fills at the latest price, with latency and partial fills.

It runs in the routing worker, answers each request with the execution reports a
FIX broker would send, and hands them to the report sink one at a time. The FIX
simulator (`python -m trading.fix.simulator`) plays the same role over FIX.

A broker keeps one order book whatever asks it; this one's book is the routes
as the OMS has applied its reports (`order_state`, read before every answer),
so that a send, a cancel, a replace and a status request that run in different
worker processes agree: once it has reported an order cancelled it fills no
more of it, a replace is refused when the order is done or the new quantity
is not above what filled, and a status request on an order left half filled
(its worker killed mid-way) answers and goes on filling it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

from .base import BrokerAdapter, ExecutionReport, ReplaceTerms, ReportSink, RouteTicket

PriceLookup = Callable[[str], Decimal | None]

#: States in which the broker has finished with an order.
_DONE = frozenset({"filled", "cancelled", "rejected", "expired", "done_for_day"})
#: Orders whose life the broker ends within the session (see trading_day).
_WITHIN_THE_DAY = frozenset({"day", "opg", "cls", "ioc", "fok"})


@dataclass(frozen=True)
class OrderState:
    """An order in this broker's book, as the OMS last applied its reports."""

    status: str
    quantity: Decimal
    filled_quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    acknowledged: bool  # the broker answered it once (it has an OrderID)

    @property
    def done(self) -> bool:
        return self.status in _DONE

    @property
    def leaves(self) -> Decimal:
        return Decimal(0) if self.done else self.quantity - self.filled_quantity


OrderLookup = Callable[[str], OrderState | None]


class SimulatedBroker(BrokerAdapter):
    """Settings (Broker.settings): latency (s), partial_fills (count), reject_symbols (list)."""

    def __init__(
        self,
        sink: ReportSink,
        *,
        price_of: PriceLookup,
        order_state: OrderLookup | None = None,
        sleep: Callable[[float], None] = time.sleep,
        default_latency: float = 0.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(sink)
        self.price_of = price_of
        self.order_state = order_state
        self.sleep = sleep
        self.default_latency = default_latency
        self.now = now

    # --- plumbing -----------------------------------------------------------------

    def _report(self, ticket: RouteTicket, **fields) -> None:
        fields.setdefault("exec_id", f"SIM-{uuid.uuid4().hex[:16]}")
        fields.setdefault("transact_time", self.now())
        fields.setdefault("order_id", f"SIMORD-{ticket.cl_ord_id}")
        self.sink(ExecutionReport(broker=ticket.broker, cl_ord_id=ticket.cl_ord_id, **fields))

    def _latency(self, ticket: RouteTicket) -> None:
        latency = float(ticket.settings.get("latency", self.default_latency))
        if latency > 0:
            self.sleep(latency)

    def _state(self, ticket: RouteTicket) -> OrderState:
        """The order as the book has it now; without a book, as the ticket says."""
        state = self.order_state(ticket.cl_ord_id) if self.order_state else None
        if state is not None:
            return state
        return OrderState(
            status=ticket.status,
            quantity=ticket.quantity,
            filled_quantity=ticket.filled_quantity,
            order_type=ticket.order_type,
            limit_price=ticket.limit_price,
            acknowledged=ticket.status != "pending_new",
        )

    def _marketable(self, side: str, order_type: str, limit: Decimal | None, price) -> bool:
        if order_type == "market":
            return True
        if order_type == "limit" and limit is not None:
            buying = side in ("buy", "buy_to_cover")
            return price <= limit if buying else price >= limit
        return False  # stops: the simulator has no market to trigger them

    # --- requests -------------------------------------------------------------------

    def send(self, ticket: RouteTicket) -> None:
        self._latency(ticket)
        price = self.price_of(ticket.symbol)
        if ticket.symbol in ticket.settings.get("reject_symbols", []) or price is None:
            reason = "no reference price" if price is None else "symbol not accepted"
            self._report(
                ticket,
                exec_type="rejected",
                ord_status="rejected",
                text=reason,
                leaves_quantity=Decimal(0),
            )
            return
        self._report(ticket, exec_type="new", ord_status="new", leaves_quantity=ticket.quantity)
        if not self._marketable(ticket.side, ticket.order_type, ticket.limit_price, price):
            if ticket.time_in_force in ("ioc", "fok"):
                self._end(ticket, "cancelled", "canceled", "not marketable: nothing filled")
            return  # rests until cancelled: the simulator has no market to cross it
        self._fill(ticket, price)

    def _end(self, ticket: RouteTicket, ord_status: str, exec_type: str, text: str) -> None:
        state = self._state(ticket)
        self._report(
            ticket,
            exec_type=exec_type,
            ord_status=ord_status,
            cumulative_quantity=state.filled_quantity,
            leaves_quantity=Decimal(0),
            text=text,
        )

    def _fill(self, ticket: RouteTicket, price: Decimal) -> None:
        """Fill what is left in pieces, reading the book before each one: an order
        cancelled (or replaced smaller, or done) meanwhile gets no more."""
        pieces = max(1, int(ticket.settings.get("partial_fills", 2)))
        for piece in range(pieces, 0, -1):
            self._latency(ticket)
            state = self._state(ticket)
            if state.done or state.status == "pending_cancel":
                return
            remaining = state.leaves
            size = remaining if piece == 1 else (remaining / piece).to_integral_value(ROUND_FLOOR)
            if size <= 0:
                continue
            cumulative = state.filled_quantity + size
            done = cumulative == state.quantity
            self._report(
                ticket,
                exec_type="trade",
                ord_status="filled" if done else "partially_filled",
                last_quantity=size,
                last_price=price,
                cumulative_quantity=cumulative,
                average_price=price,
                leaves_quantity=state.quantity - cumulative,
            )

    def _cancel_reject(self, ticket: RouteTicket, state: OrderState, text: str) -> None:
        self._report(
            ticket,
            exec_id=f"SIMREJ-{uuid.uuid4().hex[:16]}",
            exec_type="cancel_reject",
            ord_status=state.status,
            cumulative_quantity=state.filled_quantity,
            text=text,
        )

    def cancel(self, ticket: RouteTicket, *, cl_ord_id: str) -> None:
        self._latency(ticket)
        state = self._state(ticket)
        if state.done:
            self._cancel_reject(ticket, state, "Too late to cancel")
            return
        self._report(
            ticket,
            exec_type="canceled",
            ord_status="cancelled",
            cumulative_quantity=state.filled_quantity,
            leaves_quantity=Decimal(0),
        )

    def replace(self, ticket: RouteTicket, terms: ReplaceTerms) -> None:
        self._latency(ticket)
        state = self._state(ticket)
        if state.done:
            self._cancel_reject(ticket, state, "Too late to replace")
            return
        if terms.quantity <= state.filled_quantity:
            self._cancel_reject(ticket, state, "New quantity not above the filled quantity")
            return
        self._report(
            ticket,
            exec_type="replaced",
            ord_status="partially_filled" if state.filled_quantity else "new",
            cumulative_quantity=state.filled_quantity,
            leaves_quantity=terms.quantity - state.filled_quantity,
            order_quantity=terms.quantity,
        )
        price = self.price_of(ticket.symbol)
        if price is not None and self._marketable(
            ticket.side, terms.order_type, terms.limit_price, price
        ):
            self._fill(ticket, price)

    def status(self, ticket: RouteTicket) -> None:
        """Answer where the order stands. An order never acknowledged is unknown
        here (rejected, as a FIX broker answers); a day order past its close has
        expired; an open marketable order is filled on (its worker died mid-way)."""
        state = self._state(ticket)
        if not state.acknowledged:
            self._report(
                ticket,
                exec_type="order_status",
                ord_status="rejected",
                text="Unknown order",
                order_id="",
            )
            return
        if state.done:
            self._report(
                ticket,
                exec_type="order_status",
                ord_status=state.status,
                cumulative_quantity=state.filled_quantity,
            )
            return
        if (
            ticket.ends_at is not None
            and self.now() >= ticket.ends_at
            and (ticket.time_in_force in _WITHIN_THE_DAY or ticket.time_in_force == "gtd")
        ):
            self._end(ticket, "expired", "expired", "expired at the close")
            return
        self._report(
            ticket,
            exec_type="order_status",
            ord_status="partially_filled" if state.filled_quantity else "new",
            cumulative_quantity=state.filled_quantity,
            leaves_quantity=state.leaves,
        )
        price = self.price_of(ticket.symbol)
        if price is not None and self._marketable(
            ticket.side, state.order_type, state.limit_price, price
        ):
            self._fill(ticket, price)
