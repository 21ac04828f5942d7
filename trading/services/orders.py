"""Orders: a draft for one account, its approval, its release to the desk
(where released orders join blocks), and its cancellation before a broker has it.

Each service validates, locks what it changes (`trading.locks`, in the house
order), checks the transition against the model's map, writes with
update_fields and appends the audit event, all in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record, audit_record_many, audited_transaction, snapshot
from oms.bulk import update_rows
from oms.numbers import MAX_PRICE, MAX_QUANTITY, ZERO
from oms.numbers import qty as round_qty
from oms.roles import Action, require
from oms.state import check_transition, move
from portfolios import terms
from portfolios.instruments import InstrumentError
from portfolios.models import Portfolio, Position, Security
from trading import locks, pretrade
from trading.models import Block, LotMethod, Order, OrderType, Side, TimeInForce

from .blocks import block_changed


def order_check(
    *,
    portfolio: Portfolio,
    security: Security,
    side: str,
    quantity: Decimal,
    order_type: str,
    time_in_force: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    expire_at: datetime | None,
) -> None:
    """Validate an order's terms; raise ValidationError naming each bad field."""
    errors: dict[str, list[str]] = defaultdict(list)
    if not portfolio.is_active:
        errors["portfolio"].append(f"Account {portfolio.code} is closed.")
    if not security.is_active:
        errors["security"].append(f"{security.ticker} is not active.")
    if side not in Side.values:
        errors["side"].append(f"Unknown side {side!r}.")
    if order_type not in OrderType.values:
        errors["order_type"].append(f"Unknown order type {order_type!r}.")
    if time_in_force not in TimeInForce.values:
        errors["time_in_force"].append(f"Unknown time in force {time_in_force!r}.")
    if quantity is None or quantity <= 0:
        errors["quantity"].append("Quantity must be positive.")
    elif quantity >= MAX_QUANTITY:
        errors["quantity"].append(f"Must be less than {MAX_QUANTITY:,.0f}.")
    else:
        if quantity < security.min_quantity:
            errors["quantity"].append(f"Below the minimum quantity of {security.min_quantity}.")
        if terms.is_fx(security):
            # a base-currency amount in its minor unit; a forward past its value date
            for field, message in _fx_errors(security, side, quantity):
                errors[field].append(message)
        elif not security.fractional and quantity != quantity.to_integral_value():
            errors["quantity"].append(f"{security.ticker} trades in whole units only.")
        elif security.asset_class in terms.ENGINE_KINDS:
            # A bond's minimum piece and increment, whole contracts, expiry and maturity
            # (the instrument's own rules, in its words).
            for message in _instrument_errors(security, quantity):
                errors["quantity"].append(message)
    needs_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_limit and terms.is_fx(security) and limit_price is not None and limit_price <= 0:
        errors["limit_price"].append(
            f"The rate is {security.currency} per {security.base_currency}: it must be positive."
        )
    elif needs_limit and (limit_price is None or limit_price <= 0):
        errors["limit_price"].append("A limit order needs a positive limit price.")
    if not needs_limit and limit_price is not None:
        errors["limit_price"].append("Only limit and stop-limit orders take a limit price.")
    if needs_stop and (stop_price is None or stop_price <= 0):
        errors["stop_price"].append("A stop order needs a positive stop price.")
    if not needs_stop and stop_price is not None:
        errors["stop_price"].append("Only stop and stop-limit orders take a stop price.")
    for field, value in (("limit_price", limit_price), ("stop_price", stop_price)):
        if value is not None and value >= MAX_PRICE:
            errors[field].append(f"Must be less than {MAX_PRICE:,.0f}.")
        elif value is not None and value > 0 and value % security.tick_size != 0:
            errors[field].append(f"Must be a multiple of the tick size {security.tick_size}.")
    if time_in_force == TimeInForce.GTD:
        if expire_at is None:
            errors["expire_at"].append("A good-till-date order needs an expiry.")
        elif expire_at <= timezone.now():
            errors["expire_at"].append("The expiry must be in the future.")
    elif expire_at is not None:
        errors["expire_at"].append("Only good-till-date orders take an expiry.")
    if side == Side.SELL_SHORT and portfolio.long_only and not terms.is_fx(security):
        errors["side"].append(f"Account {portfolio.code} is long-only: no short sales.")
    if side == Side.SELL and quantity and quantity > 0 and not terms.is_fx(security):
        held = (
            Position.objects.filter(portfolio=portfolio, security=security)
            .values_list("quantity", flat=True)
            .first()
        ) or ZERO
        committed = sum(
            Order.objects.filter(
                portfolio=portfolio,
                security=security,
                side=Side.SELL,
                status__in=Order.COMMITTED_STATES,
            ).values_list("quantity", flat=True),
            ZERO,
        )
        if quantity > held - committed:
            errors["quantity"].append(
                f"Sells {quantity} but account {portfolio.code} holds {held} of "
                f"{security.ticker} with {committed} already committed to other sells."
            )
    if errors:
        raise ValidationError(dict(errors))


