"""The FIX adapter: a broker reached over FIX through the FIX gateway.

`send`, `cancel`, `replace` and `status` build the FIX message with the engine's
typed builders and write it to the session's outbox; the gateway process that
owns the session (`manage.py fix_gateway CODE`) numbers, stores and sends it, and
applies the execution reports that come back. Nothing is reported to the sink
here: reports arrive later, through the gateway.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from trading.fix import messages as fixmsg

from .base import BrokerAdapter, ReportSink, RouteTicket

#: Our order terms in FIX values (tag 54 Side, 40 OrdType, 59 TimeInForce).
SIDES = {"buy": "1", "sell": "2", "sell_short": "5", "buy_to_cover": "1"}
ORD_TYPES = {"market": "1", "limit": "2", "stop": "3", "stop_limit": "4"}
TIME_IN_FORCE = {"day": "0", "gtc": "1", "opg": "2", "ioc": "3", "fok": "4", "gtd": "6", "cls": "7"}


class FixBroker(BrokerAdapter):
    queues_in_database = True

    def __init__(self, sink: ReportSink, *, session) -> None:
        super().__init__(sink)
        self.session = session  # trading.models.FixSession

    def _enqueue(self, ticket: RouteTicket, message: fixmsg.AppMessage) -> None:
        from trading.models import FixOutbox, Route

        built = message.to_message(self.session.begin_string)
        FixOutbox.objects.create(
            session=self.session,
            route=Route.objects.filter(cl_ord_id=ticket.cl_ord_id).first(),
            msg_type=built.msg_type,
            fields=[[tag, value] for tag, value in built.body],
        )

    def send(self, ticket: RouteTicket) -> None:
        self._enqueue(
            ticket,
            fixmsg.NewOrderSingle(
                cl_ord_id=ticket.cl_ord_id,
                symbol=ticket.symbol,
                side=SIDES[ticket.side],
                order_qty=ticket.quantity,
                ord_type=ORD_TYPES[ticket.order_type],
                price=ticket.limit_price if ticket.order_type in ("limit", "stop_limit") else None,
                time_in_force=TIME_IN_FORCE[ticket.time_in_force],
                handl_inst="1",  # automated, no broker intervention
            ),
        )

    def cancel(self, ticket: RouteTicket) -> None:
        self._enqueue(
            ticket,
            fixmsg.OrderCancelRequest(
                orig_cl_ord_id=ticket.cl_ord_id,
                cl_ord_id=_request_id(ticket, "C"),
                symbol=ticket.symbol,
                side=SIDES[ticket.side],
                order_qty=ticket.quantity,
            ),
        )

    def replace(
        self, ticket: RouteTicket, *, quantity: Decimal, limit_price: Decimal | None
    ) -> None:
        self._enqueue(
            ticket,
            fixmsg.OrderCancelReplaceRequest(
                orig_cl_ord_id=ticket.cl_ord_id,
                cl_ord_id=_request_id(ticket, "R"),
                symbol=ticket.symbol,
                side=SIDES[ticket.side],
                order_qty=quantity,
                ord_type=ORD_TYPES[ticket.order_type],
                price=limit_price,
                time_in_force=TIME_IN_FORCE[ticket.time_in_force],
                handl_inst="1",
            ),
        )

    def status(self, ticket: RouteTicket) -> None:
        self._enqueue(
            ticket,
            fixmsg.OrderStatusRequest(
                cl_ord_id=ticket.cl_ord_id, symbol=ticket.symbol, side=SIDES[ticket.side]
            ),
        )


def _request_id(ticket: RouteTicket, kind: str) -> str:
    """A fresh ClOrdID for a cancel (C) or replace (R) request on the route's
    order: the route's own ClOrdID, the kind and a random part, so that the
    gateway can tell the route from any report that names only this id."""
    return f"{ticket.cl_ord_id}-{kind}{uuid.uuid4().hex[:8].upper()}"
