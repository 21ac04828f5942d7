"""Shared helpers for the FIX engine tests (no database needed)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from trading.fix.clock import FakeClock
from trading.fix.codec import Message, decode, encode_fields, utc_timestamp
from trading.fix.session import Application, Session, SessionSettings
from trading.fix.store import MemoryStore

REQUIRE_SERVICES = os.environ.get("OMS_REQUIRE_SERVICES") == "1"
REPO = Path(__file__).resolve().parents[3]


def require(condition: bool, reason: str) -> None:
    """Skip when a real part is missing, but fail in CI (OMS_REQUIRE_SERVICES=1)."""
    if not condition:
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (OMS_REQUIRE_SERVICES=1: must not skip)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_listener(*argv: str) -> tuple[asyncio.subprocess.Process, int]:
    """Start ``python <argv>`` (an acceptor: the simulator, the echo acceptor, ...) from
    the repository, without Django settings, and wait for its "ready on 127.0.0.1:PORT"
    line: the process and that port (``--port 0`` lets the OS pick a free one, no race
    with other listeners). Stop it with ``terminate()`` and ``await wait()``."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        env=env,
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        m = re.search(rb"ready on 127\.0\.0\.1:(\d+)", line)
        if m is None:
            err = await proc.stderr.read()
            raise AssertionError(f"{argv} did not start: {line!r} {err[-2000:]!r}")
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc, int(m.group(1))


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.raw: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> None:
        self.raw.append(data)
        self.sent.append(decode(data))

    def close(self) -> None:
        self.closed = True

    def take(self) -> list[Message]:
        out, self.sent = self.sent, []
        return out


class RecordingApp(Application):
    def __init__(self) -> None:
        self.app_msgs: list[Message] = []
        self.admin_msgs: list[Message] = []
        self.logons = 0
        self.logouts = 0

    def on_logon(self, session):
        self.logons += 1

    def on_logout(self, session):
        self.logouts += 1

    def from_admin(self, msg, session):
        self.admin_msgs.append(msg)

    def from_app(self, msg, session):
        self.app_msgs.append(msg)


class Peer:
    """Builds the counterparty's messages for a sans-IO session under test."""

    def __init__(self, session: Session, begin: str | None = None):
        self.s = session
        self.begin = begin or session.sid.begin_string
        self.seq = 1

    def msg(self, msg_type: str, body=(), seq: int | None = None, header=(), sending_time=None):
        if seq is None:
            seq = self.seq
            self.seq += 1
        ts = sending_time or utc_timestamp(self.s.clock.utcnow())
        hdr = [
            (34, str(seq)),
            (49, self.s.sid.target_comp_id),
            (52, ts),
            (56, self.s.sid.sender_comp_id),
        ]
        hdr = sorted(hdr + list(header))
        return encode_fields(self.begin, msg_type, hdr, list(body))

    def send(self, msg_type: str, body=(), **kw) -> None:
        self.s.on_frame(self.msg(msg_type, body, **kw))


def make_session(initiator=False, begin="FIX.4.4", clock=None, store=None, app=None, **kw):
    settings = SessionSettings(begin, "US", "THEM", initiator=initiator, **kw)
    clock = clock or FakeClock()
    app = app or RecordingApp()
    s = Session(settings, app, store or MemoryStore(), clock=clock)
    t = FakeTransport()
    return s, t, Peer(s), clock, app


def logged_on_acceptor(hb=30, **kw):
    s, t, peer, clock, app = make_session(**kw)
    s.connect(t)
    peer.send("A", [(98, "0"), (108, str(hb))])
    assert s.logged_on
    t.take()
    return s, t, peer, clock, app
