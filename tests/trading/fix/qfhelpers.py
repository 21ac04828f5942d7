"""QuickFIX (the `quickfix` binding) peers for the interoperability tests.

Every QuickFIX callback is wrapped: an exception escaping one would kill the
test process, so it is recorded in ``errors`` instead and the tests assert
that list is empty.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
import sysconfig
import threading
from pathlib import Path

try:
    import quickfix as fix
except ImportError:  # pragma: no cover - the tests skip or fail on this
    fix = None

SOH = "\x01"


def spec_dir() -> Path:
    for base in (Path(sysconfig.get_path("data")), Path(sys.prefix)):
        d = base / "share" / "quickfix"
        if (d / "FIX44.xml").exists():
            return d
    raise FileNotFoundError("QuickFIX data dictionaries (share/quickfix) not found")


def guarded(fn):
    @functools.wraps(fn)
    def wrapper(self, *args):
        try:
            return fn(self, *args)
        except Exception as exc:
            self.errors.append(f"{fn.__name__}: {exc!r}")
            return None

    return wrapper


def write_config(path: Path, role: str, port: int, sessions, store: Path, hb: int = 30) -> Path:
    spec = spec_dir()
    lines = [
        "[DEFAULT]",
        f"ConnectionType={role}",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"FileStorePath={store}",
        f"FileLogPath={store}/log",
        "UseDataDictionary=Y",
        "ValidateUserDefinedFields=N",
        f"HeartBtInt={hb}",
        "ReconnectInterval=1",
        "LogonTimeout=5",
        "SocketNodelay=Y",
    ]
    if role == "acceptor":
        lines += [f"SocketAcceptPort={port}", "SocketAcceptAddress=127.0.0.1"]
    else:
        lines += [f"SocketConnectPort={port}", "SocketConnectHost=127.0.0.1"]
    for begin, sender, target, extra in sessions:
        lines += [
            "",
            "[SESSION]",
            f"BeginString={begin}",
            f"SenderCompID={sender}",
            f"TargetCompID={target}",
            f"DataDictionary={spec}/FIX{begin[4]}{begin[6]}.xml",
        ]
        lines += [f"{k}={v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def running_acceptor(app, cfg: Path):
    """A QuickFIX acceptor for ``app`` with the settings file ``cfg``, started
    for the block; afterwards, asserts that no callback of ``app`` failed."""
    settings = fix.SessionSettings(str(cfg))
    # Keep every SWIG object referenced until stop(): QuickFIX holds raw pointers to them.
    # The threaded acceptor: SocketAcceptor.stop() races with its own thread and can crash.
    store = fix.FileStoreFactory(settings)
    acceptor = fix.ThreadedSocketAcceptor(app, store, settings)
    acceptor.start()
    try:
        yield app
    finally:
        acceptor.stop()
        del acceptor, store, settings
    assert app.errors == []


def qf_message(begin: str, msg_type: str, fields: list[tuple[int, str]]):
    m = fix.Message()
    m.getHeader().setField(fix.BeginString(begin))
    m.getHeader().setField(fix.MsgType(msg_type))
    for t, v in fields:
        m.setField(t, v)
    return m


def qf_get(m, tag: int) -> str | None:
    try:
        return m.getField(tag)
    except Exception:
        return None


def _timestamp() -> str:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return now.strftime("%Y%m%d-%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


_Base = fix.Application if fix is not None else object


class QFBroker(_Base):
    """A QuickFIX acceptor acting as a broker.

    Symbol ``REJ`` is rejected, ``REST`` rests (acknowledged only), ``DUP`` is
    filled with the fill ExecutionReport sent twice (same ExecID), ``GAP``
    makes the broker skip an outgoing sequence number first; ``SETL`` is filled
    at once with SettlDate (64) ``settl_date``, and ``BADSETL`` likewise after a
    first fill whose SettlDate names no day of the calendar (20260231, which the
    dictionary's shape check lets through); anything else is acknowledged, half
    filled, then filled.
    """

    def __init__(self):
        super().__init__()
        self.errors: list[str] = []
        self.rejects: list[str] = []
        self.received: list[tuple[str, dict]] = []
        self.admin: list[tuple[str, dict]] = []
        self.logons = 0
        self.logouts = 0
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.orders: dict[str, dict] = {}
        self.settl_date = "20991231"

    @guarded
    def onCreate(self, sid):
        pass

    @guarded
    def onLogon(self, sid):
        self.logons += 1

    @guarded
    def onLogout(self, sid):
        self.logouts += 1

    @guarded
    def toAdmin(self, msg, sid):
        if qf_get(msg.getHeader(), 35) == "3":  # QuickFIX rejecting something of ours
            self.rejects.append(msg.toString().replace(SOH, "|"))

    @guarded
    def fromAdmin(self, msg, sid):
        self.admin.append(
            (qf_get(msg.getHeader(), 35), {t: qf_get(msg, t) for t in (112, 45, 371, 372, 373)})
        )

    @guarded
    def toApp(self, msg, sid):
        if qf_get(msg.getHeader(), 35) == "j":
            self.rejects.append(msg.toString().replace(SOH, "|"))

    @guarded
    def fromApp(self, msg, sid):
        mt = qf_get(msg.getHeader(), 35)
        f = {t: qf_get(msg, t) for t in (11, 41, 37, 38, 44, 54, 55, 40)}
        f[34] = qf_get(msg.getHeader(), 34)
        self.received.append((mt, f))
        begin = sid.getBeginString().getValue()
        if mt == "D":
            self._new_order(begin, sid, f)
        elif mt == "F":
            o = self.orders.get(f[41])
            if o:
                self._er(begin, sid, o, "4", "4", cl=f[11], orig=f[41], leaves="0")
        elif mt == "G":
            o = self.orders.get(f[41])
            if o:
                o["qty"] = f[38]
                self.orders[f[11]] = o
                self._er(
                    begin,
                    sid,
                    o,
                    "5",
                    "0" if begin == "FIX.4.4" else "5",
                    cl=f[11],
                    orig=f[41],
                    leaves=f[38],
                )

    def _new_order(self, begin, sid, f):
        o = {"id": f"QO{next(self.ids)}", "sym": f[55], "side": f[54], "qty": f[38], "cl": f[11]}
        self.orders[f[11]] = o
        qty = float(f[38])
        if f[55] == "REJ":
            self._er(
                begin,
                sid,
                o,
                "8",
                "8",
                leaves="0",
                extra=[(103, "0"), (58, "rejected by QuickFIX broker")],
            )
            return
        if f[55] == "GAP":
            s = fix.Session.lookupSession(sid)
            s.setNextSenderMsgSeqNum(s.getExpectedSenderNum() + 2)
        self._er(begin, sid, o, "0", "0", leaves=f[38])
        if f[55] == "REST":
            return
        if f[55] in ("SETL", "BADSETL"):
            fill = "F" if begin == "FIX.4.4" else "2"
            if f[55] == "BADSETL":
                self._er(begin, sid, o, fill, "2", cum=f[38], last=f[38], extra=[(64, "20260231")])
            self._er(begin, sid, o, fill, "2", cum=f[38], last=f[38], extra=[(64, self.settl_date)])
            return
        half = qty / 2
        fill_type = "F" if begin == "FIX.4.4" else "1"
        self._er(
            begin, sid, o, fill_type, "1", leaves=str(qty - half), cum=str(half), last=str(half)
        )
        done_type = "F" if begin == "FIX.4.4" else "2"
        exec_id = self._er(
            begin, sid, o, done_type, "2", leaves="0", cum=str(qty), last=str(qty - half)
        )
        if f[55] == "DUP":
            self._er(
                begin,
                sid,
                o,
                done_type,
                "2",
                leaves="0",
                cum=str(qty),
                last=str(qty - half),
                exec_id=exec_id,
                extra_header=[(97, "Y")],
            )

    def _er(
        self,
        begin,
        sid,
        o,
        exec_type,
        status,
        cl=None,
        orig=None,
        leaves="0",
        cum="0",
        last=None,
        extra=(),
        exec_id=None,
        extra_header=(),
    ):
        exec_id = exec_id or f"QE{next(self.ids)}"
        fields = [
            (37, o["id"]),
            (17, exec_id),
            (150, exec_type),
            (39, status),
            (55, o["sym"]),
            (54, o["side"]),
            (151, leaves),
            (14, cum),
            (6, "10" if last else "0"),
            (11, cl or o["cl"]),
            (38, o["qty"]),
            (60, _timestamp()),
        ]
        if begin == "FIX.4.2":
            fields.append((20, "0"))
        if orig:
            fields.append((41, orig))
        if last:
            fields += [(32, last), (31, "10")]
        fields += list(extra)
        m = qf_message(begin, "8", fields)
        for t, v in extra_header:
            m.getHeader().setField(t, v)
        fix.Session.sendToTarget(m, sid)
        return exec_id


class QFClient(_Base):
    """A QuickFIX initiator trading with our simulated broker."""

    def __init__(self):
        super().__init__()
        self.errors: list[str] = []
        self.rejects: list[str] = []
        self.received: list[dict] = []
        self.logged_on = threading.Event()
        self.sid = None

    @guarded
    def onCreate(self, sid):
        self.sid = sid

    @guarded
    def onLogon(self, sid):
        self.logged_on.set()

    @guarded
    def onLogout(self, sid):
        self.logged_on.clear()

    @guarded
    def toAdmin(self, msg, sid):
        if qf_get(msg.getHeader(), 35) == "3":  # QuickFIX rejecting something of ours
            self.rejects.append(msg.toString().replace(SOH, "|"))

    @guarded
    def fromAdmin(self, msg, sid):
        pass

    @guarded
    def toApp(self, msg, sid):
        if qf_get(msg.getHeader(), 35) == "j":
            self.rejects.append(msg.toString().replace(SOH, "|"))

    @guarded
    def fromApp(self, msg, sid):
        tags = (11, 41, 37, 17, 150, 39, 14, 151, 31, 32, 434, 102, 58, 20, 103, 38)
        d = {t: qf_get(msg, t) for t in tags}
        d[35] = qf_get(msg.getHeader(), 35)
        self.received.append(d)

    def send(self, msg_type: str, fields: list[tuple[int, str]]) -> None:
        begin = self.sid.getBeginString().getValue()
        fix.Session.sendToTarget(qf_message(begin, msg_type, fields), self.sid)
