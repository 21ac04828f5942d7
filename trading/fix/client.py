"""Order-entry side application: typed callbacks and duplicate suppression.

:class:`OrderClient` is what an OMS gateway plugs into an initiator session.
It parses ExecutionReports, OrderCancelRejects and BusinessMessageRejects into
typed objects, and ignores an ExecutionReport whose ExecID it has already
processed (a broker's PossResend repeat or a replay), counting it instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .codec import Message
from .messages import AppMessage, BusinessMessageReject, ExecutionReport, OrderCancelReject
from .session import Application, Session, UnsupportedMessageType

log = logging.getLogger("trading.fix.client")


class OrderClient(Application):
    def __init__(
        self,
        on_report: Callable[[ExecutionReport, Session], None] | None = None,
        on_cancel_reject: Callable[[OrderCancelReject, Session], None] | None = None,
        on_business_reject: Callable[[BusinessMessageReject, Session], None] | None = None,
    ):
        self.on_report = on_report
        self.on_cancel_reject = on_cancel_reject
        self.on_business_reject = on_business_reject
        self.seen_exec_ids: set[tuple[object, str]] = set()
        self.reports: list[ExecutionReport] = []
        self.cancel_rejects: list[OrderCancelReject] = []
        self.business_rejects: list[BusinessMessageReject] = []
        self.duplicates = 0
        self.logons = 0
        self.admin: list[Message] = []

    def on_logon(self, session: Session) -> None:
        self.logons += 1

    def from_admin(self, msg: Message, session: Session) -> None:
        self.admin.append(msg)
        if len(self.admin) > 1000:
            del self.admin[:500]

    def send(self, session: Session, typed: AppMessage) -> bool:
        return session.send(typed.to_message(session.sid.begin_string))

    def from_app(self, msg: Message, session: Session) -> None:
        mt = msg.msg_type
        if mt == "8":
            er = ExecutionReport.parse(msg)
            key = (session.sid, er.exec_id)
            if key in self.seen_exec_ids:
                self.duplicates += 1
                log.info("%s: duplicate ExecID %s ignored", session.sid, er.exec_id)
                return
            self.seen_exec_ids.add(key)
            self.reports.append(er)
            if self.on_report:
                self.on_report(er, session)
        elif mt == "9":
            rej = OrderCancelReject.parse(msg)
            self.cancel_rejects.append(rej)
            if self.on_cancel_reject:
                self.on_cancel_reject(rej, session)
        elif mt == "j":
            bmr = BusinessMessageReject.parse(msg)
            self.business_rejects.append(bmr)
            if self.on_business_reject:
                self.on_business_reject(bmr, session)
        else:
            raise UnsupportedMessageType()
