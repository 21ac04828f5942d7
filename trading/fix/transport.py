"""asyncio transport for FIX sessions: an acceptor serving many sessions on
one port (routed by CompIDs), and an initiator that reconnects with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable, Iterator

from .codec import Framer, peek_header
from .session import Session, SessionID

log = logging.getLogger("trading.fix.transport")

#: What a connection has pending is written out as soon as it reaches this
#: many bytes, so that the peer starts on the first messages of a burst while
#: the rest are still being produced.  Without it, a burst answered in one
#: read (64 orders in, 128 execution reports out) went out in one write at
#: the end, and the two ends of a session took turns instead of overlapping.
FLUSH_BYTES = 4096


class Connection(asyncio.Protocol):
    """One TCP connection of a FIX session, as an asyncio protocol.

    Bytes go straight from the event loop to the framer and the session, with
    no stream reader and no task switch per read.  What the session writes
    while a read is being handled goes out in one socket write at the end of
    it; what it writes at other times (an application sending an order, a
    timer) is coalesced until the end of that turn of the event loop.

    Subclasses bind the connection to a session (``_bind``) and decide what
    happens after each frame.  ``closed`` resolves when the connection is gone.
    """

    def __init__(self, flush_bytes: int = FLUSH_BYTES) -> None:
        self.flush_bytes = flush_bytes
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.closed = False
        self.done: asyncio.Future[None] = self._loop.create_future()
        self._framer = Framer()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._reading = False
        self._held = 0
        self._close_when_released = False

    # -- the session's transport protocol (send / close) ----------------------
    def send(self, data: bytes) -> None:
        if self.closed:
            return
        pending = self._pending
        if not pending and not self._reading:
            self._loop.call_soon(self._flush)
        pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self.flush_bytes and not self._held:
            self._flush()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Nothing written inside the block reaches the socket before it ends,
        and if it raises, what it wrote is dropped.  A gateway sends inside a
        database transaction this way: the peer sees only committed messages."""
        self._held += 1
        mark = len(self._pending)
        try:
            yield
        except BaseException:
            del self._pending[mark:]
            self._pending_bytes = sum(map(len, self._pending))
            raise
        finally:
            self._held -= 1
            if not self._held and self._close_when_released:
                # closed while held: what the block kept goes out first, then the close
                self._close_when_released = False
                self.close()
            elif not self._held and self._pending and not self._reading:
                self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._pending and not self.closed and not self._held:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            with contextlib.suppress(Exception):
                self.transport.write(data)

    def close(self) -> None:
        if not self.closed and self._held:
            # inside a held block (a transaction not yet committed): its bytes are not
            # dropped for the close, nor sent before the block ends; the close waits
            self._close_when_released = True
            return
        if not self.closed:
            self._flush()
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def get_extra_info(self, name: str, default=None):
        return default if self.transport is None else self.transport.get_extra_info(name, default)

    # -- asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        self._reading = True
        try:
            frames = self._framer.feed(data)
            with self._read_scope():
                for frame in frames:
                    if not self._frame(frame):
                        self.close()
                        break
        except Exception:
            log.exception("%s: connection failed", self.session.sid if self.session else "FIX")
            self.close()
        finally:
            self._reading = False
            self._flush()

    def _read_scope(self) -> contextlib.AbstractContextManager:
        """The session's application's scope for one read (`Application.reading`)."""
        s = self.session
        reading = getattr(getattr(s, "app", None), "reading", None)
        return reading(s) if reading is not None else contextlib.nullcontext()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pending.clear()
        s = self.session
        if s is not None and s.transport is self:
            try:
                s.connection_lost()
            except Exception:
                log.exception("%s: connection_lost failed", s.sid)
        if not self.done.done():
            self.done.set_result(None)

    def _frame(self, frame: bytes) -> bool:
        """Hand one frame to the session; False closes the connection."""
        s = self.session
        if s is None:
            return False
        s.on_frame(frame)
        return not self.closed and s.transport is self


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    """No Nagle delay: a FIX message goes out as soon as it is written.
    (asyncio's own TCP transports already set this; made explicit here.)"""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _timer(sessions: Callable[[], Iterable[Session]], tick: float) -> None:
    while True:
        await asyncio.sleep(tick)
        for s in list(sessions()):
            try:
                s.on_timer()
            except Exception:
                log.exception("timer failed for %s", s.sid)


