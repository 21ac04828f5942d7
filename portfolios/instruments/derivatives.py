"""Listed futures and options: contracts with a multiplier and an expiry.

A future's price times its ``multiplier`` is the value of one contract in its currency
(NYMEX crude oil: 1,000 barrels, so $10 a contract for each cent a barrel). Buying a
future pays nothing (margin is not modelled): the position is booked at its notional,
quantity x price x multiplier, as its cost, and is worth the gain against that cost.
Closing it realises (exit notional - entry notional), the cash the daily settlement would
have paid, booked on the next business day.

An option's premium times its ``multiplier`` is paid on the settlement date (US equity
options: 100 shares a contract, premium quoted per share). Its notional here is that
premium value; the underlying notional, quantity x multiplier x underlying price
(delta-unadjusted), is given when the underlying price is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from .base import (
    Booking,
    CashMovement,
    Closing,
    Fill,
    Instrument,
    QuantityRule,
    TickTable,
    Valuation,
)
from .calendars import Calendars
from .errors import InstrumentError
from .money import ZERO, as_decimal
from .settlement import SettlementCycle

__all__ = ["Future", "Option", "OptionRight", "UnderlyingKind"]

_ONE = Decimal(1)


class OptionRight(StrEnum):
    """Put or call."""

    CALL = "call"
    PUT = "put"


class UnderlyingKind(StrEnum):
    """What a listed option is written on."""

    EQUITY = "equity"
    CURRENCY = "currency"
    FUTURE = "future"


def _multiplier(value: object, symbol: str) -> Decimal:
    number = as_decimal(value, f"multiplier of {symbol}")
    if number <= 0:
        raise InstrumentError(f"multiplier of {symbol} must be more than zero, not {number}")
    return number


@dataclass(frozen=True, kw_only=True)
class _Contract(Instrument):
    """Whole contracts with a multiplier and a last trading day."""

    multiplier: Decimal
    underlying: str
    expiry: dt.date
    settlement: SettlementCycle
    settlement_calendar: str
    tick_size: Decimal | TickTable | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "multiplier", _multiplier(self.multiplier, self.symbol))
        if not isinstance(self.underlying, str) or not self.underlying.strip():
            raise InstrumentError(f"{self.symbol} needs its underlying")

    def quantity_rule(self) -> QuantityRule:
        return QuantityRule(_ONE, _ONE, ZERO, "contracts")

    def check_tradeable(self, trade_date: dt.date) -> None:
        if trade_date > self.expiry:
            raise InstrumentError(
                f"{self.symbol} expired on {self.expiry.isoformat()}; it cannot be traded on "
                f"{trade_date.isoformat()}"
            )

    def notional(self, quantity, price) -> Decimal:
        return self._signed_quantity(quantity) * self._price(price, traded=False) * self.multiplier

    def settlement_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        return self.settlement.settlement_date(
            trade_date, calendars, self.settlement_calendar, what=self.symbol
        )


@dataclass(frozen=True, kw_only=True)
class Future(_Contract):
    """A futures contract. ``multiplier``: currency per price point per contract;
    ``contract_unit``: what one contract is, in words ("1,000 barrels");
    ``allows_negative_price``: the exchange lets the price go below zero (NYMEX WTI
    settled at -37.63 on 20 April 2020)."""

    kind: ClassVar[str] = "future"

    contract_unit: str = ""
    allows_negative_price: bool = False

    @property
    def negative_prices_allowed(self) -> bool:
        return self.allows_negative_price

    def value(self, quantity, price, *, on=None, cost=None, underlying_price=None) -> Valuation:
        """Worth the gain of the notional over `cost` (the entry notional)."""
        if cost is None:
            raise InstrumentError(
                f"valuing {self.symbol} needs its cost: the notional at which it was entered"
            )
        notional = self.notional(quantity, price)
        gain = notional - as_decimal(cost, f"cost of {self.symbol}")
        return Valuation(self.currency, gain, gain, notional)

    def book_fill(
        self, fill: Fill, calendars: Calendars, *, closes: Closing | None = None
    ) -> Booking:
        contracts = self.check_quantity(fill.quantity)
        price = self._price(fill.price, traded=True)
        settles = self._settle(fill, calendars)
        cost_change = fill.side.sign * contracts * price * self.multiplier
        realised = self._realised(fill, cost_change, closes)
        # Nothing is paid to open a future; closing pays the realised profit (or loss).
        cash = ()
        if realised:
            cash = (CashMovement(self.currency, realised, settles, "realised_variation"),)
        return self._booking(
            fill,
            settles=settles,
            position_change=fill.side.sign * contracts,
            cost_change=cost_change,
            cash=cash,
            realised=realised,
        )


@dataclass(frozen=True, kw_only=True)
class Option(_Contract):
    """A listed option on an equity, a currency or a future (interest-rate futures
    included). ``multiplier``: units of the underlying per contract (100 shares; 125,000
    euros; one future's point value), which also turns the quoted premium into cash;
    ``strike``; ``right``: call or put; ``expiry``: last trading day."""

    kind: ClassVar[str] = "option"
    zero_value_allowed: ClassVar[bool] = True

    underlying_kind: UnderlyingKind
    strike: Decimal
    right: OptionRight
    american: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            object.__setattr__(self, "underlying_kind", UnderlyingKind(self.underlying_kind))
            object.__setattr__(self, "right", OptionRight(self.right))
        except ValueError as exc:
            raise InstrumentError(f"{self.symbol}: {exc}") from None
        strike = as_decimal(self.strike, f"strike of {self.symbol}")
        if strike <= 0 and self.underlying_kind is not UnderlyingKind.FUTURE:
            raise InstrumentError(f"strike of {self.symbol} must be more than zero")
        object.__setattr__(self, "strike", strike)

    def value(self, quantity, price, *, on=None, cost=None, underlying_price=None) -> Valuation:
        worth = self.notional(quantity, price)
        underlying = None
        if underlying_price is not None:
            underlying = (
                self._signed_quantity(quantity)
                * as_decimal(underlying_price, f"underlying price of {self.symbol}")
                * self.multiplier
            )
        return Valuation(self.currency, worth, worth, worth, underlying_notional=underlying)

    def strike_notional(self, quantity: object) -> Decimal:
        """Quantity x multiplier x strike: what exercise would exchange."""
        return self._signed_quantity(quantity) * self.multiplier * self.strike

    def book_fill(
        self, fill: Fill, calendars: Calendars, *, closes: Closing | None = None
    ) -> Booking:
        return self._paid_booking(
            fill, calendars, closes, multiplier=self.multiplier, reason="premium"
        )
