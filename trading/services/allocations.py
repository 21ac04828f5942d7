"""Allocation: a block's fills booked to its account orders at one average price.

The split itself is the pure engine's (`trading.allocation`: pro rata,
lot-rounded, a deterministic rule for the residual); booking positions, tax
lots and cash is the holdings service's (`portfolios.services.holdings`).

Set-based across blocks: `blocks_allocate` allocates every block it is given in
one transaction with a number of statements that grows with neither the blocks
nor their orders; `block_allocate` is the same for one block. Locks, in the house
order (`trading/locks.py`): the blocks, then their orders (each in pk order, one
statement each), then the holdings (`holdings_book_many`: positions, then cash,
then the lots of the accounts that sell).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from audit.services import audit_record, audit_record_each, audited_transaction, snapshot
from oms.bulk import update_rows
from oms.numbers import price as round_price
from oms.state import move
from portfolios import terms
from portfolios.instruments import InstrumentError
from portfolios.models import LotClosing
from portfolios.services.holdings import (
    Booking,
    Fill,
    holdings_backfill_closings,
    holdings_book_many,
    settles_on,
)
from trading import locks, posttrade
from trading.allocation import allocate_fill, allocate_pro_rata
from trading.models import Allocation, Block, Execution, Order, Side

from .blocks import block_changed
from .trading_day import broker_day, trading_day

log = logging.getLogger(__name__)


def block_allocate(*, block_id: int) -> list[Allocation]:
    """Allocate a block that is filled (or done for the day, or cancelled, with
    fills) to its account orders at one average price, and book them.

    Idempotent: a block already allocated is left alone.
    """
    with audited_transaction():
        blocks = locks.lock_blocks([block_id])
        if not blocks:
            raise Block.DoesNotExist(f"No block #{block_id}.")
        allocated, refused = _allocate(blocks)
        if refused:
            raise refused[block_id]
    return allocated.get(block_id, [])


def blocks_allocate(*, block_ids) -> int:
    """Allocate several blocks (those one read of reports filled) at once, as
    `block_allocate` allocates each: in one transaction, set-based (the blocks
    locked in one statement, their orders in one, their last fills read in one, the
    allocations inserted in one, the holdings of every account and security booked
    together by `holdings_book_many`, the orders and the blocks written in one
    statement each and every event appended in one INSERT), so that the statements
    grow with neither the blocks nor their orders. The results are those of
    allocating the blocks one by one in pk order (an account in two blocks books the
    second on what the first left).

    All of them are tried: a block that cannot be allocated (still trading, a split
    its security cannot take) is left out and the others are allocated; the first
    error is raised once they are committed (a retry allocates nothing twice: a
    block allocated already is left alone). Should the batch fail for any other
    reason, each block is tried again in a transaction of its own, so that one block
    never holds back the others. Returns how many were allocated."""
    wanted = list(dict.fromkeys(block_ids))
    if not wanted:
        return 0
    try:
        with audited_transaction():
            allocated, refused = _allocate(locks.lock_blocks(wanted))
    except Exception:
        log.exception("allocating %d blocks together failed: one by one", len(wanted))
        return _allocate_one_by_one(wanted)
    for block_id in wanted:
        if block_id in refused:
            raise refused[block_id]
    return len(allocated)


def _allocate_one_by_one(block_ids: list[int]) -> int:
    allocated, failed = 0, None
    for block_id in block_ids:
        try:
            allocated += bool(block_allocate(block_id=block_id))
        except Exception as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    return allocated


@dataclass
class _Plan:
    """One block's allocation, worked out in memory before anything is written."""

    block: Block
    orders: list[Order]
    on_date: date
    split: dict
    days: FillDays
    befores: dict = field(default_factory=dict)
    allocations: list[Allocation] = field(default_factory=list)


