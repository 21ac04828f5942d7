"""Orders and their lifecycle: orders, blocks, routes to brokers, executions, allocations.

Each of Order, Block and Route carries its transition map; services enforce it
(`oms.state.check_transition`) and nothing else changes a status.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from oms.numbers import ZERO
from portfolios.models import (
    Portfolio,
    RebalanceRun,
    Security,
    money_field,
    price_field,
    quantity_field,
)


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    SELL_SHORT = "sell_short", "Sell short"
    BUY_TO_COVER = "buy_to_cover", "Buy to cover"

    @property
    def is_buy(self) -> bool:
        return self in (Side.BUY, Side.BUY_TO_COVER)


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"
    STOP = "stop", "Stop"
    STOP_LIMIT = "stop_limit", "Stop limit"


class LotMethod(models.TextChoices):
    """How a sell closes its account's tax lots (`portfolios.rebalance.LOT_SELECTION`)."""

    FIFO = "fifo", "First in, first out"
    HIFO = "hifo", "Highest cost first"
    MIN_TAX = "min_tax", "Least tax"


class TimeInForce(models.TextChoices):
    DAY = "day", "Day"
    GTC = "gtc", "Good till cancel"
    IOC = "ioc", "Immediate or cancel"
    FOK = "fok", "Fill or kill"
    OPG = "opg", "At the opening"
    CLS = "cls", "At the close"
    GTD = "gtd", "Good till date"


# An order's terms stand on the order, its block and each route, alike on all three.
def order_type_field() -> models.CharField:
    return models.CharField(max_length=20, choices=OrderType.choices, default=OrderType.MARKET)


def time_in_force_field() -> models.CharField:
    return models.CharField(max_length=10, choices=TimeInForce.choices, default=TimeInForce.DAY)


