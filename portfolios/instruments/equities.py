"""Shares and funds (equities, ETFs, money market funds) and cash itself."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from .base import Booking, Closing, Fill, Instrument, QuantityRule, TickTable, Valuation
from .calendars import Calendars
from .errors import InstrumentError
from .money import as_decimal, minor_units
from .settlement import SettlementCycle

__all__ = ["US_EQUITY_TICKS", "Cash", "Equity", "Etf", "MoneyMarketFund"]

_ONE = Decimal(1)

# SEC Regulation NMS Rule 612: orders at $1.00 or more in increments of $0.01, below
# $1.00 in increments of $0.0001.
US_EQUITY_TICKS = TickTable(((Decimal("0.9999"), Decimal("0.0001")),), above=Decimal("0.01"))


def _positive(value: object, what: str) -> Decimal:
    number = as_decimal(value, what)
    if number <= 0:
        raise InstrumentError(f"{what} must be more than zero, not {number}")
    return number


@dataclass(frozen=True, kw_only=True)
class Equity(Instrument):
    """A share. Trades are whole multiples of ``round_lot`` (1 unless the market trades
    in board lots, e.g. 100 on the Tokyo Stock Exchange) and at least ``min_quantity``;
    a ``fractional`` share trades in multiples of ``increment`` instead. ``tick_size``
    holds order prices to a tick (None: any price; :data:`US_EQUITY_TICKS` for US
    stocks). Value and cash:
    quantity x price, settled on ``settlement`` in business days of
    ``settlement_calendar``."""

    kind: ClassVar[str] = "equity"

    settlement: SettlementCycle
    settlement_calendar: str
    round_lot: Decimal = _ONE
    min_quantity: Decimal = Decimal(0)
    fractional: bool = False
    increment: Decimal = Decimal("0.000001")
    tick_size: Decimal | TickTable | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self, "round_lot", _positive(self.round_lot, f"round lot of {self.symbol}")
        )
        object.__setattr__(
            self, "increment", _positive(self.increment, f"increment of {self.symbol}")
        )
        minimum = as_decimal(self.min_quantity, f"minimum quantity of {self.symbol}")
        if minimum < 0:
            raise InstrumentError(f"minimum quantity of {self.symbol} cannot be negative")
        object.__setattr__(self, "min_quantity", minimum)
        step = self.increment if self.fractional else self.round_lot
        if minimum % step:
            # Quantities are multiples of the step; a minimum off that grid could never trade.
            raise InstrumentError(
                f"minimum quantity of {self.symbol} must be a multiple of {step}, not {minimum}"
            )

    def quantity_rule(self) -> QuantityRule:
        step = self.increment if self.fractional else self.round_lot
        return QuantityRule(max(self.min_quantity, step), step, Decimal(0), "shares")

    def value(self, quantity, price, *, on=None, cost=None, underlying_price=None) -> Valuation:
        worth = self.notional(quantity, price)
        return Valuation(self.currency, worth, worth, worth)

    def notional(self, quantity, price) -> Decimal:
        return self._signed_quantity(quantity) * self._price(price, traded=False)

    def settlement_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        return self.settlement.settlement_date(
            trade_date, calendars, self.settlement_calendar, what=self.symbol
        )

    def book_fill(
        self, fill: Fill, calendars: Calendars, *, closes: Closing | None = None
    ) -> Booking:
        return self._paid_booking(fill, calendars, closes, multiplier=_ONE, reason="principal")


@dataclass(frozen=True, kw_only=True)
class Etf(Equity):
    """An exchange-traded fund: traded and settled like a share."""

    kind: ClassVar[str] = "etf"


@dataclass(frozen=True, kw_only=True)
class MoneyMarketFund(Equity):
    """A money market fund: shares at the fund's NAV (1.00 for a stable-NAV fund), in
    fractions of ``increment`` (default 0.001 share), settled on the fund's cycle (often
    the same day: :data:`~portfolios.instruments.settlement.MONEY_MARKET_SAME_DAY`)."""

    kind: ClassVar[str] = "money_market_fund"

    fractional: bool = True
    increment: Decimal = Decimal("0.001")
    stable_nav: bool = False


@dataclass(frozen=True, kw_only=True)
class Cash(Instrument):
    """Cash in one currency: quantity is the amount (in the currency's minor units),
    valued at 1. It is not traded: a fill in cash is refused; currencies change hands
    through FX trades."""

    kind: ClassVar[str] = "cash"

    def quantity_rule(self) -> QuantityRule:
        unit = Decimal(1).scaleb(-minor_units(self.currency))
        return QuantityRule(unit, unit, Decimal(0), self.currency)

    def _unit_price(self, price) -> Decimal:
        p = as_decimal(price, f"price of {self.symbol}")
        if p != 1:
            raise InstrumentError(
                f"cash in {self.currency} is worth 1 per unit, not {p}: convert it with an FX rate"
            )
        return p

    def check_price(self, price) -> Decimal:
        return self._unit_price(price)

    def value(
        self, quantity, price=_ONE, *, on=None, cost=None, underlying_price=None
    ) -> Valuation:
        amount = self.notional(quantity, price)
        return Valuation(self.currency, amount, amount, amount)

    def notional(self, quantity, price=_ONE) -> Decimal:
        return self._signed_quantity(quantity) * self._unit_price(price)

    def settlement_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        return trade_date

    def book_fill(
        self, fill: Fill, calendars: Calendars, *, closes: Closing | None = None
    ) -> Booking:
        raise InstrumentError(
            f"cash in {self.currency} is not traded: move it with an FX trade or a transfer"
        )