def _sentence(exc: InstrumentError) -> str:
    return str(exc)[:1].upper() + str(exc)[1:] + "."


def _fx_errors(security: Security, side: str, quantity: Decimal) -> list[tuple[str, str]]:
    """An FX order buys or sells an amount of the pair's base currency (in its minor
    unit) for value on the spot date or the forward's value date, which must be a day
    both currencies settle and not already past (decision 41)."""
    errors = []
    if side in (Side.SELL_SHORT, Side.BUY_TO_COVER):
        errors.append(("side", f"{security.ticker} is bought or sold: a currency is not shorted."))
    try:
        instrument = terms.instrument_of(security)
        instrument.check_quantity(quantity)
    except InstrumentError as exc:
        errors.append(("quantity", _sentence(exc)))
        return errors
    try:
        instrument.settlement_date(timezone.localdate(), terms.calendars_for(instrument))
    except InstrumentError as exc:
        errors.append(("security", _sentence(exc)))
    return errors


def _instrument_errors(security: Security, quantity: Decimal) -> list[str]:
    try:
        instrument = terms.instrument_of(security)
        instrument.check_quantity(quantity)
        instrument.check_tradeable(timezone.localdate())
    except InstrumentError as exc:
        return [_sentence(exc)]
    return []


def order_create(
    *,
    actor,
    portfolio: Portfolio,
    security: Security,
    side: str,
    quantity: Decimal,
    order_type: str = OrderType.MARKET,
    time_in_force: str = TimeInForce.DAY,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    expire_at: datetime | None = None,
    notes: str = "",
    rebalance_run=None,
    estimated_price: Decimal | None = None,
    lot_method: str = LotMethod.FIFO,
) -> Order:
    """Create a draft order for one account. ``lot_method`` says which tax lots a sell
    closes when it fills (fifo, hifo, min_tax); a buy opens a lot and takes fifo."""
    require(actor, Action.ORDER_CREATE, portfolio)
    if lot_method not in LotMethod.values:
        raise ValidationError(
            {"lot_method": f"{lot_method!r} is not one of {', '.join(LotMethod.values)}."}
        )
    if lot_method != LotMethod.FIFO and side in (Side.BUY, Side.BUY_TO_COVER):
        raise ValidationError(
            {"lot_method": "A buy closes no tax lots: the lot method applies to sells only."}
        )
    terms = {
        "portfolio": portfolio,
        "security": security,
        "side": side,
        "quantity": round_qty(quantity) if quantity is not None else quantity,
        "order_type": order_type,
        "time_in_force": time_in_force,
        "limit_price": limit_price,
        "stop_price": stop_price,
        "expire_at": expire_at,
    }
    order_check(**terms)
    with audited_transaction():
        order = Order.objects.create(
            **terms,
            notes=notes,
            rebalance_run=rebalance_run,
            estimated_price=estimated_price,
            lot_method=lot_method,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            kind="order.created",
            obj=order,
            after=terms
            | {
                "portfolio": portfolio.code,
                "security": security.ticker,
                "rebalance_run": getattr(rebalance_run, "pk", None),
                "lot_method": lot_method,
            },
        )
    return order