def signature_field(**kwargs) -> models.ForeignKey:
    """Who took a step on an order (created, approved, released it): never searched by,
    and users are deactivated, never deleted (Django's PROTECT still refuses it), so no
    index and no database constraint, which every one of a run's orders would otherwise
    pay for when it is written and again when it is approved (decision 44)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
        **kwargs,
    )


class Broker(models.Model):
    """A counterparty orders are routed to, and the adapter that reaches it."""

    class Adapter(models.TextChoices):
        SIMULATED = "simulated", "Simulated broker (in the routing worker)"
        FIX = "fix", "FIX (through the FIX gateway)"

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    adapter = models.CharField(max_length=20, choices=Adapter.choices, default=Adapter.SIMULATED)
    settings = models.JSONField(default=dict, blank=True, help_text="Adapter settings")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Block(models.Model):
    """Released orders for one security and side (and terms), traded as one."""

    #: What the block's routes and fills move (a report, a bust, a correction).
    FIGURE_FIELDS = ("routed_quantity", "filled_quantity", "average_price", "commission")

    #: The terms released orders share to join one open block (fields of both models).
    TERMS = (
        "security_id",
        "side",
        "order_type",
        "limit_price",
        "stop_price",
        "time_in_force",
        "expire_at",
    )

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        WORKING = "working", "Working"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        DONE_FOR_DAY = "done_for_day", "Done for day"
        ALLOCATED = "allocated", "Allocated"

    TRANSITIONS = {
        # A broker's late fill (after its route was cancelled) can reach an open
        # block; at the close a day block that nothing filled is done for the day.
        Status.OPEN: frozenset(
            {
                Status.WORKING,
                Status.CANCELLED,
                Status.PARTIALLY_FILLED,
                Status.FILLED,
                Status.DONE_FOR_DAY,
            }
        ),
        Status.WORKING: frozenset(
            {
                Status.OPEN,
                Status.PARTIALLY_FILLED,
                Status.FILLED,
                Status.CANCELLED,
                Status.DONE_FOR_DAY,
            }
        ),
        # A broker's trade bust can take fills back before allocation.
        Status.PARTIALLY_FILLED: frozenset(
            {
                Status.FILLED,
                Status.CANCELLED,
                Status.DONE_FOR_DAY,
                Status.ALLOCATED,
                Status.WORKING,
                Status.OPEN,
            }
        ),
        Status.FILLED: frozenset(
            {Status.ALLOCATED, Status.PARTIALLY_FILLED, Status.WORKING, Status.OPEN}
        ),
        Status.CANCELLED: frozenset({Status.ALLOCATED}),
        Status.DONE_FOR_DAY: frozenset({Status.ALLOCATED}),
        Status.ALLOCATED: frozenset(),
    }
    # Still on the desk: more can be routed, and reports move the block.
    OPEN_STATES = frozenset({Status.OPEN, Status.WORKING, Status.PARTIALLY_FILLED})
    # Fills (or the allocation) are still to come from brokers and the worker.
    LIVE_STATES = frozenset({Status.WORKING, Status.PARTIALLY_FILLED, Status.FILLED})
    # Ended at the broker with something filled: to be allocated.
    ALLOCATABLE_STATES = frozenset({Status.FILLED, Status.CANCELLED, Status.DONE_FOR_DAY})
    AUDIT_FIELDS = ("status", "quantity", "routed_quantity", "filled_quantity", "average_price")

    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="blocks")
    side = models.CharField(max_length=20, choices=Side.choices)
    order_type = order_type_field()
    limit_price = price_field(null=True, blank=True)
    stop_price = price_field(null=True, blank=True)
    time_in_force = time_in_force_field()
    expire_at = models.DateTimeField(null=True, blank=True, help_text="Good-till-date blocks")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    quantity = quantity_field(default=ZERO)
    routed_quantity = quantity_field(default=ZERO)
    filled_quantity = quantity_field(default=ZERO)
    average_price = price_field(null=True, blank=True)
    commission = money_field(default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Whatever brokers send, a block never fills beyond what its orders asked
            # for, nor has more with brokers than it holds (issue 11's 1,500 of 1,000).
            models.CheckConstraint(
                condition=models.Q(filled_quantity__lte=models.F("quantity")),
                name="block_not_overfilled",
            ),
            models.CheckConstraint(
                condition=models.Q(routed_quantity__lte=models.F("quantity")),
                name="block_not_overrouted",
            ),
        ]

    def __str__(self) -> str:
        return f"Block #{self.pk} {self.get_side_display()} {self.quantity} {self.security}"

    def get_absolute_url(self) -> str:
        return reverse("trading:block-detail", args=[self.pk])

    @property
    def unrouted_quantity(self):
        return self.quantity - self.routed_quantity

    @property
    def leaves_quantity(self):
        """What is still to fill: nothing once the block has ended."""
        if self.status not in self.OPEN_STATES:
            return ZERO
        return self.quantity - self.filled_quantity

    @property
    def fill_ratio(self) -> float:
        return float(self.filled_quantity / self.quantity) if self.quantity else 0.0

    @property
    def gross_amount(self):
        if self.average_price is None:
            return ZERO
        return self.filled_quantity * self.average_price * self.security.multiplier

    @property
    def net_amount(self):
        """What the fills cost (buy) or bring (sell) with the commission."""
        sign = 1 if Side(self.side).is_buy else -1
        return self.gross_amount + sign * self.commission


class Order(models.Model):
    """An instruction to buy or sell one security for one account."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING_COMPLIANCE = "pending_compliance", "Pending compliance"
        NEEDS_OVERRIDE = "needs_override", "Needs override"
        REJECTED = "rejected", "Rejected"
        APPROVED = "approved", "Approved"
        RELEASED = "released", "Released"
        WORKING = "working", "Working"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        DONE_FOR_DAY = "done_for_day", "Done for day"
        ALLOCATED = "allocated", "Allocated"

    TRANSITIONS = {
        # The pre-trade check at approval decides: approved, needs an override, rejected.
        Status.DRAFT: frozenset(
            {
                Status.PENDING_COMPLIANCE,
                Status.APPROVED,
                Status.NEEDS_OVERRIDE,
                Status.REJECTED,
                Status.CANCELLED,
            }
        ),
        Status.PENDING_COMPLIANCE: frozenset(
            {Status.APPROVED, Status.NEEDS_OVERRIDE, Status.REJECTED, Status.CANCELLED}
        ),
        Status.NEEDS_OVERRIDE: frozenset({Status.APPROVED, Status.REJECTED, Status.CANCELLED}),
        Status.REJECTED: frozenset(),
        Status.APPROVED: frozenset({Status.RELEASED, Status.CANCELLED}),
        # A day order's day can end before any of it was routed: it expires.
        Status.RELEASED: frozenset({Status.WORKING, Status.CANCELLED, Status.EXPIRED}),
        Status.WORKING: frozenset(
            {
                Status.RELEASED,
                Status.PARTIALLY_FILLED,
                Status.FILLED,
                Status.CANCELLED,
                Status.EXPIRED,
                Status.DONE_FOR_DAY,
            }
        ),
        # A broker's trade bust can take the block's fills back before allocation.
        Status.PARTIALLY_FILLED: frozenset(
            {
                Status.FILLED,
                Status.CANCELLED,
                Status.EXPIRED,
                Status.DONE_FOR_DAY,
                Status.WORKING,
                Status.RELEASED,
            }
        ),
        Status.FILLED: frozenset({Status.ALLOCATED}),
        Status.CANCELLED: frozenset({Status.ALLOCATED}),
        Status.EXPIRED: frozenset({Status.ALLOCATED}),
        Status.DONE_FOR_DAY: frozenset({Status.ALLOCATED}),
        Status.ALLOCATED: frozenset(),
    }
    # States in which the order is on the trading desk (in a block).
    DESK_STATES = frozenset({Status.RELEASED, Status.WORKING, Status.PARTIALLY_FILLED})
    # On its way through the desk until allocated (a filled order awaits allocation).
    LIVE_ON_DESK_STATES = DESK_STATES | {Status.FILLED}
    # Committed to trade: approved and not yet done. A sell in these states holds
    # shares that another sell cannot use.
    COMMITTED_STATES = frozenset({Status.APPROVED}) | DESK_STATES
    AUDIT_FIELDS = ("status", "quantity", "filled_quantity", "average_price", "block_id")
    #: What an order asks for, in the order the API shows it (a bulk check reads them too).
    TERM_FIELDS = (
        "side",
        "order_type",
        "time_in_force",
        "expire_at",
        "quantity",
        "limit_price",
        "stop_price",
    )

    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="orders")
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=20, choices=Side.choices)
    order_type = order_type_field()
    time_in_force = time_in_force_field()
    expire_at = models.DateTimeField(null=True, blank=True, help_text="For good-till-date orders")
    quantity = quantity_field(validators=[MinValueValidator(ZERO)])
    limit_price = price_field(null=True, blank=True)
    stop_price = price_field(null=True, blank=True)
    # indexed by Meta.indexes: a plain b-tree, no LIKE (varchar_pattern_ops) twin
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    filled_quantity = quantity_field(default=ZERO)
    average_price = price_field(null=True, blank=True)
    estimated_price = price_field(null=True, blank=True, help_text="Price used to size the order")
    rebalance_run = models.ForeignKey(
        RebalanceRun, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    block = models.ForeignKey(
        Block, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    lot_method = models.CharField(
        max_length=10,
        choices=LotMethod.choices,
        default=LotMethod.FIFO,
        help_text="Which tax lots a sell closes first",
    )
    lots = models.JSONField(
        default=list,
        blank=True,
        help_text="Specific tax lots a sell closes first: [[lot id, quantity], ...]",
    )
    notes = models.CharField(max_length=500, blank=True)
    compliance_note = models.CharField(
        max_length=1000, blank=True, help_text="The last pre-trade check's verdict, in words"
    )
    created_by = signature_field()
    approved_by = signature_field(null=True, blank=True)
    released_by = signature_field(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status"], name="order_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="order_quantity_positive"
            ),
            models.CheckConstraint(
                condition=~models.Q(order_type__in=["limit", "stop_limit"])
                | models.Q(limit_price__gt=0),
                name="order_limit_price_needed",
            ),
            models.CheckConstraint(
                condition=~models.Q(order_type__in=["stop", "stop_limit"])
                | models.Q(stop_price__gt=0),
                name="order_stop_price_needed",
            ),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk} {self.get_side_display()} {self.quantity} {self.security}"

    def get_absolute_url(self) -> str:
        return reverse("trading:order-detail", args=[self.pk])


class Route(models.Model):
    """One order message chain to one broker for (part of) a block. States follow FIX OrdStatus."""

    #: What a cancel/replace request in flight holds until the broker answers.
    PENDING_FIELDS = (
        "pending_cl_ord_id",
        "pending_quantity",
        "pending_limit_price",
        "pending_stop_price",
        "pending_time_in_force",
        "pending_expire_at",
    )

    class Status(models.TextChoices):
        PENDING_NEW = "pending_new", "Pending new"
        NEW = "new", "New"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        FILLED = "filled", "Filled"
        PENDING_CANCEL = "pending_cancel", "Pending cancel"
        CANCELLED = "cancelled", "Cancelled"
        PENDING_REPLACE = "pending_replace", "Pending replace"
        REPLACED = "replaced", "Replaced"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        DONE_FOR_DAY = "done_for_day", "Done for day"
        UNCONFIRMED = "unconfirmed", "Unconfirmed"

    S = Status
    # What a broker may report of an order it holds, whatever was last asked of it; a
    # disconnect leaves it unconfirmed.
    _AT_BROKER = frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.DONE_FOR_DAY, S.UNCONFIRMED}
    )
    # What a trader may ask of an order the broker holds.
    _REQUESTS = frozenset({S.PENDING_CANCEL, S.PENDING_REPLACE})
    TRANSITIONS = {
        S.PENDING_NEW: frozenset(
            {
                S.NEW,
                S.REJECTED,
                S.PARTIALLY_FILLED,
                S.FILLED,
                S.PENDING_CANCEL,
                S.CANCELLED,
                S.UNCONFIRMED,
            }
        ),
        S.NEW: _AT_BROKER | _REQUESTS,
        S.PARTIALLY_FILLED: (_AT_BROKER - {S.PARTIALLY_FILLED}) | _REQUESTS,
        # A fill after a cancel request is legal; a cancel reject restores the prior state.
        S.PENDING_CANCEL: _AT_BROKER | {S.NEW},
        # A fill while the replace is pending is booked; a replace reject restores
        # the state before it; the broker may also end the order meanwhile.
        S.PENDING_REPLACE: _AT_BROKER | {S.REPLACED, S.NEW},
        S.REPLACED: _AT_BROKER | _REQUESTS | {S.NEW},
        # Sent, outcome unknown after a disconnect: only the broker's answer settles it.
        S.UNCONFIRMED: (_AT_BROKER - {S.UNCONFIRMED}) | {S.NEW, S.REJECTED},
        S.FILLED: frozenset(),
        S.CANCELLED: frozenset(),
        S.REJECTED: frozenset(),
        S.EXPIRED: frozenset(),
        S.DONE_FOR_DAY: frozenset(),
    }
    del S, _AT_BROKER, _REQUESTS
    TERMINAL_STATES = frozenset(state for state, targets in TRANSITIONS.items() if not targets)
    # States a trader may ask to cancel from (those that pending cancel may follow).
    CANCELLABLE_STATES = frozenset(
        state for state, targets in TRANSITIONS.items() if "pending_cancel" in targets
    )
    # States a trader may amend from (cancel/replace).
    REPLACEABLE_STATES = frozenset(
        state for state, targets in TRANSITIONS.items() if "pending_replace" in targets
    )
    # Waiting for the broker's answer to a request of ours.
    PENDING_STATES = frozenset({"pending_new", "pending_cancel", "pending_replace"})
    AUDIT_FIELDS = (
        "status",
        "quantity",
        "filled_quantity",
        "average_price",
        "limit_price",
        "stop_price",
        "time_in_force",
        "expire_at",
    )

    block = models.ForeignKey(Block, on_delete=models.PROTECT, related_name="routes")
    broker = models.ForeignKey(Broker, on_delete=models.PROTECT, related_name="routes")
    cl_ord_id = models.CharField("ClOrdID", max_length=64, unique=True)
    broker_order_id = models.CharField("OrderID", max_length=64, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING_NEW, db_index=True
    )
    status_before_pending = models.CharField(max_length=20, choices=Status.choices, blank=True)
    quantity = quantity_field(validators=[MinValueValidator(ZERO)])
    order_type = order_type_field()
    limit_price = price_field(null=True, blank=True)
    stop_price = price_field(null=True, blank=True)
    time_in_force = time_in_force_field()
    expire_at = models.DateTimeField(null=True, blank=True, help_text="Good-till-date routes")
    ends_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When the order's life ends: a day order at its exchange's close, "
        "a good-till-date order at its date",
    )
    filled_quantity = quantity_field(default=ZERO)
    average_price = price_field(null=True, blank=True)
    commission = money_field(default=ZERO)
    text = models.CharField(max_length=500, blank=True, help_text="Broker's last free text")
    sent_at = models.DateTimeField(null=True, blank=True)
    # Cancel/replace chains the broker's order by ClOrdID: the one it knows the
    # order by now (the last accepted request's), and the request in flight.
    working_cl_ord_id = models.CharField(max_length=64, blank=True)
    pending_cl_ord_id = models.CharField(max_length=64, blank=True)
    # The terms a pending replace asks for, applied when the broker accepts it.
    pending_quantity = quantity_field(null=True, blank=True)
    pending_limit_price = price_field(null=True, blank=True)
    pending_stop_price = price_field(null=True, blank=True)
    pending_time_in_force = models.CharField(max_length=10, blank=True)
    pending_expire_at = models.DateTimeField(null=True, blank=True)
    status_requested_at = models.DateTimeField(null=True, blank=True)
    status_requests = models.PositiveIntegerField(
        default=0, help_text="Status requests sent since the broker last answered"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="route_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(filled_quantity__lte=models.F("quantity")),
                name="route_not_overfilled",
            ),
        ]

    def __str__(self) -> str:
        return f"Route {self.cl_ord_id} → {self.broker}"

    @property
    def leaves_quantity(self):
        if self.status in self.TERMINAL_STATES:
            return ZERO
        return self.quantity - self.filled_quantity

    @property
    def reserved_quantity(self):
        """What the route holds of its block: its quantity (or the larger one a
        pending replace asks for) while live, what filled once it has ended."""
        if self.status in self.TERMINAL_STATES:
            return self.filled_quantity
        return max(self.quantity, self.pending_quantity or ZERO)

    @property
    def broker_cl_ord_id(self) -> str:
        """The ClOrdID the broker knows the order by (OrigClOrdID of the next request)."""
        return self.working_cl_ord_id or self.cl_ord_id


