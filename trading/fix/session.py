"""FIX session layer: a sans-IO state machine for initiator and acceptor.

A :class:`Session` is fed complete frames (``on_frame``) and timer ticks
(``on_timer``); it writes through a transport object that has ``send(bytes)``
and ``close()``.  Time is read only through a :class:`~trading.fix.clock.Clock`
and state is kept in a :class:`~trading.fix.store.MessageStore`, so every rule
is testable without sockets or sleeping.

The behaviour follows the FIX session-level rules as QuickFIX implements them
(and as its acceptance scenarios check): logon/logout handshakes, heartbeats
and TestRequest, ResendRequest answered with PossDup replays and gap fills,
SequenceReset in both modes, PossDup/OrigSendingTime checks, SendingTime
accuracy, CompID checks, and dictionary validation answered with Reject (35=3)
or BusinessMessageReject (35=j).  An exception from the application never
escapes the session.

Where the shared acceptance scenarios say nothing, the rule is what QuickFIX
does, checked against it (``tests/trading/fix/scenarios``): no Reject goes
out before the peer's Logon is accepted (a Logon with a bad SendingTime
closes the connection); a message without a MsgSeqNum, or with one that is
not a number, closes it too (a SequenceReset without one is rejected); an
application message without a CompID gets a BusinessMessageReject 380=5.

PossResend (97=Y) is not the session's business: the session delivers every
in-sequence application message, PossResend or not, and drops only what it
can prove it has already processed by sequence number (PossDup, 43=Y, below
the expected MsgSeqNum).  A PossResend message may or may not have been acted
on; only the application knows, by its own key (a ClOrdID, an ExecID), and
decides: ``EchoApplication`` drops a NewOrderSingle whose ClOrdID it saw
since the last logout, the simulated broker answers an order it already has
with its status, ``OrderClient`` ignores an ExecID it has processed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from . import dictionary
from .clock import Clock, SystemClock
from .codec import (
    GarbledMessage,
    Message,
    decode,
    encode_fields,
    parse_utc_timestamp,
    utc_timestamp,
    utc_timestamp_epoch,
)
from .dictionary import REASON_TEXT, DataDictionary, Reason, ValidationError
from .store import MemoryStore, MessageStore

log = logging.getLogger("trading.fix.session")


class SessionID(NamedTuple):
    begin_string: str
    sender_comp_id: str
    target_comp_id: str

    def __str__(self) -> str:
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}"


@dataclass
class SessionSettings:
    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    initiator: bool = False
    heartbeat_interval: int = 30  # initiator proposes; acceptor adopts the peer's
    reset_on_logon: bool = False  # acceptor: reset sequence numbers on every logon
    reset_seq_num_flag: bool = False  # initiator: send 141=Y on logon
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    validate: bool = True
    allow_unknown_fields: bool = False
    check_comp_id: bool = True
    check_latency: bool = True
    max_latency: float = 120.0
    logon_timeout: float = 10.0
    logout_timeout: float = 2.0
    timestamp_precision: int = 3  # 0, 3 (milliseconds) or 6 (microseconds)
    requires_orig_sending_time: bool = True
    send_redundant_resend_requests: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def session_id(self) -> SessionID:
        return SessionID(self.begin_string, self.sender_comp_id, self.target_comp_id)


class Transport(Protocol):
    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class DoNotSend(Exception):
    """Raised by ``Application.to_app`` to veto sending (also on resend)."""


class RejectLogon(Exception):
    """Raised by ``Application.from_admin`` on a Logon to refuse it."""


class UnsupportedMessageType(Exception):
    """Raised by ``Application.from_app``: answered with BusinessMessageReject 380=3."""


class ApplicationUnavailable(Exception):
    """Raised by ``Application.from_app`` when it cannot take the message now
    (its database is down, say): the session disconnects *without* consuming
    the message's sequence number, so after the next logon the peer resends
    it.  Nothing is lost and nothing is rejected."""


class BusinessReject(Exception):
    """Raised by ``Application.from_app`` to answer with a BusinessMessageReject."""

    def __init__(self, reason: int, text: str = "", ref_id: str | None = None):
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.ref_id = ref_id


class Application:
    """Callbacks from a session.  Override what you need."""

    def on_create(self, session: Session) -> None:
        pass

    def on_logon(self, session: Session) -> None:
        pass

    def on_logout(self, session: Session) -> None:
        pass

    def to_admin(self, msg: Message, session: Session) -> None:
        pass

    def from_admin(self, msg: Message, session: Session) -> None:
        pass

    def to_app(self, msg: Message, session: Session, resend: bool) -> None:
        pass

    def from_app(self, msg: Message, session: Session) -> None:
        raise UnsupportedMessageType()

    def reading(self, session: Session) -> contextlib.AbstractContextManager:
        """A scope around the messages of one read from the socket (the transport
        enters it): an application that stores what it receives may store a read's
        messages together (the FIX gateway: one transaction). Nothing by default."""
        return contextlib.nullcontext()


ADMIN = frozenset({"0", "1", "2", "3", "4", "5", "A"})
_STAMPED = frozenset({8, 9, 10, 34, 35, 49, 52, 56})  # header fields the session writes


def _tag_key(f: tuple[int, str]) -> int:
    return f[0]


_APP_ERROR_TEXT = {
    0: "Other",
    1: "Unknown ID",
    2: "Unknown Security",
    3: "Unsupported Message Type",
    4: "Application not available",
    5: "Conditionally Required Field Missing",
}


# The reasons a QuickFIX Reject carries a Text (58) and RefTagID (371) for; for
# any other reason it sends neither.
_REJECT_TEXT_REASONS = frozenset(
    {
        Reason.INVALID_TAG_NUMBER,
        Reason.REQUIRED_TAG_MISSING,
        Reason.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE,
        Reason.TAG_SPECIFIED_WITHOUT_A_VALUE,
        Reason.VALUE_IS_INCORRECT,
        Reason.INCORRECT_DATA_FORMAT,
        Reason.COMPID_PROBLEM,
        Reason.SENDINGTIME_ACCURACY_PROBLEM,
        Reason.INVALID_MSGTYPE,
        Reason.TAG_APPEARS_MORE_THAN_ONCE,
        Reason.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER,
        Reason.INCORRECT_NUMINGROUP_COUNT,
    }
)


class Session:
    def __init__(
        self,
        settings: SessionSettings,
        app: Application | None = None,
        store: MessageStore | None = None,
        clock: Clock | None = None,
        dd: DataDictionary | None = None,
    ):
        self.settings = settings
        self.sid = settings.session_id
        self.app = app or Application()
        self.store = store or MemoryStore()
        self.clock = clock or SystemClock()
        self.dd = dd if dd is not None else dictionary.load(settings.begin_string)
        self.transport: Transport | None = None
        self.events: list[str] = []  # recent event log (bounded)
        self.on_event: Callable[[str], None] | None = None
        self._reset_connection_state()
        self.heartbeat_interval = settings.heartbeat_interval if settings.initiator else 0
        self._safe(self.app.on_create, self)

    # ------------------------------------------------------------------ state
    def _reset_connection_state(self) -> None:
        self.sent_logon = False
        self.received_logon = False
        self.sent_logout = False
        self.sent_reset = False
        self.received_reset = False
        self.resend_range: tuple[int, int] | None = None
        self.queue: dict[int, Message] = {}
        self.test_request = 0
        now = self.clock.monotonic() if hasattr(self, "clock") else 0.0
        self.last_sent = now
        self.last_received = now
        self.logon_sent_at = now
        self.logout_sent_at = now
        self.connected_at = now

    @property
    def logged_on(self) -> bool:
        return self.sent_logon and self.received_logon

    @property
    def connected(self) -> bool:
        return self.transport is not None

    @property
    def next_sender(self) -> int:
        return self.store.next_sender

    @property
    def next_target(self) -> int:
        return self.store.next_target

    def event(self, text: str) -> None:
        log.debug("%s: %s", self.sid, text)
        self.events.append(text)
        if len(self.events) > 200:
            del self.events[:100]
        if self.on_event is not None:
            self._safe(self.on_event, text)

    def _safe(self, fn, *args) -> bool:
        """Call an application callback; never let its exception escape."""
        try:
            fn(*args)
            return True
        except (
            DoNotSend,
            RejectLogon,
            UnsupportedMessageType,
            BusinessReject,
            ApplicationUnavailable,
        ):
            raise
        except Exception:
            log.exception(
                "%s: application callback %s failed", self.sid, getattr(fn, "__name__", fn)
            )
            return False

    # ------------------------------------------------------------ connection
    def connect(self, transport: Transport) -> None:
        """A connection is up.  An initiator sends its Logon now."""
        self._reset_connection_state()
        self.transport = transport
        if self.settings.initiator:
            self.heartbeat_interval = self.settings.heartbeat_interval
            self.generate_logon()

    def connection_lost(self) -> None:
        """The transport is gone (closed by either side)."""
        if self.transport is None:
            return
        self.transport = None
        was_logged_on = self.logged_on
        self.event("Disconnected")
        if self.settings.reset_on_disconnect:
            self.store.reset()
        self._reset_connection_state()
        if was_logged_on:
            self._safe(self.app.on_logout, self)

    def disconnect(self, reason: str = "") -> None:
        t = self.transport
        if t is not None:
            if reason:
                self.event(reason)
            try:
                t.close()
            finally:
                self.connection_lost()

    def logout(self, text: str | None = None) -> None:
        """Start the logout handshake (the session disconnects on the answer or timeout)."""
        if self.logged_on and not self.sent_logout:
            self.generate_logout(text)
        elif self.transport is not None and not self.logged_on:
            self.disconnect("Logout requested before logon completed")

    # ---------------------------------------------------------------- input
    def on_frame(self, raw: bytes) -> None:
        """One complete frame from the transport."""
        try:
            msg = decode(raw)
        except GarbledMessage as exc:
            self.event(f"Garbled message ignored: {exc}")
            if not self.received_logon:
                self.disconnect("Garbled message before logon")
            elif b"\x0135=A\x01" in raw[:40]:
                self.disconnect("Logon message is not valid")
            return
        try:
            self.next(msg)
        except Exception:  # last line of defence: never crash the process
            log.exception("%s: error processing %r", self.sid, msg)

    def next(self, msg: Message, queued: bool = False) -> None:
        mt = msg.msg_type
        try:
            idx = msg._index()
            if 49 not in idx or 56 not in idx:
                self._comp_id_missing(msg, 49 if 49 not in idx else 56)
                return
            if msg.begin_string != self.sid.begin_string:
                self._unsupported_version(msg)
                return
            if not self.received_logon and mt != "A":
                if mt == "5":
                    self.disconnect(f"Logout before logon completed: {msg.get(58) or ''}")
                else:
                    self.disconnect("First message is not a Logon")
                return
            seq_s = idx.get(34)
            # a MsgSeqNum as QuickFIX reads one: ASCII digits only (no sign, not empty)
            if seq_s is None or not seq_s.isdigit() or not seq_s.isascii():
                # QuickFIX rejects this only on a SequenceReset (a missing or
                # empty MsgSeqNum); on anything else, or a MsgSeqNum that is not
                # a number, it closes the connection without a word.
                if mt == "4" and seq_s is None:
                    raise ValidationError(Reason.REQUIRED_TAG_MISSING, 34)
                if mt == "4" and seq_s == "":
                    raise ValidationError(Reason.TAG_SPECIFIED_WITHOUT_A_VALUE, 34)
                self.disconnect(f"MsgSeqNum missing or not a number: {seq_s!r}")
                return
            if self.settings.validate:
                self.dd.validate(msg, self.settings.allow_unknown_fields)
            if mt == "0":
                self.next_heartbeat(msg)
            elif mt == "1":
                self.next_test_request(msg)
            elif mt == "2":
                self.next_resend_request(msg)
            elif mt == "3":
                self.next_reject(msg)
            elif mt == "4":
                self.next_sequence_reset(msg)
            elif mt == "5":
                self.next_logout(msg)
                return
            elif mt == "A":
                self.next_logon(msg)
            else:
                self.next_app(msg)
        except ValidationError as exc:
            if mt == "A" and not self.received_logon:
                self.event(f"Invalid logon: {exc}")
                self.disconnect("Logon message is not valid")
                return
            self.generate_reject(msg, exc.reason, exc.tag)
        except RejectLogon as exc:
            self.generate_logout(str(exc) or None)
            self.disconnect("Logon rejected by application")
            return
        if not queued:
            self.next_queued()
        if self.logged_on:
            self.on_timer()

    def _comp_id_missing(self, msg: Message, tag: int) -> None:
        """SenderCompID or TargetCompID missing: an application message gets a
        BusinessMessageReject (380=5, from FIX 4.2), anything else a session
        Reject (373=1); before logon the connection is closed."""
        if not self.received_logon:
            self.disconnect(f"Tag {tag} missing before logon")
        elif msg.msg_type not in ADMIN and self.sid.begin_string >= "FIX.4.2":
            if msg.get_int(34) == self.store.next_target:
                self.store.incr_target()
            text = f"{_APP_ERROR_TEXT[5]} ({tag})"
            self.generate_business_reject(msg, 5, text)
        else:
            self.generate_reject(msg, Reason.REQUIRED_TAG_MISSING, tag)

    def _unsupported_version(self, msg: Message) -> None:
        if msg.msg_type == "5":
            self.next_logout(msg)
            return
        if not self.received_logon:
            self.disconnect("Incorrect BeginString on logon")
            return
        self.generate_logout("Incorrect BeginString")
        self.store.incr_target()

    # -------------------------------------------------------------- checks
    def _valid_logon_state(self, mt: str) -> bool:
        if (mt == "A" and self.sent_reset) or self.received_reset:
            return True
        if (mt == "A" and not self.received_logon) or (mt != "A" and self.received_logon):
            return True
        if mt == "5" and self.sent_logon:
            return True
        if mt != "5" and self.sent_logout:
            return True
        return mt in ("4", "3")

    def _good_time(self, msg: Message) -> bool:
        if not self.settings.check_latency:
            return True
        try:
            sent = utc_timestamp_epoch(msg.get(52) or "")
        except ValueError:
            return False
        return abs(self.clock.time() - sent) <= self.settings.max_latency

    def _correct_comp_id(self, msg: Message) -> bool:
        if not self.settings.check_comp_id:
            return True
        return msg.get(49) == self.sid.target_comp_id and msg.get(56) == self.sid.sender_comp_id

    def verify(self, msg: Message, check_high: bool = True, check_low: bool = True) -> bool:
        mt = msg.msg_type
        seq = msg.get_int(34)
        if seq is None:
            raise ValidationError(Reason.REQUIRED_TAG_MISSING, 34)
        if not self._valid_logon_state(mt):
            self.disconnect("Logon state is not valid for message")
            return False
        if not self._good_time(msg):
            self._reject_and_logout(msg, Reason.SENDINGTIME_ACCURACY_PROBLEM)
            return False
        if not self._correct_comp_id(msg):
            self._reject_and_logout(msg, Reason.COMPID_PROBLEM)
            return False
        expected = self.store.next_target
        if check_high and seq > expected:
            self.do_target_too_high(msg, seq)
            return False
        if check_low and seq < expected:
            self.do_target_too_low(msg, seq)
            return False
        rr = self.resend_range
        if (check_high or check_low) and rr is not None and seq >= rr[1]:
            self.event(f"ResendRequest {rr} satisfied")
            self.resend_range = None
        self.last_received = self.clock.monotonic()
        self.test_request = 0
        return True

    def _reject_and_logout(self, msg: Message, reason: int) -> None:
        """A message we cannot accept from this peer (SendingTime, CompID):
        Reject and Logout, or, before a Logon was accepted, a closed connection
        (``generate_reject`` sends nothing then)."""
        self.generate_reject(msg, reason)
        if self.transport is not None:
            self.generate_logout()

    def do_target_too_high(self, msg: Message, seq: int) -> None:
        self.event(f"MsgSeqNum too high, expecting {self.store.next_target} but received {seq}")
        self.queue[seq] = msg
        self.last_received = self.clock.monotonic()
        rr = self.resend_range
        if rr is not None and not self.settings.send_redundant_resend_requests and seq >= rr[0]:
            self.event("Already sent ResendRequest, not sending another")
            return
        self.generate_resend_request(self.store.next_target, seq)

    def do_target_too_low(self, msg: Message, seq: int) -> None:
        if msg.get(43) != "Y":
            text = f"MsgSeqNum too low, expecting {self.store.next_target} but received {seq}"
            self.generate_logout(text)
            self.disconnect(text)
            return
        self.last_received = self.clock.monotonic()
        # PossDup of a message already received: check, then ignore.
        if msg.msg_type != "4":
            orig = msg.get(122)
            if orig is None:
                if self.settings.requires_orig_sending_time:
                    self.generate_reject(msg, Reason.REQUIRED_TAG_MISSING, 122)
                return
            try:
                late = parse_utc_timestamp(orig) > parse_utc_timestamp(msg.get(52) or "")
            except ValueError:
                late = True
            if late:
                self._reject_and_logout(msg, Reason.SENDINGTIME_ACCURACY_PROBLEM)

    def next_queued(self) -> None:
        while self.queue:
            expected = self.store.next_target
            for s in [s for s in self.queue if s < expected]:
                del self.queue[s]
            msg = self.queue.pop(expected, None)
            if msg is None:
                return
            self.event(f"Processing queued message {expected}")
            if msg.msg_type in ("A", "2"):
                self.store.incr_target()
            else:
                self.next(msg, queued=True)
            if self.transport is None:
                return

    # ------------------------------------------------------- admin handlers
    def _from_admin(self, msg: Message) -> None:
        self._safe(self.app.from_admin, msg, self)

    def next_logon(self, msg: Message) -> None:
        reset = msg.get(141) == "Y"
        self.received_reset = reset
        if reset:
            self.event("Logon contains ResetSeqNumFlag=Y, resetting sequence numbers to 1")
            if not self.sent_reset:
                self.store.reset()
        if self.settings.initiator and not self.sent_logon and not reset:
            self.disconnect("Received logon response before sending request")
            return
        if not self.settings.initiator and self.settings.reset_on_logon:
            self.store.reset()
        if not self.verify(msg, False, True):
            return
        hb = msg.get_int(108, 0) or 0
        if hb < 0:
            raise ValidationError(Reason.VALUE_IS_INCORRECT, 108)
        self._from_admin(msg)
        self.received_logon = True
        if not self.settings.initiator or (self.received_reset and not self.sent_reset):
            self.heartbeat_interval = hb
            self.event("Received logon request")
            self.generate_logon(response_to=msg)
        else:
            self.event("Received logon response")
        self.sent_reset = False
        self.received_reset = False
        seq = msg.get_int(34) or 0
        if seq > self.store.next_target and not reset:
            self.do_target_too_high(msg, seq)
        else:
            self.store.incr_target()
            self.next_queued()
        if self.logged_on:
            self._safe(self.app.on_logon, self)

    def next_heartbeat(self, msg: Message) -> None:
        if not self.verify(msg):
            return
        self._from_admin(msg)
        self.store.incr_target()

    def next_test_request(self, msg: Message) -> None:
        if not self.verify(msg):
            return
        self._from_admin(msg)
        self.generate_heartbeat(msg.get(112))
        self.store.incr_target()

    def next_reject(self, msg: Message) -> None:
        if not self.verify(msg, False, True):
            return
        self._from_admin(msg)
        self.store.incr_target()

    def next_sequence_reset(self, msg: Message) -> None:
        gap_fill = msg.get(123) == "Y"
        if not self.verify(msg, gap_fill, gap_fill):
            return
        self._from_admin(msg)
        new = msg.get_int(36)
        if new is None:
            return
        expected = self.store.next_target
        if new > expected:
            self.event(f"SequenceReset: next expected {expected} -> {new}")
            self.store.set_next_target(new)
            if self.resend_range is not None and new > self.resend_range[1]:
                self.resend_range = None
        elif new < expected:
            # no RefTagID: QuickFIX names no tag here, and peers compare rejects field by field
            self.generate_reject(msg, Reason.VALUE_IS_INCORRECT)

    def next_logout(self, msg: Message) -> None:
        if not self.verify(msg, False, False):
            return
        self._from_admin(msg)
        if not self.sent_logout:
            self.event("Received logout request")
            self.generate_logout()
        else:
            self.event("Received logout response")
        self.store.incr_target()
        if self.settings.reset_on_logout:
            self.store.reset()
        self.disconnect("Logged out")

    def next_resend_request(self, msg: Message) -> None:
        if not self.verify(msg, False, False):
            return
        self._from_admin(msg)
        begin = msg.get_int(7, 1) or 1
        end = msg.get_int(16, 0) or 0
        self.event(f"Received ResendRequest {begin}..{end}")
        self.resend(begin, end)
        seq = msg.get_int(34) or 0
        expected = self.store.next_target
        if seq == expected:
            self.store.incr_target()
        elif seq > expected:
            self.do_target_too_high(msg, seq)

    def next_app(self, msg: Message) -> None:
        if not self.verify(msg):
            return
        consumed = True
        try:
            try:
                self.app.from_app(msg, self)
            except ApplicationUnavailable as exc:
                consumed = False
                self.disconnect(f"Application cannot take message {msg.get(34)}: {exc}")
                return
            except UnsupportedMessageType:
                self.generate_business_reject(msg, 3)
                return
            except BusinessReject as exc:
                self.generate_business_reject(msg, exc.reason, exc.text, exc.ref_id)
                return
            except DoNotSend:
                pass
            except Exception:
                log.exception("%s: from_app failed", self.sid)
                self.generate_business_reject(msg, 4, "Application error")
                return
        finally:
            if consumed and msg.get_int(34) == self.store.next_target:
                self.store.incr_target()

    # ---------------------------------------------------------------- timer
    def on_timer(self) -> None:
        """Check heartbeat, test request, logon and logout timeouts."""
        if self.transport is None:
            return
        now = self.clock.monotonic()
        if not self.logged_on:
            if self.settings.initiator and self.sent_logon:
                if now - self.logon_sent_at >= self.settings.logon_timeout:
                    self.disconnect("Timed out waiting for logon response")
            elif (
                not self.settings.initiator
                and not self.received_logon
                and now - self.connected_at >= self.settings.logon_timeout
            ):
                self.disconnect("Timed out waiting for logon")
            return
        if self.sent_logout:
            if now - self.logout_sent_at >= self.settings.logout_timeout:
                self.disconnect("Timed out waiting for logout response")
            return
        hb = self.heartbeat_interval
        if hb <= 0:
            return
        since_rx = now - self.last_received
        if since_rx >= 2.4 * hb:
            self.disconnect("Timed out waiting for heartbeat")
        elif since_rx >= 1.2 * (self.test_request + 1) * hb:
            self.generate_test_request("TEST")
            self.test_request += 1
        elif now - self.last_sent >= hb and self.test_request == 0:
            self.generate_heartbeat()

    # --------------------------------------------------------------- output
    def _header(self, seq: int) -> list[tuple[int, str]]:
        return [
            (34, str(seq)),
            (49, self.sid.sender_comp_id),
            (52, utc_timestamp(self.clock.utcnow(), self.settings.timestamp_precision)),
            (56, self.sid.target_comp_id),
        ]

    def send(self, msg: Message) -> bool:
        """Send an application (or admin) message: stamped, stored, written.

        The message is stored and consumes a sequence number even when not
        logged on; the peer then gets it through a resend.
        """
        if msg.header:
            msg.header = [f for f in msg.header if f[0] != 43 and f[0] != 122]
            msg._idx = None
        return self._send(msg)

    def _send(self, msg: Message, resend_seq: int | None = None) -> bool:
        admin = msg.msg_type in ADMIN
        seq = resend_seq or self.store.next_sender
        header = self._header(seq)
        if msg.header:
            extra = [f for f in msg.header if f[0] not in _STAMPED]
            if extra:
                header = sorted(header + extra, key=_tag_key)
        msg.header = header
        msg.begin_string = self.sid.begin_string
        msg._idx = None
        try:
            if admin:
                self._safe(self.app.to_admin, msg, self)
            else:
                self.app.to_app(msg, self, resend_seq is not None)
        except DoNotSend:
            return False
        except Exception:
            log.exception("%s: to_app failed", self.sid)
            return False
        raw = encode_fields(self.sid.begin_string, msg.msg_type, msg.header, msg.body, msg.trailer)
        if resend_seq is None:
            if not admin:
                self.store.set(seq, raw)
            self.store.incr_sender()
        if self.transport is not None and (admin or self.logged_on):
            self._write(raw)
            return True
        return False

    def _write(self, raw: bytes) -> None:
        t = self.transport
        if t is None:
            return
        self.last_sent = self.clock.monotonic()
        try:
            t.send(raw)
        except Exception:
            log.exception("%s: transport send failed", self.sid)
            self.connection_lost()

    def _admin(self, msg_type: str, body: list[tuple[int, str]] | None = None) -> Message:
        return Message(msg_type, body or [], begin_string=self.sid.begin_string)

    def generate_logon(self, response_to: Message | None = None) -> None:
        body = [(98, "0"), (108, str(self.heartbeat_interval))]
        if response_to is None:
            if self.settings.reset_seq_num_flag or self.settings.reset_on_logon:
                self.store.reset()
                self.sent_reset = True
                body.append((141, "Y"))
        elif self.received_reset:
            body.append((141, "Y"))
        self.sent_logon = True
        self.logon_sent_at = self.clock.monotonic()
        self._send(self._admin("A", body))

    def generate_logout(self, text: str | None = None) -> None:
        body = [(58, text)] if text else []
        self.sent_logout = True
        self.logout_sent_at = self.clock.monotonic()
        self._send(self._admin("5", body))

    def generate_heartbeat(self, test_req_id: str | None = None) -> None:
        self._send(self._admin("0", [(112, test_req_id)] if test_req_id is not None else []))

    def generate_test_request(self, test_req_id: str) -> None:
        self._send(self._admin("1", [(112, test_req_id)]))

    def generate_resend_request(self, begin: int, seq: int) -> None:
        end = 0 if self.sid.begin_string >= "FIX.4.2" else 999999
        self._send(self._admin("2", [(7, str(begin)), (16, str(end))]))
        self.resend_range = (begin, seq - 1)
        self.event(f"Sent ResendRequest FROM: {begin} TO: {end}")

    def _reverse_route(self, msg: Message, out: Message) -> None:
        pairs = ((115, 128), (116, 129), (144, 145), (128, 115), (129, 116), (145, 144))
        for src, dst in pairs:
            v = msg.get(src)
            if v:
                out.header.append((dst, v))

    def generate_reject(self, msg: Message, reason: int, tag: int | None = None) -> None:
        """Session Reject (35=3) of ``msg``, as QuickFIX writes it: RefSeqNum,
        Text and RefTagID (only for the reasons QuickFIX has a text for, the tag
        only when one is named), RefMsgType, SessionRejectReason (FIX 4.2: only
        up to 11).  No Reject may go out before the peer's Logon was accepted:
        then the connection is closed instead."""
        if not self.received_logon:
            if self.transport is not None:
                text = REASON_TEXT.get(reason, str(reason))
                self.disconnect(f"Message {msg.get(34)} refused before logon: {text}")
            return
        out = self._admin("3")
        self._reverse_route(msg, out)
        seq_s = msg.get(34)
        mt = msg.msg_type
        body: list[tuple[int, str]] = []
        if seq_s:
            body.append((45, seq_s))
        text = REASON_TEXT.get(reason) if reason in _REJECT_TEXT_REASONS else None
        if text and (tag or reason == Reason.INVALID_TAG_NUMBER) and tag is not None:
            body.append((58, text))
            body.append((371, str(tag)))
        elif text:
            body.append((58, text))
        if self.sid.begin_string >= "FIX.4.2":
            if mt:
                body.append((372, mt))
            if self.sid.begin_string > "FIX.4.2" or reason <= Reason.INVALID_MSGTYPE:
                body.append((373, str(reason)))
        out.body = body
        try:
            seq = int(seq_s) if seq_s else None
        except ValueError:
            seq = None
        if mt not in ("A", "4") and seq == self.store.next_target:
            self.store.incr_target()
        self.event(f"Message {seq_s} rejected: {text} (tag {tag})")
        self._send(out)

    def generate_business_reject(
        self, msg: Message, reason: int, text: str | None = None, ref_id: str | None = None
    ) -> None:
        out = self._admin("j")
        self._reverse_route(msg, out)
        body = [(45, msg.get(34) or "0")]
        body.append((58, text or _APP_ERROR_TEXT.get(reason, "Other")))
        body.append((372, msg.msg_type))
        if ref_id:
            body.append((379, ref_id))
        body.append((380, str(reason)))
        out.body = body
        self.event(f"Message {msg.get(34)} business-rejected: {reason}")
        self._send(out)

    def generate_sequence_reset(self, begin: int, new_seq: int) -> None:
        ts = utc_timestamp(self.clock.utcnow(), self.settings.timestamp_precision)
        out = self._admin("4", [(36, str(new_seq)), (123, "Y")])
        out.header = [(43, "Y"), (122, ts)]
        self._send(out, resend_seq=begin)
        self.event(f"Sent SequenceReset-GapFill {begin} -> {new_seq}")

    def resend(self, begin: int, end: int) -> None:
        """Answer a ResendRequest: replay app messages, gap-fill the rest."""
        last = self.store.next_sender - 1
        if end == 0 or end >= last or end == 999999:
            end = last
        begin = max(begin, 1)
        if begin > end:
            return
        cur = begin
        for seq, raw in self.store.get_range(begin, end):
            try:
                msg = decode(raw)
            except GarbledMessage:
                continue
            orig = msg.get(52) or ""
            now = utc_timestamp(self.clock.utcnow(), self.settings.timestamp_precision)
            header = [f for f in msg.header if f[0] not in (43, 52, 122)]
            header += [(43, "Y"), (52, now), (122, orig)]
            msg.header = sorted(header, key=lambda f: f[0])
            msg._idx = None
            try:
                self.app.to_app(msg, self, True)
            except DoNotSend:
                continue  # vetoed: stays inside the gap
            except Exception:
                log.exception("%s: to_app failed on resend", self.sid)
                continue
            if seq > cur:
                self.generate_sequence_reset(cur, seq)
            self._write(encode_fields(msg.begin_string, msg.msg_type, msg.header, msg.body))
            cur = seq + 1
        if cur <= end:
            self.generate_sequence_reset(cur, end + 1)
