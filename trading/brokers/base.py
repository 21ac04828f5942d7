"""The broker interface. Plain data in and out, no Django."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class RouteTicket:
    """What an adapter needs to know of a route: the FIX NewOrderSingle's content."""

    broker: str
    cl_ord_id: str
    symbol: str
    side: str  # trading.models.Side values
    quantity: Decimal
    order_type: str  # trading.models.OrderType values
    time_in_force: str
    limit_price: Decimal | None = None
    filled_quantity: Decimal = Decimal(0)
    settings: dict = field(default_factory=dict)
    stop_price: Decimal | None = None
    expire_at: datetime | None = None  # good-till-date orders
    #: The ClOrdID the broker knows the order by now: the route's own, or that of
    #: its last accepted replace. A cancel or replace names it as OrigClOrdID.
    working_cl_ord_id: str = ""
    #: The route's state as we know it (trading.models.Route.Status values).
    status: str = "pending_new"
    #: When the order's life ends (a day order: its exchange's close).
    ends_at: datetime | None = None
    #: The broker's OrderID, once it answered.
    order_id: str = ""
    #: FIX 4.4 Instrument fields beyond the Symbol (SecurityType, a bond's PriceType,
    #: a derivative's maturity, strike, put or call): `fixmap.instrument_fields`.
    instrument_fields: tuple[tuple[int, str], ...] = ()

    @property
    def orig_cl_ord_id(self) -> str:
        return self.working_cl_ord_id or self.cl_ord_id


@dataclass(frozen=True)
class ReplaceTerms:
    """What a cancel/replace asks for: the request's own ClOrdID and the order's
    new terms (every term, changed or not, as OrderCancelReplaceRequest carries)."""

    cl_ord_id: str
    quantity: Decimal
    order_type: str
    time_in_force: str
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    expire_at: datetime | None = None


@dataclass(frozen=True)
class ExecutionReport:
    """One execution report, as FIX's ExecutionReport (35=8) carries it.

    `exec_type` and `ord_status` use the values of trading.models.Execution.ExecType
    and Route.Status. `exec_id` is unique per broker: applying the same report
    twice changes nothing the second time.
    """

    broker: str
    cl_ord_id: str
    exec_id: str
    exec_type: str
    ord_status: str
    transact_time: datetime
    last_quantity: Decimal = Decimal(0)
    last_price: Decimal | None = None
    cumulative_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    leaves_quantity: Decimal = Decimal(0)
    order_id: str = ""
    text: str = ""
    #: OrderQty as the broker has it (after a replace, the new quantity).
    order_quantity: Decimal | None = None
    #: SettlDate (64; FutSettDate in FIX 4.2) as the broker gave it: the day the trade
    #: settles by the broker's books, booked instead of ours when given.
    settlement_date: date | None = None


ReportSink = Callable[[ExecutionReport], object]


class BrokerAdapter(ABC):
    """Reaches one broker. Reports, now or later, go to `self.sink`."""

    #: True for an adapter whose `send` only writes the message to the database
    #: for another process to send (the FIX outbox): the routing task then
    #: claims the route and queues the message in one transaction.
    queues_in_database = False

    def __init__(self, sink: ReportSink) -> None:
        self.sink = sink

    @abstractmethod
    def send(self, ticket: RouteTicket) -> None:
        """Place a new order (FIX NewOrderSingle)."""

    @abstractmethod
    def cancel(self, ticket: RouteTicket, *, cl_ord_id: str) -> None:
        """Ask to cancel what is left of the order (OrderCancelRequest); ``cl_ord_id``
        is the request's own ClOrdID."""

    @abstractmethod
    def replace(self, ticket: RouteTicket, terms: ReplaceTerms) -> None:
        """Ask to change the order's quantity, prices or time in force
        (OrderCancelReplaceRequest)."""

    @abstractmethod
    def status(self, ticket: RouteTicket) -> None:
        """Ask for the order's current state (OrderStatusRequest)."""