def _allocate(blocks: list[Block]) -> tuple[dict[int, list[Allocation]], dict[int, Exception]]:
    """Allocate the locked ``blocks`` (in pk order) that are ready; returns the
    allocations of each block allocated, and why each block refused was refused
    (nothing of it written)."""
    refused: dict[int, Exception] = {}
    ready = []
    for block in blocks:
        if block.status == Block.Status.ALLOCATED or block.filled_quantity == 0:
            continue
        if block.status not in Block.ALLOCATABLE_STATES:
            refused[block.pk] = ValidationError(
                f"Block #{block.pk} is still {block.get_status_display().lower()}."
            )
            continue
        ready.append(block)
    if not ready:
        return {}, refused
    orders: dict[int, list[Order]] = defaultdict(list)
    for order in locks.lock_orders_of_blocks([block.pk for block in ready]):
        orders[order.block_id].append(order)
    days = _fill_days(ready)
    plans = []
    for block in ready:
        try:
            plans.append(_plan(block, orders[block.pk], days[block.pk]))
        except Exception as exc:  # this block's own fault: the others still go
            refused[block.pk] = exc
    if not plans:
        return {}, refused
    allocations = [a for plan in plans for a in plan.allocations]
    Allocation.objects.bulk_create(allocations, batch_size=_ROWS_PER_INSERT)
    booked = holdings_book_many(
        bookings=[
            Booking(
                plan.block.security,
                [
                    Fill(
                        portfolio_id=a.order.portfolio_id,
                        buying=Side(a.order.side).is_buy,
                        quantity=a.quantity,
                        price=a.price,
                        commission=a.commission,
                        allocation_id=a.pk,
                        lot_method=a.order.lot_method,
                        lots=tuple(a.order.lots or ()),
                    )
                    for a in plan.allocations
                ],
                plan.on_date,
                plan.days.broker,
            )
            for plan in plans
        ]
    )
    update_rows(
        Order,
        [order for plan in plans for order in plan.orders],
        ["status", "filled_quantity", "average_price", "updated_at"],
    )
    now = timezone.now()
    events = []
    for plan, fills in zip(plans, booked, strict=True):
        booked_for = {a.order.pk: b for a, b in zip(plan.allocations, fills, strict=True)}
        for order in plan.orders:
            figures = booked_for.get(order.pk, {})
            before = plan.befores[order.pk] | figures.get("before", {})
            after = snapshot(order, Order.AUDIT_FIELDS) | figures.get("after", {})
            events.append(("order.allocated", order, before, after, ""))
        block = plan.block
        block_before = snapshot(block, Block.AUDIT_FIELDS)
        move(block, Block.Status.ALLOCATED)
        block.updated_at = now
        after = (
            snapshot(block, Block.AUDIT_FIELDS)
            | {"allocations": {o: str(q) for o, q in plan.split.items()}}
            | plan.days.audit()
        )
        events.append(("block.allocated", block, block_before, after, ""))
    update_rows(Block, [plan.block for plan in plans], ["status", "updated_at"])
    audit_record_each(actor=None, events=events)
    for plan in plans:
        block_changed(plan.block.pk)
    # the post-trade check of the accounts whose holdings moved (after commit)
    posttrade.allocated(a.order.portfolio_id for a in allocations)
    return {plan.block.pk: plan.allocations for plan in plans}, refused


#: Rows per INSERT at most (PostgreSQL takes at most 65,535 parameters in one).
_ROWS_PER_INSERT = 1000


def _plan(block: Block, orders: list[Order], days: FillDays) -> _Plan:
    """The block's split, its orders moved (in memory) and its allocations made."""
    security = block.security
    today = days.trade_date
    plan = _Plan(block, orders, today, allocation_split(block, orders), days)
    commissions = split_commission(block.commission, plan.split)
    buying = Side(block.side).is_buy
    now = timezone.now()
    for order in orders:
        quantity = plan.split[order.pk]
        plan.befores[order.pk] = snapshot(order, Order.AUDIT_FIELDS)
        if quantity > 0:
            order.filled_quantity = quantity
            order.average_price = block.average_price
        if quantity == order.quantity:
            if order.status != Order.Status.FILLED:
                move(order, Order.Status.FILLED)
        elif block.status == Block.Status.DONE_FOR_DAY:
            move(order, Order.Status.DONE_FOR_DAY)  # partly filled, or not at all
        elif order.status in (Order.Status.WORKING, Order.Status.RELEASED):
            move(order, Order.Status.CANCELLED)  # nothing of it was filled
        if quantity > 0:
            move(order, Order.Status.ALLOCATED)
            plan.allocations.append(
                Allocation(
                    block=block,
                    order=order,
                    trade_date=today,
                    settlement_date=days.settles,
                    computed_settlement_date=days.differs,
                    **allocation_amounts(
                        security,
                        quantity=quantity,
                        price=block.average_price,
                        commission=commissions[order.pk],
                        buying=buying,
                        on_date=today,
                        settles=days.broker,
                    ),
                )
            )
        order.updated_at = now
    return plan


