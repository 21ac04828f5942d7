"""Breaks: what a person must settle between our books and the broker's or the
custodian's.

* **Trade busts and corrections.** A broker that cancels (busts) or corrects a
  fill it reported sends an ExecutionReport with ExecType H or G (FIX 4.2:
  ExecTransType 1 or 2) naming the fill by ExecRefID. The gateway keeps it in
  the inbox, not applied. Operations applies it here (the fill is reversed or
  corrected on its route and block, with its commission; if the block was
  allocated, its allocations are reversed and booked again at the new average
  price: positions, tax lots and cash follow) or dismisses it with a reason.
* **Statements.** A custodian's or broker's end-of-day statement (CSV:
  account, security or currency, quantity) is compared with our positions and
  cash; each difference becomes a break that is resolved or annotated, and
  shows its age. A file with bad rows is refused whole, each row named.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import audit_record, audited_transaction, snapshot
from oms.numbers import MAX_PRICE, MAX_QUANTITY, ZERO
from oms.numbers import price as round_price
from oms.numbers import qty as round_qty
from oms.roles import Action, require
from oms.state import move
from portfolios.models import CashBalance, Portfolio, Position, Security
from portfolios.services.holdings import holdings_book_fill, holdings_reverse_fill, settles_on
from trading import locks
from trading.brokers import fixmap
from trading.fix.codec import Message
from trading.models import (
    Allocation,
    Block,
    Execution,
    FixInbox,
    Order,
    Route,
    Side,
    Statement,
    StatementBreak,
)

from .allocations import (
    FillDays,
    allocation_amounts,
    allocation_split,
    fill_days,
    split_commission,
)
from .blocks import block_changed, block_follow_routes

_CORRECTION_PREFIX = "trade bust or correction"


def trade_corrections():
    """Busts and corrections from brokers waiting for operations."""
    return (
        FixInbox.objects.filter(
            status=FixInbox.Status.NOT_APPLIED, error__startswith=_CORRECTION_PREFIX
        )
        .select_related("session__broker")
        .order_by("received_at", "pk")
    )


def _message(inbox: FixInbox) -> Message:
    from trading.fix.codec import decode

    return decode(bytes(inbox.raw))


def _plain(value: Decimal) -> str:
    """A figure as a person writes it (100000000000000000, not 1E+17)."""
    return f"{value:f}"


def _is_bust(msg: Message) -> bool:
    return msg.get(150) == "H" or msg.get(20) == "1"


def _check_unresolved(inbox: FixInbox) -> None:
    """Refuse, in words, a message that a person (or the gateway) has settled already."""
    if inbox.status == FixInbox.Status.NOT_APPLIED:
        return
    said = {
        FixInbox.Status.APPLIED: f"was applied already ({inbox.resolution or 'by the gateway'})",
        FixInbox.Status.DISMISSED: f"was dismissed already ({inbox.resolution})",
    }.get(inbox.status, "is not waiting for a person")
    raise ValidationError(
        f"Message {inbox.seq_num} from {inbox.session.broker.code} {said}: nothing to do."
    )


def correction_apply(*, actor, inbox_id: int) -> Execution:
    """Apply a bust or correction kept in the inbox. The fill it names is
    reversed (bust) or takes the corrected quantity and price (correction)."""
    require(actor, Action.BREAK_RESOLVE)
    with audited_transaction():
        inbox = (
            FixInbox.objects.select_for_update().select_related("session__broker").get(pk=inbox_id)
        )
        _check_unresolved(inbox)
        msg = _message(inbox)
        ref = msg.get(19) or ""
        candidates = fixmap.cl_ord_id_candidates(msg)
        original = (
            Execution.objects.select_related("route")
            .filter(route__cl_ord_id__in=candidates, exec_id=ref, exec_type="trade")
            .first()
        )
        if original is None:
            raise ValidationError(
                f"No fill {ref!r} of ours on {', '.join(candidates) or 'no ClOrdID'}: "
                "dismiss it, with why, if it is not ours."
            )
        block = locks.lock_block(original.route.block_id)
        route = locks.lock_route(original.route_id)
        bust = _is_bust(msg)
        if bust:
            new_qty, new_price = ZERO, original.last_price
        else:
            try:
                new_qty, new_price = Decimal(msg.get(32) or "0"), Decimal(msg.get(31) or "0")
            except InvalidOperation:
                new_qty = new_price = Decimal("NaN")
            if not (new_qty.is_finite() and new_price.is_finite()):
                raise ValidationError(
                    "The correction's quantity (LastQty) or price (LastPx) is not a number."
                )
            if new_qty >= MAX_QUANTITY or new_price >= MAX_PRICE:
                raise ValidationError(
                    f"The correction's quantity ({_plain(new_qty)}) or price "
                    f"({_plain(new_price)}) is beyond any the OMS books: dismiss it, with why."
                )
            new_qty, new_price = round_qty(new_qty), round_price(new_price)
            if new_qty <= 0 or new_price <= 0:
                raise ValidationError("A correction needs a positive quantity and price.")
        delta_qty = new_qty - original.last_quantity
        if route.filled_quantity + delta_qty > route.quantity:
            raise ValidationError(
                f"The correction would fill route {route.cl_ord_id} beyond its quantity."
            )
        route_before = snapshot(route, Route.AUDIT_FIELDS)
        block_before = snapshot(block, Block.AUDIT_FIELDS)
        held_before = route.reserved_quantity
        old_notional = original.last_quantity * original.last_price
        new_notional = new_qty * new_price
        new_commission = ZERO
        if not bust and original.commission:
            new_commission = round_price(original.commission * new_qty / original.last_quantity)
        delta_commission = new_commission - original.commission
        for holder in (route, block):
            notional = (holder.average_price or ZERO) * holder.filled_quantity
            holder.filled_quantity += delta_qty
            holder.commission += delta_commission
            holder.average_price = (
                round_price((notional - old_notional + new_notional) / holder.filled_quantity)
                if holder.filled_quantity > 0
                else None
            )
        # an ended route holds what it filled: a bust gives the rest back to the block
        block.routed_quantity += route.reserved_quantity - held_before
        record = Execution.objects.create(
            route=route,
            broker=route.broker,
            exec_id=msg.get(17) or f"CORR-{inbox.pk}",
            exec_type=Execution.ExecType.TRADE_CANCEL if bust else Execution.ExecType.TRADE_CORRECT,
            ord_status=route.status,
            last_quantity=delta_qty,
            last_price=new_price,
            cumulative_quantity=route.filled_quantity,
            average_price=route.average_price,
            commission=delta_commission,
            text=f"{'bust' if bust else 'correction'} of {ref}",
            transact_time=timezone.now(),
        )
        route.save(update_fields=["filled_quantity", "average_price", "commission", "updated_at"])
        block.save(update_fields=[*Block.FIGURE_FIELDS, "updated_at"])
        audit_record(
            actor=actor,
            kind="execution.busted" if bust else "execution.corrected",
            obj=route,
            before=route_before | {"exec_id": ref},
            after=snapshot(route, Route.AUDIT_FIELDS)
            | {"last_quantity": new_qty, "last_price": new_price},
            reason=f"broker's {'bust' if bust else 'correction'} applied by operations",
        )
        if block.status == Block.Status.ALLOCATED:
            audit_record(
                actor=actor,
                kind="block.corrected",
                obj=block,
                before=block_before,
                after=snapshot(block, Block.AUDIT_FIELDS),
            )
            _reallocate(block, actor)
        else:  # still trading: the block's state follows its corrected fills
            block_follow_routes(block, actor_name=None, before=block_before, actor=actor)
        move(inbox, FixInbox.Status.APPLIED)
        inbox.applied_at = timezone.now()
        inbox.resolved_by = actor
        inbox.resolution = f"applied to {ref}"
        inbox.save(update_fields=["status", "applied_at", "resolved_by", "resolution"])
        block_changed(block.pk)
    return record


def _reallocate(block: Block, actor) -> None:
    """Reverse a block's allocations and book them again at its corrected fills."""
    orders = locks.lock_block_orders(block)
    security = block.security
    existing = {a.order_id: a for a in Allocation.objects.filter(block=block)}
    for order in orders:
        allocation = existing.get(order.pk)
        if allocation is None:
            continue
        reversed_ = holdings_reverse_fill(
            portfolio=order.portfolio,
            security=security,
            buying=Side(order.side).is_buy,
            quantity=allocation.quantity,
            price=allocation.price,
            commission=allocation.commission,
            on_date=allocation.trade_date,
            allocation_id=allocation.pk,
        )
        audit_record(
            actor=actor,
            kind="allocation.reversed",
            obj=order,
            before=reversed_["before"] | {"quantity": allocation.quantity},
            after=reversed_["after"],
        )
    split = allocation_split(block, orders)
    commissions = split_commission(block.commission, split)
    buying = Side(block.side).is_buy
    # Booked again on the day each allocation was first booked, as it was reversed (a
    # new one: the block's first allocation day): the trade's date (a bond's accrued
    # interest to settlement, the lots' closing date) does not move to the day a broker
    # corrected it.
    # A new allocation (a correction gave the account its first share) settles as its
    # block's others: on the broker's date where they keep one apart from ours, else on
    # ours from its trade day; the block's first: as its allocation would (`FillDays`).
    if existing:
        trade_day = min(a.trade_date for a in existing.values())
        kept = [a.settlement_date for a in existing.values() if a.computed_settlement_date]
        block_broker = kept[0] if kept else None
    else:
        days = fill_days(block)
        trade_day, block_broker = days.trade_date, days.broker
    for order in orders:
        quantity = split[order.pk]
        allocation = existing.get(order.pk)
        booked_on = allocation.trade_date if allocation else trade_day
        # the broker's settlement date, where it set one apart from ours, stays booked
        if allocation is not None:
            broker_settles = (
                allocation.settlement_date if allocation.computed_settlement_date else None
            )
        else:
            broker_settles = block_broker
        before = snapshot(order, Order.AUDIT_FIELDS)
        order.filled_quantity = quantity
        order.average_price = block.average_price if quantity else None
        order.save(update_fields=["filled_quantity", "average_price", "updated_at"])
        if quantity == 0:
            # nothing of the corrected fills is left for this account: its
            # allocation goes, and the trail says so
            if allocation is not None:
                allocation.delete()
            after = snapshot(order, Order.AUDIT_FIELDS)
            if after != before:
                audit_record(
                    actor=actor,
                    kind="order.reallocated",
                    obj=order,
                    before=before | {"allocation": allocation.quantity if allocation else None},
                    after=after | {"allocation": None},
                )
            continue
        values = allocation_amounts(
            security,
            quantity=quantity,
            price=block.average_price,
            commission=commissions[order.pk],
            buying=buying,
            on_date=booked_on,
            settles=broker_settles,
        )
        if allocation is None:
            new = FillDays(booked_on, settles_on(security, booked_on), broker_settles)
            allocation = Allocation.objects.create(
                block=block,
                order=order,
                trade_date=booked_on,
                settlement_date=new.settles,
                computed_settlement_date=new.differs,
                **values,
            )
        else:
            for name, value in values.items():
                setattr(allocation, name, value)
            allocation.save(update_fields=list(values))
        booked = holdings_book_fill(
            portfolio=order.portfolio,
            security=security,
            buying=Side(order.side).is_buy,
            quantity=quantity,
            price=block.average_price,
            on_date=booked_on,
            commission=values["commission"],
            lot_method=order.lot_method,
            lots=order.lots or (),
            allocation_id=allocation.pk,
            settles=broker_settles,
        )
        audit_record(
            actor=actor,
            kind="order.reallocated",
            obj=order,
            before=before | booked["before"],
            after=snapshot(order, Order.AUDIT_FIELDS) | booked["after"],
        )


