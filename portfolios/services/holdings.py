"""Holdings: positions, tax lots and cash, as allocated fills are booked.

These run inside the caller's (audited) transaction: the allocation service
locks, books and records the event in one go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import F
from django.utils import timezone

from oms.bulk import update_rows
from portfolios.models import CashBalance, Portfolio, Position, Security, TaxLot
from portfolios.services.drift import drift_mark_stale
from portfolios.terms import fill_cash


def fill_amount(security: Security, quantity: Decimal, price: Decimal, on_date: date) -> Decimal:
    """The cash a fill moves before commission (portfolios.terms.fill_cash): quantity x
    price x multiplier, and a bond's accrued interest to its settlement date on top.
    The lot's cost stays quantity x price: accrued interest is income, not basis."""
    return fill_cash(security, quantity, price, on_date).total


def _lock_position(portfolio: Portfolio, security: Security) -> Position:
    position, _ = Position.objects.select_for_update().get_or_create(
        portfolio=portfolio, security=security
    )
    return position


def _lock_cash(portfolio: Portfolio, currency: str) -> CashBalance:
    cash, _ = CashBalance.objects.select_for_update().get_or_create(
        portfolio=portfolio, currency=currency
    )
    return cash


def holdings_book_fill(
    *,
    portfolio: Portfolio,
    security: Security,
    buying: bool,
    quantity: Decimal,
    price: Decimal,
    on_date: date,
    commission: Decimal = Decimal(0),
) -> dict:
    """Book an allocated fill: position, tax lots (FIFO on sells) and cash in the
    security's currency, net of the commission (a buy pays it on top, a sell
    receives less). Runs inside the caller's transaction; returns the
    before/after figures for the caller's audit event."""
    if quantity <= 0:
        raise ValueError("booked quantity must be positive")
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = _figures(position, cash)
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    amount = fill_amount(security, quantity, price, on_date)
    if buying:
        if position.quantity >= 0:
            TaxLot.objects.create(
                portfolio=portfolio,
                security=security,
                quantity=quantity,
                original_quantity=quantity,
                unit_cost=price,
                acquired_on=on_date,
            )
        position.quantity += quantity
        cash.amount -= amount + commission
    else:
        _close_lots_fifo(portfolio, security, quantity)
        position.quantity -= quantity
        cash.amount += amount - commission
    return _save(position, cash, before)


@dataclass(frozen=True)
class Fill:
    """One allocated fill to book (`holdings_book_fills`)."""

    portfolio_id: int
    buying: bool
    quantity: Decimal
    price: Decimal
    commission: Decimal = Decimal(0)


def holdings_book_fills(*, security: Security, fills: list[Fill], on_date: date) -> list[dict]:
    """Book many allocated fills of one security at once: each exactly as
    `holdings_book_fill` books it, in the order given (two fills of one account see
    each other), with a number of statements that does not grow with the fills.

    Positions, then cash, then tax lots are locked in pk order in one statement each
    (missing positions and cash balances are created first); the changed rows are
    written with one UPDATE each per table and the new lots with one INSERT. Runs
    inside the caller's transaction; returns each fill's before/after figures, in
    order, for the caller's audit events."""
    if not fills:
        return []
    if any(fill.quantity <= 0 for fill in fills):
        raise ValueError("booked quantity must be positive")
    accounts = sorted({fill.portfolio_id for fill in fills})
    drift_mark_stale(portfolio_ids=accounts)
    positions = _lock_many(
        Position,
        accounts,
        lambda pk: Position(portfolio_id=pk, security=security),
        security=security,
    )
    cash = _lock_many(
        CashBalance,
        accounts,
        lambda pk: CashBalance(portfolio_id=pk, currency=security.currency),
        currency=security.currency,
    )
    selling = sorted({fill.portfolio_id for fill in fills if not fill.buying})
    open_lots: dict[int, list[TaxLot]] = {pk: [] for pk in selling}
    if selling:
        for lot in (
            TaxLot.objects.select_for_update()
            .filter(portfolio_id__in=selling, security=security, quantity__gt=0)
            .order_by("acquired_on", "pk")
        ):
            open_lots[lot.portfolio_id].append(lot)
    new_lots: list[TaxLot] = []
    closed: dict[int, TaxLot] = {}
    booked = []
    for fill in fills:
        position = positions[fill.portfolio_id]
        balance = cash[fill.portfolio_id]
        before = _figures(position, balance)
        amount = fill_amount(security, fill.quantity, fill.price, on_date)
        if fill.buying:
            if position.quantity >= 0:
                new_lots.append(
                    TaxLot(
                        portfolio_id=fill.portfolio_id,
                        security=security,
                        quantity=fill.quantity,
                        original_quantity=fill.quantity,
                        unit_cost=fill.price,
                        acquired_on=on_date,
                    )
                )
            position.quantity += fill.quantity
            balance.amount -= amount + fill.commission
        else:
            left = fill.quantity
            for lot in open_lots[fill.portfolio_id]:
                if left <= 0:
                    break
                if lot.quantity <= 0:
                    continue
                take = min(lot.quantity, left)
                lot.quantity -= take
                closed[lot.pk] = lot
                left -= take
            position.quantity -= fill.quantity
            balance.amount += amount - fill.commission
        booked.append({"before": before, "after": _figures(position, balance)})
    update_rows(Position, list(positions.values()), ["quantity"])
    update_rows(CashBalance, list(cash.values()), ["amount"])
    update_rows(TaxLot, list(closed.values()), ["quantity"])
    if new_lots:
        TaxLot.objects.bulk_create(new_lots)
    return booked