class _AcceptedConnection(Connection):
    """A connection to the acceptor: bound to a session by its first message,
    which must be a Logon for a configured session not already connected;
    closed if that message does not come within the acceptor's logon timeout."""

    def __init__(self, acceptor: Acceptor) -> None:
        super().__init__(acceptor.flush_bytes)
        self.acceptor = acceptor
        self._logon_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.acceptor._conns.add(self)
        self._logon_timer = self._loop.call_later(self.acceptor.logon_timeout, self._no_logon)

    def _no_logon(self) -> None:
        if self.session is None and not self.closed:
            log.info("no logon within %ss; disconnecting", self.acceptor.logon_timeout)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._logon_timer is not None:
            self._logon_timer.cancel()
        self.acceptor._conns.discard(self)
        super().connection_lost(exc)

    def _frame(self, frame: bytes) -> bool:
        if self.session is None:
            session = self.acceptor._route(frame)
            if session is None:
                log.info("no session for first message; disconnecting")
                return False
            if session.transport is not None:
                log.info("%s already connected; refusing", session.sid)
                return False
            if self._logon_timer is not None:
                self._logon_timer.cancel()
                self._logon_timer = None
            self.session = session
            session.connect(self)
        return super()._frame(frame)


class Acceptor:
    """Listens on ``host:port``; a connection is bound to the session whose
    CompIDs and BeginString match its first message (which must be a Logon)."""

    def __init__(
        self,
        sessions: Iterable[Session] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        tick: float = 0.2,
        logon_timeout: float = 10.0,
        flush_bytes: int = FLUSH_BYTES,
    ):
        self.logon_timeout = logon_timeout  # a connection must log on within this time
        self.flush_bytes = flush_bytes
        self.sessions: dict[SessionID, Session] = {}
        for s in sessions:
            self.add_session(s)
        self.host = host
        self.port = port
        self.tick = tick
        self._server: asyncio.base_events.Server | None = None
        self._timer: asyncio.Task | None = None
        self._conns: set[Connection] = set()

    def add_session(self, session: Session) -> None:
        self.sessions[session.sid] = session

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _AcceptedConnection(self), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._timer = asyncio.create_task(_timer(lambda: self.sessions.values(), self.tick))

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for s in self.sessions.values():
            s.disconnect("Acceptor stopping")
        for c in list(self._conns):
            c.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    def _route(self, frame: bytes) -> Session | None:
        h = peek_header(frame)
        if h.get(35) != "A":
            return None
        sid = SessionID(h.get(8, ""), h.get(56, ""), h.get(49, ""))
        return self.sessions.get(sid)


class _InitiatedConnection(Connection):
    def __init__(self, initiator: Initiator) -> None:
        super().__init__(initiator.flush_bytes)
        self.initiator = initiator
        self.session = initiator.session

    def _frame(self, frame: bytes) -> bool:
        keep = super()._frame(frame)
        if self.session.logged_on and not self.initiator.logged_on.is_set():
            self.initiator._on_logged_on()
        return keep


def backoff_delays(base: float = 0.5, cap: float = 30.0, factor: float = 2.0) -> Iterator[float]:
    """Reconnect delays: base, base*factor, ... capped at ``cap``."""
    d = base
    while True:
        yield d
        d = min(cap, d * factor)