def orders_approve(*, actor, order_ids: list[int]) -> list[Order]:
    """Approve draft orders for release to the desk, in one transaction, after the
    pre-trade check of all of them at once (`trading.pretrade`): each moves to what
    the check says -- approved, needs override (a soft limit: a compliance officer must
    approve an override) or rejected (a hard limit) -- and its audit event names the
    rules it failed."""
    require(actor, Action.ORDER_APPROVE)
    with audited_transaction():
        orders = locks.lock_orders(order_ids)
        _ensure_found(orders, order_ids)
        for order in orders:
            require(actor, Action.ORDER_APPROVE, order.portfolio)
            if order.status == Order.Status.NEEDS_OVERRIDE:
                raise ValidationError(
                    f"{order} needs a compliance override before it can be approved."
                )
            check_transition(order, order.TRANSITIONS, Order.Status.APPROVED)
        verdicts = pretrade.check(orders, stage="approve", actor=actor)
        for order in orders:
            verdict = verdicts[order.pk]
            before = snapshot(order, ("status",))
            move(order, verdict.status)
            order.compliance_note = verdict.message[:1000]
            fields = ["status", "compliance_note", "updated_at"]
            if verdict.status == Order.Status.APPROVED:
                order.approved_by = actor
                fields.append("approved_by")
            order.save(update_fields=fields)
            order.pretrade = verdict
            audit_record(
                actor=actor,
                kind={
                    "approved": "order.approved",
                    "needs_override": "order.needs_override",
                    "rejected": "order.rejected",
                }[verdict.status],
                obj=order,
                before=before,
                after={"status": order.status}
                | (
                    {"failed": list(verdict.failed), "warned": list(verdict.warned)}
                    if verdict.failed or verdict.warned
                    else {}
                ),
                reason=verdict.message if not verdict.passes else "",
            )
    return orders


def order_compliance_decided(
    *, actor, order_id: int, approved: bool, override_id: int, reason: str = ""
) -> Order:
    """An order held for an override goes to approved (or rejected) as a compliance
    officer decides its override: called by compliance inside that service's
    transaction."""
    with audited_transaction():
        [order] = locks.lock_orders([order_id])
        if order.status != Order.Status.NEEDS_OVERRIDE:
            raise ValidationError(
                f"{order} is {order.get_status_display().lower()}: it awaits no override."
            )
        before = snapshot(order, ("status",))
        move(order, Order.Status.APPROVED if approved else Order.Status.REJECTED)
        word = "approved" if approved else "rejected"
        order.compliance_note = f"Override {override_id} {word}."
        fields = ["status", "compliance_note", "updated_at"]
        if approved:
            order.approved_by = order.approved_by or order.created_by
            fields.append("approved_by")
        order.save(update_fields=fields)
        audit_record(
            actor=actor,
            kind=f"order.{word}",
            obj=order,
            before=before,
            after={"status": order.status, "override": override_id},
            reason=reason,
        )
    return order


def _ensure_found(orders: list[Order], order_ids: list[int]) -> None:
    missing = set(order_ids) - {o.pk for o in orders}
    if missing:
        raise Order.DoesNotExist(f"No order {sorted(missing)[0]}.")


def _block_key(order: Order) -> tuple:
    return tuple(getattr(order, name) for name in Block.TERMS)


def _open_blocks_for(groups: dict[tuple, list[Order]]) -> dict[tuple, Block]:
    """The open block each group of orders joins (same security, side and terms:
    prices, time in force, expiry; not yet routed), locked in one statement, the
    lowest pk first; the blocks that do not exist yet are created in one INSERT."""
    found: dict[tuple, Block] = {}
    keys = list(groups)
    if not keys:
        return found
    match = Q()
    for key in keys:
        match |= Q(**dict(zip(Block.TERMS, key, strict=True)))
    for block in (
        Block.objects.select_for_update(of=("self",))
        .select_related("security")
        .filter(match, status=Block.Status.OPEN, filled_quantity=0)
        .order_by("pk")
    ):
        found.setdefault(_block_key(block), block)
    missing = [key for key in keys if key not in found]
    if missing:
        made = Block.objects.bulk_create(
            # the security is the orders' (loaded with them): a block's name shows it
            Block(**dict(zip(Block.TERMS, key, strict=True)), security=groups[key][0].security)
            for key in missing
        )
        found |= dict(zip(missing, made, strict=True))
    return found


