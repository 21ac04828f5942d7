"""Our orders in FIX and FIX's reports in our terms: the one translation, both ways.

Pure (no Django): the FIX adapter builds its outbound messages here, and the
gateway turns every inbound ExecutionReport and OrderCancelReject into our
`ExecutionReport` here. Which route a report is for is the caller's to look up
(`cl_ord_id_candidates` says which ClOrdIDs may name it).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from trading.fix import messages as fixmsg
from trading.fix.codec import Message, parse_utc_timestamp
from trading.services.trading_day import UTC_MIDNIGHT, DayBoundary, trading_day

from .base import ExecutionReport, ReplaceTerms, RouteTicket

# --- Out: our order terms in FIX values ------------------------------------------------

#: tag 54 Side (buy to cover is a buy to FIX; the position it closes is ours to know)
SIDES = {"buy": "1", "sell": "2", "sell_short": "5", "buy_to_cover": "1"}
#: tag 40 OrdType
ORD_TYPES = {"market": "1", "limit": "2", "stop": "3", "stop_limit": "4"}
#: tag 59 TimeInForce (absent means day, FIX's default)
TIME_IN_FORCE = {"day": "0", "gtc": "1", "opg": "2", "ioc": "3", "fok": "4", "gtd": "6", "cls": "7"}
DAY = TIME_IN_FORCE["day"]
#: Messages that carry an order to the broker (new, cancel, replace).
ORDER_MESSAGES = frozenset({"D", "F", "G"})

_LIMIT_TYPES = ("limit", "stop_limit")
_STOP_TYPES = ("stop", "stop_limit")
#: FIX tags the typed messages do not carry, added to an order's body
STOP_PX, EXPIRE_TIME = 99, 126


#: FIX 4.4 Instrument and price fields an order carries beyond the typed message's
SECURITY_TYPE, MATURITY_MONTH_YEAR, PUT_OR_CALL, STRIKE_PRICE = 167, 200, 201, 202
CONTRACT_MULTIPLIER, COUPON_RATE, PRICE_TYPE, CFI_CODE, MATURITY_DATE = 231, 223, 423, 461, 541
#: tag 423 PriceType 1: a percentage of par (a bond's clean price)
PERCENTAGE_OF_PAR = "1"
#: FX (FIX 4.4): Currency (15) the dealt currency, the pair's base; SettlType (63) 0
#: regular (spot) or 6 future (a forward, on SettlDate); SettlDate (64) the value date
CURRENCY, SETTL_TYPE, SETTL_DATE = 15, 63, 64
SETTL_REGULAR, SETTL_FUTURE = "0", "6"


def security_type(terms: dict) -> str:
    """Tag 167 SecurityType (FIX 4.4 values) of a security's terms
    (``portfolios.terms.TERMS_FIELDS`` as plain data)."""
    kind = terms.get("asset_class")
    if kind == "bond":
        currency = terms.get("currency")
        if terms.get("government"):
            if currency != "USD":
                return "EUSOV"
            issue, maturity = terms.get("issue_date"), terms.get("maturity")
            # Treasury notes run 2 to 10 years, bonds 20 or 30
            long = issue and maturity and (maturity.year - issue.year) > 10
            return "TBOND" if long else "TNOTE"
        return "EUCORP" if currency == "EUR" else "CORP"
    return {
        "future": "FUT",
        "option": "OPT",
        "fx_spot": "FOR",
        "fx_forward": "FOR",
        "money_market": "MF",
    }.get(kind, "CS")


def instrument_fields(terms: dict) -> tuple[tuple[int, str], ...]:
    """The Instrument component of an order (FIX 4.4): SecurityType always; for a bond
    its maturity, coupon and PriceType 1 (the price is a percentage of par); for a
    future its MaturityMonthYear and ContractMultiplier; for an option those, the
    StrikePrice, PutOrCall and its CFICode (ISO 10962: O, call C / put P, the rest X);
    for FX the base Currency, SettlType and SettlDate (the value date)."""
    kind = terms.get("asset_class")
    fields: list[tuple[int, str]] = [(SECURITY_TYPE, security_type(terms))]
    if kind == "bond":
        maturity = terms["maturity"]
        fields += [
            (MATURITY_MONTH_YEAR, maturity.strftime("%Y%m")),
            (COUPON_RATE, format(terms["coupon_rate"].normalize(), "f")),
            (PRICE_TYPE, PERCENTAGE_OF_PAR),
            (MATURITY_DATE, maturity.strftime("%Y%m%d")),
        ]
    elif kind in ("future", "option"):
        expiry = terms["expiry"]
        # YYYYMMDD: a MONTHYEAR naming the day, as FIX 4.4 allows, for the exact contract
        fields += [
            (MATURITY_MONTH_YEAR, expiry.strftime("%Y%m%d")),
            (CONTRACT_MULTIPLIER, format(terms["multiplier"].normalize(), "f")),
        ]
        if kind == "option":
            call = terms["option_right"] == "call"
            fields += [
                (PUT_OR_CALL, "1" if call else "0"),
                (STRIKE_PRICE, format(terms["strike"].normalize(), "f")),
                (CFI_CODE, "OCXXXX" if call else "OPXXXX"),
            ]
        else:
            fields.append((CFI_CODE, "FXXXXX"))
    elif kind in ("fx_spot", "fx_forward"):
        # SecurityType FOR: FIX 4.4 has no FXSPOT/FXFWD (FIX 5.0 SP2 added them); spot
        # and forward are told apart by SettlType, the value date goes in SettlDate.
        fields += [
            (CURRENCY, terms["base_currency"]),
            (SETTL_TYPE, SETTL_FUTURE if kind == "fx_forward" else SETTL_REGULAR),
            (SETTL_DATE, terms["value_date"].strftime("%Y%m%d")),
        ]
    return tuple(sorted(fields))


def new_order_single(ticket: RouteTicket) -> fixmsg.NewOrderSingle:
    return fixmsg.NewOrderSingle(
        cl_ord_id=ticket.cl_ord_id,
        symbol=ticket.symbol,
        side=SIDES[ticket.side],
        order_qty=ticket.quantity,
        ord_type=ORD_TYPES[ticket.order_type],
        price=ticket.limit_price if ticket.order_type in _LIMIT_TYPES else None,
        stop_px=ticket.stop_price if ticket.order_type in _STOP_TYPES else None,
        time_in_force=TIME_IN_FORCE[ticket.time_in_force],
        handl_inst="1",  # automated, no broker intervention
    )


def order_extras(
    *, order_type: str, time_in_force: str, stop_price: Decimal | None, expire_at
) -> list[tuple[int, str]]:
    """Fields of an order message beyond the typed one's: the ExpireTime of a
    good-till-date order (and the StopPx of a replace, which the typed replace
    does not carry)."""
    extras: list[tuple[int, str]] = []
    if order_type in _STOP_TYPES and stop_price is not None:
        extras.append((STOP_PX, format(stop_price, "f")))
    if time_in_force == "gtd" and expire_at is not None:
        extras.append((EXPIRE_TIME, expire_at.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")))
    return extras


def cancel_request(ticket: RouteTicket, *, cl_ord_id: str) -> fixmsg.OrderCancelRequest:
    """An OrderCancelRequest for the order as the broker knows it now (OrigClOrdID
    is the last accepted ClOrdID of the chain)."""
    return fixmsg.OrderCancelRequest(
        orig_cl_ord_id=ticket.orig_cl_ord_id,
        cl_ord_id=cl_ord_id,
        symbol=ticket.symbol,
        side=SIDES[ticket.side],
        order_qty=ticket.quantity,
        order_id=ticket.order_id or None,
    )


def replace_request(ticket: RouteTicket, terms: ReplaceTerms) -> fixmsg.OrderCancelReplaceRequest:
    """An OrderCancelReplaceRequest chained to the order's working ClOrdID, with
    every term of the order as it is to be (FIX replaces the whole order)."""
    return fixmsg.OrderCancelReplaceRequest(
        orig_cl_ord_id=ticket.orig_cl_ord_id,
        cl_ord_id=terms.cl_ord_id,
        symbol=ticket.symbol,
        side=SIDES[ticket.side],
        order_qty=terms.quantity,
        ord_type=ORD_TYPES[terms.order_type],
        price=terms.limit_price if terms.order_type in _LIMIT_TYPES else None,
        order_id=ticket.order_id or None,
        time_in_force=TIME_IN_FORCE[terms.time_in_force],
        handl_inst="1",
    )


def status_request(ticket: RouteTicket) -> fixmsg.OrderStatusRequest:
    return fixmsg.OrderStatusRequest(
        cl_ord_id=ticket.orig_cl_ord_id,
        symbol=ticket.symbol,
        side=SIDES[ticket.side],
        order_id=ticket.order_id or None,
    )


_REQUEST_SUFFIX = re.compile(r"-[CR][0-9A-F]{8}$")


def request_id(cl_ord_id: str, kind: str) -> str:
    """A fresh ClOrdID for a cancel (C) or replace (R) request on a route's order:
    the route's own ClOrdID, the kind and a random part, so that a report naming
    only the request's id still names its route."""
    return f"{cl_ord_id}-{kind}{uuid.uuid4().hex[:8].upper()}"