def correction_dismiss(*, actor, inbox_id: int, reason: str) -> FixInbox:
    """Dismiss a bust or correction (not ours, already agreed by phone...) with why."""
    require(actor, Action.BREAK_RESOLVE)
    if not reason.strip():
        raise ValidationError({"reason": ["Say why it is dismissed."]})
    with audited_transaction():
        inbox = (
            FixInbox.objects.select_for_update(of=("self",))
            .select_related("session__broker")
            .get(pk=inbox_id)
        )
        _check_unresolved(inbox)
        before = {"status": inbox.status}
        move(inbox, FixInbox.Status.DISMISSED)
        inbox.resolved_by = actor
        inbox.resolution = reason[:500]
        inbox.save(update_fields=["status", "resolved_by", "resolution"])
        audit_record(
            actor=actor,
            kind="fix_message.dismissed",
            obj=inbox,
            before=before,
            after={"status": inbox.status},
            reason=reason,
        )
    return inbox


# --- Statements --------------------------------------------------------------------------

COLUMNS = ("account", "security", "currency", "quantity")


#: A statement's figure must fit the break's columns (numeric(24, 6)).
_STATEMENT_LIMIT = Decimal(10) ** 18


def _statement_quantity(text: str | None) -> tuple[Decimal, str]:
    """A statement's quantity, or why it is not one (a number that is not, or too large)."""
    raw = (text or "").replace(",", "").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return ZERO, f"quantity {text!r} is not a number"
    if not value.is_finite():
        return ZERO, f"quantity {text!r} is not a number"
    if abs(value) >= _STATEMENT_LIMIT:
        return ZERO, f"quantity {raw} is too large (at most 18 digits before the point)"
    return round_qty(value), ""


