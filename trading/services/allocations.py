"""Allocation: a block's fills booked to its account orders at one average price.

The split itself is the pure engine's (`trading.allocation`: pro rata,
lot-rounded, a deterministic rule for the residual); booking positions, tax
lots and cash is the holdings service's (`portfolios.services.holdings`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit.services import audit_record, audit_record_many, audited_transaction, snapshot
from oms.bulk import update_rows
from oms.numbers import price as round_price
from oms.state import move
from portfolios import terms
from portfolios.instruments import InstrumentError
from portfolios.models import LotClosing
from portfolios.services.holdings import Fill, holdings_backfill_closings, holdings_book_fills
from trading import locks, posttrade
from trading.allocation import allocate_fill, allocate_pro_rata
from trading.models import Allocation, Block, Execution, Order, Side

from .blocks import block_changed
from .trading_day import broker_day, trading_day


def block_allocate(*, block_id: int) -> list[Allocation]:
    """Allocate a block that is filled (or done for the day, or cancelled, with
    fills) to its account orders at one average price, and book them.

    Idempotent: a block already allocated is left alone.
    """
    with audited_transaction():
        block = locks.lock_block(block_id)
        if block.status == Block.Status.ALLOCATED or block.filled_quantity == 0:
            return []
        if block.status not in Block.ALLOCATABLE_STATES:
            raise ValidationError(
                f"Block #{block.pk} is still {block.get_status_display().lower()}."
            )
        orders = locks.lock_block_orders(block)
        security = block.security
        split = allocation_split(block, orders)
        allocations = []
        today = trade_date(block)
        commissions = split_commission(block.commission, split)
        buying = Side(block.side).is_buy
        befores = {}
        for order in orders:
            quantity = split[order.pk]
            befores[order.pk] = snapshot(order, Order.AUDIT_FIELDS)
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
                allocations.append(
                    Allocation(
                        block=block,
                        order=order,
                        trade_date=today,
                        **allocation_amounts(
                            security,
                            quantity=quantity,
                            price=block.average_price,
                            commission=commissions[order.pk],
                            buying=buying,
                            on_date=today,
                        ),
                    )
                )
            order.updated_at = timezone.now()
        # Set-based from here: one statement per table whatever the number of orders.
        Allocation.objects.bulk_create(allocations)
        booked = holdings_book_fills(
            security=security,
            fills=[
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
                for a in allocations
            ],
            on_date=today,
        )
        booked_for = {a.order.pk: b for a, b in zip(allocations, booked, strict=True)}
        update_rows(Order, orders, ["status", "filled_quantity", "average_price", "updated_at"])
        audit_record_many(
            actor=None,
            kind="order.allocated",
            entries=[
                (
                    order,
                    befores[order.pk] | booked_for.get(order.pk, {}).get("before", {}),
                    snapshot(order, Order.AUDIT_FIELDS)
                    | booked_for.get(order.pk, {}).get("after", {}),
                )
                for order in orders
            ],
        )
        block_before = snapshot(block, Block.AUDIT_FIELDS)
        move(block, Block.Status.ALLOCATED)
        block.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=None,
            kind="block.allocated",
            obj=block,
            before=block_before,
            after=snapshot(block, Block.AUDIT_FIELDS)
            | {"allocations": {o: str(q) for o, q in split.items()}},
        )
        block_changed(block.pk)
        # the post-trade check of the accounts whose holdings moved (after commit)
        posttrade.allocated(a.order.portfolio_id for a in allocations)
    return allocations


def blocks_allocate(*, block_ids) -> int:
    """`block_allocate` for each of several blocks (those one read of reports
    filled), each in a transaction of its own, all of them tried: a block that
    cannot be allocated does not hold back the others, and the first error is
    raised once they have been tried (a retry allocates nothing twice: a block
    allocated already is left alone). Returns how many were allocated."""
    allocated, failed = 0, None
    for block_id in block_ids:
        try:
            allocated += bool(block_allocate(block_id=block_id))
        except Exception as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    return allocated


def trade_date(block: Block) -> date:
    """The trade date the allocation books: the trading day of the block's last fill, by
    the day of the broker that filled it, whenever the allocation itself runs (a block
    that ends at a later close, or is allocated after an outage, keeps its fills' day)."""
    last = (
        Execution.objects.filter(route__block=block, exec_type=Execution.ExecType.TRADE)
        .select_related("route__broker__fix_session")
        .order_by("-transact_time", "-pk")
        .first()
    )
    if last is None:  # filled through corrections only: nothing dates it better than now
        return timezone.now().date()
    return trading_day(last.transact_time, broker_day(last.route.broker))


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
    security, *, quantity: Decimal, price: Decimal, commission: Decimal, buying: bool, on_date
) -> dict:
    """An allocation's money (portfolios.terms.fill_cash): the gross (the lot's cost),
    a bond's accrued interest to settlement apart, and the net cash with commission."""
    cash = terms.fill_cash(security, quantity, price, on_date)
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
