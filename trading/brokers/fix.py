"""The FIX adapter: a broker reached over FIX through the FIX gateway.

`send`, `cancel`, `replace` and `status` build the FIX message (`fixmap`, the one
translation between our terms and FIX's) and write it to the session's outbox;
the gateway process that owns the session (`manage.py fix_gateway CODE`)
numbers, stores and sends it, and applies the execution reports that come back.
Nothing is reported to the sink here: reports arrive later, through the gateway.
"""

from __future__ import annotations

from trading.fix import messages as fixmsg

from . import fixmap
from .base import BrokerAdapter, ReplaceTerms, ReportSink, RouteTicket


class FixBroker(BrokerAdapter):
    queues_in_database = True

    def __init__(self, sink: ReportSink, *, session) -> None:
        super().__init__(sink)
        self.session = session  # trading.models.FixSession

    def _enqueue(self, ticket: RouteTicket, message: fixmsg.AppMessage, extras=()) -> None:
        from trading.models import FixOutbox, Route

        built, body = self._built(message, extras)
        FixOutbox.objects.create(
            session=self.session,
            route=Route.objects.filter(cl_ord_id=ticket.cl_ord_id).first(),
            msg_type=built.msg_type,
            fields=body,
        )

    def _built(self, message: fixmsg.AppMessage, extras=()):
        built = message.to_message(self.session.begin_string)
        body = [[tag, value] for tag, value in built.body]
        present = {tag for tag, _ in body}
        body += [[tag, value] for tag, value in extras if tag not in present]
        return built, body

    def send(self, ticket: RouteTicket) -> None:
        self._enqueue(ticket, fixmap.new_order_single(ticket), self._order_extras(ticket))

    def send_many(self, routes_and_tickets) -> None:
        """The new orders of several routes (``(route, ticket)`` pairs, the routes
        claimed by the caller) in the outbox in one INSERT, in that order."""
        self.send_built(self.new_orders(routes_and_tickets))

    def new_orders(self, routes_and_tickets) -> list:
        """The outbox rows (not written) of the new orders of ``(route, ticket)``
        pairs, in that order: built before the routes are inserted, so that what
        cannot be made into a message is known before anything is written."""
        from trading.models import FixOutbox

        rows = []
        for route, ticket in routes_and_tickets:
            built, body = self._built(fixmap.new_order_single(ticket), self._order_extras(ticket))
            rows.append(
                FixOutbox(session=self.session, route=route, msg_type=built.msg_type, fields=body)
            )
        return rows

    @staticmethod
    def send_built(rows) -> None:
        """Rows `new_orders` built, their routes inserted since, in one INSERT."""
        from trading.models import FixOutbox

        FixOutbox.objects.bulk_create(rows)

    @staticmethod
    def _order_extras(ticket: RouteTicket):
        extras = fixmap.order_extras(
            order_type=ticket.order_type,
            time_in_force=ticket.time_in_force,
            stop_price=ticket.stop_price,
            expire_at=ticket.expire_at,
        )
        return [*extras, *ticket.instrument_fields]

    def cancel(self, ticket: RouteTicket, *, cl_ord_id: str) -> None:
        self._enqueue(ticket, fixmap.cancel_request(ticket, cl_ord_id=cl_ord_id))

    def replace(self, ticket: RouteTicket, terms: ReplaceTerms) -> None:
        extras = fixmap.order_extras(
            order_type=terms.order_type,
            time_in_force=terms.time_in_force,
            stop_price=terms.stop_price,
            expire_at=terms.expire_at,
        )
        extras += ticket.instrument_fields
        self._enqueue(ticket, fixmap.replace_request(ticket, terms), extras)

    def status(self, ticket: RouteTicket) -> None:
        self._enqueue(ticket, fixmap.status_request(ticket))