class Execution(models.Model):
    """An execution report from a broker, applied once per route and ExecID.

    FIX asks an ExecID to be unique within a trading day or the life of a
    multi-day order, not forever: brokers that number from 1 again each day (or
    after a restart) reuse ExecIDs, so uniqueness is per route (one order)."""

    class ExecType(models.TextChoices):
        NEW = "new", "New"
        TRADE = "trade", "Trade"
        TRADE_CANCEL = "trade_cancel", "Trade bust"
        TRADE_CORRECT = "trade_correct", "Trade correction"
        CANCELED = "canceled", "Canceled"
        REPLACED = "replaced", "Replaced"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        DONE_FOR_DAY = "done_for_day", "Done for day"
        PENDING_CANCEL = "pending_cancel", "Pending cancel"
        PENDING_REPLACE = "pending_replace", "Pending replace"
        ORDER_STATUS = "order_status", "Order status"
        CANCEL_REJECT = "cancel_reject", "Cancel reject"

    route = models.ForeignKey(Route, on_delete=models.PROTECT, related_name="executions")
    broker = models.ForeignKey(Broker, on_delete=models.PROTECT, related_name="+")
    exec_id = models.CharField("ExecID", max_length=64)
    exec_type = models.CharField(max_length=20, choices=ExecType.choices)
    ord_status = models.CharField(max_length=20, choices=Route.Status.choices)
    last_quantity = quantity_field(default=ZERO)
    last_price = price_field(null=True, blank=True)
    cumulative_quantity = quantity_field(default=ZERO)
    average_price = price_field(null=True, blank=True)
    leaves_quantity = quantity_field(default=ZERO)
    commission = money_field(default=ZERO, help_text="Charged on this fill, per the schedule")
    text = models.CharField(max_length=500, blank=True)
    transact_time = models.DateTimeField()
    settlement_date = models.DateField(
        null=True,
        blank=True,
        help_text="SettlDate (64) as the broker reported it; empty when it gave none",
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["route", "exec_id"], name="execution_unique_per_route")
        ]

    def __str__(self) -> str:
        return (
            f"{self.broker} {self.exec_id} {self.exec_type} {self.last_quantity}@{self.last_price}"
        )