def fill_days(block: Block) -> FillDays:
    """The days the block's allocation books (`FillDays`): the trading day of its last
    fill, by the day of the broker that filled it, whenever the allocation itself runs
    (a block that ends at a later close, or is allocated after an outage, keeps its
    fills' day), and the settlement date from it."""
    return _fill_days([block])[block.pk]


@dataclass(frozen=True)
class FillDays:
    """The days an allocation books: its ``trade_date`` (`fill_days`), our settlement
    date from it (``ours``: `settles_on`) and the ``broker``'s SettlDate on the block's
    last fill, if it gave one. It settles on the broker's; where that differs from ours,
    ours is kept on the allocation for operations to see (decision 49)."""

    trade_date: date
    ours: date
    broker: date | None = None

    @property
    def settles(self) -> date:
        return self.broker or self.ours

    @property
    def differs(self) -> date | None:
        """Our date where the broker's differs from it, else None."""
        return self.ours if self.broker not in (None, self.ours) else None

    def audit(self) -> dict:
        """What the block's allocation event says of them."""
        figures = {"trade_date": str(self.trade_date), "settlement_date": str(self.settles)}
        if self.differs is not None:
            figures["computed_settlement_date"] = str(self.differs)
        return figures


def _fill_days(blocks: list[Block]) -> dict[int, FillDays]:
    """`FillDays` of each of several blocks, in one statement."""
    last = (
        Execution.objects.filter(route__block=OuterRef("pk"), exec_type=Execution.ExecType.TRADE)
        .order_by("-transact_time", "-pk")
        .values("pk")[:1]
    )
    lasts = Execution.objects.filter(
        pk__in=Block.objects.filter(pk__in=[b.pk for b in blocks]).values(last=Subquery(last))
    ).select_related("route__broker__fix_session")
    last_of = {e.route.block_id: e for e in lasts}
    days = {}
    for block in blocks:
        last = last_of.get(block.pk)
        # filled through corrections only: nothing dates it better than now
        on = (
            trading_day(last.transact_time, broker_day(last.route.broker))
            if last is not None
            else timezone.now().date()
        )
        broker = last.settlement_date if last is not None else None
        days[block.pk] = FillDays(on, settles_on(block.security, on), broker)
    return days


def allocation_split(block: Block, orders: list[Order]) -> dict:
    """The block's filled quantity split across its orders, pro rata, in what the
    security trades: round lots of shares; whole contracts; a bond's minimum piece and
    increment, no account left below the piece (`trading.allocation.allocate_fill`)."""
    security = block.security
    requested = {o.pk: o.quantity for o in orders}
    if security.asset_class in terms.ENGINE_KINDS:
        try:
            return allocate_fill(terms.instrument_of(security), block.filled_quantity, requested)
        except InstrumentError as exc:
            raise ValidationError(f"Block #{block.pk}: {exc}.") from None
    lot = Decimal("0.000001") if security.fractional else security.round_lot
    return allocate_pro_rata(block.filled_quantity, requested, lot=lot)


