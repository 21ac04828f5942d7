"""asyncio transport over loopback: our initiator against our simulated broker."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from itertools import islice

import pytest

from trading.fix.messages import ExecutionReport, NewOrderSingle, OrdType
from trading.fix.session import Application, Session, SessionSettings
from trading.fix.simulator import build_simulator
from trading.fix.store import FileStore, MemoryStore
from trading.fix.transport import Initiator, backoff_delays

from .conftest import start_listener


class Client(Application):
    def __init__(self):
        self.reports: list[ExecutionReport] = []
        self.event = asyncio.Event()

    def from_app(self, msg, session):
        if msg.msg_type == "8":
            self.reports.append(ExecutionReport.parse(msg))
            self.event.set()

    async def wait_for(self, n, timeout=10):
        async def go():
            while len(self.reports) < n:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(go(), timeout)


def client(port, target="OMS", begin="FIX.4.4", store=None, **kw):
    app = Client()
    s = Session(
        SessionSettings(begin, target, "BROKER", initiator=True, heartbeat_interval=30, **kw),
        app,
        store or MemoryStore(),
    )
    return Initiator(s, port=port, reconnect_base=0.05, reconnect_cap=0.2), app


def order(cl, qty=10):
    return NewOrderSingle(
        cl_ord_id=cl, symbol="IBM", order_qty=Decimal(qty), ord_type=OrdType.MARKET
    )


def test_backoff_delays():
    assert list(islice(backoff_delays(0.5, 4), 6)) == [0.5, 1, 2, 4, 4, 4]


def test_initiator_trades_with_simulator_and_logs_out():
    async def go():
        acc, broker = build_simulator(0, sessions=[("FIX.4.4", "OMS")])
        await acc.start()
        ini, app = client(acc.port)
        await ini.start()
        await ini.wait_logged_on()
        ini.session.send(order("c1").to_message())
        await app.wait_for(2)
        await ini.stop()
        srv = acc.sessions[next(iter(acc.sessions))]
        await asyncio.sleep(0.05)
        await acc.stop()
        return app, srv, ini

    app, srv, ini = asyncio.run(go())
    assert [r.exec_type for r in app.reports] == ["0", "F"]
    assert not srv.connected and "Received logout request" in srv.events
    assert "Received logout response" in ini.session.events


def test_one_port_many_sessions():
    async def go():
        names = [f"C{i}" for i in range(4)]
        acc, broker = build_simulator(
            0, sessions=[("FIX.4.4", n) for n in names] + [("FIX.4.2", "C42")]
        )
        await acc.start()
        clients = [client(acc.port, n) for n in names] + [client(acc.port, "C42", "FIX.4.2")]
        for ini, _ in clients:
            await ini.start()
        for ini, _ in clients:
            await ini.wait_logged_on()
        for i, (ini, _) in enumerate(clients):
            ini.session.send(order(f"o{i}").to_message(ini.session.sid.begin_string))
        for _, app in clients:
            await app.wait_for(2)
        # a second connection for a session already logged on is refused
        dup, _ = client(acc.port, "C0")
        await dup.start()
        await asyncio.sleep(0.3)
        refused = not dup.session.logged_on
        await dup.stop()
        for ini, _ in clients:
            await ini.stop()
        await acc.stop()
        return clients, refused

    clients, refused = asyncio.run(go())
    assert all(len(app.reports) == 2 for _, app in clients)
    assert refused


def test_reconnect_and_resend_after_connection_drop(tmp_path):
    async def go():
        acc, broker = build_simulator(0, sessions=[("FIX.4.4", "OMS")], reset_on_logon=False)
        await acc.start()
        ini, app = client(acc.port, store=FileStore(tmp_path, "oms"))
        await ini.start()
        await ini.wait_logged_on()
        ini.session.send(order("a").to_message())
        await app.wait_for(2)
        srv = next(iter(acc.sessions.values()))
        srv.disconnect("test: drop")
        await asyncio.sleep(0.01)
        # sent while disconnected: stored, delivered after reconnect through resend
        ini.session.send(order("b").to_message())
        await ini.wait_logged_on()
        await app.wait_for(4)
        await ini.stop()
        await acc.stop()
        return ini, app

    ini, app = asyncio.run(go())
    assert ini.connects >= 2
    assert [r.cl_ord_id for r in app.reports] == ["a", "a", "b", "b"]
    assert len({r.exec_id for r in app.reports}) == 4


def test_simulator_cli_runs_standalone():
    async def go():
        proc, port = await start_listener(
            "-m",
            "trading.fix.simulator",
            "--port",
            "0",
            "--session",
            "FIX.4.4:DEMO",
            "--partial-fills",
            "2",
            "--latency-ms",
            "1",
        )
        try:
            ini, app = client(port, "DEMO")
            await ini.start()
            await ini.wait_logged_on()
            ini.session.send(order("z", 10).to_message())
            await app.wait_for(3)
            await ini.stop()
            return app
        finally:
            proc.terminate()
            await proc.wait()

    app = asyncio.run(go())
    assert [r.ord_status for r in app.reports] == ["0", "1", "2"]


def test_acceptor_drops_connection_that_never_logs_on():
    async def go():
        acc, broker = build_simulator(0, sessions=[("FIX.4.4", "OMS")])
        acc.logon_timeout = 0.2
        await acc.start()
        r, w = await asyncio.open_connection("127.0.0.1", acc.port)
        data = await asyncio.wait_for(r.read(100), 10)  # EOF once the acceptor gives up
        w.close()
        await acc.stop()
        return data

    assert asyncio.run(go()) == b""


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_simulator_cli_host_option(host):
    """``--host`` chooses the listening address (0.0.0.0 inside a container);
    either way an initiator on loopback trades with it."""
    import os
    import re
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]

    async def go():
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["PYTHONPATH"] = str(repo)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "trading.fix.simulator",
            "--host",
            host,
            "--port",
            "0",
            "--session",
            "FIX.4.4:DEMO",
            env=env,
            cwd=str(repo),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            m = re.search(rb"ready on ([0-9.]+):(\d+)", line)
            assert m is not None, line
            assert m.group(1).decode() == host
            ini, app = client(int(m.group(2)), "DEMO")
            await ini.start()
            await ini.wait_logged_on()
            ini.session.send(order("h", 10).to_message())
            await app.wait_for(2)
            await ini.stop()
            return app
        finally:
            proc.terminate()
            await proc.wait()

    app = asyncio.run(go())
    assert [r.ord_status for r in app.reports] == ["0", "2"]


def test_connections_use_tcp_nodelay():
    import socket

    async def go():
        acc, broker = build_simulator(0, sessions=[("FIX.4.4", "OMS")])
        await acc.start()
        ini, app = client(acc.port, "OMS")
        await ini.start()
        await ini.wait_logged_on()
        sock = ini._conn.get_extra_info("socket")
        flags = [sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)]
        for conn in acc._conns:
            s = conn.get_extra_info("socket")
            flags.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        await ini.stop()
        await acc.stop()
        return flags

    flags = asyncio.run(go())
    assert len(flags) == 2 and all(flags)


class RecordingTransport(asyncio.Transport):
    """An asyncio transport that keeps what is written (no socket)."""

    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data):
        self.writes.append(bytes(data))

    def close(self):
        self.closed = True

    def get_extra_info(self, name, default=None):
        return default


def _connected_pair(flush_bytes=4096):
    """An initiator session on a Connection with a recording transport, logged
    on to a simulator session fed by hand."""
    from trading.fix.codec import Framer
    from trading.fix.simulator import SimulatedBroker
    from trading.fix.transport import Connection

    conn = Connection(flush_bytes)
    wire = RecordingTransport()
    conn.connection_made(wire)
    broker_app = SimulatedBroker()
    broker = Session(SessionSettings("FIX.4.4", "BROKER", "OMS"), broker_app)
    conn.session = broker
    broker.connect(conn)
    ini = Session(
        SessionSettings("FIX.4.4", "OMS", "BROKER", initiator=True), Application(), MemoryStore()
    )

    class Buffer:
        def __init__(self):
            self.data = []

        def send(self, b):
            self.data.append(b)

        def close(self):
            pass

    out = Buffer()
    ini.connect(out)  # sends the Logon
    conn.data_received(b"".join(out.data))
    out.data.clear()
    for frame in Framer().feed(b"".join(wire.writes)):
        ini.on_frame(frame)
    wire.writes.clear()
    assert ini.logged_on and broker.logged_on
    return conn, wire, ini, out


def test_a_burst_read_is_answered_in_several_writes_as_it_is_produced():
    """64 orders arriving in one read: the execution reports go out in writes
    of about ``flush_bytes`` while the rest are still being produced, so the
    peer can start on them (the two ends overlap instead of taking turns)."""
    from trading.fix.codec import Framer

    async def go():
        conn, wire, ini, out = _connected_pair(flush_bytes=4096)
        for i in range(64):
            ini.send(order(f"C{i}").to_message())
        conn.data_received(b"".join(out.data))
        return wire.writes

    writes = asyncio.run(go())
    frames = [f for w in writes for f in Framer().feed(w)]
    assert len(frames) == 128  # New + Fill for each order, nothing lost
    assert len(writes) > 3
    assert all(len(w) < 4096 + 512 for w in writes)
    assert all(w.endswith(b"\x01") and w.startswith(b"8=FIX.4.4\x01") for w in writes)


def test_sends_outside_a_read_are_coalesced_until_the_end_of_the_turn():
    async def go():
        conn, wire, ini, out = _connected_pair()
        broker = conn.session
        for _ in range(3):
            broker.generate_heartbeat()
        before = list(wire.writes)
        await asyncio.sleep(0)  # the end of this turn of the event loop
        return before, wire.writes

    before, after = asyncio.run(go())
    assert before == []
    assert len(after) == 1 and after[0].count(b"\x0135=0\x01") == 3


def test_a_large_burst_outside_a_read_is_written_as_it_grows():
    async def go():
        conn, wire, ini, out = _connected_pair(flush_bytes=1024)
        for _ in range(100):  # about 60 bytes each
            conn.session.generate_heartbeat()
        during = len(wire.writes)
        await asyncio.sleep(0)
        return during, wire.writes

    during, writes = asyncio.run(go())
    assert during >= 3
    assert b"".join(writes).count(b"\x0135=0\x01") == 100


def test_held_writes_wait_for_the_end_of_the_block_and_vanish_if_it_fails():
    async def go():
        conn, wire, ini, out = _connected_pair(flush_bytes=200)
        broker = conn.session
        with conn.held():
            for _ in range(10):  # well over flush_bytes
                broker.generate_heartbeat()
            during = list(wire.writes)
        await asyncio.sleep(0)
        after_commit = b"".join(wire.writes).count(b"\x0135=0\x01")
        wire.writes.clear()
        with pytest.raises(RuntimeError), conn.held():
            broker.generate_heartbeat()
            raise RuntimeError("rolled back")
        await asyncio.sleep(0)
        return during, after_commit, wire.writes

    during, after_commit, after_rollback = asyncio.run(go())
    assert during == []
    assert after_commit == 10
    assert after_rollback == []


def test_initiator_keeps_trying_when_its_session_fails_while_connecting():
    class FlakyStore(MemoryStore):
        failures = 2

        def incr_sender(self):
            if self.failures:
                self.failures -= 1
                raise OSError("disk unavailable")  # writing the Logon's number fails
            super().incr_sender()

    async def go():
        acc, broker = build_simulator(0, sessions=[("FIX.4.4", "OMS")])
        await acc.start()
        ini, app = client(acc.port, "OMS", store=FlakyStore())
        await ini.start()
        await ini.wait_logged_on(10)
        connects = ini.connects
        await ini.stop()
        await acc.stop()
        return connects, ini.failed

    connects, failed = asyncio.run(go())
    assert connects == 3 and failed is None


def test_a_paused_initiator_stays_away_until_resumed():
    async def go():
        acc, broker = build_simulator(0, sessions=[("FIX.4.4", "OMS")], reset_on_logon=False)
        await acc.start()
        ini, app = client(acc.port, "OMS")
        await ini.start()
        await ini.wait_logged_on()
        ini.pause("maintenance")
        await asyncio.sleep(0.5)  # several reconnect delays (0.05-0.2 s)
        away = (ini.session.connected, ini.connects, ini.paused)
        ini.resume()
        await ini.wait_logged_on()
        back = ini.connects
        await ini.stop()
        await acc.stop()
        return away, back

    away, back = asyncio.run(go())
    assert away == (False, 1, True)
    assert back == 2


def test_a_pause_while_the_connection_is_being_made_keeps_it_from_logging_on():
    async def go():
        acc, broker = build_simulator(0, sessions=[("FIX.4.4", "OMS")], reset_on_logon=False)
        await acc.start()
        ini, app = client(acc.port, "OMS")
        loop = asyncio.get_running_loop()
        real = loop.create_connection

        async def connect_and_pause_meanwhile(*args, **kwargs):
            ini.pause("paused during connect")
            return await real(*args, **kwargs)

        loop.create_connection = connect_and_pause_meanwhile
        await ini.start()
        await asyncio.sleep(0.3)
        loop.create_connection = real
        state = (ini.session.connected, ini.session.logged_on, ini.connects)
        await ini.stop()
        await acc.stop()
        return state

    assert asyncio.run(go()) == (False, False, 0)


class _Socket:
    """A stand-in asyncio transport: keeps what is written and whether it was closed."""

    def __init__(self):
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after the close"
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name, default=None):
        return default


def test_a_close_while_held_waits_for_the_block_and_keeps_what_it_wrote():
    """A gateway holds a read's answers until its transaction commits; a disconnect in
    that read (a Logout answered, say) closes the socket after them, not before."""
    from trading.fix.transport import Connection

    async def scenario():
        kept, dropped = Connection(), Connection()
        for connection in (kept, dropped):
            connection.transport = _Socket()
        with kept.held():
            kept.send(b"logout")
            kept.close()
            assert kept.transport.written == [] and not kept.transport.closed
        assert kept.transport.written == [b"logout"] and kept.transport.closed
        with pytest.raises(RuntimeError), dropped.held():  # rolled back: nothing leaves
            dropped.send(b"logout")
            dropped.close()
            raise RuntimeError
        assert dropped.transport.written == [] and dropped.transport.closed

    asyncio.run(scenario())