class Allocation(models.Model):
    """The share of a block's fills booked to one account order, at the block's average price."""

    block = models.ForeignKey(Block, on_delete=models.PROTECT, related_name="allocations")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="allocation")
    quantity = quantity_field()
    price = price_field()
    gross_amount = money_field(
        help_text="Quantity × price × multiplier, in the security's currency (a bond's "
        "face × price / 100: the lot's cost)"
    )
    accrued_interest = money_field(
        default=ZERO,
        help_text="A bond's interest accrued to the settlement date, paid by the buyer on "
        "top of the price (income, kept apart from the lot's cost)",
    )
    commission = money_field(default=ZERO, help_text="The block's commission, pro rata")
    net_amount = money_field(
        default=ZERO,
        help_text="Cash paid (buy: gross + accrued + commission) or received (sell: gross + "
        "accrued − commission)",
    )
    trade_date = models.DateField(
        help_text="The trading day of the block's last fill, by its broker's day: the lots' "
        "purchase or sale date, the day settlement counts from (not the day it was booked)"
    )
    settlement_date = models.DateField(
        null=True,
        blank=True,
        help_text="The day the cash and the security move: the broker's SettlDate on the "
        "block's last fill when it gave one, else the market's cycle from the trade date",
    )
    computed_settlement_date = models.DateField(
        null=True,
        blank=True,
        help_text="Our settlement date, kept only where the broker's differs from it (a "
        "difference for operations to check: the broker's is the one booked)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["block", "order"]
        indexes = [
            # the few the reconciliation page lists: where the broker's date differs
            models.Index(
                fields=["computed_settlement_date"],
                name="alloc_settlement_differs",
                condition=models.Q(computed_settlement_date__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.order} ← {self.quantity}@{self.price}"


# --- The FIX gateway ------------------------------------------------------------------


def validate_time_zone(value: str) -> None:
    """An IANA time zone name, such as America/New_York or Europe/London."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{value!r} is not a time zone: use an IANA name such as America/New_York."
        ) from None


class FixSession(models.Model):
    """The FIX session that reaches a broker whose adapter is FIX.

    The gateway process that owns it (`manage.py fix_gateway CODE`) keeps its
    sequence numbers here, in step with the messages it sends and receives.
    `generation` counts sequence resets: messages are numbered per generation.
    """

    class BeginString(models.TextChoices):
        FIX42 = "FIX.4.2", "FIX 4.2"
        FIX44 = "FIX.4.4", "FIX 4.4"

    broker = models.OneToOneField(Broker, on_delete=models.PROTECT, related_name="fix_session")
    begin_string = models.CharField(
        max_length=8, choices=BeginString.choices, default=BeginString.FIX44
    )
    sender_comp_id = models.CharField("SenderCompID", max_length=64)
    target_comp_id = models.CharField("TargetCompID", max_length=64)
    host = models.CharField(max_length=255, default="127.0.0.1")
    port = models.PositiveIntegerField(validators=[MaxValueValidator(65535)])
    heartbeat_interval = models.PositiveIntegerField(default=30, help_text="Seconds")
    reset_on_logon = models.BooleanField(
        default=False,
        help_text="Send ResetSeqNumFlag=Y on every logon (both sides start again at 1)",
    )
    # The session's trading day ends at this time of day in this zone (a US
    # broker's FIX day commonly rolls at 17:00 New York), not at midnight UTC.
    day_ends_at = models.TimeField(default=time(17, 0))
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    next_sender_seq = models.PositiveIntegerField(default=1)
    next_target_seq = models.PositiveIntegerField(default=1)
    generation = models.PositiveIntegerField(default=1)
    logged_on = models.BooleanField(default=False)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["begin_string", "sender_comp_id", "target_comp_id"],
                name="fix_session_unique_comp_ids",
            )
        ]

    def __str__(self) -> str:
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}"


class FixMessage(models.Model):
    """An application message the gateway sent, kept to answer a ResendRequest."""

    session = models.ForeignKey(FixSession, on_delete=models.PROTECT, related_name="sent")
    generation = models.PositiveIntegerField()
    seq_num = models.PositiveIntegerField()
    raw = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "generation", "seq_num"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "generation", "seq_num"], name="fix_message_unique_seq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session} sent {self.generation}/{self.seq_num}"


class FixOutbox(models.Model):
    """A message for the broker, written by the routing worker and sent by the
    gateway, which numbers, stores and marks it in one transaction."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # could not be made into a message; see `error`

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.SENT, Status.FAILED}),
        Status.SENT: frozenset(),
        Status.FAILED: frozenset(),
    }

    session = models.ForeignKey(FixSession, on_delete=models.PROTECT, related_name="outbox")
    route = models.ForeignKey(
        Route, on_delete=models.PROTECT, related_name="fix_outbox", null=True, blank=True
    )
    msg_type = models.CharField("MsgType", max_length=4)
    fields = models.JSONField(help_text="Body fields as [tag, value] pairs, in order")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    generation = models.PositiveIntegerField(null=True, blank=True)
    seq_num = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["session", "status", "id"], name="fix_outbox_pending")]

    def __str__(self) -> str:
        return f"{self.session} outbox #{self.pk} 35={self.msg_type} {self.status}"


