"""The QuickFIX engine set up as the acceptance scenarios expect: the reference.

An acceptor (the ``quickfix`` binding) with SenderCompID ``ISLD`` and sessions
for ``TW42`` (FIX.4.2), ``TW44`` and ``TW`` (FIX.4.4), ResetOnLogon=Y, the
version's data dictionary, a memory store.  Behind it the echo application the
scenario README describes (and QuickFIX's own acceptance run uses): every
NewOrderSingle / SecurityDefinition is sent back, except a PossResend=Y
NewOrderSingle whose ClOrdID it has already seen on that session since the
last logout; anything else is refused as an unsupported message type.

It runs as its own process so that nothing QuickFIX does can take the test
process down:

    python tests/trading/fix/qf_echo_acceptor.py --port 0     # prints "... ready on 127.0.0.1:PORT"

Our scenario files (``tests/trading/fix/scenarios``) are run against it to
show that what they expect is what the reference engine does.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

import quickfix as fix

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qfhelpers import qf_get, spec_dir

SESSIONS = (("FIX.4.2", "TW42"), ("FIX.4.4", "TW44"), ("FIX.4.4", "TW"))


class Echo(fix.Application):
    """The acceptance echo application, with the same dedup rule as QuickFIX's."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def onCreate(self, sid):
        pass

    def onLogon(self, sid):
        pass

    def onLogout(self, sid):
        # QuickFIX's acceptance application forgets the ClOrdIDs it has seen here
        with self.lock:
            self.seen.clear()

    def toAdmin(self, msg, sid):
        pass

    def fromAdmin(self, msg, sid):
        pass

    def toApp(self, msg, sid):
        pass

    def fromApp(self, msg, sid):
        mt = qf_get(msg.getHeader(), 35)
        if mt not in ("D", "d"):
            raise fix.UnsupportedMessageType()
        if mt == "D":
            key = (sid.toString(), qf_get(msg, 11) or "")
            with self.lock:
                if qf_get(msg.getHeader(), 97) == "Y" and key in self.seen:
                    return
                self.seen.add(key)
        echo = fix.Message(msg)
        fix.Session.sendToTarget(echo, sid)


def write_config(path: Path, port: int) -> Path:
    spec = spec_dir()
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"SocketAcceptPort={port}",
        "SocketAcceptAddress=127.0.0.1",
        "SenderCompID=ISLD",
        "ResetOnLogon=Y",
        "UseDataDictionary=Y",
        "SocketNodelay=Y",
    ]
    for begin, target in SESSIONS:
        lines += [
            "",
            "[SESSION]",
            f"BeginString={begin}",
            f"TargetCompID={target}",
            f"DataDictionary={spec}/FIX{begin[4]}{begin[6]}.xml",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="QuickFIX echo acceptor (acceptance set-up)")
    p.add_argument("--port", type=int, required=True, help="0: pick a free port")
    args = p.parse_args(argv)
    port = args.port or _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(Path(tmp) / "echo.cfg", port)
        settings = fix.SessionSettings(str(cfg))
        app = Echo()
        store = fix.MemoryStoreFactory()
        acceptor = fix.ThreadedSocketAcceptor(app, store, settings)
        acceptor.start()
        print(f"quickfix echo acceptor ready on 127.0.0.1:{port}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.2):
            pass
        acceptor.stop()
        del acceptor, store, settings
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
