"""The built-in simulated broker: fills at the latest price, with latency and partial fills.

It runs in the routing worker, answers each request with the execution reports a
FIX broker would send, and hands them to the report sink one at a time. The FIX
simulator (`python -m trading.fix.simulator`) plays the same role over FIX.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

from .base import BrokerAdapter, ExecutionReport, ReportSink, RouteTicket

PriceLookup = Callable[[str], Decimal | None]


class SimulatedBroker(BrokerAdapter):
    """Settings (Broker.settings): latency (s), partial_fills (count), reject_symbols (list)."""

    def __init__(
        self,
        sink: ReportSink,
        *,
        price_of: PriceLookup,
        sleep: Callable[[float], None] = time.sleep,
        default_latency: float = 0.0,
    ) -> None:
        super().__init__(sink)
        self.price_of = price_of
        self.sleep = sleep
        self.default_latency = default_latency

    def _report(self, ticket: RouteTicket, **fields) -> None:
        fields.setdefault("exec_id", f"SIM-{uuid.uuid4().hex[:16]}")
        fields.setdefault("transact_time", datetime.now(UTC))
        fields.setdefault("order_id", f"SIMORD-{ticket.cl_ord_id}")
        self.sink(ExecutionReport(broker=ticket.broker, cl_ord_id=ticket.cl_ord_id, **fields))

    def _latency(self, ticket: RouteTicket) -> None:
        latency = float(ticket.settings.get("latency", self.default_latency))
        if latency > 0:
            self.sleep(latency)

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
        if not self._marketable(ticket, price):
            return  # rests until cancelled: the simulator has no market to cross it
        self._fill(ticket, price)

    def _marketable(self, ticket: RouteTicket, price: Decimal) -> bool:
        if ticket.order_type == "market":
            return True
        if ticket.order_type == "limit" and ticket.limit_price is not None:
            buying = ticket.side in ("buy", "buy_to_cover")
            return price <= ticket.limit_price if buying else price >= ticket.limit_price
        return False

    def _fill(self, ticket: RouteTicket, price: Decimal) -> None:
        pieces = max(1, int(ticket.settings.get("partial_fills", 2)))
        remaining = ticket.quantity - ticket.filled_quantity
        cumulative = ticket.filled_quantity
        for piece in range(pieces, 0, -1):
            self._latency(ticket)
            size = remaining if piece == 1 else (remaining / piece).to_integral_value(ROUND_FLOOR)
            if size <= 0:
                continue
            remaining -= size
            cumulative += size
            done = remaining == 0
            self._report(
                ticket,
                exec_type="trade",
                ord_status="filled" if done else "partially_filled",
                last_quantity=size,
                last_price=price,
                cumulative_quantity=cumulative,
                average_price=price,
                leaves_quantity=remaining,
            )

    def cancel(self, ticket: RouteTicket) -> None:
        self._latency(ticket)
        self._report(
            ticket,
            exec_type="canceled",
            ord_status="cancelled",
            cumulative_quantity=ticket.filled_quantity,
            leaves_quantity=Decimal(0),
        )

    def replace(
        self, ticket: RouteTicket, *, quantity: Decimal, limit_price: Decimal | None
    ) -> None:
        self._latency(ticket)
        self._report(
            ticket,
            exec_type="replaced",
            ord_status="replaced",
            cumulative_quantity=ticket.filled_quantity,
            leaves_quantity=quantity - ticket.filled_quantity,
        )

    def status(self, ticket: RouteTicket) -> None:
        self._report(
            ticket,
            exec_type="order_status",
            ord_status="new" if ticket.filled_quantity == 0 else "partially_filled",
            cumulative_quantity=ticket.filled_quantity,
            leaves_quantity=ticket.quantity - ticket.filled_quantity,
        )