def route_cl_ord_id(value: str) -> str:
    """The route's ClOrdID in one of ours: a request's id loses its suffix."""
    return _REQUEST_SUFFIX.sub("", value)


def cl_ord_id_candidates(msg: Message) -> list[str]:
    """The ClOrdIDs that may name our route, most specific first: the original one
    (41) on answers to a cancel or replace request, then the ClOrdID (11), each as
    sent and without a request's suffix."""
    candidates: list[str] = []
    for tag in (41, 11):
        value = msg.get(tag)
        if value:
            for candidate in (value, route_cl_ord_id(value)):
                if candidate not in candidates:
                    candidates.append(candidate)
    return candidates


# --- In: FIX's reports in our terms -----------------------------------------------------

EXEC_TYPES = {
    "0": "new",
    "1": "trade",  # FIX 4.2 partial fill
    "2": "trade",  # FIX 4.2 fill
    "F": "trade",
    "3": "done_for_day",
    "4": "canceled",
    "5": "replaced",
    "6": "pending_cancel",
    "8": "rejected",
    "A": "new",  # pending new: the order is with the broker
    "C": "expired",
    "E": "pending_replace",
    "I": "order_status",
}
ORD_STATUSES = {
    "0": "new",
    "1": "partially_filled",
    "2": "filled",
    "3": "done_for_day",
    "4": "cancelled",
    "5": "replaced",
    "6": "pending_cancel",
    "8": "rejected",
    "A": "pending_new",
    "C": "expired",
    "E": "pending_replace",
}
#: ExecTypes that report a fill (4.4 F, 4.2 partial fill 1 and fill 2).
FILL_EXEC_TYPES = frozenset({"F", "1", "2"})


