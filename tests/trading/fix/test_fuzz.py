"""Hypothesis fuzzing of the acceptor: random and mutated input never crashes
it, never makes it skip or reuse one of its own sequence numbers, and it keeps
answering correctly afterwards."""

from __future__ import annotations

import asyncio
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.fix import session as session_mod
from trading.fix.clock import FakeClock
from trading.fix.codec import Framer, decode, encode_fields, utc_timestamp
from trading.fix.echo_acceptor import EchoApplication, build_echo_acceptor
from trading.fix.session import Session, SessionSettings

from .conftest import FakeTransport


def valid(kind: int, seq: int, clock) -> bytes:
    ts = utc_timestamp(clock.utcnow())
    hdr = [(34, str(seq)), (49, "TW"), (52, ts), (56, "ISLD")]
    if kind == 0:
        return encode_fields("FIX.4.4", "0", hdr, [])
    if kind == 1:
        return encode_fields("FIX.4.4", "1", hdr, [(112, f"t{seq}")])
    body = [(11, f"o{seq}"), (21, "1"), (38, "100"), (40, "1"), (54, "1"), (55, "IBM"), (60, ts)]
    return encode_fields("FIX.4.4", "D", hdr, body)


def mutate(raw: bytes, r: random.Random) -> bytes:
    b = bytearray(raw)
    op = r.randrange(6)
    i = r.randrange(len(b))
    if op == 0:
        b[i] = r.randrange(256)
    elif op == 1:
        del b[i : i + r.randrange(1, 8)]
    elif op == 2:
        b[i:i] = bytes(r.randrange(256) for _ in range(r.randrange(1, 8)))
    elif op == 3:  # duplicate a field
        fields = bytes(b).split(b"\x01")
        j = r.randrange(len(fields))
        fields.insert(j, fields[j])
        b = bytearray(b"\x01".join(fields))
    elif op == 4:  # swap two fields
        fields = bytes(b).split(b"\x01")[:-1]
        j, k = r.randrange(len(fields)), r.randrange(len(fields))
        fields[j], fields[k] = fields[k], fields[j]
        b = bytearray(b"\x01".join(fields) + b"\x01")
    else:  # truncate
        b = b[:i]
    return bytes(b)


op = st.one_of(
    st.tuples(st.just("valid"), st.integers(0, 2), st.integers(-2, 3)),
    st.tuples(st.just("mutated"), st.integers(0, 2), st.integers(0, 2**32)),
    st.tuples(st.just("random"), st.binary(max_size=80), st.just(0)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=25))
def test_acceptor_survives_random_and_mutated_input(ops):
    errors = []
    original = session_mod.log.exception
    session_mod.log.exception = lambda *a, **k: errors.append(a)
    try:
        clock = FakeClock()
        s = Session(
            SessionSettings("FIX.4.4", "ISLD", "TW", reset_on_logon=True),
            EchoApplication(),
            clock=clock,
        )
        t = FakeTransport()
        s.connect(t)
        framer = Framer()
        ts = utc_timestamp(clock.utcnow())
        logon = encode_fields(
            "FIX.4.4",
            "A",
            [(34, "1"), (49, "TW"), (52, ts), (56, "ISLD")],
            [(98, "0"), (108, "30")],
        )
        for f in framer.feed(logon):
            s.on_frame(f)
        assert s.logged_on
        for kind, a, b in ops:
            if t.closed:
                break
            if kind == "valid":
                data = valid(a, max(1, s.next_target + b), clock)
            elif kind == "mutated":
                data = mutate(valid(a, s.next_target, clock), random.Random(b))
            else:
                data = a
            target_before = s.next_target
            for f in framer.feed(data):
                s.on_frame(f)
                if t.closed:
                    break
            assert s.next_target >= target_before or t.closed
            clock.advance(0.5)
            s.on_timer()
        assert errors == [], errors
        # our own sequence numbers: consecutive, never skipped or reused
        fresh = [int(m[34]) for m in t.sent if m.get(43) != "Y"]
        assert fresh == list(range(1, len(fresh) + 1))
        assert s.next_sender == len(fresh) + 1
        for raw in t.raw:
            decode(raw)  # everything we sent is well-formed
        if not t.closed:
            # still up and consistent: a fresh in-sequence TestRequest is answered
            t.take()
            s.on_frame(
                encode_fields(
                    "FIX.4.4",
                    "1",
                    [
                        (34, str(s.next_target)),
                        (49, "TW"),
                        (52, utc_timestamp(clock.utcnow())),
                        (56, "ISLD"),
                    ],
                    [(112, "final")],
                )
            )
            answers = [m for m in t.take() if m.msg_type == "0"]
            assert "final" in [m.get(112) for m in answers]
    finally:
        session_mod.log.exception = original


def test_acceptor_process_stays_up_after_garbage_connection():
    async def go():
        acc = build_echo_acceptor(0)
        await acc.start()
        r, w = await asyncio.open_connection("127.0.0.1", acc.port)
        w.write(
            bytes(random.Random(3).randrange(256) for _ in range(5000)) + b"8=FIX.4.4\x019=5\x01"
        )
        await w.drain()
        await asyncio.sleep(0.05)
        w.close()
        r, w = await asyncio.open_connection("127.0.0.1", acc.port)
        ts = utc_timestamp()
        w.write(
            encode_fields(
                "FIX.4.4",
                "A",
                [(34, "1"), (49, "TW"), (52, ts), (56, "ISLD")],
                [(98, "0"), (108, "30")],
            )
        )
        await w.drain()
        frames = Framer().feed(await asyncio.wait_for(r.read(4096), 5))
        w.close()
        await acc.stop()
        return frames

    frames = asyncio.run(go())
    assert decode(frames[0]).msg_type == "A"
