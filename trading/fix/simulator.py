"""Simulated broker: a FIX acceptor on the engine that keeps an order book per
session and answers as a broker would.

* market orders fill at a reference price (a seeded random walk per symbol,
  or a price callback so the OMS can feed real prices); limit orders fill
  when marketable, otherwise rest until the price moves through them;
* partial fills (configurable number of slices and interval);
* OrderCancelRequest / OrderCancelReplaceRequest answered per FIX's order
  state change matrices (Canceled / Replaced execution reports, or
  OrderCancelReject "too late" / "unknown order");
* OrderStatusRequest answered with a status ExecutionReport;
* DAY orders expire at the end of the broker's session;
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
from datetime import UTC, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

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
    when it changes (checked at most once a second), so that the process that
    knows the prices (the OMS) can feed a simulator that runs apart from it.
    A symbol not in the file, or a file that is missing or unreadable, gives
    None: the simulator then uses its random walk."""

    def __init__(self, path: Path, clock: Clock | None = None):
        self.path = Path(path)
        self.clock = clock or SystemClock()
        self._prices: dict[str, Decimal] = {}
        self._mtime: float | None = None
        self._checked = float("-inf")

    def _refresh(self) -> None:
        now = self.clock.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            data = json.loads(self.path.read_text())
            self._prices = {str(k): Decimal(str(v)) for k, v in data.items() if Decimal(str(v)) > 0}
            self._mtime = mtime
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
    session_end: time | None = None  # UTC time at which DAY orders expire
    pending_acks: bool = False  # send Pending Cancel / Pending Replace before the outcome
    seed: int = 1


@dataclass
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
    history: list[str] = field(default_factory=list)

    @property
    def leaves(self) -> Decimal:
        if self.status in (OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED):
            return Decimal(0)
        return self.qty - self.cum_qty

    @property
    def avg_px(self) -> Decimal:
        return (
            (self.notional / self.cum_qty).quantize(Decimal("0.000001"))
            if self.cum_qty
            else Decimal(0)
        )

    @property
    def open(self) -> bool:
        return self.status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED, OrdStatus.REPLACED)


class Book:
    """Orders of one session."""

    def __init__(self) -> None:
        self.by_cl: dict[str, Order] = {}
        self.by_id: dict[str, Order] = {}

    def add(self, o: Order) -> None:
        self.by_cl[o.cl_ord_id] = o
        self.by_id[o.order_id] = o

    def find(self, cl_ord_id: str | None, order_id: str | None = None) -> Order | None:
        if order_id and order_id in self.by_id:
            return self.by_id[order_id]
        return self.by_cl.get(cl_ord_id or "")

    def open_orders(self) -> list[Order]:
        return [o for o in self.by_id.values() if o.open]


