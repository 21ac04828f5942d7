"""What the broker sends us: every application message stored in the inbox once
(per session, generation and sequence number), then applied through the trading
services. Also the session's hooks: logon/logout, and which order messages the
broker's ResendRequest may have again (the trading-day rule)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import F
from django.utils import timezone

from oms.context import origin
from oms.state import move
from trading.brokers import fixmap
from trading.brokers.fix import FixBroker
from trading.fix.codec import Message, parse_utc_timestamp
from trading.fix.session import Application, ApplicationUnavailable, DoNotSend, Session
from trading.models import FixInbox, FixOutbox, FixSession, Route
from trading.services import trading_day
from trading.services.executions import execution_apply, executions_apply
from trading.services.routes import route_mark_unconfirmed, route_ticket

from .store import DatabaseStore, session_day

log = logging.getLogger("trading.gateway")

#: The database is down or locked: nothing is wrong with the message.
UNAVAILABLE = (OperationalError, InterfaceError)


def route_named_by(msg: Message) -> str:
    """Our route's ClOrdID for a message from the broker; NotOurs if none is ours."""
    candidates = fixmap.cl_ord_id_candidates(msg)
    found = set(Route.objects.filter(cl_ord_id__in=candidates).values_list("cl_ord_id", flat=True))
    for candidate in candidates:
        if candidate in found:
            return candidate
    raise fixmap.NotOurs(f"no route with ClOrdID {msg.get(41) or msg.get(11)!r}")


def routes_named_by(msgs: list[Message]) -> tuple[list[str], dict[str, Route]]:
    """`route_named_by` for the messages of one read, in one query; and the routes
    found, by ClOrdID (their pk and block, for `executions_apply`)."""
    candidates = [fixmap.cl_ord_id_candidates(msg) for msg in msgs]
    wanted = {candidate for each in candidates for candidate in each}
    found = {
        route.cl_ord_id: route
        for route in Route.objects.filter(cl_ord_id__in=wanted).only("pk", "block_id", "cl_ord_id")
    }
    named = []
    for msg, each in zip(msgs, candidates, strict=True):
        mine = next((candidate for candidate in each if candidate in found), None)
        if mine is None:
            raise fixmap.NotOurs(f"no route with ClOrdID {msg.get(41) or msg.get(11)!r}")
        named.append(mine)
    return named, found


def inbox_settle(inbox: FixInbox, error: str) -> None:
    """A stored message was applied (no error) or could not be (kept, with why)."""
    target = FixInbox.Status.NOT_APPLIED if error else FixInbox.Status.APPLIED
    if inbox.status != target:
        move(inbox, target)
    inbox.applied_at = None if error else timezone.now()
    inbox.error = error[:500]
    if inbox.pk is None:  # first received: stored with its outcome, in one INSERT
        inbox.save(force_insert=True)
    else:
        inbox.save(update_fields=["status", "applied_at", "error"])


class _ReadNotStored(Exception):
    """The transaction of a read rolled back without an error of its own."""


