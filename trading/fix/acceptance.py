"""Runner for QuickFIX's session acceptance scenarios (``*.def`` files).

The runner plays the initiator against an acceptor listening on
``127.0.0.1:PORT``, sends the ``I`` lines (computing BodyLength and CheckSum
where the line leaves them out, substituting ``<TIME>``), and compares every
received message with the ``E`` lines: same fields in the same order, values
equal except the fields listed in ``fields.fmt`` (matched by their regular
expression, anchored at the start) and BodyLength/CheckSum (which must be
correct for the received bytes).  Files are read from their folder; nothing
is copied.

    python -m trading.fix.acceptance --port PORT [--dir DIR] [FILE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .codec import SOH, Framer, GarbledMessage, decode

DEFAULT_FORMATS = {
    10: r"\d{3}",
    42: r"\d{8}-\d{2}:\d{2}:\d{2}",
    52: r"\d{8}-\d{2}:\d{2}:\d{2}|\d{8}-\d{2}:\d{2}:\d{2}[.]\d{3}",
    60: r"\d{8}-\d{2}:\d{2}:\d{2}",
    122: r"\d{8}-\d{2}:\d{2}:\d{2}",
}


def acceptance_dir() -> Path | None:
    """The scenario folder: ``$OMS_FIX_ACCEPTANCE_DIR`` or ``<repo>/../shared/fix-acceptance``."""
    env = os.environ.get("OMS_FIX_ACCEPTANCE_DIR")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    repo = Path(__file__).resolve().parents[2]
    p = repo.parent / "shared" / "fix-acceptance"
    return p if p.is_dir() else None


def scenario_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("fix4[24]/*.def"))


def load_formats(directory: Path | None) -> dict[int, re.Pattern]:
    fmts = dict(DEFAULT_FORMATS)
    if directory is not None and (directory / "fields.fmt").exists():
        for line in (directory / "fields.fmt").read_text().splitlines():
            tag, sep, rx = line.partition("=")
            if sep and tag.strip().isdigit():
                fmts[int(tag)] = rx
    return {t: re.compile(rx) for t, rx in fmts.items()}


@dataclass
class Step:
    action: str  # connect, disconnect, expect_disconnect, send, expect
    conn: int
    data: str = ""
    line: int = 0


#: Seconds between a scripted disconnect and what follows it (see run_scenario).
RECONNECT_PAUSE = 0.25
_PREFIX = re.compile(r"^([iIeE])(?:(\d+),)?(.*)$", re.S)


def parse_scenario(text: str) -> list[Step]:
    steps: list[Step] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _PREFIX.match(line)
        if not m:
            continue
        kind, conn_s, rest = m.groups()
        conn = int(conn_s) if conn_s else 1
        word = rest.strip()
        if kind == "i" and word == "CONNECT":
            steps.append(Step("connect", conn, line=n))
        elif kind == "i" and word == "DISCONNECT":
            steps.append(Step("disconnect", conn, line=n))
        elif kind == "e" and word == "DISCONNECT":
            steps.append(Step("expect_disconnect", conn, line=n))
        elif kind == "I":
            steps.append(Step("send", conn, rest, n))
        elif kind == "E":
            steps.append(Step("expect", conn, rest, n))
    return steps


def _fields(data: str) -> list[tuple[str, str]]:
    out = []
    for f in data.split(SOH):
        if f == "" or f.strip() == "":
            continue
        t, _, v = f.partition("=")
        out.append((t, v))
    return out


def _fix_time(dt: datetime) -> str:
    return dt.strftime("%Y%m%d-%H:%M:%S") + f".{dt.microsecond // 1000:03d}"


def build_outgoing(data: str, now: datetime | None = None) -> bytes:
    """Turn an ``I`` line into wire bytes (time substituted, 9/10 computed if absent)."""
    now = now or datetime.now(UTC)
    data = data.replace("<TIME>", _fix_time(now))
    data = data.replace("<TIME-121>", _fix_time(now - timedelta(seconds=121)))
    data = data.replace("<TIME+121>", _fix_time(now + timedelta(seconds=121)))
    fields = _fields(data)
    tags = [t for t, _ in fields]
    has_cks = "10" in tags
    body_fields = [f for f in fields if f[0] != "10"]
    if "9" not in tags:
        after_first = body_fields[1:]
        length = len("".join(f"{t}={v}{SOH}" for t, v in after_first).encode("latin-1"))
        body_fields = [body_fields[0], ("9", str(length)), *after_first]
    text = "".join(f"{t}={v}{SOH}" for t, v in body_fields)
    if has_cks:
        cks = next(v for t, v in fields if t == "10")
    else:
        cks = f"{sum(text.encode('latin-1')) & 255:03d}"
    return (text + f"10={cks}{SOH}").encode("latin-1")


def compare(expected: str, actual: bytes, formats: dict[int, re.Pattern]) -> str | None:
    """None if ``actual`` matches the ``E`` line, else a description of the difference."""
    try:
        decode(actual)  # BodyLength and CheckSum must be right
    except GarbledMessage as exc:
        return f"received a malformed message ({exc}): {actual!r}"
    exp = [(t, v) for t, v in _fields(expected) if t not in ("9", "10")]
    act = [(t, v) for t, v in _fields(actual.decode("latin-1")) if t not in ("9", "10")]
    exp_tags = [t for t, _ in exp]
    act_tags = [t for t, _ in act]
    if exp_tags != act_tags:
        return f"fields differ: expected {exp_tags}, received {act_tags}"
    for (t, ev), (_, av) in zip(exp, act, strict=True):
        tag = int(t) if t.lstrip("-").isdigit() else None
        rx = formats.get(tag) if tag is not None else None
        if rx is not None:
            if not rx.match(av):
                return f"field {t}={av!r} does not match /{rx.pattern}/"
        elif ev != av:
            return f"field {t}: expected {ev!r}, received {av!r}"
    return None


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.framer = Framer()
        self.frames: list[bytes] = []
        self.eof = False

    async def next_frame(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while not self.frames:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self.eof = True
            else:
                self.frames += self.framer.feed(data)
        return self.frames.pop(0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass
class ScenarioResult:
    name: str
    passed: bool
    error: str = ""
    steps: int = 0
    seconds: float = 0.0
    transcript: list[str] = field(default_factory=list)


async def run_scenario(
    path: Path,
    port: int,
    host: str = "127.0.0.1",
    formats: dict[int, re.Pattern] | None = None,
    timeout: float = 20.0,
) -> ScenarioResult:
    name = f"{path.parent.name}/{path.name}"
    formats = formats or load_formats(path.parent.parent)
    steps = parse_scenario(path.read_text(encoding="latin-1"))
    conns: dict[int, _Conn] = {}
    t0 = time.monotonic()
    done = 0
    transcript: list[str] = []
    try:
        for step in steps:
            c = conns.get(step.conn)
            if step.action == "connect":
                r, w = await asyncio.open_connection(host, port)
                conns[step.conn] = _Conn(r, w)
            elif step.action == "disconnect":
                if c is not None:
                    c.close()
                    conns.pop(step.conn)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(c.writer.wait_closed(), timeout)
                    # Give the acceptor the time to see the close before a reconnect's
                    # logon: it refuses a logon for a session it still holds connected,
                    # and on a loaded machine it can read the new socket first.
                    await asyncio.sleep(RECONNECT_PAUSE)
            elif step.action == "send":
                if c is None:
                    raise AssertionError(f"line {step.line}: send on a closed connection")
                out = build_outgoing(step.data)
                transcript.append(f"> {out!r}")
                c.writer.write(out)
                await c.writer.drain()
            elif step.action == "expect":
                if c is None:
                    raise AssertionError(f"line {step.line}: expect on a closed connection")
                try:
                    frame = await c.next_frame(timeout)
                except TimeoutError:
                    raise AssertionError(
                        f"line {step.line}: timed out waiting for a message"
                    ) from None
                if frame is None:
                    raise AssertionError(f"line {step.line}: connection closed, expected a message")
                transcript.append(f"< {frame!r}")
                diff = compare(step.data, frame, formats)
                if diff:
                    raise AssertionError(f"line {step.line}: {diff}")
            elif step.action == "expect_disconnect":
                if c is None:
                    raise AssertionError(f"line {step.line}: no connection")
                try:
                    frame = await c.next_frame(timeout)
                except TimeoutError:
                    raise AssertionError(f"line {step.line}: connection not closed") from None
                if frame is not None:
                    raise AssertionError(
                        f"line {step.line}: expected disconnect, received {frame!r}"
                    )
                c.close()
                conns.pop(step.conn)
            done += 1
        return ScenarioResult(name, True, "", done, time.monotonic() - t0, transcript)
    except (AssertionError, OSError) as exc:
        return ScenarioResult(name, False, str(exc), done, time.monotonic() - t0, transcript)
    finally:
        for c in conns.values():
            c.close()


async def run_many(files: list[Path], port: int, host: str = "127.0.0.1") -> list[ScenarioResult]:
    results = []
    for f in files:
        results.append(await run_scenario(f, port, host))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run QuickFIX acceptance scenarios against an acceptor")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--dir", type=Path, default=None, help="scenario folder (default: env/sibling)")
    p.add_argument("files", nargs="*", type=Path)
    args = p.parse_args(argv)
    directory = args.dir or acceptance_dir()
    files = args.files or (scenario_files(directory) if directory else [])
    if not files:
        p.error("no scenario files (set OMS_FIX_ACCEPTANCE_DIR or pass --dir)")
    results = asyncio.run(run_many(files, args.port, args.host))
    failed = 0
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        failed += not r.passed
        print(f"{status} {r.name} ({r.seconds:.1f}s){'  ' + r.error if r.error else ''}")
    print(f"{len(results) - failed}/{len(results)} scenarios passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