def _parse_statement(
    text: str,
) -> tuple[list[tuple[Portfolio, Security | None, str, Decimal]], list[str]]:
    reader = csv.reader(io.StringIO(text))
    numbered = []  # (line number as the file counts it, fields), blank lines left out
    try:
        for record in reader:
            if any(field.strip() for field in record):
                numbered.append((reader.line_num, record))
    except csv.Error:
        return [], [
            f"line {reader.line_num} cannot be read as CSV "
            "(a field far too long, or a quote that is never closed)."
        ]
    header = [name.strip().lower() for name in numbered[0][1]] if numbered else []
    missing = [c for c in ("account", "quantity") if c not in header]
    if missing or not {"security", "currency"} & set(header):
        return [], [
            "The header must name account, security (or currency) and quantity; it has "
            f"{', '.join(header) or 'nothing'}."
        ]
    numbered = numbered[1:]
    lines, errors, seen = [], [], set()
    parsed = []
    for n, record in numbered:
        if len(record) != len(header):
            fields = f"{len(record)} field{'' if len(record) == 1 else 's'}"
            errors.append(
                f"line {n}: it has {fields}, the header {len(header)}"
                + (" (a number with an unquoted comma?)" if len(record) > len(header) else "")
            )
            continue
        parsed.append(
            (n, {name: value.strip() for name, value in zip(header, record, strict=True)})
        )
    accounts = {
        p.code: p
        for p in Portfolio.objects.filter(code__in={row.get("account", "") for _, row in parsed})
    }
    tickers = {row.get("security", "") for _, row in parsed} - {""}
    securities = {s.ticker: s for s in Security.objects.filter(ticker__in=tickers)}
    for n, row in parsed:
        code = row.get("account", "")
        ticker = row.get("security", "")
        currency = row.get("currency", "").upper()
        problems = []
        portfolio = accounts.get(code)
        if portfolio is None:
            problems.append(f"no account {code!r}" if code else "no account")
        if bool(ticker) == bool(currency):
            problems.append("give a security or a currency, not both or neither")
        security = securities.get(ticker) if ticker else None
        if ticker and security is None:
            problems.append(f"no security {ticker!r}")
        if currency and (len(currency) != 3 or not currency.isalpha()):
            problems.append(f"{currency!r} is not a currency code")
        quantity, problem = _statement_quantity(row.get("quantity"))
        if problem:
            problems.append(problem)
        key = (code, ticker, currency)
        if key in seen:
            problems.append("the same account and holding twice")
        seen.add(key)
        if problems:
            errors.append(f"line {n}: " + "; ".join(problems))
        else:
            lines.append((portfolio, security, currency, quantity))
    if not numbered:
        errors.append("The file has no lines after its header.")
    return lines, errors


