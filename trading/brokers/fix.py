"""The FIX adapter: a broker reached over FIX through the FIX gateway.

`send`, `cancel`, `replace` and `status` build the FIX message (`fixmap`, the one
translation between our terms and FIX's) and write it to the session's outbox;
the gateway process that owns the session (`manage.py fix_gateway CODE`)
numbers, stores and sends it, and applies the execution reports that come back.
Nothing is reported to the sink here: reports arrive later, through the gateway.
"""

from __future__ import annotations

from decimal import Decimal

from trading.fix import messages as fixmsg

from . import fixmap
from .base import BrokerAdapter, ReportSink, RouteTicket


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
        self._enqueue(ticket, fixmap.new_order_single(ticket))

    def cancel(self, ticket: RouteTicket) -> None:
        self._enqueue(ticket, fixmap.cancel_request(ticket))

    def replace(
        self, ticket: RouteTicket, *, quantity: Decimal, limit_price: Decimal | None
    ) -> None:
        self._enqueue(
            ticket, fixmap.replace_request(ticket, quantity=quantity, limit_price=limit_price)
        )

    def status(self, ticket: RouteTicket) -> None:
        self._enqueue(ticket, fixmap.status_request(ticket))