def allocation_amounts(
    security,
    *,
    quantity: Decimal,
    price: Decimal,
    commission: Decimal,
    buying: bool,
    on_date,
    settles=None,
) -> dict:
    """An allocation's money (portfolios.terms.fill_cash): the gross (the lot's cost),
    a bond's accrued interest to settlement (`settles` when the broker gave it) apart,
    and the net cash with commission."""
    cash = terms.fill_cash(security, quantity, price, on_date, settles)
    gross = round_price(cash.principal)
    paid = gross + cash.accrued
    return {
        "quantity": quantity,
        "price": price,
        "gross_amount": gross,
        "accrued_interest": cash.accrued,
        "commission": commission,
        "net_amount": paid + commission if buying else paid - commission,
    }


_CENT = Decimal("0.01")


def split_commission(total: Decimal, split: dict) -> dict:
    """A block's commission shared pro rata to what each account was allocated,
    in cents; the cents left over go to the largest remainders (then the lower
    order id), so the parts add up to the whole."""
    from decimal import ROUND_FLOOR

    filled = sum(split.values(), Decimal(0))
    if not total or not filled:
        return dict.fromkeys(split, Decimal(0))
    exact = {key: total * quantity / filled for key, quantity in split.items()}
    shares = {key: value.quantize(_CENT, rounding=ROUND_FLOOR) for key, value in exact.items()}
    left = int((total.quantize(_CENT) - sum(shares.values(), Decimal(0))) / _CENT)
    for key in sorted(split, key=lambda k: (-(exact[k] - shares[k]), k))[: max(left, 0)]:
        shares[key] += _CENT
    return shares


def allocations_backfill_closings(*, actor=None, store: bool = True) -> list[dict]:
    """Record the tax lots closed by sells allocated before closings were recorded, so
    that realised P&L and the wash-sale rule see them: for each account and security
    none of whose sells has closings, the sells are replayed in trade-date order, first
    in, first out as the books closed them then (`holdings_backfill_closings`), and the
    closings stored when the replay reproduces the lots held, with one audit event per
    account and security (in a transaction of its own). Idempotent: a pair done has
    closings and is passed over. With ``store`` False nothing is written.

    Returns one entry per pair looked at: ``account``, ``security``, ``sales``,
    ``closings``, ``realised`` (in the security's currency) and ``reason`` (why it was
    left alone, else "")."""
    sells = (
        Allocation.objects.filter(order__side__in=[Side.SELL, Side.SELL_SHORT])
        .annotate(closed=Exists(LotClosing.objects.filter(allocation_id=OuterRef("pk"))))
        .select_related("order__portfolio", "block__security")
        .order_by("order__portfolio_id", "block__security_id", "trade_date", "created_at", "pk")
    )
    pairs: dict[tuple[int, int], list[Allocation]] = defaultdict(list)
    for allocation in sells:
        pairs[allocation.order.portfolio_id, allocation.block.security_id].append(allocation)
    results = []
    for rows in pairs.values():
        if all(a.closed for a in rows):
            continue
        portfolio, security = rows[0].order.portfolio, rows[0].block.security
        entry = {"account": portfolio.code, "security": security.ticker, "sales": len(rows)}
        if any(a.closed for a in rows):
            results.append(
                entry
                | {
                    "closings": 0,
                    "realised": Decimal(0),
                    "reason": "some of its sales "
                    "were booked with their closings: replaying the others alone would not "
                    "reproduce the lots",
                }
            )
            continue
        with audited_transaction():
            closings, reason = holdings_backfill_closings(
                security=security,
                portfolio_id=portfolio.pk,
                sells=[
                    (
                        Fill(
                            portfolio_id=portfolio.pk,
                            buying=False,
                            quantity=a.quantity,
                            price=a.price,
                            commission=a.commission,
                            allocation_id=a.pk,
                        ),
                        a.trade_date,
                        a.created_at,
                    )
                    for a in rows
                ],
                store=store,
            )
            realised = sum((c.realised_gain for c in closings), Decimal(0))
            if closings and store:
                audit_record(
                    actor=actor,
                    kind="lots.closings_backfilled",
                    obj=portfolio,
                    after={
                        "security": security.ticker,
                        "allocations": [a.pk for a in rows],
                        "closings": len(closings),
                        "realised_gain": str(realised),
                    },
                )
        results.append(entry | {"closings": len(closings), "realised": realised, "reason": reason})
    return results
