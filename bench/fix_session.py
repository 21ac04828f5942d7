"""Session benchmark: orders per second round trip (order out, fill back).

Our initiator (in this process) against
  * our simulated broker (``python -m trading.fix.simulator``, a subprocess), and
  * a QuickFIX acceptor acting as broker (a subprocess running the binding),
over loopback, no database.  Each peer answers every NewOrderSingle with an
ExecutionReport New and an ExecutionReport Fill; full validation is on, and
both peers keep their messages in memory (as this process does).

Two runs per peer: *throughput* keeps ``--window`` orders outstanding
(pipelined, as an OMS does; ``--rounds`` rounds of ``--orders``, the best and
every round reported, with the order-to-fill latency seen while pipelining and
this process's CPU time per order); *latency* sends one order at a time and
records order-out to fill-in times (p50/p90/p99/max).  Finally both sides run
in this process joined by in-memory pipes, without I/O, for the engine's CPU
cost per round trip.  Ends by printing one line of JSON.

    python bench/fix_session.py [--orders 5000] [--window 64] [--rounds 3] [--latency-orders 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trading.fix.codec import Message  # noqa: E402
from trading.fix.messages import NewOrderSingle, OrdType  # noqa: E402
from trading.fix.session import Application, Session, SessionSettings  # noqa: E402
from trading.fix.transport import Initiator  # noqa: E402


class Bench(Application):
    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.filled = 0
        self.event = asyncio.Event()

    def from_app(self, msg: Message, session: Session) -> None:
        if msg.msg_type == "8" and msg.get(39) == "2":
            t0 = self.sent_at.pop(msg.get(11) or "", None)
            if t0 is not None:
                self.latencies.append(time.perf_counter() - t0)
            self.filled += 1
            self.event.set()


def nos_message(i: int, begin: str) -> Message:
    return NewOrderSingle(
        cl_ord_id=f"B{i}", symbol="IBM", order_qty=Decimal(100), ord_type=OrdType.MARKET
    ).to_message(begin)


def _pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return round(sorted_values[k] * 1000, 3)


async def run_against(
    port: int, target: str, orders: int, window: int, lat_orders: int, rounds: int
) -> dict:
    app = Bench()
    settings = SessionSettings(
        "FIX.4.4", "BENCH", target, initiator=True, heartbeat_interval=30, reset_seq_num_flag=True
    )
    ini = Initiator(Session(settings, app), port=port)
    await ini.start()
    await ini.wait_logged_on(20)
    s = ini.session

    async def wait_filled(n: int) -> None:
        while app.filled < n:
            app.event.clear()
            await asyncio.wait_for(app.event.wait(), 30)

    # warm-up
    for i in range(200):
        app.sent_at[f"B{i}"] = time.perf_counter()
        s.send(nos_message(i, "FIX.4.4"))
    await wait_filled(200)
    base = 200
    # throughput: keep `window` orders outstanding (pipelined, as an OMS does)
    rates: list[float] = []
    cpu_us: list[float] = []
    app.latencies.clear()
    for _ in range(rounds):
        app.filled = 0
        t0 = time.perf_counter()
        c0 = time.process_time()
        sent = 0
        while app.filled < orders:
            while sent < orders and sent - app.filled < window:
                i = base + sent
                app.sent_at[f"B{i}"] = time.perf_counter()
                s.send(nos_message(i, "FIX.4.4"))
                sent += 1
            app.event.clear()
            await asyncio.wait_for(app.event.wait(), 30)
        rates.append(orders / (time.perf_counter() - t0))
        cpu_us.append((time.process_time() - c0) / orders * 1e6)
        base += orders
    piped = sorted(app.latencies)
    # latency: one order at a time
    app.latencies.clear()
    for k in range(lat_orders):
        i = base + k
        target_filled = app.filled + 1
        app.sent_at[f"B{i}"] = time.perf_counter()
        s.send(nos_message(i, "FIX.4.4"))
        await wait_filled(target_filled)
    lat = sorted(app.latencies)
    await ini.stop()
    return {
        "orders_per_s": round(max(rates)),
        "orders_per_s_rounds": [round(r) for r in rates],
        "window": window,
        "initiator_cpu_us_per_order": round(min(cpu_us)),
        "pipelined_latency_p50_ms": _pct(piped, 0.50),
        "pipelined_latency_p99_ms": _pct(piped, 0.99),
        "latency_p50_ms": _pct(lat, 0.50),
        "latency_p90_ms": _pct(lat, 0.90),
        "latency_p99_ms": _pct(lat, 0.99),
        "latency_max_ms": round(lat[-1] * 1000, 3),
        "latency_orders": len(lat),
    }


class _Pipe:
    """In-memory transport: what a session writes is kept for the other side."""

    def __init__(self) -> None:
        self.buf: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.buf.append(data)

    def close(self) -> None:
        pass


def cpu_in_process(orders: int, window: int, rounds: int = 3) -> dict:
    """CPU time of one round trip with both sides in this process and no I/O:
    our initiator session and the simulated broker's session (full validation,
    typed messages, encoding, framing), joined by in-memory pipes.  Best of
    ``rounds``; a measure of the engine's own cost, free of the scheduler."""
    from trading.fix.codec import Framer
    from trading.fix.simulator import SimulatedBroker

    def pump(ini: Session, to_acc: _Pipe, acc: Session, to_ini: _Pipe) -> None:
        fa, fi = Framer(), Framer()
        while to_acc.buf or to_ini.buf:
            for pipe, framer, session in ((to_acc, fa, acc), (to_ini, fi, ini)):
                if pipe.buf:
                    data = b"".join(pipe.buf)
                    pipe.buf.clear()
                    for frame in framer.feed(data):
                        session.on_frame(frame)

    results = []
    for _ in range(rounds):
        acc = Session(
            SessionSettings("FIX.4.4", "BROKER", "BENCH", reset_on_logon=True), SimulatedBroker()
        )
        app = Bench()
        ini = Session(
            SessionSettings("FIX.4.4", "BENCH", "BROKER", initiator=True, reset_seq_num_flag=True),
            app,
        )
        to_acc, to_ini = _Pipe(), _Pipe()
        acc.connect(to_ini)
        ini.connect(to_acc)
        pump(ini, to_acc, acc, to_ini)
        c0 = time.process_time()
        sent = 0
        while sent < orders:
            for _ in range(min(window, orders - sent)):
                ini.send(nos_message(sent, "FIX.4.4"))
                sent += 1
            pump(ini, to_acc, acc, to_ini)
        cpu = time.process_time() - c0
        if app.filled != orders:
            raise RuntimeError(f"{app.filled} fills for {orders} orders")
        results.append(cpu / orders * 1e6)
    return {
        "cpu_us_per_round_trip": round(min(results)),
        "cpu_us_per_round_trip_rounds": [round(r) for r in results],
        "orders": orders,
    }