class NotOurs(ValueError):
    """A report for an order we did not send on this session."""


class TradeCorrection(ValueError):
    """A trade bust or correction (FIX 4.4 ExecType H/G, FIX 4.2 ExecTransType
    1/2): not booked automatically; kept in the inbox for operations."""


class IncorrectTagValue(ValueError):
    """A field the broker sent that cannot be read as its type says: answered with a
    session Reject (35=3) naming the tag, SessionRejectReason 6 (incorrect data format)
    or 5 (value incorrect for the tag), and kept in the inbox, not applied."""

    def __init__(self, tag: int, reason: int, text: str):
        super().__init__(text)
        self.tag = tag
        self.reason = reason


class BusinessRefusal(ValueError):
    """A report well formed field by field that the books cannot take as it says
    (a trade settling before it was made): answered with a BusinessMessageReject
    (35=j, ``reason`` BusinessRejectReason) and kept in the inbox, not applied."""

    def __init__(self, reason: int, text: str):
        super().__init__(text)
        self.reason = reason


#: SessionRejectReason: 5 value is incorrect (out of range) for this tag, 6 incorrect
#: data format for value; BusinessRejectReason 0: other
VALUE_IS_INCORRECT, INCORRECT_DATA_FORMAT, BUSINESS_OTHER = 5, 6, 0


def settlement_date_of(msg: Message) -> date | None:
    """SettlDate (64; FutSettDate in FIX 4.2), a LocalMktDate YYYYMMDD, or None when
    the broker gave none. :class:`IncorrectTagValue` for one that is not eight digits
    (reason 6) or names no day of the calendar, as 20260231 (reason 5: the session's
    dictionary, like QuickFIX's, checks only the shape and lets it through)."""
    value = msg.get(SETTL_DATE)
    if not value:
        return None
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        raise IncorrectTagValue(
            SETTL_DATE, INCORRECT_DATA_FORMAT, f"SettlDate {value!r} is not a date (YYYYMMDD)"
        )
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise IncorrectTagValue(
            SETTL_DATE, VALUE_IS_INCORRECT, f"SettlDate {value!r} is no day of the calendar"
        ) from None


