"""Typed application messages: builders (``to_message``) and parsers (``parse``).

Quantities and prices are :class:`~decimal.Decimal`; times are timezone-aware
UTC datetimes.  The same classes serve FIX 4.2 and 4.4; version differences
(ExecTransType, ExecType for fills, HandlInst) are handled here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, ClassVar, NamedTuple

from .codec import Message, parse_utc_timestamp, utc_timestamp


def _tag(tag: int, default: Any = None, kind: str = "str"):
    return field(default=default, metadata={"tag": tag, "kind": kind})


class Side:
    BUY = "1"
    SELL = "2"
    SELL_SHORT = "5"


class OrdType:
    MARKET = "1"
    LIMIT = "2"
    STOP = "3"
    STOP_LIMIT = "4"


class TimeInForce:
    DAY = "0"
    GTC = "1"
    IOC = "3"
    FOK = "4"


class OrdStatus:
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"  # FIX 4.2 only
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"


class ExecType:
    NEW = "0"
    PARTIAL_FILL = "1"  # FIX 4.2
    FILL = "2"  # FIX 4.2
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"
    TRADE = "F"  # FIX 4.4
    ORDER_STATUS = "I"  # FIX 4.4


def _fmt_decimal(value: Any) -> str:
    s = format(value if value.__class__ is Decimal else Decimal(value), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


def _fmt_bool(value: Any) -> str:
    return "Y" if value else "N"


# kind -> formatter for the wire (``None``: the value is a str, written as is)
_FORMATTERS: dict[str, Callable[[Any], str] | None] = {
    "str": None,
    "time": utc_timestamp,
    "decimal": _fmt_decimal,
    "bool": _fmt_bool,
    "int": str,
}


def _fmt(value: Any, kind: str) -> str:
    f = _FORMATTERS.get(kind)
    return str(value) if f is None else f(value)


def _parse_bool(value: str) -> bool:
    return value == "Y"


# kind -> parser from the wire (``None``: kept as the str)
_PARSERS: dict[str, Callable[[str], Any] | None] = {
    "str": None,
    "time": parse_utc_timestamp,
    "decimal": Decimal,
    "int": int,
    "bool": _parse_bool,
}


def _parse(value: str, kind: str) -> Any:
    f = _PARSERS.get(kind)
    return value if f is None else f(value)


_SPECS: dict[type, list[tuple[str, int, str]]] = {}


def _specs(cls) -> list[tuple[str, int, str]]:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = [
            (f.name, f.metadata["tag"], f.metadata["kind"])
            for f in dataclasses.fields(cls)
            if "tag" in f.metadata
        ]
        _SPECS[cls] = spec
    return spec


class _Codec(NamedTuple):
    """Per class: what ``to_message`` and ``parse`` need, computed once."""

    get_values: Callable[[Any], tuple]  # all tagged attributes, by ascending tag
    tags: tuple[int, ...]
    formatters: tuple[Callable[[Any], str] | None, ...]
    adapts: bool  # the class overrides _adapt
    parsers: tuple[tuple[str, int, Callable[[str], Any] | None], ...]


_CODECS: dict[type, _Codec] = {}


def _codec(cls) -> _Codec:
    c = _CODECS.get(cls)
    if c is None:
        spec = sorted(_specs(cls), key=lambda f: f[1])
        names = [name for name, _, _ in spec]
        getter = attrgetter(*names)
        c = _Codec(
            (lambda obj: (getter(obj),)) if len(names) == 1 else getter,
            tuple(tag for _, tag, _ in spec),
            tuple(_FORMATTERS[kind] for _, _, kind in spec),
            cls._adapt is not AppMessage._adapt,
            tuple((name, tag, _PARSERS[kind]) for name, tag, kind in _specs(cls)),
        )
        _CODECS[cls] = c
    return c


class AppMessage:
    MSG_TYPE: ClassVar[str] = ""

    def _pairs(self) -> list[tuple[int, str]]:
        """The tagged attributes that are set, as ``(tag, wire str)``, by ascending tag."""
        c = _codec(type(self))
        return [
            (tag, (v if v.__class__ is str else str(v)) if f is None else f(v))
            for tag, f, v in zip(c.tags, c.formatters, c.get_values(self), strict=True)
            if v is not None
        ]

    def to_message(self, begin_string: str = "FIX.4.4") -> Message:
        body = self._pairs()
        if _codec(type(self)).adapts:
            pairs = dict(body)
            self._adapt(pairs, begin_string)
            body = list(pairs.items()) if len(pairs) == len(body) else sorted(pairs.items())
        return Message.of(self.MSG_TYPE, body, begin_string)

    def _adapt(self, pairs: dict[int, str], begin_string: str) -> None:
        pass

    @classmethod
    def parse(cls, msg: Message):
        if msg.msg_type != cls.MSG_TYPE:
            raise ValueError(f"{cls.__name__} expects MsgType {cls.MSG_TYPE}, got {msg.msg_type}")
        kwargs = {}
        get = msg.get
        for name, tag, parser in _codec(cls).parsers:
            v = get(tag)
            if v is not None and v != "":
                kwargs[name] = v if parser is None else parser(v)
        obj = cls(**kwargs)
        obj._post_parse(msg)
        return obj

    def _post_parse(self, msg: Message) -> None:
        pass


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class NewOrderSingle(AppMessage):
    MSG_TYPE: ClassVar[str] = "D"
    cl_ord_id: str = _tag(11, "")
    symbol: str = _tag(55, "")
    side: str = _tag(54, Side.BUY)
    order_qty: Decimal = _tag(38, Decimal(0), "decimal")
    ord_type: str = _tag(40, OrdType.MARKET)
    price: Decimal | None = _tag(44, None, "decimal")
    stop_px: Decimal | None = _tag(99, None, "decimal")
    time_in_force: str | None = _tag(59, None)
    account: str | None = _tag(1, None)
    currency: str | None = _tag(15, None)
    handl_inst: str | None = _tag(21, None)
    ex_destination: str | None = _tag(100, None)
    text: str | None = _tag(58, None)
    transact_time: datetime = field(default_factory=_now, metadata={"tag": 60, "kind": "time"})

    def _adapt(self, pairs, begin_string):
        if begin_string <= "FIX.4.2":
            pairs.setdefault(21, "1")


@dataclass
class OrderCancelRequest(AppMessage):
    MSG_TYPE: ClassVar[str] = "F"
    orig_cl_ord_id: str = _tag(41, "")
    cl_ord_id: str = _tag(11, "")
    symbol: str = _tag(55, "")
    side: str = _tag(54, Side.BUY)
    order_qty: Decimal | None = _tag(38, None, "decimal")
    order_id: str | None = _tag(37, None)
    account: str | None = _tag(1, None)
    text: str | None = _tag(58, None)
    transact_time: datetime = field(default_factory=_now, metadata={"tag": 60, "kind": "time"})


@dataclass
class OrderCancelReplaceRequest(AppMessage):
    MSG_TYPE: ClassVar[str] = "G"
    orig_cl_ord_id: str = _tag(41, "")
    cl_ord_id: str = _tag(11, "")
    symbol: str = _tag(55, "")
    side: str = _tag(54, Side.BUY)
    order_qty: Decimal = _tag(38, Decimal(0), "decimal")
    ord_type: str = _tag(40, OrdType.LIMIT)
    price: Decimal | None = _tag(44, None, "decimal")
    order_id: str | None = _tag(37, None)
    time_in_force: str | None = _tag(59, None)
    account: str | None = _tag(1, None)
    handl_inst: str | None = _tag(21, None)
    transact_time: datetime = field(default_factory=_now, metadata={"tag": 60, "kind": "time"})

    def _adapt(self, pairs, begin_string):
        if begin_string <= "FIX.4.2":
            pairs.setdefault(21, "1")


@dataclass
class OrderCancelReject(AppMessage):
    MSG_TYPE: ClassVar[str] = "9"
    order_id: str = _tag(37, "NONE")
    cl_ord_id: str = _tag(11, "")
    orig_cl_ord_id: str = _tag(41, "")
    ord_status: str = _tag(39, OrdStatus.REJECTED)
    cxl_rej_response_to: str = _tag(434, "1")  # 1 cancel, 2 cancel/replace
    cxl_rej_reason: int | None = _tag(102, None, "int")  # 0 too late, 1 unknown order, ...
    text: str | None = _tag(58, None)
    transact_time: datetime | None = _tag(60, None, "time")


@dataclass
class ExecutionReport(AppMessage):
    MSG_TYPE: ClassVar[str] = "8"
    order_id: str = _tag(37, "")
    exec_id: str = _tag(17, "")
    exec_type: str = _tag(150, ExecType.NEW)
    ord_status: str = _tag(39, OrdStatus.NEW)
    symbol: str = _tag(55, "")
    side: str = _tag(54, Side.BUY)
    leaves_qty: Decimal = _tag(151, Decimal(0), "decimal")
    cum_qty: Decimal = _tag(14, Decimal(0), "decimal")
    avg_px: Decimal = _tag(6, Decimal(0), "decimal")
    cl_ord_id: str | None = _tag(11, None)
    orig_cl_ord_id: str | None = _tag(41, None)
    order_qty: Decimal | None = _tag(38, None, "decimal")
    ord_type: str | None = _tag(40, None)
    price: Decimal | None = _tag(44, None, "decimal")
    time_in_force: str | None = _tag(59, None)
    last_qty: Decimal | None = _tag(32, None, "decimal")  # LastShares in 4.2
    last_px: Decimal | None = _tag(31, None, "decimal")
    exec_ref_id: str | None = _tag(19, None)
    ord_rej_reason: int | None = _tag(103, None, "int")
    account: str | None = _tag(1, None)
    text: str | None = _tag(58, None)
    transact_time: datetime | None = _tag(60, None, "time")
    settl_date: str | None = _tag(64, None)  # SettlDate (FutSettDate in 4.2), YYYYMMDD
    security_type: str | None = _tag(167, None)
    poss_dup: bool = False
    poss_resend: bool = False

    @property
    def is_fill(self) -> bool:
        return self.exec_type in (ExecType.TRADE, ExecType.PARTIAL_FILL, ExecType.FILL)

    def _adapt(self, pairs, begin_string):
        et = pairs[150]
        if begin_string <= "FIX.4.2":
            pairs.setdefault(20, "0")  # ExecTransType New
            if et == ExecType.TRADE:
                filled = Decimal(pairs.get(151, "0")) == 0
                pairs[150] = ExecType.FILL if filled else ExecType.PARTIAL_FILL
            elif et == ExecType.ORDER_STATUS:
                # FIX 4.2 has no ExecType I: a status report is ExecTransType 3
                # (Status) with ExecType stating the order's status
                pairs[20] = "3"
                pairs[150] = pairs[39]
        else:
            if et in (ExecType.PARTIAL_FILL, ExecType.FILL):
                pairs[150] = ExecType.TRADE
            if pairs.get(39) == OrdStatus.REPLACED:
                pairs[39] = OrdStatus.NEW

    def _post_parse(self, msg):
        self.poss_dup = msg.get(43) == "Y"
        self.poss_resend = msg.get(97) == "Y"
        if self.exec_type in (ExecType.PARTIAL_FILL, ExecType.FILL):
            self.exec_type = ExecType.TRADE  # one vocabulary for callers


@dataclass
class OrderStatusRequest(AppMessage):
    MSG_TYPE: ClassVar[str] = "H"
    cl_ord_id: str = _tag(11, "")
    symbol: str = _tag(55, "")
    side: str = _tag(54, Side.BUY)
    order_id: str | None = _tag(37, None)


@dataclass
class DontKnowTrade(AppMessage):
    MSG_TYPE: ClassVar[str] = "Q"
    order_id: str = _tag(37, "")
    exec_id: str = _tag(17, "")
    dk_reason: str = _tag(127, "Z")  # A unknown symbol ... D no matching order, Z other
    symbol: str = _tag(55, "")
    side: str = _tag(54, Side.BUY)
    order_qty: Decimal | None = _tag(38, None, "decimal")
    last_qty: Decimal | None = _tag(32, None, "decimal")
    last_px: Decimal | None = _tag(31, None, "decimal")
    text: str | None = _tag(58, None)


@dataclass
class BusinessMessageReject(AppMessage):
    MSG_TYPE: ClassVar[str] = "j"
    ref_msg_type: str = _tag(372, "")
    business_reject_reason: int = _tag(380, 0, "int")
    ref_seq_num: int | None = _tag(45, None, "int")
    business_reject_ref_id: str | None = _tag(379, None)
    text: str | None = _tag(58, None)


TYPES: dict[str, type[AppMessage]] = {
    c.MSG_TYPE: c
    for c in (
        NewOrderSingle,
        OrderCancelRequest,
        OrderCancelReplaceRequest,
        OrderCancelReject,
        ExecutionReport,
        OrderStatusRequest,
        DontKnowTrade,
        BusinessMessageReject,
    )
}


def parse(msg: Message) -> AppMessage:
    """Parse a decoded message into its typed class (ValueError if unknown)."""
    cls = TYPES.get(msg.msg_type)
    if cls is None:
        raise ValueError(f"no typed class for MsgType {msg.msg_type}")
    return cls.parse(msg)