async def start_child(args: list[str]) -> tuple[asyncio.subprocess.Process, int]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, cwd=str(REPO), stdout=asyncio.subprocess.PIPE
    )
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    m = re.search(rb"ready on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"child did not start: {line!r}")
    return proc, int(m.group(1))


async def stop_child(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
    await proc.wait()


# -- QuickFIX broker child ----------------------------------------------------


def qf_broker_child() -> None:
    import socket
    import threading

    import quickfix as fix

    sys.path.insert(0, str(REPO / "tests" / "trading" / "fix"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from datetime import UTC, datetime

    class Broker(fix.Application):
        n = 0

        def onCreate(self, sid):
            pass

        def onLogon(self, sid):
            pass

        def onLogout(self, sid):
            pass

        def toAdmin(self, msg, sid):
            pass

        def fromAdmin(self, msg, sid):
            pass

        def toApp(self, msg, sid):
            pass

        def fromApp(self, msg, sid):
            try:
                if msg.getHeader().getField(35) != "D":
                    return
                cl = msg.getField(11)
                ts = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
                for et, st, leaves, cum in (("0", "0", "100", "0"), ("F", "2", "0", "100")):
                    self.n += 1
                    m = fix.Message()
                    h = m.getHeader()
                    h.setField(8, "FIX.4.4")
                    h.setField(35, "8")
                    for t, v in (
                        (37, f"Q{self.n}"),
                        (17, f"QE{self.n}"),
                        (150, et),
                        (39, st),
                        (55, "IBM"),
                        (54, "1"),
                        (151, leaves),
                        (14, cum),
                        (6, "10" if cum != "0" else "0"),
                        (11, cl),
                        (60, ts),
                    ):
                        m.setField(t, v)
                    if et == "F":
                        m.setField(32, "100")
                        m.setField(31, "10")
                    fix.Session.sendToTarget(m, sid)
            except Exception as exc:
                print(f"error {exc!r}", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="qfbench"))
    spec = None
    import sysconfig

    for base in (Path(sysconfig.get_path("data")), Path(sys.prefix)):
        if (base / "share" / "quickfix" / "FIX44.xml").exists():
            spec = base / "share" / "quickfix"
    cfg = tmp / "b.cfg"
    cfg.write_text(
        "\n".join(
            [
                "[DEFAULT]",
                "ConnectionType=acceptor",
                f"SocketAcceptPort={port}",
                "SocketAcceptAddress=127.0.0.1",
                "StartTime=00:00:00",
                "EndTime=00:00:00",
                "SocketNodelay=Y",
                "UseDataDictionary=Y",
                f"DataDictionary={spec}/FIX44.xml",
                "[SESSION]",
                "BeginString=FIX.4.4",
                "SenderCompID=QFB",
                "TargetCompID=BENCH",
            ]
        )
        + "\n"
    )
    app = Broker()
    settings = fix.SessionSettings(str(cfg))
    store = fix.MemoryStoreFactory()  # in memory, as our simulator keeps its messages here
    acceptor = fix.ThreadedSocketAcceptor(app, store, settings)
    acceptor.start()
    print(f"ready on 127.0.0.1:{port}", flush=True)
    threading.Event().wait()


async def main_async(args) -> dict:
    results: dict = {}
    proc, port = await start_child(
        [
            "-m",
            "trading.fix.simulator",
            "--port",
            "0",
            "--session",
            "FIX.4.4:BENCH",
            "--price-tick",
            "3600",
        ]
    )
    try:
        results["ours_vs_simulator"] = await run_against(
            port, "BROKER", args.orders, args.window, args.latency_orders, args.rounds
        )
    finally:
        await stop_child(proc)
    try:
        import quickfix  # noqa: F401
    except ImportError:
        results["ours_vs_quickfix"] = None
    else:
        proc, port = await start_child([str(Path(__file__).resolve()), "--qf-broker-child"])
        try:
            results["ours_vs_quickfix"] = await run_against(
                port, "QFB", args.orders, args.window, args.latency_orders, args.rounds
            )
        finally:
            await stop_child(proc)
    return results


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=5000)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--latency-orders", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds (best reported)")
    p.add_argument("--cpu-orders", type=int, default=3000, help="orders per in-process CPU round")
    p.add_argument("--qf-broker-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.qf_broker_child:
        qf_broker_child()
        return
    load_at_start = round(os.getloadavg()[0], 2)
    results = asyncio.run(main_async(args))
    results["both_sides_in_process_no_io"] = cpu_in_process(args.cpu_orders, args.window)
    results.update(
        benchmark="fix_session",
        unit="NewOrderSingle out, ExecutionReport New + Fill back, loopback",
        target_orders_per_s=5000,
        target_p99_ms=5,
        python=platform.python_version(),
        cpus=os.cpu_count(),
        load_avg_1m=round(os.getloadavg()[0], 2),
        load_avg_1m_at_start=load_at_start,
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