def _settles_after_trading(
    settles: date | None, transact_time: datetime, day: DayBoundary
) -> date | None:
    """The broker's settlement date, refused when it is before the trade date the
    allocation will book: TransactTime's trading day by the session's day (`trading_day`,
    the day `trading.services.allocations` books the fill on)."""
    if settles is None:
        return None
    traded = trading_day(transact_time, day)
    if settles < traded:
        raise BusinessRefusal(
            BUSINESS_OTHER, f"SettlDate {settles:%Y%m%d} is before the trade date {traded:%Y%m%d}"
        )
    return settles


def _decimal(msg: Message, tag: int) -> Decimal | None:
    value = msg.get(tag)
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"tag {tag} is not a number: {value!r}") from None


def report_from_execution_report(
    msg: Message, *, broker_code: str, cl_ord_id: str, day: DayBoundary = UTC_MIDNIGHT
) -> ExecutionReport:
    """An ExecutionReport (35=8) in our terms, for the route ``cl_ord_id``.

    Mapped field by field rather than through the typed message, so that an
    absent AvgPx stays None, a bad number is named by its tag, and a missing
    TransactTime falls back to now. A SettlDate is read on every report (a malformed
    one is :class:`IncorrectTagValue`; a fill's before its trade date, TransactTime's
    trading day by the session's ``day``, :class:`BusinessRefusal`)."""
    trans_type = msg.get(20)  # FIX 4.2 ExecTransType: 0 new, 1 cancel, 2 correct, 3 status
    if msg.get(150) in ("G", "H") or trans_type in ("1", "2"):
        raise TradeCorrection(
            f"trade bust or correction of ExecID {msg.get(19) or msg.get(17)!r}: "
            "not booked automatically"
        )
    exec_type = EXEC_TYPES.get(msg.get(150) or "")
    ord_status = ORD_STATUSES.get(msg.get(39) or "")
    if exec_type is None or ord_status is None:
        raise ValueError(f"ExecType {msg.get(150)!r} / OrdStatus {msg.get(39)!r} not understood")
    if trans_type == "3":
        exec_type = "order_status"  # a status report repeats a fill; it books nothing
    try:
        transact_time = parse_utc_timestamp(msg.get(60) or "")
    except ValueError:
        transact_time = datetime.now(UTC)
    settles = settlement_date_of(msg)
    if exec_type == "trade":
        # only a fill is dated by its TransactTime: a status report repeats an old
        # fill's SettlDate at the time it is sent
        settles = _settles_after_trading(settles, transact_time, day)
    return ExecutionReport(
        broker=broker_code,
        cl_ord_id=cl_ord_id,
        exec_id=msg.get(17) or "",
        exec_type=exec_type,
        ord_status=ord_status,
        transact_time=transact_time,
        last_quantity=_decimal(msg, 32) or Decimal(0),
        last_price=_decimal(msg, 31),
        cumulative_quantity=_decimal(msg, 14) or Decimal(0),
        average_price=_decimal(msg, 6),
        leaves_quantity=_decimal(msg, 151) or Decimal(0),
        order_id=msg.get(37) or "",
        text=msg.get(58) or "",
        order_quantity=_decimal(msg, 38),
        settlement_date=settles,
    )


def report_from_cancel_reject(
    msg: Message, *, broker_code: str, cl_ord_id: str, ref: str
) -> ExecutionReport:
    """An OrderCancelReject (35=9) as a report that restores the route's prior
    state; it carries no ExecID, so ``ref`` (session, generation, sequence) names it."""
    return ExecutionReport(
        broker=broker_code,
        cl_ord_id=cl_ord_id,
        exec_id=f"CXLREJ-{ref}",
        exec_type="cancel_reject",
        ord_status=ORD_STATUSES.get(msg.get(39) or "", "new"),
        transact_time=datetime.now(UTC),
        order_id=msg.get(37) if msg.get(37) not in (None, "NONE") else "",
        text=msg.get(58) or "Cancel rejected",
    )


def dont_know_trade(msg: Message, text: str) -> fixmsg.DontKnowTrade:
    """The DK (35=Q) for a fill on an order we do not know."""
    return fixmsg.DontKnowTrade(
        order_id=msg.get(37) or "NONE",
        exec_id=msg.get(17) or "NONE",
        dk_reason="D",  # no matching order
        symbol=msg.get(55) or "",
        side=msg.get(54) or "1",
        text=text[:120],
    )


_OUR_TIME_IN_FORCE = {fix: ours for ours, fix in TIME_IN_FORCE.items()}


def time_in_force_of(fields: dict[int, str]) -> str:
    """Our time in force for an order message's body (59 absent means day)."""
    return _OUR_TIME_IN_FORCE.get(fields.get(59, DAY), "day")