def statement_import(
    *, actor, text: str, source: str, as_of: date, file_name: str = ""
) -> Statement:
    """Import a statement and compare it with our positions and cash. A file with
    any bad line is refused whole (ValidationError naming each line); nothing
    is written. Every account on the statement is compared in full: a holding
    we have that the statement does not list is a difference too."""
    require(actor, Action.BREAK_RESOLVE)
    if not source.strip():
        raise ValidationError({"source": ["Name the custodian or broker."]})
    lines, errors = _parse_statement(text)
    if errors:
        raise ValidationError({"file": errors})
    theirs: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    portfolios = {}
    for portfolio, security, currency, quantity in lines:
        portfolios[portfolio.pk] = portfolio
        theirs[(portfolio.pk, security.pk if security else None, currency)] = quantity
    ours: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    for p_id, s_id, quantity in Position.objects.filter(portfolio__in=portfolios).values_list(
        "portfolio_id", "security_id", "quantity"
    ):
        ours[(p_id, s_id, "")] = quantity
    for p_id, currency, amount in CashBalance.objects.filter(portfolio__in=portfolios).values_list(
        "portfolio_id", "currency", "amount"
    ):
        ours[(p_id, None, currency)] = amount
    with audited_transaction():
        statement = Statement.objects.create(
            source=source.strip()[:100],
            as_of=as_of,
            file_name=file_name[:255],
            lines=len(lines),
            imported_by=actor,
        )
        breaks = []
        for key in sorted(set(ours) | set(theirs), key=lambda k: (k[0], k[1] or 0, k[2])):
            if ours[key] == theirs[key]:
                continue
            p_id, s_id, currency = key
            breaks.append(
                StatementBreak(
                    statement=statement,
                    portfolio_id=p_id,
                    security_id=s_id,
                    currency=currency,
                    ours=ours[key],
                    theirs=theirs[key],
                )
            )
        StatementBreak.objects.bulk_create(breaks)
        audit_record(
            actor=actor,
            kind="statement.imported",
            obj=statement,
            after={"lines": len(lines), "breaks": len(breaks), "as_of": as_of},
        )
    return statement


def statement_break_resolve(*, actor, break_id: int, note: str, resolve: bool) -> StatementBreak:
    """Annotate a statement break, or resolve it (with a note saying how)."""
    require(actor, Action.BREAK_RESOLVE)
    if not note.strip():
        raise ValidationError({"note": ["Write what was found or done."]})
    with audited_transaction():
        brk = StatementBreak.objects.select_for_update().get(pk=break_id)
        if brk.status == StatementBreak.Status.RESOLVED:
            raise ValidationError("This break is resolved already.")
        before = {"status": brk.status, "note": brk.note}
        brk.note = note.strip()[:500]
        fields = ["note"]
        if resolve:
            move(brk, StatementBreak.Status.RESOLVED)
            brk.resolved_by = actor
            brk.resolved_at = timezone.now()
            fields += ["status", "resolved_by", "resolved_at"]
        brk.save(update_fields=fields)
        audit_record(
            actor=actor,
            kind="statement_break.resolved" if resolve else "statement_break.annotated",
            obj=brk,
            before=before,
            after={"status": brk.status, "note": brk.note},
            reason=brk.note,
        )
    return brk