def orders_release(*, actor, order_ids: list[int]) -> list[Order]:
    """Release approved orders to the trading desk, aggregating them into blocks.

    Set-based: the orders are locked in one statement, each checked (the actor's
    account, compliance, its transition) as before, then written in one UPDATE and
    recorded with one event each in one INSERT; the blocks they join are locked (or
    created) in one statement, written in one and recorded in one. What it costs in
    statements does not grow with the number of orders or blocks."""
    require(actor, Action.ORDER_RELEASE)
    with audited_transaction():
        orders = locks.lock_orders(order_ids)
        _ensure_found(orders, order_ids)
        for order in orders:
            require(actor, Action.ORDER_RELEASE, order.portfolio)
            _ensure_releasable(order)
            check_transition(order, order.TRANSITIONS, Order.Status.RELEASED)
        # Checked again: the book may have moved since the approval (other orders of
        # the account approved and released meanwhile, prices, the rule book).
        verdicts = pretrade.check(orders, stage="release", actor=actor)
        refused = [o for o in orders if not verdicts[o.pk].passes]
        if refused:
            raise ValidationError(
                [
                    f"{o} cannot be released: {verdicts[o.pk].message or verdicts[o.pk].status}"
                    for o in refused
                ]
            )
        by_key: dict[tuple, list[Order]] = defaultdict(list)
        for order in orders:
            by_key[_block_key(order)].append(order)
        blocks = _open_blocks_for(by_key)
        now = timezone.now()
        order_events = []
        block_events = []
        for key, group in by_key.items():
            block = blocks[key]
            block_before = snapshot(block, Block.AUDIT_FIELDS)
            for order in group:
                before = snapshot(order, ("status",))
                order.status = Order.Status.RELEASED
                order.block = block
                order.released_by = actor
                order.updated_at = now
                order_events.append((order, before, {"status": order.status, "block": block.pk}))
            block.quantity += sum((o.quantity for o in group), ZERO)
            block.updated_at = now
            block_events.append(
                (
                    block,
                    block_before,
                    snapshot(block, Block.AUDIT_FIELDS) | {"orders": [o.pk for o in group]},
                )
            )
        update_rows(Order, orders, ["status", "block", "released_by", "updated_at"])
        audit_record_many(actor=actor, kind="order.released", entries=order_events)
        update_rows(Block, [blocks[key] for key in by_key], ["quantity", "updated_at"])
        audit_record_many(actor=actor, kind="block.orders_added", entries=block_events)
        for key in by_key:
            block_changed(blocks[key].pk)
    return orders


def _ensure_releasable(order: Order) -> None:
    """Refuse, in words, an order that compliance stopped or has not cleared."""
    note = f" ({order.compliance_note})" if order.compliance_note else ""
    if order.status == Order.Status.REJECTED:
        raise ValidationError(f"{order} was rejected by compliance and cannot be released{note}.")
    if order.status in (Order.Status.NEEDS_OVERRIDE, Order.Status.PENDING_COMPLIANCE):
        raise ValidationError(
            f"{order} awaits a compliance override and cannot be released yet{note}."
        )


def order_cancel(*, actor, order_id: int, reason: str = "") -> Order:
    """Cancel an order that has not reached a broker."""
    require(actor, Action.ORDER_CANCEL)
    with audited_transaction():
        order = Order.objects.select_related("portfolio", "block").get(pk=order_id)
        block = locks.lock_block(order.block_id) if order.block_id else None
        [order] = locks.lock_orders([order_id])
        require(actor, Action.ORDER_CANCEL, order.portfolio)
        if block is not None and block.status != Block.Status.OPEN:
            raise ValidationError("The order's block is with a broker: cancel the route instead.")
        before = snapshot(order, Order.AUDIT_FIELDS)
        move(order, Order.Status.CANCELLED)
        order.block = None
        order.save(update_fields=["status", "block", "updated_at"])
        audit_record(
            actor=actor,
            kind="order.cancelled",
            obj=order,
            before=before,
            after=snapshot(order, Order.AUDIT_FIELDS),
            reason=reason,
        )
        if block is not None:
            block_before = snapshot(block, Block.AUDIT_FIELDS)
            block.quantity -= order.quantity
            fields = ["quantity", "updated_at"]
            if block.quantity == 0:
                move(block, Block.Status.CANCELLED)
                fields.append("status")
            block.save(update_fields=fields)
            audit_record(
                actor=actor,
                kind="block.order_removed",
                obj=block,
                before=block_before,
                after=snapshot(block, Block.AUDIT_FIELDS) | {"order": order.pk},
            )
            block_changed(block.pk)
    return order
