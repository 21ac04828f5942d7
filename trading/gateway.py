"""The FIX gateway: one process per broker session, on the engine in `trading/fix/`.

It owns the session's socket (our side initiates), and while it runs:

* it sends what the routing worker wrote to the session's outbox, each message
  numbered, stored for resends and marked sent in one database transaction,
  with nothing reaching the socket before that transaction commits;
* it stores each application message the broker sends in the inbox (once per
  session, generation and sequence number) and applies execution reports
  through the trading services, idempotently per route and ExecID;
* it keeps the sequence numbers in the database (`DatabaseStore`), so that a
  restarted gateway carries on where the last one stopped and a resend after a
  disconnect replays from the database;
* it holds a lock on the session, so a second gateway for it refuses to start
  (a PostgreSQL advisory lock; on the embedded SQLite, a file lock).

The ORM is used from the gateway's event loop, which is its only thread: the
management command sets DJANGO_ALLOW_ASYNC_UNSAFE for that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    models,
    transaction,
)
from django.utils import timezone

from oms.context import origin
from trading import services
from trading.brokers.base import ExecutionReport
from trading.fix import messages as fixmsg
from trading.fix.codec import Message, parse_utc_timestamp
from trading.fix.session import (
    Application,
    ApplicationUnavailable,
    DoNotSend,
    Session,
    SessionSettings,
)
from trading.fix.store import MessageStore
from trading.fix.transport import Initiator
from trading.models import Broker, FixInbox, FixMessage, FixOutbox, FixSession, Route

log = logging.getLogger("trading.gateway")

#: The database is down or locked: nothing is wrong with the message.
UNAVAILABLE = (OperationalError, InterfaceError)


class GatewayBusy(RuntimeError):
    """Another gateway already owns this session."""


# --- Message store ---------------------------------------------------------------


class DatabaseStore(MessageStore):
    """Sequence numbers on the FixSession row, sent messages in FixMessage rows.

    Writes join the caller's transaction when there is one (the outbox pump
    sends inside one), and commit on their own otherwise."""

    def __init__(self, fix_session: FixSession):
        self.pk = fix_session.pk
        self.reload()

    def reload(self) -> None:
        row = FixSession.objects.values("next_sender_seq", "next_target_seq", "generation").get(
            pk=self.pk
        )
        self.next_sender = row["next_sender_seq"]
        self.next_target = row["next_target_seq"]
        self.generation = row["generation"]

    def set_next_sender(self, n: int) -> None:
        FixSession.objects.filter(pk=self.pk).update(next_sender_seq=n)
        self.next_sender = n

    def set_next_target(self, n: int) -> None:
        FixSession.objects.filter(pk=self.pk).update(next_target_seq=n)
        self.next_target = n

    def set(self, seq: int, raw: bytes) -> None:
        """Keep a sent message, and advance the next sender number past it in the
        same transaction (the session advances it again just after: the same
        value), so that a message is never stored under a number still marked
        free. A number is used once: a clash means something else wrote it."""
        with transaction.atomic():
            FixMessage.objects.create(
                session_id=self.pk, generation=self.generation, seq_num=seq, raw=raw
            )
            FixSession.objects.filter(pk=self.pk, next_sender_seq__lte=seq).update(
                next_sender_seq=seq + 1
            )

    def resync_sender(self) -> int:
        """After a clash: the next sender number goes past every stored message."""
        from django.db.models import Max

        top = FixMessage.objects.filter(session_id=self.pk, generation=self.generation).aggregate(
            top=Max("seq_num")
        )["top"]
        self.set_next_sender(max(self.next_sender, (top or 0) + 1))
        return self.next_sender

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        rows = FixMessage.objects.filter(
            session_id=self.pk, generation=self.generation, seq_num__range=(begin, end)
        ).values_list("seq_num", "raw")
        return [(seq, bytes(raw)) for seq, raw in rows.order_by("seq_num")]

    def reset(self) -> None:
        """Both sequence numbers back to 1, in a new generation (the messages of
        earlier generations stay, as the record of what was sent)."""
        with transaction.atomic():
            row = FixSession.objects.select_for_update().get(pk=self.pk)
            row.generation += 1
            row.next_sender_seq = row.next_target_seq = 1
            row.save(update_fields=["generation", "next_sender_seq", "next_target_seq"])
        self.generation = row.generation
        self.next_sender = self.next_target = 1


# --- The lock on a session ---------------------------------------------------------


def _lock_key(fix_session: FixSession) -> int:
    digest = hashlib.blake2b(f"oms.fix_gateway:{fix_session.pk}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SessionLock:
    """The gateway's claim on its session: a PostgreSQL advisory lock, held by
    the database connection (so it goes when that connection goes), or on
    SQLite a file lock in OMS_VAR_DIR. ``acquire`` raises GatewayBusy when
    another gateway holds it; taking it again while held does nothing. Also a
    context manager: held for the block."""

    def __init__(self, fix_session: FixSession):
        self.fix_session = fix_session
        self.key = _lock_key(fix_session)
        self._file = None  # SQLite: the open, locked file
        self._advisory = False  # PostgreSQL: taken on the current connection

    @property
    def held(self) -> bool:
        return self._advisory or self._file is not None

    def acquire(self) -> None:
        if self.held:
            return  # advisory locks count: taking one twice would need two unlocks
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                if not cur.fetchone()[0]:
                    raise GatewayBusy(f"a gateway already runs FIX session {self.fix_session}")
            self._advisory = True
            return
        import fcntl

        path = settings.VAR_DIR / f"fix-gateway-{self.fix_session.pk}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "w")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise GatewayBusy(f"a gateway already runs FIX session {self.fix_session}") from None
        self._file = fh

    def connection_closed(self) -> None:
        """The database connection was closed: a PostgreSQL lock went with it
        (a file lock does not)."""
        self._advisory = False

    def release(self) -> None:
        if self._advisory:
            with contextlib.suppress(DatabaseError), connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            self._advisory = False
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# --- From FIX to our execution reports ----------------------------------------------

EXEC_TYPES = {
    "0": "new",
    "1": "trade",  # FIX 4.2 partial fill
    "2": "trade",  # FIX 4.2 fill
    "F": "trade",
    "3": "done_for_day",
    "4": "canceled",
    "5": "replaced",
    "6": "pending_cancel",
    "8": "rejected",
    "A": "new",  # pending new: the order is with the broker
    "C": "expired",
    "E": "pending_replace",
    "I": "order_status",
}
ORD_STATUSES = {
    "0": "new",
    "1": "partially_filled",
    "2": "filled",
    "3": "done_for_day",
    "4": "cancelled",
    "5": "replaced",
    "6": "pending_cancel",
    "8": "rejected",
    "A": "pending_new",
    "C": "expired",
    "E": "pending_replace",
}


class NotOurs(ValueError):
    """A report for an order we did not send on this session."""


class TradeCorrection(ValueError):
    """A trade bust or correction (FIX 4.4 ExecType H/G, FIX 4.2 ExecTransType
    1/2): not booked automatically; kept in the inbox for operations."""


def _decimal(msg: Message, tag: int) -> Decimal | None:
    value = msg.get(tag)
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"tag {tag} is not a number: {value!r}") from None


_REQUEST_SUFFIX = re.compile(r"-[CR][0-9A-F]{8}$")


def _route_cl_ord_id(msg: Message) -> str:
    """Our route's ClOrdID: the original one (41) on answers to a cancel or
    replace request, else the ClOrdID (11); a request's own ClOrdID (the
    route's plus a suffix, see trading.brokers.fix) names its route too, as
    reports after a replace may carry only that."""
    for tag in (41, 11):
        value = msg.get(tag)
        if not value:
            continue
        for candidate in (value, _REQUEST_SUFFIX.sub("", value)):
            if Route.objects.filter(cl_ord_id=candidate).exists():
                return candidate
    raise NotOurs(f"no route with ClOrdID {msg.get(41) or msg.get(11)!r}")


def report_from_execution_report(msg: Message, broker_code: str) -> ExecutionReport:
    trans_type = msg.get(20)  # FIX 4.2 ExecTransType: 0 new, 1 cancel, 2 correct, 3 status
    if msg.get(150) in ("G", "H") or trans_type in ("1", "2"):
        raise TradeCorrection(
            f"trade bust or correction of ExecID {msg.get(19) or msg.get(17)!r}: "
            "not booked automatically"
        )
    exec_type = EXEC_TYPES.get(msg.get(150) or "")
    ord_status = ORD_STATUSES.get(msg.get(39) or "")
    if exec_type is None or ord_status is None:
        raise ValueError(f"ExecType {msg.get(150)!r} / OrdStatus {msg.get(39)!r} not understood")
    if trans_type == "3":
        exec_type = "order_status"  # a status report repeats a fill; it books nothing
    try:
        transact_time = parse_utc_timestamp(msg.get(60) or "")
    except ValueError:
        transact_time = datetime.now(UTC)
    return ExecutionReport(
        broker=broker_code,
        cl_ord_id=_route_cl_ord_id(msg),
        exec_id=msg.get(17) or "",
        exec_type=exec_type,
        ord_status=ord_status,
        transact_time=transact_time,
        last_quantity=_decimal(msg, 32) or Decimal(0),
        last_price=_decimal(msg, 31),
        cumulative_quantity=_decimal(msg, 14) or Decimal(0),
        average_price=_decimal(msg, 6),
        leaves_quantity=_decimal(msg, 151) or Decimal(0),
        order_id=msg.get(37) or "",
        text=msg.get(58) or "",
    )


def report_from_cancel_reject(msg: Message, broker_code: str, ref: str) -> ExecutionReport:
    """An OrderCancelReject as a report that restores the route's prior state;
    it carries no ExecID, so ``ref`` (session, generation, sequence) names it."""
    return ExecutionReport(
        broker=broker_code,
        cl_ord_id=_route_cl_ord_id(msg),
        exec_id=f"CXLREJ-{ref}",
        exec_type="cancel_reject",
        ord_status=ORD_STATUSES.get(msg.get(39) or "", "new"),
        transact_time=datetime.now(UTC),
        order_id=msg.get(37) if msg.get(37) not in (None, "NONE") else "",
        text=msg.get(58) or "Cancel rejected",
    )


# --- The session's application -------------------------------------------------------


class GatewayApplication(Application):
    def __init__(self, fix_session: FixSession, store: DatabaseStore):
        self.fix_session = fix_session
        self.broker_code = fix_session.broker.code
        self.store = store
        self.database_unavailable = False
        self.generation_seen = store.generation

    def on_logon(self, session: Session) -> None:
        self._status(True, "")
        log.info("%s: logged on", session.sid)
        if self.store.generation != self.generation_seen:
            # The sequence numbers were reset: nothing from before will be resent
            # either way, so ask the broker where each open order stands.
            self.generation_seen = self.store.generation
            asked = self.ask_status_of_open_routes()
            log.warning(
                "%s: sequence reset; asked the status of %d open routes", session.sid, asked
            )

    def ask_status_of_open_routes(self) -> int:
        """An OrderStatusRequest in the outbox for every route with this broker
        whose outcome is still open and whose order went out."""
        from trading.brokers.fix import FixBroker

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
        count = 0
        for route in routes.select_related("broker", "block__security").distinct():
            adapter.status(services.route_ticket(route))
            count += 1
        return count

    def on_logout(self, session: Session) -> None:
        self._status(False, "")
        log.info("%s: logged out", session.sid)

    def _status(self, logged_on: bool, error: str) -> None:
        FixSession.objects.filter(pk=self.fix_session.pk).update(
            logged_on=logged_on, status_changed_at=timezone.now(), last_error=error[:500]
        )

    def to_app(self, msg: Message, session: Session, resend: bool) -> None:
        """On a resend, an order message for a day order, first sent on an
        earlier (UTC) day, is not sent again — the broker gets a gap fill
        instead — and its route is marked unconfirmed, to be checked with the
        broker: yesterday's day order must not trade today. Messages for GTC
        (and other multi-day) orders are resent."""
        if not resend or msg.msg_type not in ("D", "F", "G"):
            return
        orig = msg.get(122) or msg.get(52) or ""
        if orig[:8] == datetime.now(UTC).strftime("%Y%m%d"):
            return
        cl_ord_id = _REQUEST_SUFFIX.sub("", msg.get(41) or msg.get(11) or "")
        try:
            route = Route.objects.filter(cl_ord_id=cl_ord_id).only("pk", "time_in_force").first()
            if route is not None and route.time_in_force != "day":
                return
            if route is not None:
                with origin("fix", str(session.sid)):
                    services.route_mark_unconfirmed(
                        route.pk,
                        f"not resent: first sent {orig}, an earlier day; check with the broker",
                    )
        except UNAVAILABLE:
            log.exception("%s: route of %s not flagged", session.sid, cl_ord_id)
            self.database_unavailable = True
        raise DoNotSend()

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
        seq = msg.get_int(34) or 0
        inbox, created = FixInbox.objects.get_or_create(
            session_id=self.fix_session.pk,
            generation=self.store.generation,
            seq_num=seq,
            defaults={"msg_type": msg.msg_type, "raw": msg.encode(sort_header=False)},
        )
        if not created and inbox.applied_at is not None:
            return  # a resend of a message already applied
        error = ""
        try:
            with origin("fix", str(session.sid)):
                self._apply(msg, session, seq)
        except UNAVAILABLE:
            raise  # not the message's fault: have it again after reconnecting
        except TradeCorrection as exc:
            error = str(exc)
            log.error("%s: message %s: %s", session.sid, seq, exc)
        except NotOurs as exc:
            error = str(exc)
            log.warning("%s: %s", session.sid, exc)
            if msg.msg_type == "8" and msg.get(150) in ("F", "1", "2"):
                self._dont_know(msg, session, str(exc))
        except Exception as exc:  # kept in the inbox with the reason; never lost
            error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: message %s not applied", session.sid, seq)
        FixInbox.objects.filter(pk=inbox.pk).update(
            applied_at=None if error else timezone.now(), error=error[:500]
        )

    def _apply(self, msg: Message, session: Session, seq: int) -> None:
        mt = msg.msg_type
        if mt == "8":
            services.execution_apply(report_from_execution_report(msg, self.broker_code))
        elif mt == "9":
            ref = f"{self.fix_session.pk}-{self.store.generation}-{seq}"
            services.execution_apply(report_from_cancel_reject(msg, self.broker_code, ref))
        elif mt == "j":
            log.warning("%s: business reject %s: %s", session.sid, msg.get(380), msg.get(58))
        else:
            log.info("%s: message type %s ignored", session.sid, mt)

    def _dont_know(self, msg: Message, session: Session, text: str) -> None:
        dk = fixmsg.DontKnowTrade(
            order_id=msg.get(37) or "NONE",
            exec_id=msg.get(17) or "NONE",
            dk_reason="D",  # no matching order
            symbol=msg.get(55) or "",
            side=msg.get(54) or "1",
            text=text[:120],
        )
        session.send(dk.to_message(session.sid.begin_string))


# --- The gateway -------------------------------------------------------------------------


def _refuse_if_stale(row: FixOutbox, body: list[tuple[int, str]]) -> None:
    """A day order (TimeInForce 0, FIX's default) queued on an earlier UTC day,
    while the gateway or the broker was away, is not sent today."""
    if row.msg_type != "D" or dict(body).get(59, "0") != "0":
        return
    queued = row.created_at.astimezone(UTC).date()
    if queued < datetime.now(UTC).date():
        raise ValueError(f"a day order queued on {queued} is not sent on a later day")


class Gateway:
    """Runs one FIX session: connect, keep connected, drain the outbox."""

    def __init__(self, fix_session: FixSession, *, poll: float = 0.2, reconnect_cap: float = 30):
        self.fix_session = fix_session
        self.poll = poll
        self.store = DatabaseStore(fix_session)
        self.app = GatewayApplication(fix_session, self.store)
        fs = fix_session
        self.session = Session(
            SessionSettings(
                fs.begin_string,
                fs.sender_comp_id,
                fs.target_comp_id,
                initiator=True,
                heartbeat_interval=fs.heartbeat_interval,
                reset_seq_num_flag=fs.reset_on_logon,
                # brokers add tags of their own (5000 and up) to execution
                # reports: accept them, as the messages' known fields are
                # still checked
                allow_unknown_fields=True,
            ),
            self.app,
            self.store,
        )
        self.initiator = Initiator(
            self.session, host=fs.host, port=fs.port, reconnect_cap=reconnect_cap
        )
        self.sent = 0
        self.recoveries = 0  # times the database came back after an outage

    @classmethod
    def for_broker(cls, code: str, **kw) -> Gateway:
        broker = Broker.objects.select_related("fix_session").get(code=code)
        if broker.adapter != Broker.Adapter.FIX or not hasattr(broker, "fix_session"):
            raise ValueError(f"broker {code} is not reached over FIX")
        return cls(broker.fix_session, **kw)

    def drain_outbox(self, limit: int = 200) -> int:
        """Send pending outbox rows in order, each in its own transaction."""
        if not self.session.logged_on:
            return 0
        conn = self.session.transport
        pending = list(
            FixOutbox.objects.filter(
                session_id=self.fix_session.pk, status=FixOutbox.Status.PENDING
            ).values_list("pk", flat=True)[:limit]
        )
        sent = 0
        for pk in pending:
            if not self.session.logged_on or self.session.transport is not conn:
                break
            try:
                with conn.held(), transaction.atomic():
                    row = (
                        FixOutbox.objects.select_for_update()
                        .filter(pk=pk, status=FixOutbox.Status.PENDING)
                        .first()
                    )
                    if row is None:
                        continue
                    body = [(int(tag), str(value)) for tag, value in row.fields]
                    _refuse_if_stale(row, body)
                    seq = self.store.next_sender
                    msg = Message.of(row.msg_type, body, self.fix_session.begin_string)
                    if not self.session.send(msg):
                        raise RuntimeError("session would not send")
                    row.status = FixOutbox.Status.SENT
                    row.generation = self.store.generation
                    row.seq_num = seq
                    row.sent_at = timezone.now()
                    row.save(update_fields=["status", "generation", "seq_num", "sent_at"])
            except UNAVAILABLE:
                raise  # rolled back, the peer saw nothing: run() waits for the database
            except IntegrityError:
                # rolled back; the number was taken (a message stored outside
                # the outbox whose number did not advance): not this row's fault
                self.store.reload()
                taken = self.store.next_sender
                log.error(
                    "%s: sequence number %s was taken; next is now %s",
                    self.session.sid,
                    taken,
                    self.store.resync_sender(),
                )
                break
            except Exception as exc:
                # rolled back, and this row can never be sent: set it aside so
                # that it does not hold up the rows behind it, and say so
                self.store.reload()
                self._failed(pk, f"{type(exc).__name__}: {exc}")
                continue
            sent += 1
        self.sent += sent
        return sent

    def _failed(self, pk: int, error: str) -> None:
        log.error("%s: outbox row %s cannot be sent: %s", self.session.sid, pk, error)
        FixOutbox.objects.filter(pk=pk).update(status=FixOutbox.Status.FAILED, error=error[:500])
        route_id, msg_type = FixOutbox.objects.values_list("route_id", "msg_type").get(pk=pk)
        if route_id is None:
            return
        with origin("fix", str(self.session.sid)):
            if msg_type == "D":  # the order itself never left us
                services.route_not_sent(route_id, f"not sent to the broker: {error}")
            else:  # a cancel, replace or status request did not go out
                services.route_mark_unconfirmed(
                    route_id, f"{msg_type} request not sent to the broker: {error}"
                )

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: hold the session's lock, keep the session
        connected, drain the outbox. If the database goes away, the session is
        disconnected (so the broker keeps what it has for us) until the
        database and the lock are back; if another gateway took the lock
        meanwhile, this one stops (GatewayBusy)."""
        # Inside the event loop Django keeps connections per context: open the
        # loop's one here, before any task starts, so that every task of the
        # gateway shares it and it is closed below.
        connection.ensure_connection()
        try:
            with SessionLock(self.fix_session) as lock:
                self.store.reload()  # what the last owner left, read under the lock
                self.app.generation_seen = self.store.generation
                await self.initiator.start()
                try:
                    while not stop.is_set():
                        self._step(lock)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self.poll)
                finally:
                    await self.initiator.stop()
                    if lock.held:  # not over the state of a gateway that took over
                        with contextlib.suppress(DatabaseError):
                            self.app._status(False, "")
        finally:
            # the ORM inside the event loop has connections of its own
            connections.close_all()

    def _step(self, lock: SessionLock) -> None:
        self.initiator.restart_if_failed()
        if self.initiator.paused:
            self._recover(lock)
        elif self.app.database_unavailable:
            self._pause(lock, "the session could not store a message")
        else:
            try:
                self.drain_outbox()
            except UNAVAILABLE as exc:
                self._pause(lock, exc)

    def _pause(self, lock: SessionLock, why) -> None:
        log.error(
            "%s: database unavailable (%s); disconnecting until it is back", self.session.sid, why
        )
        self.initiator.pause("Database unavailable")
        self.app.database_unavailable = False
        connection.close()  # a broken connection is not reused; on PostgreSQL the lock goes too
        lock.connection_closed()

    def _recover(self, lock: SessionLock) -> None:
        """While paused: once the database answers, take the lock again (it may
        have gone with the connection), reload the sequence numbers, resume."""
        try:
            connection.ensure_connection()
            lock.acquire()  # GatewayBusy: another gateway took over; stop
            self.store.reload()
        except UNAVAILABLE:
            connection.close()
            lock.connection_closed()
            return
        log.warning("%s: database back; reconnecting", self.session.sid)
        self.recoveries += 1
        self.initiator.resume()