def _lock_many(model, accounts: list[int], make, **key) -> dict:
    """One row of ``model`` per account (matching ``key``), locked in pk order;
    the missing ones are created first (a concurrent creator is waited for)."""
    model.objects.bulk_create([make(pk) for pk in accounts], ignore_conflicts=True)
    rows = model.objects.select_for_update().filter(portfolio_id__in=accounts, **key)
    return {row.portfolio_id: row for row in rows.order_by("pk")}


def _close_lots_fifo(portfolio: Portfolio, security: Security, quantity: Decimal) -> None:
    left = quantity
    lots = (
        TaxLot.objects.select_for_update()
        .filter(portfolio=portfolio, security=security, quantity__gt=0)
        .order_by("acquired_on", "pk")
    )
    for lot in lots:
        if left <= 0:
            break
        take = min(lot.quantity, left)
        lot.quantity -= take
        lot.save(update_fields=["quantity"])
        left -= take


def holdings_reverse_fill(
    *,
    portfolio: Portfolio,
    security: Security,
    buying: bool,
    quantity: Decimal,
    price: Decimal,
    commission: Decimal = Decimal(0),
    on_date: date | None = None,
) -> dict:
    """Undo a booked fill (a broker's trade bust): position and cash back by the
    same amounts, and the tax lots put back as they were: a bought lot shrinks
    (newest first), the lots a sell closed reopen (the last closed first, the
    reverse of FIFO). ``on_date``: the day the fill was booked (a bond's accrued
    interest ran to its settlement). Runs inside the caller's transaction."""
    if quantity <= 0:
        raise ValueError("reversed quantity must be positive")
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = _figures(position, cash)
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    amount = fill_amount(security, quantity, price, on_date or timezone.localdate())
    lots = TaxLot.objects.select_for_update().filter(portfolio=portfolio, security=security)
    left = quantity
    if buying:
        for lot in lots.filter(quantity__gt=0).order_by("-acquired_on", "-pk"):
            if left <= 0:
                break
            take = min(lot.quantity, left)
            lot.quantity -= take
            lot.save(update_fields=["quantity"])
            left -= take
        position.quantity -= quantity
        cash.amount += amount + commission
    else:
        closed = lots.filter(quantity__lt=F("original_quantity")).order_by("-acquired_on", "-pk")
        for lot in closed:
            if left <= 0:
                break
            give = min(lot.original_quantity - lot.quantity, left)
            lot.quantity += give
            lot.save(update_fields=["quantity"])
            left -= give
        position.quantity += quantity
        cash.amount -= amount - commission
    return _save(position, cash, before)


def _figures(position: Position, cash: CashBalance) -> dict:
    return {"position": position.quantity, "cash": cash.amount, "cash_currency": cash.currency}


def _save(position: Position, cash: CashBalance, before: dict) -> dict:
    """Store the moved position and cash; the before/after for the caller's event."""
    position.save(update_fields=["quantity"])
    cash.save(update_fields=["amount"])
    return {"before": before, "after": _figures(position, cash)}
