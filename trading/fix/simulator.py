"""Simulated broker: a FIX acceptor on the engine that keeps an order book per
session and answers as a broker would.

* market orders fill at the current reference price (a seeded random walk
  per symbol, a price callback so the OMS can feed real prices, or a JSON
  price file read again when it changes); limit orders fill when marketable,
  otherwise rest until the price moves through them;
* partial fills (configurable number of slices and interval);
* OrderCancelRequest / OrderCancelReplaceRequest per FIX 4.4's order state
  change matrices (Volume 4, Appendix D): Pending acknowledgements and a
  delay before the outcome if asked for, fills while pending, chaining by
  ClOrdID/OrigClOrdID, OrderCancelReject with CxlRejResponseTo and OrdStatus;
* OrderStatusRequest answered with a status ExecutionReport;
* DAY orders expire at the close (a time of day in a time zone);
* the book can be kept in a file (``--state``), so that a restarted broker
  knows its working orders, their fills and what it cancelled;
* configurable latency, reject rate and fault modes: drop the connection,
  skip sequence numbers, repeat execution reports.

    python -m trading.fix.simulator --port 9878 [--host 127.0.0.1] [--session FIX.4.4:OMS] [options]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .book_file import BookFile
from .clock import Clock, SystemClock
from .codec import Message, utc_timestamp
from .messages import (
    ExecType,
    ExecutionReport,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
    _fmt_decimal,
)
from .session import Application, Session, SessionID, SessionSettings, UnsupportedMessageType
from .store import FileStore, MemoryStore
from .transport import Acceptor

log = logging.getLogger("trading.fix.simulator")

PriceSource = Callable[[str], Decimal | None]
CENT = Decimal("0.01")
# ExecutionReports that _exec builds without the typed layer (see _er_body)
_FAST_EXEC_TYPES = frozenset({ExecType.NEW, ExecType.TRADE})
#: Business days from trade to settlement by SecurityType, where the order names no
#: SettlDate: T+1 for US shares, options, Treasuries and corporates (SEC Rule 15c6-1
#: as amended, from 28 May 2024; FINRA Rule 11320), T+2 for European bonds (CSDR,
#: Regulation (EU) No 909/2014, art. 5(2)) and FX spot. Weekdays only: the simulator
#: keeps no holiday calendar, so on a holiday its date and the OMS's differ (and the
#: OMS flags it, docs/fix.md).
SETTLEMENT_DAYS = {"EUSOV": 2, "EUCORP": 2, "FOR": 2}
_FAST_EXTRA = frozenset({"last_qty", "last_px"})


def _base36(n: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def _wire(v: object) -> str | None:
    """A str field as the typed layer writes it (``None``: left out)."""
    return v if v is None or v.__class__ is str else str(v)


class PriceFile:
    """Reference prices from a JSON file ``{"SYMBOL": price, ...}``, read again
    when it changes, so that the process that knows the prices (the OMS, a
    price feed) moves the fills of a simulator that runs apart from it.

    Keeping it cheap: the file is looked at (one ``stat``) at most once per
    ``reload`` seconds (1 by default), and read only when its modification
    time, size or inode differ from the last read (a feed that writes a new
    file and renames it over the old one changes the inode even within the
    same second).  A symbol not in the file, or a file that is missing or
    unreadable, gives None: the simulator then uses its random walk; an
    unreadable file keeps the prices last read."""

    def __init__(self, path: Path, clock: Clock | None = None, reload: float = 1.0):
        self.path = Path(path)
        self.clock = clock or SystemClock()
        self.reload = reload
        self._prices: dict[str, Decimal] = {}
        self._key: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self.reads = 0  # how many times the file was actually read (for tests)

    def _refresh(self) -> None:
        now = self.clock.monotonic()
        if now - self._checked < self.reload:
            return
        self._checked = now
        try:
            st = self.path.stat()
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            if key == self._key:
                return
            data = json.loads(self.path.read_text())
            self.reads += 1
            prices = {}
            for k, v in data.items():
                p = Decimal(str(v))
                if p.is_finite() and p > 0:
                    prices[str(k)] = p
            self._prices = prices
            self._key = key
        except (OSError, ValueError, ArithmeticError, AttributeError) as exc:
            log.warning("price file %s not read: %s", self.path, exc)

    def __call__(self, symbol: str) -> Decimal | None:
        self._refresh()
        return self._prices.get(symbol)


class RandomWalk:
    """Seeded random-walk reference prices, one walk per symbol."""

    def __init__(self, seed: int = 1, start: Decimal = Decimal("100"), step: float = 0.001):
        self.rng = random.Random(seed)
        self.start = start
        self.step = step
        self.prices: dict[str, Decimal] = {}

    def __call__(self, symbol: str) -> Decimal:
        p = self.prices.get(symbol)
        if p is None:
            # a stable starting price per symbol, between 20 and 500
            h = sum(ord(c) * 31**i for i, c in enumerate(symbol)) % 4800
            p = self.prices[symbol] = (Decimal(20) + Decimal(h) / 10).quantize(CENT)
        return p

    def tick(self) -> None:
        for s, p in self.prices.items():
            move = Decimal(str(self.rng.gauss(0, self.step)))
            self.prices[s] = max(CENT, (p * (1 + move)).quantize(CENT, ROUND_HALF_UP))

    def set(self, symbol: str, price: Decimal) -> None:
        self.prices[symbol] = Decimal(price)


@dataclass
class BrokerConfig:
    latency: float = 0.0  # seconds before each answer
    partial_fills: int = 1  # number of fills an order is split into
    fill_interval: float = 0.0  # seconds between partial fills
    reject_rate: float = 0.0  # probability of rejecting a new order
    drop_every: int = 0  # drop the connection after every N execution reports (0: never)
    skip_seq_every: int = 0  # skip a sequence number after every N app messages (0: never)
    repeat_rate: float = 0.0  # probability of sending an execution report twice
    session_end: time | None = None  # the close: DAY orders expire then (in session_tz)
    session_tz: str = "UTC"  # the time zone of session_end (an IANA name)
    pending_acks: bool = False  # send Pending Cancel / Pending Replace before the outcome
    amend_delay: float = 0.0  # seconds a cancel or replace stays pending (implies pending acks)
    seed: int = 1


# Order states the book keeps (what a report says may differ: see _reported_status)
_OPEN = frozenset({OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED})
_ENDED_UNFILLED = frozenset(
    {OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED, OrdStatus.DONE_FOR_DAY}
)


@dataclass(slots=True)
class Pending:
    """A cancel or cancel/replace request accepted but not yet carried out."""

    kind: str  # "cancel" or "replace"
    cl_ord_id: str  # the request's ClOrdID
    orig_cl_ord_id: str  # the order's ClOrdID when the request came
    due: float = 0.0  # wall time (epoch seconds) when it is carried out
    qty: Decimal | None = None  # replace: the new terms
    ord_type: str | None = None
    price: Decimal | None = None
    tif: str | None = None


@dataclass(slots=True)
class Order:
    order_id: str
    cl_ord_id: str
    symbol: str
    side: str
    qty: Decimal
    ord_type: str
    price: Decimal | None
    tif: str
    account: str | None = None
    cum_qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: str = OrdStatus.NEW
    orig_cl_ord_id: str | None = None
    fills_left: int = 1
    expires_at: datetime | None = None  # a DAY order: the close it belongs to
    pending: Pending | None = None
    fills: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)  # ExecID, qty, px
    cl_ord_ids: list[str] = field(default_factory=list)  # every ClOrdID used on this order
    updated_at: datetime | None = None
    fill_scheduled: bool = field(default=False, compare=False)  # not persisted
    security_type: str | None = None  # tag 167, echoed on every report
    settl_date: str | None = None  # tag 64 on the reports: the order's, or the cycle's
    settl_asked: bool = False  # the order named its SettlDate (kept as it came)

    @property
    def leaves(self) -> Decimal:
        if self.status in _ENDED_UNFILLED:
            return Decimal(0)
        return self.qty - self.cum_qty  # never negative: a replace keeps qty >= cum_qty

    @property
    def avg_px(self) -> Decimal:
        return (
            (self.notional / self.cum_qty).quantize(Decimal("0.000001"))
            if self.cum_qty
            else Decimal(0)
        )

    @property
    def open(self) -> bool:
        return self.status in _OPEN

    # ------------------------------------------------------------ on disk
    def to_record(self) -> dict:
        def d(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        p = self.pending
        return {
            "order_id": self.order_id,
            "cl_ord_id": self.cl_ord_id,
            "orig_cl_ord_id": self.orig_cl_ord_id,
            "cl_ord_ids": self.cl_ord_ids,
            "symbol": self.symbol,
            "side": self.side,
            "qty": str(self.qty),
            "ord_type": self.ord_type,
            "price": d(self.price),
            "tif": self.tif,
            "account": self.account,
            "security_type": self.security_type,
            "settl_date": self.settl_date,
            "settl_asked": self.settl_asked,
            "status": self.status,
            "fills_left": self.fills_left,
            "fills": [[e, str(q), str(px)] for e, q, px in self.fills],
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "pending": None
            if p is None
            else {
                "kind": p.kind,
                "cl_ord_id": p.cl_ord_id,
                "orig_cl_ord_id": p.orig_cl_ord_id,
                "due": p.due,
                "qty": d(p.qty),
                "ord_type": p.ord_type,
                "price": d(p.price),
                "tif": p.tif,
            },
        }

    @classmethod
    def from_record(cls, r: dict) -> Order:
        def d(v: str | None) -> Decimal | None:
            return None if v is None else Decimal(v)

        fills = [(e, Decimal(q), Decimal(px)) for e, q, px in r.get("fills", [])]
        p = r.get("pending")
        o = cls(
            order_id=r["order_id"],
            cl_ord_id=r["cl_ord_id"],
            orig_cl_ord_id=r.get("orig_cl_ord_id"),
            cl_ord_ids=list(r.get("cl_ord_ids") or [r["cl_ord_id"]]),
            symbol=r["symbol"],
            side=r["side"],
            qty=Decimal(r["qty"]),
            ord_type=r["ord_type"],
            price=d(r.get("price")),
            tif=r["tif"],
            account=r.get("account"),
            security_type=r.get("security_type"),
            settl_date=r.get("settl_date"),
            settl_asked=bool(r.get("settl_asked")),
            status=r["status"],
            fills_left=int(r.get("fills_left", 1)),
            fills=fills,
            # what was filled is the sum of the fills kept, not a separate figure
            cum_qty=sum((q for _, q, _ in fills), Decimal(0)),
            notional=sum((q * px for _, q, px in fills), Decimal(0)),
            expires_at=datetime.fromisoformat(r["expires_at"]) if r.get("expires_at") else None,
            updated_at=datetime.fromisoformat(r["updated_at"]) if r.get("updated_at") else None,
            pending=None
            if not p
            else Pending(
                kind=p["kind"],
                cl_ord_id=p["cl_ord_id"],
                orig_cl_ord_id=p["orig_cl_ord_id"],
                due=float(p.get("due", 0)),
                qty=d(p.get("qty")),
                ord_type=p.get("ord_type"),
                price=d(p.get("price")),
                tif=p.get("tif"),
            ),
        )
        return o


class Book:
    """Orders of one session, found by OrderID or by any ClOrdID they used."""

    def __init__(self) -> None:
        self.by_cl: dict[str, Order] = {}
        self.by_id: dict[str, Order] = {}

    def add(self, o: Order) -> None:
        if not o.cl_ord_ids:
            o.cl_ord_ids = [o.cl_ord_id]
        by_cl = self.by_cl
        for cl in o.cl_ord_ids:
            by_cl[cl] = o
        self.by_id[o.order_id] = o

    def use(self, o: Order, cl_ord_id: str) -> None:
        """``cl_ord_id`` (a cancel or replace request's) now names ``o`` too."""
        o.cl_ord_ids.append(cl_ord_id)
        self.by_cl[cl_ord_id] = o

    def find(self, cl_ord_id: str | None, order_id: str | None = None) -> Order | None:
        if order_id and order_id in self.by_id:
            return self.by_id[order_id]
        return self.by_cl.get(cl_ord_id or "")

    def open_orders(self) -> list[Order]:
        return [o for o in self.by_id.values() if o.open]

    def pending_orders(self) -> list[Order]:
        return [o for o in self.by_id.values() if o.pending is not None]


class SimulatedBroker(Application):
    """The broker behind the simulator's sessions.

    Orders follow FIX 4.4's order state change matrices (Volume 4, Appendix D),
    cited by row in ``tests/trading/fix/test_simulator.py``:

    * a cancel or replace request may be acknowledged Pending first
      (``pending_acks``) and carried out ``amend_delay`` seconds later; fills
      may happen meanwhile, reported with the order's current ClOrdID and
      terms and OrdStatus Pending Cancel / Pending Replace, which take
      precedence over Partially Filled and Filled (B.1.b, B.1.c, C.1.b, D.1.a);
    * a second request while one is pending is refused, CxlRejReason 3 (D.2.b);
    * a cancel of an order that has ended is refused, too late (B.1.c); a
      replace of a filled order is refused unless it raises the quantity
      above what is filled (C.2.a, C.1.c); a replace to a quantity at or below
      what is filled is accepted and ends the order filled, its quantity
      amended to the filled quantity (C.3.b, C.3.c);
    * an OrderCancelReject carries the order's status and its last accepted
      ClOrdID as OrigClOrdID (D.2.b), CxlRejResponseTo 1 or 2;
    * a NewOrderSingle whose ClOrdID is known is answered with the order's
      status if it is flagged PossResend or PossDup, otherwise rejected as a
      duplicate with the existing order's state (F.1.b); a cancel or replace
      request resent so flagged under the ClOrdID it was taken with, likewise;
    * nothing is filled once an order is reported canceled, expired, done for
      day or rejected; DAY orders expire at the close (``session_end`` in
      ``session_tz``), ExecType/OrdStatus C.

    With a ``book_file`` every change is on disk before the report that
    announces it is sent, and the book is read back at start.
    """

    def __init__(
        self,
        config: BrokerConfig | None = None,
        price_source: PriceSource | None = None,
        clock: Clock | None = None,
        schedule: Callable[[float, Callable[[], None]], None] | None = None,
        book_file: BookFile | None = None,
    ):
        self.config = config or BrokerConfig()
        self.walk = RandomWalk(self.config.seed)
        self.price_source = price_source
        self.clock = clock or SystemClock()
        self._schedule = schedule
        self.rng = random.Random(self.config.seed)
        self.books: dict[SessionID, Book] = {}
        self.sessions: dict[SessionID, Session] = {}
        self._ids = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self.exec_reports_sent = 0
        self.app_sent = 0
        self.tz = ZoneInfo(self.config.session_tz)
        self.book_file = book_file
        self._stored: dict[str, dict[str, dict]] = book_file.load() if book_file else {}
        self._run = self._new_run()
        self._settles: dict[tuple[str | None, date], str] = {}  # settlement_date's
        self._handlers = {
            "D": SimulatedBroker._new_order,
            "F": SimulatedBroker._cancel,
            "G": SimulatedBroker._replace,
            "H": SimulatedBroker._status,
        }

    def _new_run(self) -> str:
        """The part of OrderIDs and ExecIDs that names this run of the broker:
        when it started, in milliseconds, moved on past any run whose ids are
        in the book file, so that a restarted broker never hands out an id it
        gave before (a peer takes a repeated ExecID for a report it has had)."""
        used = set()
        for orders in self._stored.values():
            for r in orders.values():
                used.add(r["order_id"][1:].partition("-")[0])
                used.update(f[0][1:].partition("-")[0] for f in r.get("fills", ()))
        n = int(self.clock.time() * 1000)
        while _base36(n) in used:
            n += 1
        return _base36(n)

    # ----------------------------------------------------------- plumbing
    def on_create(self, session: Session) -> None:
        book = self.books[session.sid] = Book()
        self.sessions[session.sid] = session
        for rec in self._stored.get(str(session.sid), {}).values():
            book.add(Order.from_record(rec))
        if self.book_file is not None:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the book file from memory (orders of sessions not served
        now kept as read); orders that ended more than a day ago are dropped."""
        assert self.book_file is not None
        horizon = self.clock.utcnow() - timedelta(days=1)
        for sid, book in self.books.items():
            for oid, o in list(book.by_id.items()):
                if not o.open and o.pending is None and o.updated_at and o.updated_at < horizon:
                    del book.by_id[oid]
                    for cl in o.cl_ord_ids:
                        book.by_cl.pop(cl, None)
            self._stored[str(sid)] = {o.order_id: o.to_record() for o in book.by_id.values()}
        self.book_file.compact(self._stored)

    def _persist(self, session: Session, o: Order) -> None:
        bf = self.book_file
        if bf is None:
            return
        o.updated_at = self.clock.utcnow()
        bf.save(str(session.sid), o.to_record())
        if bf.needs_compaction(sum(len(b.by_id) for b in self.books.values())):
            self._compact()

    def price(self, symbol: str) -> Decimal | None:
        if self.price_source is not None:
            try:
                p = self.price_source(symbol)
            except Exception:
                log.exception("price callback failed for %s", symbol)
                p = None
            if p is not None:
                return Decimal(p)
        return self.walk(symbol)

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.walk.set(symbol, Decimal(price))
        self.on_price_change()

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("simulator action failed")

        if delay <= 0:
            run()
            return
        if self._schedule is not None:
            self._schedule(delay, run)
            return
        try:
            asyncio.get_running_loop().call_later(delay, run)
        except RuntimeError:
            run()

    def _send(self, session: Session, msg: Message) -> None:
        cfg = self.config
        self.app_sent += 1
        if cfg.skip_seq_every and self.app_sent % cfg.skip_seq_every == 0:
            session.store.incr_sender()  # fault: the peer sees a gap
        session.send(msg)

    def _reported_status(self, o: Order, exec_type: str, begin: str) -> str:
        """OrdStatus as a report states it: a pending cancel or replace takes
        precedence over what the order is (Appendix D's precedence rules); a
        replace in FIX 4.2 of an order with nothing filled says Replaced."""
        p = o.pending
        if p is not None:
            return OrdStatus.PENDING_CANCEL if p.kind == "cancel" else OrdStatus.PENDING_REPLACE
        if exec_type == ExecType.REPLACED and begin <= "FIX.4.2" and o.status == OrdStatus.NEW:
            return OrdStatus.REPLACED
        return o.status

    def _exec(
        self,
        session: Session,
        o: Order,
        exec_type: str,
        cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None,
        **extra,
    ) -> None:
        """Send an ExecutionReport on ``o`` (its state recorded first)."""
        begin = session.sid.begin_string
        exec_id = f"E{self._run}-{next(self._exec_ids)}"
        if exec_type == ExecType.TRADE:
            o.fills.append((exec_id, extra["last_qty"], extra["last_px"]))
        if self.book_file is not None:
            self._persist(session, o)
        if (
            begin > "FIX.4.2"
            and exec_type in _FAST_EXEC_TYPES
            and o.pending is None
            and cl_ord_id is None
            and extra.keys() <= _FAST_EXTRA
        ):
            # the common case (New / Trade in FIX 4.4), built directly: the
            # same fields, values and order as ExecutionReport.to_message
            # (pinned by a test), without the typed-message layer
            def make() -> Message:
                return Message.of("8", self._er_body(o, exec_id, exec_type, **extra), begin)
        else:
            er = ExecutionReport(
                order_id=o.order_id,
                exec_id=exec_id,
                exec_type=exec_type,
                ord_status=self._reported_status(o, exec_type, begin),
                symbol=o.symbol,
                side=o.side,
                leaves_qty=o.leaves,
                cum_qty=o.cum_qty,
                avg_px=o.avg_px,
                cl_ord_id=cl_ord_id or o.cl_ord_id,
                orig_cl_ord_id=orig_cl_ord_id if cl_ord_id else o.orig_cl_ord_id,
                order_qty=o.qty,
                ord_type=o.ord_type,
                price=o.price,
                time_in_force=o.tif,
                account=o.account,
                transact_time=self.clock.utcnow(),
                settl_date=o.settl_date,
                security_type=o.security_type,
                **extra,
            )

            def make() -> Message:
                return er.to_message(begin)

        self._send(session, make())
        self.exec_reports_sent += 1
        cfg = self.config
        if cfg.repeat_rate and self.rng.random() < cfg.repeat_rate:
            dup = make()
            dup.header.append((97, "Y"))  # PossResend: same ExecID again
            self._send(session, dup)
        if cfg.drop_every and self.exec_reports_sent % cfg.drop_every == 0:
            session.disconnect("Simulator fault: dropping the connection")

    def _er_body(
        self,
        o: Order,
        exec_id: str,
        exec_type: str,
        last_qty: Decimal | None = None,
        last_px: Decimal | None = None,
    ) -> list[tuple[int, str]]:
        """ExecutionReport body fields for ``o``, by ascending tag, as the
        typed layer writes them (no FIX 4.2 adaptation: callers check)."""
        fd = _fmt_decimal
        fields = (
            (1, _wire(o.account)),
            (6, fd(o.avg_px)),
            (11, _wire(o.cl_ord_id)),
            (14, fd(o.cum_qty)),
            (17, exec_id),
            (31, None if last_px is None else fd(last_px)),
            (32, None if last_qty is None else fd(last_qty)),
            (37, _wire(o.order_id)),
            (38, None if o.qty is None else fd(o.qty)),
            (39, _wire(o.status)),
            (40, _wire(o.ord_type)),
            (41, _wire(o.orig_cl_ord_id)),
            (44, None if o.price is None else fd(o.price)),
            (54, _wire(o.side)),
            (55, _wire(o.symbol)),
            (59, _wire(o.tif)),
            (60, utc_timestamp(self.clock.utcnow())),
            (64, _wire(o.settl_date)),
            (150, exec_type),
            (151, fd(o.leaves)),
            (167, _wire(o.security_type)),
        )
        return [f for f in fields if f[1] is not None]

    # --------------------------------------------------------- messages
    def from_app(self, msg: Message, session: Session) -> None:
        handler = self._handlers.get(msg.msg_type)
        if handler is None:
            raise UnsupportedMessageType()
        delay = self.config.latency
        if delay <= 0:  # what later() does for no delay, without the closures
            try:
                handler(self, msg, session)
            except Exception:
                log.exception("simulator action failed")
            return
        self.later(delay, lambda: handler(self, msg, session))

    def settlement_date(self, security_type: str | None) -> str:
        """SettlDate for a trade now in a security of `security_type` whose order named
        none: :data:`SETTLEMENT_DAYS` weekdays after today in ``session_tz``."""
        today = self.clock.utcnow().astimezone(self.tz).date()
        key = (security_type, today)
        settles = self._settles.get(key)
        if settles is None:  # once per kind and day: it is asked on every fill
            day, left = today, SETTLEMENT_DAYS.get(security_type or "", 1)
            while left:
                day += timedelta(days=1)
                left -= day.weekday() < 5
            if len(self._settles) > 64:
                self._settles.clear()
            settles = self._settles[key] = day.strftime("%Y%m%d")
        return settles

    def _next_close(self, now: datetime) -> datetime | None:
        """The first close (``session_end`` in ``session_tz``) after ``now``."""
        end = self.config.session_end
        if end is None:
            return None
        local = now.astimezone(self.tz)
        close = datetime.combine(local.date(), end, tzinfo=self.tz)
        if close <= local:
            close = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=self.tz)
        return close.astimezone(UTC)

    def _new_order(self, msg: Message, session: Session) -> None:
        # the fields the book uses, read as NewOrderSingle.parse reads them
        # (an empty value counts as absent) without building the typed object
        get = msg.get
        cl_ord_id = get(11) or ""
        book = self.books[session.sid]
        known = book.by_cl.get(cl_ord_id)
        if known is not None:
            if get(97) == "Y" or get(43) == "Y":
                # F.1.b: "may have been sent before": it was; confirm its state
                # (as the order is now: replaced, it names the ClOrdIDs it has now)
                self._exec(session, known, ExecType.ORDER_STATUS)
            else:
                # F.1.b: the second order is rejected, with the first one's state
                self._exec(
                    session,
                    known,
                    ExecType.REJECTED,
                    cl_ord_id=cl_ord_id,
                    ord_rej_reason=6,
                    text="Duplicate ClOrdID",
                )
            return
        qty = get(38)
        price = get(44)
        o = Order(
            order_id=f"O{self._run}-{next(self._ids)}",
            cl_ord_id=cl_ord_id,
            symbol=get(55) or "",
            side=get(54) or Side.BUY,
            qty=Decimal(qty) if qty else Decimal(0),
            ord_type=get(40) or OrdType.MARKET,
            price=Decimal(price) if price else None,
            tif=get(59) or TimeInForce.DAY,
            account=get(1) or None,
            fills_left=max(1, self.config.partial_fills),
            cl_ord_ids=[cl_ord_id],
            security_type=get(167) or None,
            settl_date=get(64) or None,
            settl_asked=bool(get(64)),
        )
        reason = None
        if o.qty <= 0:
            reason, text = 0, "Order quantity must be positive"
        elif o.settl_asked and not _is_local_date(o.settl_date):
            reason, text = 0, f"SettlDate {o.settl_date!r} is not a date"
        elif o.security_type == "OPT" and not (get(202) and get(201) in ("0", "1")):
            reason, text = 0, "An option order needs its StrikePrice and PutOrCall"
        elif o.security_type in ("FUT", "OPT") and not get(200):
            reason, text = 0, "A derivative order needs its MaturityMonthYear"
        elif o.security_type == "FOR" and not (get(15) and _is_local_date(get(64))):
            reason, text = 0, "An FX order needs its Currency and its value date in SettlDate"
        elif o.ord_type not in (OrdType.MARKET, OrdType.LIMIT):
            reason, text = 0, "Unsupported order type"
        elif o.ord_type == OrdType.LIMIT and (o.price is None or o.price <= 0):
            reason, text = 0, "Limit order needs a positive price"
        elif self.config.reject_rate and self.rng.random() < self.config.reject_rate:
            reason, text = 0, "Rejected by simulator (reject rate)"
        book.add(o)  # a rejected order's ClOrdID is taken too
        if reason is not None:
            o.status = OrdStatus.REJECTED
            self._exec(session, o, ExecType.REJECTED, ord_rej_reason=reason, text=text)
            return
        if o.tif == TimeInForce.DAY and self.config.session_end is not None:
            o.expires_at = self._next_close(self.clock.utcnow())
        if not o.settl_asked:
            o.settl_date = self.settlement_date(o.security_type)
        self._exec(session, o, ExecType.NEW)
        self._try_fill(session, o)

    def _marketable(self, o: Order, ref: Decimal) -> bool:
        if o.ord_type == OrdType.MARKET:
            return True
        assert o.price is not None
        return ref <= o.price if o.side == "1" else ref >= o.price

    def _try_fill(self, session: Session, o: Order) -> None:
        if not o.open or o.leaves <= 0:
            return
        ref = self.price(o.symbol)
        if ref is None or not self._marketable(o, ref):
            if o.tif in (TimeInForce.IOC, TimeInForce.FOK):
                o.status = OrdStatus.CANCELED
                self._exec(session, o, ExecType.CANCELED, text="IOC/FOK not marketable")
            return
        px = (
            ref
            if o.ord_type == OrdType.MARKET
            else (min(ref, o.price) if o.side == "1" else max(ref, o.price))
        )
        if o.fills_left <= 1 or o.tif == TimeInForce.FOK:
            qty = o.leaves
        else:
            qty = (o.leaves / o.fills_left).quantize(Decimal(1)) or o.leaves
            qty = min(max(qty, Decimal(1)), o.leaves)
        o.fills_left = max(1, o.fills_left - 1)
        o.cum_qty += qty
        o.notional += qty * px
        o.status = OrdStatus.FILLED if o.cum_qty >= o.qty else OrdStatus.PARTIALLY_FILLED
        if not o.settl_asked:  # a fill on a later day settles later
            o.settl_date = self.settlement_date(o.security_type)
        self._exec(session, o, ExecType.TRADE, last_qty=qty, last_px=px)
        if o.open and o.leaves > 0:
            if o.tif == TimeInForce.IOC:
                o.status = OrdStatus.CANCELED
                self._exec(session, o, ExecType.CANCELED, text="IOC remainder canceled")
                return
            o.fill_scheduled = True
            self.later(self.config.fill_interval, lambda: self._scheduled_fill(session, o))

    def _scheduled_fill(self, session: Session, o: Order) -> None:
        o.fill_scheduled = False
        self._try_fill(session, o)

    # ------------------------------------------------- cancel and replace
    def _cancel_reject(
        self,
        session: Session,
        req,
        o: Order | None,
        response_to: str,
        reason: int,
        text: str,
    ) -> None:
        begin = session.sid.begin_string
        if o is not None:
            self._persist(session, o)
        rej = OrderCancelReject(
            order_id=o.order_id if o else "NONE",
            cl_ord_id=req.cl_ord_id,
            # D.2.b: the last ClOrdID the order accepted, which is the
            # request's OrigClOrdID unless that names a request still pending
            orig_cl_ord_id=o.cl_ord_id if o else req.orig_cl_ord_id,
            ord_status=self._reported_status(o, "", begin) if o else OrdStatus.REJECTED,
            cxl_rej_response_to=response_to,
            cxl_rej_reason=reason,
            text=text,
            transact_time=self.clock.utcnow(),
        )
        self._send(session, rej.to_message(begin))

    def _duplicate_reason(self, session: Session) -> int:
        # "Duplicate ClOrdID received" is 6 from FIX 4.4; FIX 4.2 has only
        # 0-3, of which "Broker option" (2) is the one that fits
        return 6 if session.sid.begin_string > "FIX.4.2" else 2

    def _refuse(
        self, session: Session, msg: Message, req, o: Order | None, response_to: str
    ) -> bool:
        """The checks a cancel and a replace share; True if refused (or, for a
        request resent that was already taken, answered with the order's status)."""
        book = self.books[session.sid]
        if o is None:
            self._cancel_reject(session, req, None, response_to, 1, "Unknown order")
        elif book.by_cl.get(req.cl_ord_id) is o and (msg.get(97) == "Y" or msg.get(43) == "Y"):
            # the same request again, flagged as possibly sent before: it was
            # taken (and maybe carried out), so the answer is where the order is
            # now, not a reject a peer would take for the request's fate
            self._exec(session, o, ExecType.ORDER_STATUS)
        elif req.cl_ord_id in book.by_cl:
            reason = self._duplicate_reason(session)
            self._cancel_reject(session, req, o, response_to, reason, "Duplicate ClOrdID")
        elif o.pending is not None:  # D.2.b
            self._cancel_reject(
                session, req, o, response_to, 3, "Order already in pending cancel or replace"
            )
        elif o.status in _ENDED_UNFILLED:
            what = "cancel" if response_to == "1" else "replace"
            self._cancel_reject(session, req, o, response_to, 0, f"Too late to {what}")
        else:
            return False
        return True

    def _start(self, session: Session, o: Order, p: Pending) -> None:
        """Take a request on: Pending ack if asked for, then the outcome now or
        after ``amend_delay`` (on disk meanwhile, so a restart carries it out)."""
        cfg = self.config
        self.books[session.sid].use(o, p.cl_ord_id)
        p.due = self.clock.time() + max(cfg.amend_delay, 0.0)
        o.pending = p
        if cfg.pending_acks or cfg.amend_delay > 0:
            exec_type = ExecType.PENDING_CANCEL if p.kind == "cancel" else ExecType.PENDING_REPLACE
            self._exec(
                session, o, exec_type, cl_ord_id=p.cl_ord_id, orig_cl_ord_id=p.orig_cl_ord_id
            )
        if cfg.amend_delay > 0:
            self.later(cfg.amend_delay, lambda: self._carry_out(session, o, p))
        else:
            self._carry_out(session, o, p)

    def _carry_out(self, session: Session, o: Order, p: Pending) -> None:
        if o.pending is not p:  # done already (by the tick after a restart, say)
            return
        o.pending = None
        if p.kind == "cancel":
            self._do_cancel(session, o, p)
        else:
            self._do_replace(session, o, p)

    def _cancel(self, msg: Message, session: Session) -> None:
        req = OrderCancelRequest.parse(msg)
        o = self.books[session.sid].find(req.orig_cl_ord_id, req.order_id)
        if self._refuse(session, msg, req, o, "1"):
            return
        assert o is not None
        if o.status == OrdStatus.FILLED:  # B.1.c: nothing left to cancel
            self._cancel_reject(session, req, o, "1", 0, "Too late to cancel")
            return
        self._start(session, o, Pending("cancel", req.cl_ord_id, o.cl_ord_id))

    def _do_cancel(self, session: Session, o: Order, p: Pending) -> None:
        if not o.open:
            # B.1.c: filled (or expired) while the cancel was pending
            self._cancel_reject(session, p, o, "1", 0, "Too late to cancel")
            return
        o.orig_cl_ord_id, o.cl_ord_id = o.cl_ord_id, p.cl_ord_id
        o.status = OrdStatus.CANCELED
        self._exec(session, o, ExecType.CANCELED)

    def _replace(self, msg: Message, session: Session) -> None:
        req = OrderCancelReplaceRequest.parse(msg)
        o = self.books[session.sid].find(req.orig_cl_ord_id, req.order_id)
        if self._refuse(session, msg, req, o, "2"):
            return
        assert o is not None
        if req.order_qty is None or req.order_qty <= 0:
            self._cancel_reject(session, req, o, "2", 2, "Order quantity must be positive")
            return
        if req.ord_type not in (OrdType.MARKET, OrdType.LIMIT):
            self._cancel_reject(session, req, o, "2", 2, "Unsupported order type")
            return
        if req.ord_type == OrdType.LIMIT and (req.price is None or req.price <= 0):
            self._cancel_reject(session, req, o, "2", 2, "Limit order needs a positive price")
            return
        if o.status == OrdStatus.FILLED and req.order_qty <= o.cum_qty:
            # C.2.a: a filled order can only be replaced to a larger quantity
            self._cancel_reject(session, req, o, "2", 0, "Too late to replace")
            return
        pending = Pending(
            "replace",
            req.cl_ord_id,
            o.cl_ord_id,
            qty=req.order_qty,
            ord_type=req.ord_type,
            price=req.price if req.ord_type != OrdType.MARKET else None,
            tif=req.time_in_force or o.tif,
        )
        self._start(session, o, pending)

    def _do_replace(self, session: Session, o: Order, p: Pending) -> None:
        assert p.qty is not None
        if o.status in _ENDED_UNFILLED or (o.status == OrdStatus.FILLED and p.qty <= o.cum_qty):
            # expired, or filled while the replace was pending (C.2.a)
            self._cancel_reject(session, p, o, "2", 0, "Too late to replace")
            return
        o.orig_cl_ord_id, o.cl_ord_id = o.cl_ord_id, p.cl_ord_id
        # C.3.b / C.3.c: a quantity at or below what is filled ends the order
        # filled, its quantity amended to the filled quantity; C.1.c: a filled
        # order replaced to a larger quantity works again
        o.qty = max(p.qty, o.cum_qty)
        o.ord_type = p.ord_type or o.ord_type
        o.price = p.price
        if p.tif and p.tif != o.tif:
            o.tif = p.tif
            o.expires_at = (
                self._next_close(self.clock.utcnow()) if o.tif == TimeInForce.DAY else None
            )
        if o.cum_qty >= o.qty:
            o.status = OrdStatus.FILLED
        else:
            o.status = OrdStatus.PARTIALLY_FILLED if o.cum_qty else OrdStatus.NEW
        self._exec(session, o, ExecType.REPLACED)
        if not o.fill_scheduled:  # else its next slice comes when it was due
            self._try_fill(session, o)

    def _status(self, msg: Message, session: Session) -> None:
        req = OrderStatusRequest.parse(msg)
        o = self.books[session.sid].find(req.cl_ord_id, req.order_id)
        if o is None:
            er = ExecutionReport(
                order_id=req.order_id or "NONE",
                exec_id=f"E{self._run}-{next(self._exec_ids)}",
                exec_type=ExecType.ORDER_STATUS,
                ord_status=OrdStatus.REJECTED,
                symbol=req.symbol,
                side=req.side,
                cl_ord_id=req.cl_ord_id,
                ord_rej_reason=5,  # unknown order
                text="Unknown order",
                transact_time=self.clock.utcnow(),
            )
            self._send(session, er.to_message(session.sid.begin_string))
            return
        self._exec(session, o, ExecType.ORDER_STATUS)

    # -------------------------------------------------------------- time
    def on_price_change(self) -> None:
        """Fill what the current prices make marketable: resting limit orders,
        and any open order whose next fill is not scheduled (after a restart)."""
        for sid, book in self.books.items():
            session = self.sessions.get(sid)
            if session is None:
                continue
            for o in book.open_orders():
                if o.fill_scheduled:
                    continue
                ref = self.price(o.symbol)
                if ref is not None and self._marketable(o, ref):
                    self._try_fill(session, o)

    def _expire(self, session: Session, o: Order) -> None:
        p = o.pending
        o.pending = None
        o.status = OrdStatus.EXPIRED
        self._exec(session, o, ExecType.EXPIRED, text="DAY order expired at the close")
        if p is not None:
            response_to = "1" if p.kind == "cancel" else "2"
            self._cancel_reject(session, p, o, response_to, 0, "Order expired")

    def expire_day_orders(self, now: datetime | None = None) -> int:
        """DAY orders still open whose close has come (all of them if ``now``
        is None: the close is now) expire."""
        n = 0
        for sid, book in self.books.items():
            session = self.sessions.get(sid)
            if session is None:
                continue
            for o in book.open_orders():
                if o.tif != TimeInForce.DAY:
                    continue
                if now is not None and (o.expires_at is None or o.expires_at > now):
                    continue
                self._expire(session, o)
                n += 1
        return n

    def on_tick(self) -> None:
        """Called periodically: carry out pending requests that are due, move
        prices, fill what has become marketable, expire DAY orders at the close."""
        now = self.clock.time()
        for sid, book in self.books.items():
            session = self.sessions.get(sid)
            for o in book.pending_orders():
                p = o.pending
                if session is not None and p is not None and p.due <= now:
                    self._carry_out(session, o, p)
        self.walk.tick()
        if self.config.session_end is not None:
            self.expire_day_orders(self.clock.utcnow())
        self.on_price_change()


def build_simulator(
    port: int = 0,
    sender_comp_id: str = "BROKER",
    sessions: list[tuple[str, str]] | None = None,
    config: BrokerConfig | None = None,
    price_source: PriceSource | None = None,
    store_dir: Path | None = None,
    reset_on_logon: bool = True,
    clock: Clock | None = None,
    tick: float = 0.2,
    validate: bool = True,
    host: str = "127.0.0.1",
    state: Path | None = None,
    state_fsync: bool = False,
) -> tuple[Acceptor, SimulatedBroker]:
    """An acceptor for ``sessions`` with the simulated broker behind it; with
    ``state``, the broker's book is kept in that file (``BookFile``) and read
    back from it."""
    book_file = BookFile(state, fsync=state_fsync) if state is not None else None
    broker = SimulatedBroker(config, price_source, clock, book_file=book_file)
    acc = Acceptor(host=host, port=port, tick=tick)
    for begin, target in sessions or [("FIX.4.4", "OMS"), ("FIX.4.2", "OMS42")]:
        settings = SessionSettings(
            begin, sender_comp_id, target, reset_on_logon=reset_on_logon, validate=validate
        )
        store = (
            FileStore(store_dir, f"{begin}-{sender_comp_id}-{target}")
            if store_dir
            else MemoryStore()
        )
        acc.add_session(Session(settings, broker, store, clock=clock))
    return acc, broker


async def run_simulator(acc: Acceptor, broker: SimulatedBroker, price_tick: float = 1.0) -> None:
    async def ticker() -> None:
        while True:
            await asyncio.sleep(price_tick)
            try:
                broker.on_tick()
            except Exception:
                log.exception("simulator tick failed")

    task = asyncio.create_task(ticker())
    try:
        await asyncio.Event().wait()
    finally:
        task.cancel()


def _is_local_date(value: str | None) -> bool:
    """A FIX LocalMktDate (YYYYMMDD)."""
    text = value or ""
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return len(text) == 8 and text.isdigit()


def _parse_time(s: str) -> time:
    try:
        return time.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{s!r} is not a time of day (HH:MM or HH:MM:SS)"
        ) from None


def _parse_zone(s: str) -> str:
    try:
        ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{s!r} is not a time zone (e.g. America/New_York)"
        ) from None
    return s


def _positive(s: str) -> float:
    v = float(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{s!r}: must be more than 0")
    return v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Simulated FIX broker (acceptor)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 inside a container)",
    )
    p.add_argument("--sender-comp-id", default="BROKER", help="our CompID (default BROKER)")
    p.add_argument(
        "--session",
        action="append",
        default=None,
        metavar="BEGIN:TARGET",
        help="session to accept, e.g. FIX.4.4:OMS (repeatable; default FIX.4.4:OMS and FIX.4.2:OMS42)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--partial-fills", type=int, default=1)
    p.add_argument("--fill-interval-ms", type=float, default=0.0)
    p.add_argument("--reject-rate", type=float, default=0.0)
    p.add_argument(
        "--drop-every", type=int, default=0, help="drop the connection every N exec reports"
    )
    p.add_argument(
        "--skip-seq-every", type=int, default=0, help="skip a MsgSeqNum every N messages"
    )
    p.add_argument(
        "--repeat-rate", type=float, default=0.0, help="probability of a repeated exec report"
    )
    p.add_argument(
        "--session-end",
        "--close",
        type=_parse_time,
        default=None,
        help="the close, HH:MM[:SS] in --session-tz: DAY orders expire then",
    )
    p.add_argument(
        "--session-tz",
        type=_parse_zone,
        default="UTC",
        help="time zone of --session-end (default UTC), e.g. America/New_York",
    )
    p.add_argument(
        "--amend-delay-ms",
        type=float,
        default=0.0,
        help="a cancel or replace stays pending this long (Pending acks first)",
    )
    p.add_argument(
        "--price-tick", type=float, default=1.0, help="seconds between random-walk steps"
    )
    p.add_argument(
        "--pending-acks", action="store_true", help="send Pending Cancel/Replace before the outcome"
    )
    p.add_argument(
        "--store-dir", type=Path, default=None, help="file message store (default: memory)"
    )
    p.add_argument(
        "--prices",
        type=Path,
        default=None,
        help='JSON file {"SYMBOL": price} of reference prices, re-read when it changes',
    )
    p.add_argument(
        "--prices-reload",
        type=_positive,
        default=1.0,
        metavar="SECONDS",
        help="how often to look whether --prices has changed (default 1)",
    )
    p.add_argument(
        "--state",
        type=Path,
        default=None,
        metavar="PATH",
        help="keep the order book in this file, read back at start (default: memory only)",
    )
    p.add_argument(
        "--state-fsync",
        action="store_true",
        help="force every --state write to disk (survives a machine crash; slower)",
    )
    p.add_argument("--no-reset-on-logon", action="store_true")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    sessions = []
    for spec in args.session or ["FIX.4.4:OMS", "FIX.4.2:OMS42"]:
        begin, _, target = spec.partition(":")
        if begin not in ("FIX.4.2", "FIX.4.4") or not target:
            p.error(f"bad --session {spec!r} (BEGIN:TARGET with BEGIN FIX.4.2 or FIX.4.4)")
        sessions.append((begin, target))
    config = BrokerConfig(
        latency=args.latency_ms / 1000,
        partial_fills=args.partial_fills,
        fill_interval=args.fill_interval_ms / 1000,
        reject_rate=args.reject_rate,
        drop_every=args.drop_every,
        skip_seq_every=args.skip_seq_every,
        repeat_rate=args.repeat_rate,
        session_end=args.session_end,
        session_tz=args.session_tz,
        pending_acks=args.pending_acks,
        amend_delay=args.amend_delay_ms / 1000,
        seed=args.seed,
    )

    async def _main() -> None:
        acc, broker = build_simulator(
            args.port,
            args.sender_comp_id,
            sessions,
            config,
            price_source=PriceFile(args.prices, reload=args.prices_reload) if args.prices else None,
            store_dir=args.store_dir,
            reset_on_logon=not args.no_reset_on_logon,
            host=args.host,
            state=args.state,
            state_fsync=args.state_fsync,
        )
        await acc.start()
        names = ", ".join(f"{b}:{args.sender_comp_id}<-{t}" for b, t in sessions)
        print(f"simulated broker ready on {args.host}:{acc.port} ({names})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        sim = asyncio.create_task(run_simulator(acc, broker, args.price_tick))
        await stop.wait()
        sim.cancel()
        await acc.stop()
        if broker.book_file is not None:
            broker.book_file.close()

    asyncio.run(_main())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