class GatewayApplication(Application):
    """The session's application: the gateway's side of each message."""

    def __init__(self, fix_session: FixSession, store: DatabaseStore):
        self.fix_session = fix_session
        self.broker_code = fix_session.broker.code
        self.store = store
        self.database_unavailable = False
        self.generation_seen = store.generation
        #: the application messages of the read in progress, applied at its end
        self._deferred: list[Message] | None = None
        #: set on logon, so that what waited in the outbox goes now, not at the next poll
        self.on_logon_wake = None

    @property
    def day(self):
        """Where the session's trading day ends: a fill's trade date (decision 42) by it."""
        return session_day(self.fix_session)

    # --- Session events -------------------------------------------------------------

    def on_logon(self, session: Session) -> None:
        self._status(True, "")
        log.info("%s: logged on", session.sid)
        if self.on_logon_wake is not None:
            self.on_logon_wake.set()
        # After every logon, not only after a sequence reset, ask the broker where
        # each open order stands: a broker restarted with its book, a gateway
        # killed between storing and applying, a resend the broker answered with
        # a gap fill all leave routes that only the broker's answer settles.
        reset = self.store.generation != self.generation_seen
        self.generation_seen = self.store.generation
        try:
            asked = self.ask_status_of_open_routes()
        except UNAVAILABLE:
            log.exception("%s: status of open routes not asked", session.sid)
            self.database_unavailable = True
            return
        if asked:
            log.warning(
                "%s: %s; asked the status of %d open routes",
                session.sid,
                "sequence reset" if reset else "logged on",
                asked,
            )

    def on_logout(self, session: Session) -> None:
        self._status(False, "")
        log.info("%s: logged out", session.sid)

    def _status(self, logged_on: bool, error: str) -> None:
        FixSession.objects.filter(pk=self.fix_session.pk).update(
            logged_on=logged_on, status_changed_at=timezone.now(), last_error=error[:500]
        )

    def ask_status_of_open_routes(self) -> int:
        """An OrderStatusRequest in the outbox for every route with this broker
        whose outcome is still open and whose order went out."""
        # not settled, and past pending new (or pending new with the order sent)
        open_states = set(Route.Status) - Route.TERMINAL_STATES - {Route.Status.PENDING_NEW}
        routes = Route.objects.filter(broker__fix_session=self.fix_session.pk).filter(
            models.Q(status__in=open_states)
            | models.Q(
                status=Route.Status.PENDING_NEW,
                fix_outbox__msg_type="D",
                fix_outbox__status=FixOutbox.Status.SENT,
            )
        )
        adapter = FixBroker(lambda report: None, session=self.fix_session)
        asked = []
        with transaction.atomic():
            for route in routes.select_related("broker", "block__security").distinct():
                adapter.status(route_ticket(route))
                asked.append(route.pk)
            Route.objects.filter(pk__in=asked).update(
                status_requested_at=timezone.now(), status_requests=F("status_requests") + 1
            )
        return len(asked)

    # --- Outbound: what a resend may send again ---------------------------------------

    def to_app(self, msg: Message, session: Session, resend: bool) -> None:
        """On a resend, an order message for a day order first sent on an earlier
        trading day is not sent again (the broker gets a gap fill instead) and its
        route is marked unconfirmed, to be checked with the broker: yesterday's day
        order must not trade today. Orders good for longer are resent."""
        if not resend or msg.msg_type not in fixmap.ORDER_MESSAGES:
            return
        try:
            first_sent = parse_utc_timestamp(msg.get(122) or msg.get(52) or "")
        except ValueError:
            first_sent = None  # no date we can trust: not resent, checked with the broker
        cl_ord_id = fixmap.route_cl_ord_id(msg.get(41) or msg.get(11) or "")
        try:
            route = Route.objects.filter(cl_ord_id=cl_ord_id).only("pk", "time_in_force").first()
            time_in_force = route.time_in_force if route is not None else trading_day.DAY
            if first_sent is not None and not trading_day.day_order_over(
                time_in_force=time_in_force,
                entered_at=first_sent,
                now=timezone.now(),
                boundary=session_day(self.fix_session),
            ):
                return
            if route is not None:
                with origin("fix", str(session.sid)):
                    route_mark_unconfirmed(
                        route.pk,
                        f"not resent: first sent {msg.get(122) or msg.get(52)}, an earlier "
                        "trading day; check with the broker",
                    )
        except UNAVAILABLE:
            log.exception("%s: route of %s not flagged", session.sid, cl_ord_id)
            self.database_unavailable = True
        raise DoNotSend()

    # --- Inbound: store, then apply ----------------------------------------------------

    @contextlib.contextmanager
    def reading(self, session: Session) -> Iterator[None]:
        """The messages of one read from the socket are stored and applied in one
        transaction, at the end of the read (`_apply_read`: together when they can
        be, else each in a savepoint of its own, as `_receive` says), with the next
        target number written once: one commit per read, not per message.
        Nothing the session sends meanwhile reaches the socket before that commit.

        If the transaction does not commit (the database went away mid-read), none
        of the read's messages is consumed: the sequence numbers are read back, the
        session disconnects and the gateway waits for the database; the broker
        resends them after the next logon, and the inbox and the ExecIDs keep each
        applied once."""
        transport = getattr(session, "transport", None)
        held = transport.held() if hasattr(transport, "held") else contextlib.nullcontext()
        stored = False
        try:
            with held, transaction.atomic(), self.store.receiving():
                self._deferred = []
                try:
                    yield
                    if not transaction.get_rollback():
                        self._apply_read(session)
                finally:
                    self._deferred = None
                if transaction.get_rollback():
                    # a savepoint that could not be rolled back (the connection broke):
                    # the whole read rolls back, and what it sent is dropped with it
                    raise _ReadNotStored()
            stored = True
        except _ReadNotStored:
            log.error(
                "%s: a read's messages were not stored; had again after reconnecting", session.sid
            )
        except UNAVAILABLE:
            log.exception("%s: database unavailable at the end of a read", session.sid)
        finally:
            if not stored:
                self._read_lost(session)

    def _read_lost(self, session: Session) -> None:
        with contextlib.suppress(*UNAVAILABLE):
            self.store.reload()
        self.database_unavailable = True  # the gateway waits for the database
        if getattr(session, "transport", None) is not None:
            session.disconnect("Messages of the last read not stored")

    def from_app(self, msg: Message, session: Session) -> None:
        """Store, then apply. If the database cannot take the message, the
        session disconnects without consuming its sequence number and the
        broker resends it after the next logon: nothing is lost."""
        try:
            self._receive(msg, session)
        except UNAVAILABLE as exc:
            log.exception("%s: database unavailable", session.sid)
            self.database_unavailable = True  # the gateway waits for it to come back
            raise ApplicationUnavailable(f"database unavailable: {exc}") from exc

    def _receive(self, msg: Message, session: Session) -> None:
        """Store the message in the inbox, apply it and settle its inbox row, in one
        transaction (a savepoint of the read's, `reading`). What is applied and the
        inbox row that says so commit together; a message that fails to apply is
        rolled back to before its application (a savepoint) and kept in the inbox,
        not applied, with why. Anything we send meanwhile (a DontKnowTrade) leaves
        only once that transaction has committed, as the outbox's messages do."""
        if self._deferred is not None:
            self._deferred.append(msg)  # stored and applied with the read's others, at its end
            return
        transport = getattr(session, "transport", None)
        held = transport.held() if hasattr(transport, "held") else contextlib.nullcontext()
        with held, transaction.atomic():
            self._store_and_apply(msg, session)

    def _apply_read(self, session: Session) -> None:
        """The application messages of one read, at its end, inside its transaction:
        execution reports and cancel rejects together when they can be
        (`_apply_together`), else each on its own as `_receive` does, in order."""
        msgs, self._deferred = self._deferred or [], None
        if len(msgs) > 1 and self._apply_together(msgs, session):
            return
        for msg in msgs:
            with transaction.atomic():
                self._store_and_apply(msg, session)

    def _apply_together(self, msgs: list[Message], session: Session) -> bool:
        """Store and apply the execution reports (and cancel rejects) of one read in a
        fixed number of statements (`executions_apply`, one INSERT of their inbox rows),
        in a savepoint. False, with nothing written, when they cannot all go together:
        another kind of message, a number stored already (a resend), a report not
        ours or one that the services refuse; the caller then applies them one by
        one, which keeps each refused message in the inbox with why. A number
        stored already is not looked up first: the inbox rows' INSERT, last in the
        savepoint, refuses it (their unique number) and all of it rolls back."""
        if any(msg.msg_type not in ("8", "9") for msg in msgs):
            return False
        seqs = [msg.get_int(34) or 0 for msg in msgs]
        if len(set(seqs)) != len(seqs):
            return False
        try:
            named, routes = routes_named_by(msgs)
            reports = [
                fixmap.report_from_execution_report(
                    msg, broker_code=self.broker_code, cl_ord_id=cl_ord_id, day=self.day
                )
                if msg.msg_type == "8"
                else fixmap.report_from_cancel_reject(
                    msg,
                    broker_code=self.broker_code,
                    cl_ord_id=cl_ord_id,
                    ref=f"{self.fix_session.pk}-{self.store.generation}-{seq}",
                )
                for msg, cl_ord_id, seq in zip(msgs, named, seqs, strict=True)
            ]
        except UNAVAILABLE:
            raise
        except Exception:
            return False  # one by one: each says what is wrong with it
        applied_at = timezone.now()
        rows = []
        for msg, seq in zip(msgs, seqs, strict=True):
            inbox = FixInbox(
                session_id=self.fix_session.pk,
                generation=self.store.generation,
                seq_num=seq,
                msg_type=msg.msg_type,
                raw=msg.encode(sort_header=False),
            )
            move(inbox, FixInbox.Status.APPLIED)
            inbox.applied_at = applied_at
            rows.append(inbox)
        try:
            with transaction.atomic(), origin("fix", str(session.sid)):
                executions_apply(reports, routes=routes)
                FixInbox.objects.bulk_create(rows)
        except UNAVAILABLE:
            raise
        except Exception as exc:
            log.info("%s: a read's reports applied one by one: %s", session.sid, exc)
            return False
        return True

    def _store_and_apply(self, msg: Message, session: Session) -> None:
        seq = msg.get_int(34) or 0
        inbox = FixInbox.objects.filter(
            session_id=self.fix_session.pk, generation=self.store.generation, seq_num=seq
        ).first()
        if inbox is not None and inbox.status == FixInbox.Status.APPLIED:
            return  # a resend of a message already applied
        if inbox is None:  # stored below with its outcome, in this same transaction
            inbox = FixInbox(
                session_id=self.fix_session.pk,
                generation=self.store.generation,
                seq_num=seq,
                msg_type=msg.msg_type,
                raw=msg.encode(sort_header=False),
            )
        if seq == self.store.next_target:
            # the session takes the next number once this returns: written here, with
            # the message, rather than in a commit of its own
            self.store.advance_target_with(seq + 1)
        error = ""
        try:
            # No savepoint of its own: what writes here is `execution_apply`, whose
            # transaction is one (a report it refuses rolls back to before it); the
            # rest only reads and translates.
            with origin("fix", str(session.sid)):
                self._apply(msg, session, seq)
        except UNAVAILABLE:
            raise  # not the message's fault: have it again after reconnecting
        except fixmap.TradeCorrection as exc:
            error = str(exc)
            log.error("%s: message %s: %s", session.sid, seq, exc)
        except fixmap.IncorrectTagValue as exc:
            # a field we cannot read: the broker hears why (a session Reject naming the
            # tag), the report is kept, not applied, and the gateway carries on
            error = f"rejected: {exc}"
            log.warning("%s: message %s: %s", session.sid, seq, exc)
            session.generate_reject(msg, exc.reason, exc.tag)
        except fixmap.BusinessRefusal as exc:
            error = f"rejected: {exc}"
            log.warning("%s: message %s: %s", session.sid, seq, exc)
            session.generate_business_reject(msg, exc.reason, str(exc), msg.get(17))
        except fixmap.NotOurs as exc:
            error = str(exc)
            log.warning("%s: %s", session.sid, exc)
            if msg.msg_type == "8" and msg.get(150) in fixmap.FILL_EXEC_TYPES:
                dk = fixmap.dont_know_trade(msg, str(exc))
                session.send(dk.to_message(session.sid.begin_string))
        except Exception as exc:  # kept in the inbox with the reason; never lost
            error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: message %s not applied", session.sid, seq)
        inbox_settle(inbox, error)

    def _apply(self, msg: Message, session: Session, seq: int) -> None:
        mt = msg.msg_type
        if mt == "8":
            execution_apply(
                fixmap.report_from_execution_report(
                    msg, broker_code=self.broker_code, cl_ord_id=route_named_by(msg), day=self.day
                )
            )
        elif mt == "9":
            execution_apply(
                fixmap.report_from_cancel_reject(
                    msg,
                    broker_code=self.broker_code,
                    cl_ord_id=route_named_by(msg),
                    ref=f"{self.fix_session.pk}-{self.store.generation}-{seq}",
                )
            )
        elif mt == "j":
            log.warning("%s: business reject %s: %s", session.sid, msg.get(380), msg.get(58))
        else:
            log.info("%s: message type %s ignored", session.sid, mt)
