"""Echo acceptor: the engine set up as QuickFIX's acceptance tests expect.

An acceptor with SenderCompID ``ISLD`` and sessions for ``TW42`` (FIX.4.2),
``TW44`` and ``TW`` (FIX.4.4), ResetOnLogon=Y, full validation.  Behind it an
echo application: every NewOrderSingle / SecurityDefinition is sent back
(a PossResend=Y NewOrderSingle whose ClOrdID it has already seen on that
session since the last logout is dropped); any other application message is
refused with BusinessMessageReject 380=3.

    python -m trading.fix.echo_acceptor --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .clock import Clock
from .codec import Message
from .session import Application, Session, SessionSettings, UnsupportedMessageType
from .store import MemoryStore
from .transport import Acceptor

ECHO_SESSIONS = (("FIX.4.2", "TW42"), ("FIX.4.4", "TW44"), ("FIX.4.4", "TW"))


class EchoApplication(Application):
    """The acceptance tests' application behind the session.

    PossResend (97=Y) says "this may have been sent before": the session
    delivers such a message like any other, and it is the application that
    knows whether it has already acted on it, by its business key (here the
    ClOrdID of a NewOrderSingle).  What counts as "already" is what this
    application saw on the session since its last logout: QuickFIX's
    acceptance application forgets at logout, and with ResetOnLogon=Y every
    logon starts a new session, so an order from an earlier one, resent with
    PossResend=Y, is delivered again.
    """

    def __init__(self) -> None:
        self.seen: set[tuple[object, str | None]] = set()

    def on_logout(self, session: Session) -> None:
        self.seen = {key for key in self.seen if key[0] != session.sid}

    def from_app(self, msg: Message, session: Session) -> None:
        if msg.msg_type not in ("D", "d"):
            raise UnsupportedMessageType()
        if msg.msg_type == "D":
            key = (session.sid, msg.get(11))
            if msg.get(97) == "Y" and key in self.seen:
                return
            self.seen.add(key)
        echo = Message(msg.msg_type, session.dd.sort_body(msg.msg_type, msg.body))
        echo.header = [f for f in msg.header if f[0] not in (34, 43, 49, 52, 56, 122)]
        session.send(echo)


def build_echo_acceptor(port: int = 0, clock: Clock | None = None, tick: float = 0.2) -> Acceptor:
    app = EchoApplication()
    sessions = []
    for begin, target in ECHO_SESSIONS:
        settings = SessionSettings(begin, "ISLD", target, reset_on_logon=True)
        sessions.append(Session(settings, app, MemoryStore(), clock=clock))
    return Acceptor(sessions, host="127.0.0.1", port=port, tick=tick)


async def _main(port: int) -> None:
    acceptor = build_echo_acceptor(port)
    await acceptor.start()
    print(f"echo acceptor ready on 127.0.0.1:{acceptor.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await acceptor.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="FIX echo acceptor (QuickFIX acceptance set-up)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    asyncio.run(_main(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