class FixInbox(models.Model):
    """An application message received from the broker, stored raw before it is
    applied; at most once per session, generation and sequence number."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        APPLIED = "applied", "Applied"
        NOT_APPLIED = "not_applied", "Not applied"  # kept with the reason, for a person
        DISMISSED = "dismissed", "Dismissed"  # by a person, with the reason

    TRANSITIONS = {
        Status.RECEIVED: frozenset({Status.APPLIED, Status.NOT_APPLIED}),
        # a resend of the message after the cause was mended applies it; a person
        # applies a bust or correction, or dismisses it with a reason
        Status.NOT_APPLIED: frozenset({Status.APPLIED, Status.DISMISSED}),
        Status.APPLIED: frozenset(),
        Status.DISMISSED: frozenset(),
    }

    session = models.ForeignKey(FixSession, on_delete=models.PROTECT, related_name="inbox")
    generation = models.PositiveIntegerField()
    seq_num = models.PositiveIntegerField()
    msg_type = models.CharField("MsgType", max_length=4)
    raw = models.BinaryField()
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.CharField(max_length=500, blank=True, help_text="Why, in a person's words")

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "generation", "seq_num"], name="fix_inbox_unique_seq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session} received {self.generation}/{self.seq_num} 35={self.msg_type}"


# --- Reconciliation with statements -------------------------------------------------


class Statement(models.Model):
    """A custodian's or broker's end-of-day statement of positions and cash."""

    source = models.CharField(max_length=100, help_text="Custodian or broker")
    as_of = models.DateField()
    file_name = models.CharField(max_length=255, blank=True)
    lines = models.PositiveIntegerField(default=0)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.source} statement of {self.as_of}"


class StatementBreak(models.Model):
    """One difference between our books and a statement: a security position or
    a cash balance of one account, to be resolved or annotated by a person."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    TRANSITIONS = {Status.OPEN: frozenset({Status.RESOLVED}), Status.RESOLVED: frozenset()}

    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="breaks")
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="+")
    security = models.ForeignKey(
        Security, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3, blank=True, help_text="For a cash break")
    ours = quantity_field()
    theirs = quantity_field()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    note = models.CharField(max_length=500, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(security__isnull=False) & models.Q(currency=""))
                | (models.Q(security__isnull=True) & ~models.Q(currency="")),
                name="statement_break_security_or_cash",
            )
        ]

    def __str__(self) -> str:
        return f"{self.portfolio} {self.security or self.currency}: {self.ours} vs {self.theirs}"

    @property
    def difference(self):
        return self.theirs - self.ours