class Initiator:
    """Connects a session to ``host:port`` and keeps it connected."""

    def __init__(
        self,
        session: Session,
        host: str = "127.0.0.1",
        port: int = 0,
        tick: float = 0.2,
        reconnect_base: float = 0.5,
        reconnect_cap: float = 30.0,
        flush_bytes: int = FLUSH_BYTES,
    ):
        self.session = session
        self.flush_bytes = flush_bytes
        self.host = host
        self.port = port
        self.tick = tick
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        self.connects = 0
        self._task: asyncio.Task | None = None
        self._timer: asyncio.Task | None = None
        self._stopping = False
        self._conn: Connection | None = None
        self._delays = backoff_delays(reconnect_base, reconnect_cap)
        self._logged_on_at: float | None = None
        self.logged_on = asyncio.Event()
        self._running = asyncio.Event()  # cleared while paused
        self._running.set()
        #: the backoff starts again from ``reconnect_base`` only after a
        #: connection stayed logged on this long (a peer that logs us on and
        #: then drops us at once is not retried at full speed forever)
        self.stable_after = max(10.0, 2 * reconnect_cap)

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())
        self._timer = asyncio.create_task(_timer(lambda: [self.session], self.tick))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._delays = backoff_delays(self.reconnect_base, self.reconnect_cap)
        while not self._stopping:
            await self._running.wait()
            if self._stopping:
                break
            conn = _InitiatedConnection(self)
            try:
                await loop.create_connection(lambda c=conn: c, self.host, self.port)
            except Exception as exc:  # refused, unreachable, or a bad address: retry
                log.info("%s: connect failed: %r", self.session.sid, exc)
                await asyncio.sleep(next(self._delays))
                continue
            if self._stopping or not self._running.is_set():
                conn.close()  # paused or stopped while the connection was being made
                continue
            self.connects += 1
            self._conn = conn
            self._logged_on_at = None
            try:
                if not conn.closed:
                    self.session.connect(conn)
                await conn.done
            except Exception:  # the session or its store failed: retry, never give up
                log.exception("%s: connection failed", self.session.sid)
            finally:
                if self.session.transport is conn:
                    try:
                        self.session.connection_lost()
                    except Exception:
                        log.exception("%s: connection_lost failed", self.session.sid)
                conn.close()
                self.logged_on.clear()
            if (
                self._logged_on_at is not None
                and loop.time() - self._logged_on_at >= self.stable_after
            ):
                self._delays = backoff_delays(self.reconnect_base, self.reconnect_cap)
            if not self._stopping:
                await asyncio.sleep(next(self._delays))

    def _on_logged_on(self) -> None:
        self._logged_on_at = asyncio.get_running_loop().time()
        self.logged_on.set()

    def pause(self, reason: str = "Initiator paused") -> None:
        """Disconnect now and stay disconnected until ``resume()``."""
        self._running.clear()
        self.session.disconnect(reason)

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def restart_if_failed(self) -> bool:
        """Start the connecting task again if it stopped by itself (it catches
        what it expects; this is for what nobody expected). True if restarted."""
        failed = self.failed
        if failed is None:
            return False
        log.error("%s: initiator stopped (%r); starting it again", self.session.sid, failed)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return True

    @property
    def failed(self) -> BaseException | None:
        """What stopped the connecting task, if it stopped by itself."""
        t = self._task
        if self._stopping or t is None or not t.done() or t.cancelled():
            return None
        return t.exception() or RuntimeError("initiator task ended")

    async def wait_logged_on(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.logged_on.wait(), timeout)

    def drop_connection(self) -> None:
        """Close the socket abruptly (tests, fault injection)."""
        if self._conn is not None:
            self._conn.close()

    async def stop(self, logout_wait: float = 2.0) -> None:
        self._stopping = True
        self._running.set()
        s = self.session
        if s.logged_on:
            try:
                s.logout()
            except Exception:
                log.exception("%s: logout failed", s.sid)
            loop = asyncio.get_running_loop()
            end = loop.time() + logout_wait
            while s.transport is not None and loop.time() < end:
                await asyncio.sleep(0.02)
        try:
            s.disconnect("Initiator stopping")
        except Exception:
            log.exception("%s: disconnect failed", s.sid)
        for t in (self._task, self._timer):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
