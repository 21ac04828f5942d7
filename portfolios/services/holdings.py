"""Holdings: positions, tax lots and cash, as allocated fills are booked.

These run inside the caller's (audited) transaction: the allocation service
locks, books and records the event in one go."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import F

from oms.numbers import money
from portfolios.models import CashBalance, Portfolio, Position, Security, TaxLot


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
    amount = money(quantity * price * security.multiplier)
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
) -> dict:
    """Undo a booked fill (a broker's trade bust): position and cash back by the
    same amounts, and the tax lots put back as they were: a bought lot shrinks
    (newest first), the lots a sell closed reopen (the last closed first, the
    reverse of FIFO). Runs inside the caller's transaction."""
    if quantity <= 0:
        raise ValueError("reversed quantity must be positive")
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = _figures(position, cash)
    amount = money(quantity * price * security.multiplier)
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