class SimulatedBroker(Application):
    def __init__(
        self,
        config: BrokerConfig | None = None,
        price_source: PriceSource | None = None,
        clock: Clock | None = None,
        schedule: Callable[[float, Callable[[], None]], None] | None = None,
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
        # OrderIDs and ExecIDs carry when this broker started, so that a
        # restarted simulator never hands out an id it gave before.
        self._run = _base36(int(self.clock.time()))
        self.exec_reports_sent = 0
        self.app_sent = 0
        self.last_expiry: datetime | None = None
        self._handlers = {
            "D": SimulatedBroker._new_order,
            "F": SimulatedBroker._cancel,
            "G": SimulatedBroker._replace,
            "H": SimulatedBroker._status,
        }

    # ----------------------------------------------------------- plumbing
    def on_create(self, session: Session) -> None:
        self.books[session.sid] = Book()
        self.sessions[session.sid] = session

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

    def _exec(self, session: Session, o: Order, exec_type: str, **extra) -> None:
        begin = session.sid.begin_string
        exec_id = f"E{self._run}-{next(self._exec_ids)}"
        if (
            begin > "FIX.4.2"
            and exec_type in _FAST_EXEC_TYPES
            and o.status != OrdStatus.REPLACED
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
                ord_status=o.status,
                symbol=o.symbol,
                side=o.side,
                leaves_qty=o.leaves,
                cum_qty=o.cum_qty,
                avg_px=o.avg_px,
                cl_ord_id=o.cl_ord_id,
                orig_cl_ord_id=o.orig_cl_ord_id,
                order_qty=o.qty,
                ord_type=o.ord_type,
                price=o.price,
                time_in_force=o.tif,
                account=o.account,
                transact_time=self.clock.utcnow(),
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
            (150, exec_type),
            (151, fd(o.leaves)),
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

    def _new_order(self, msg: Message, session: Session) -> None:
        # the fields the book uses, read as NewOrderSingle.parse reads them
        # (an empty value counts as absent) without building the typed object
        get = msg.get
        cl_ord_id = get(11) or ""
        qty = get(38)
        price = get(44)
        book = self.books[session.sid]
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
        )
        reason = None
        if cl_ord_id in book.by_cl:
            reason, text = 6, "Duplicate ClOrdID"
        elif o.qty <= 0:
            reason, text = 0, "Order quantity must be positive"
        elif o.ord_type not in (OrdType.MARKET, OrdType.LIMIT):
            reason, text = 0, "Unsupported order type"
        elif o.ord_type == OrdType.LIMIT and (o.price is None or o.price <= 0):
            reason, text = 0, "Limit order needs a positive price"
        elif self.config.reject_rate and self.rng.random() < self.config.reject_rate:
            reason, text = 0, "Rejected by simulator (reject rate)"
        if reason is not None:
            o.status = OrdStatus.REJECTED
            if cl_ord_id not in book.by_cl:
                book.add(o)
            self._exec(session, o, ExecType.REJECTED, ord_rej_reason=reason, text=text)
            return
        book.add(o)
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
        self._exec(session, o, ExecType.TRADE, last_qty=qty, last_px=px)
        if o.open and o.leaves > 0:
            if o.tif == TimeInForce.IOC:
                o.status = OrdStatus.CANCELED
                self._exec(session, o, ExecType.CANCELED, text="IOC remainder canceled")
                return
            self.later(self.config.fill_interval, lambda: self._try_fill(session, o))

    def _cancel_reject(self, session, req, o: Order | None, response_to: str, reason: int, text):
        rej = OrderCancelReject(
            order_id=o.order_id if o else "NONE",
            cl_ord_id=req.cl_ord_id,
            orig_cl_ord_id=req.orig_cl_ord_id,
            ord_status=o.status if o else OrdStatus.REJECTED,
            cxl_rej_response_to=response_to,
            cxl_rej_reason=reason,
            text=text,
            transact_time=self.clock.utcnow(),
        )
        self._send(session, rej.to_message(session.sid.begin_string))

    def _cancel(self, msg: Message, session: Session) -> None:
        req = OrderCancelRequest.parse(msg)
        book = self.books[session.sid]
        o = book.find(req.orig_cl_ord_id, req.order_id)
        if o is None:
            self._cancel_reject(session, req, None, "1", 1, "Unknown order")
        elif not o.open:
            self._cancel_reject(session, req, o, "1", 0, "Too late to cancel")
        elif req.cl_ord_id in book.by_cl:
            self._cancel_reject(session, req, o, "1", 0, "Duplicate ClOrdID")
        else:
            if self.config.pending_acks:
                self._pending(session, o, req, OrdStatus.PENDING_CANCEL, ExecType.PENDING_CANCEL)
            o.orig_cl_ord_id = o.cl_ord_id
            o.cl_ord_id = req.cl_ord_id
            book.by_cl[o.cl_ord_id] = o
            o.status = OrdStatus.CANCELED
            self._exec(session, o, ExecType.CANCELED)

    def _pending(self, session: Session, o: Order, req, status: str, exec_type: str) -> None:
        """Pending Cancel / Pending Replace: echo the request's ClOrdIDs, keep the state."""
        saved = (o.status, o.cl_ord_id, o.orig_cl_ord_id)
        o.status, o.cl_ord_id, o.orig_cl_ord_id = status, req.cl_ord_id, o.cl_ord_id
        try:
            self._exec(session, o, exec_type)
        finally:
            o.status, o.cl_ord_id, o.orig_cl_ord_id = saved

    def _replace(self, msg: Message, session: Session) -> None:
        req = OrderCancelReplaceRequest.parse(msg)
        book = self.books[session.sid]
        o = book.find(req.orig_cl_ord_id, req.order_id)
        if o is None:
            self._cancel_reject(session, req, None, "2", 1, "Unknown order")
            return
        if not o.open:
            self._cancel_reject(session, req, o, "2", 0, "Too late to replace")
            return
        if req.cl_ord_id in book.by_cl:
            self._cancel_reject(session, req, o, "2", 0, "Duplicate ClOrdID")
            return
        if req.order_qty <= o.cum_qty:
            self._cancel_reject(session, req, o, "2", 0, "New quantity not above filled quantity")
            return
        if req.ord_type == OrdType.LIMIT and (req.price is None or req.price <= 0):
            self._cancel_reject(session, req, o, "2", 0, "Limit order needs a positive price")
            return
        if self.config.pending_acks:
            self._pending(session, o, req, OrdStatus.PENDING_REPLACE, ExecType.PENDING_REPLACE)
        o.orig_cl_ord_id = o.cl_ord_id
        o.cl_ord_id = req.cl_ord_id
        book.by_cl[o.cl_ord_id] = o
        o.qty = req.order_qty
        o.ord_type = req.ord_type
        o.price = req.price if req.ord_type != OrdType.MARKET else None
        if req.time_in_force:
            o.tif = req.time_in_force
        if session.sid.begin_string <= "FIX.4.2":
            o.status = OrdStatus.REPLACED
        else:
            o.status = OrdStatus.PARTIALLY_FILLED if o.cum_qty else OrdStatus.NEW
        self._exec(session, o, ExecType.REPLACED)
        if session.sid.begin_string <= "FIX.4.2":
            o.status = OrdStatus.PARTIALLY_FILLED if o.cum_qty else OrdStatus.NEW
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
        for sid, book in self.books.items():
            session = self.sessions.get(sid)
            if session is None:
                continue
            for o in book.open_orders():
                if o.ord_type == OrdType.LIMIT and o.fills_left >= 1:
                    ref = self.price(o.symbol)
                    if ref is not None and self._marketable(o, ref):
                        self._try_fill(session, o)

    def expire_day_orders(self) -> int:
        """End of the broker's session: DAY orders still open expire."""
        n = 0
        for sid, book in self.books.items():
            session = self.sessions.get(sid)
            for o in book.open_orders():
                if o.tif == TimeInForce.DAY and session is not None:
                    o.status = OrdStatus.EXPIRED
                    self._exec(session, o, ExecType.EXPIRED, text="DAY order expired")
                    n += 1
        return n

    def on_tick(self) -> None:
        """Called periodically: move prices, fill resting orders, expire DAY orders."""
        self.walk.tick()
        self.on_price_change()
        end = self.config.session_end
        if end is not None:
            now = self.clock.utcnow()
            today_end = datetime.combine(now.date(), end, tzinfo=UTC)
            if now >= today_end and (self.last_expiry is None or self.last_expiry < today_end):
                self.last_expiry = now
                self.expire_day_orders()


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
) -> tuple[Acceptor, SimulatedBroker]:
    broker = SimulatedBroker(config, price_source, clock)
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


def _parse_time(s: str) -> time:
    return time.fromisoformat(s)


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
        "--session-end", type=_parse_time, default=None, help="UTC HH:MM:SS when DAY orders expire"
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
        pending_acks=args.pending_acks,
        seed=args.seed,
    )

    async def _main() -> None:
        acc, broker = build_simulator(
            args.port,
            args.sender_comp_id,
            sessions,
            config,
            price_source=PriceFile(args.prices) if args.prices else None,
            store_dir=args.store_dir,
            reset_on_logon=not args.no_reset_on_logon,
            host=args.host,
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

    asyncio.run(_main())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
