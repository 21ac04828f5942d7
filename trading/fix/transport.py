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


class StreamTransport:
    """Adapts an asyncio StreamWriter to the session's transport protocol.

    Messages written during one turn of the event loop are coalesced into a
    single socket write at the end of that turn (fewer system calls under
    load, no added latency)."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.closed = False
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        _set_nodelay(writer)

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending and not self.closed:
            data = b"".join(self._pending)
            self._pending.clear()
            with contextlib.suppress(Exception):
                self.writer.write(data)

    def close(self) -> None:
        if not self.closed:
            self._flush()
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()


def _set_nodelay(writer: asyncio.StreamWriter) -> None:
    """No Nagle delay: a FIX message goes out as soon as it is written.
    (asyncio's own TCP transports already set this; made explicit here.)"""
    sock = writer.get_extra_info("socket")
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
    ):
        self.logon_timeout = logon_timeout  # a connection must log on within this time
        self.sessions: dict[SessionID, Session] = {}
        for s in sessions:
            self.add_session(s)
        self.host = host
        self.port = port
        self.tick = tick
        self._server: asyncio.base_events.Server | None = None
        self._timer: asyncio.Task | None = None
        self._conns: set[StreamTransport] = set()

    def add_session(self, session: Session) -> None:
        self.sessions[session.sid] = session

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = StreamTransport(writer)
        self._conns.add(conn)
        framer = Framer()
        session: Session | None = None
        try:
            while not conn.closed:
                if session is None:
                    try:
                        data = await asyncio.wait_for(reader.read(65536), self.logon_timeout)
                    except TimeoutError:
                        log.info("no logon within %ss; disconnecting", self.logon_timeout)
                        return
                else:
                    data = await reader.read(65536)
                if not data:
                    break
                for frame in framer.feed(data):
                    if session is None:
                        session = self._route(frame)
                        if session is None:
                            log.info("no session for first message; disconnecting")
                            return
                        if session.transport is not None:
                            log.info("%s already connected; refusing", session.sid)
                            session = None
                            return
                        session.connect(conn)
                    session.on_frame(frame)
                    if conn.closed or session.transport is not conn:
                        return
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception("acceptor connection failed")
        finally:
            if session is not None and session.transport is conn:
                session.connection_lost()
            conn.close()
            self._conns.discard(conn)


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
    ):
        self.session = session
        self.host = host
        self.port = port
        self.tick = tick
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        self.connects = 0
        self._task: asyncio.Task | None = None
        self._timer: asyncio.Task | None = None
        self._stopping = False
        self._conn: StreamTransport | None = None
        self.logged_on = asyncio.Event()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())
        self._timer = asyncio.create_task(_timer(lambda: [self.session], self.tick))

    async def _run(self) -> None:
        delays = backoff_delays(self.reconnect_base, self.reconnect_cap)
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                log.info("%s: connect failed: %s", self.session.sid, exc)
                await asyncio.sleep(next(delays))
                continue
            self.connects += 1
            conn = StreamTransport(writer)
            self._conn = conn
            framer = Framer()
            self.session.connect(conn)
            try:
                while not conn.closed:
                    data = await reader.read(65536)
                    if not data:
                        break
                    for frame in framer.feed(data):
                        self.session.on_frame(frame)
                        if self.session.logged_on:
                            if not self.logged_on.is_set():
                                delays = backoff_delays(self.reconnect_base, self.reconnect_cap)
                            self.logged_on.set()
                        if self.session.transport is not conn:
                            break
            except (ConnectionError, OSError):
                pass
            except Exception:
                log.exception("%s: initiator connection failed", self.session.sid)
            finally:
                if self.session.transport is conn:
                    self.session.connection_lost()
                conn.close()
                self.logged_on.clear()
            if not self._stopping:
                await asyncio.sleep(next(delays))

    async def wait_logged_on(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.logged_on.wait(), timeout)

    def drop_connection(self) -> None:
        """Close the socket abruptly (tests, fault injection)."""
        if self._conn is not None:
            self._conn.close()

    async def stop(self, logout_wait: float = 2.0) -> None:
        self._stopping = True
        s = self.session
        if s.logged_on:
            s.logout()
            loop = asyncio.get_running_loop()
            end = loop.time() + logout_wait
            while s.transport is not None and loop.time() < end:
                await asyncio.sleep(0.02)
        s.disconnect("Initiator stopping")
        for t in (self._task, self._timer):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
