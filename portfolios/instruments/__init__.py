"""Instrument engine: the rules of quantity, price, value, settlement and booking of each
asset class the desk trades. A pure library (Decimal and the standard library, no Django).

The public API (docs/instruments.md has every rule and its source):

- Kinds, each a frozen dataclass: :class:`Equity`, :class:`Etf`, :class:`MoneyMarketFund`,
  :class:`Cash`, :class:`Bond` (:func:`us_treasury`), :class:`FxSpot`, :class:`FxForward`
  (on a :class:`CurrencyPair`), :class:`Future`, :class:`Option`; built from plain data
  with :func:`portfolios.instruments.build.build_instrument`; exchange specs in
  :mod:`portfolios.instruments.contracts`.
- One interface (:class:`Instrument`): ``check_quantity``, ``round_quantity``,
  ``check_price``, ``value`` -> :class:`Valuation`, ``notional``, ``settlement_date``,
  ``book_fill`` (a :class:`Fill`, optionally a :class:`Closing`) -> :class:`Booking` with
  :class:`CashMovement` s.
- Dates: :class:`HolidayCalendar` (input data), :class:`SettlementCycle` and the market
  cycles (``US_SECURITIES``, ``US_TREASURIES``, ...), :func:`fx_spot_date`,
  :func:`fx_forward_value_date`; day counts: :class:`DayCount`, :func:`year_fraction`.
- Allocation in each kind's units: :func:`trading.allocation.allocate_fill` (in trading, beside the pro-rata rule it extends).
- Every bad input raises :class:`InstrumentError` naming the instrument and the rule.
"""

from .base import (
    Booking,
    CashMovement,
    Closing,
    Fill,
    Instrument,
    QuantityRule,
    Side,
    TickTable,
    Valuation,
)
from .bonds import Bond, CouponPeriod, IssuerType, price_from_32nds, us_treasury
from .calendars import Calendars, HolidayCalendar, Roll, add_months, joint_calendar
from .daycount import DayCount, day_count, year_fraction
from .derivatives import Future, Option, OptionRight, UnderlyingKind
from .equities import US_EQUITY_TICKS, Cash, Equity, Etf, MoneyMarketFund
from .errors import InstrumentError
from .fx import CurrencyPair, FxForward, FxSpot
from .money import minor_units, round_cash
from .settlement import (
    CANADA_SECURITIES,
    EU_SECURITIES,
    JAPAN_EQUITIES,
    LISTED_DERIVATIVES_US,
    MONEY_MARKET_SAME_DAY,
    UK_EQUITIES,
    UK_GILTS,
    US_SECURITIES,
    US_TREASURIES,
    SettlementCycle,
    fx_forward_value_date,
    fx_spot_date,
)

__all__ = [
    "CANADA_SECURITIES",
    "EU_SECURITIES",
    "JAPAN_EQUITIES",
    "LISTED_DERIVATIVES_US",
    "MONEY_MARKET_SAME_DAY",
    "UK_EQUITIES",
    "UK_GILTS",
    "US_EQUITY_TICKS",
    "US_SECURITIES",
    "US_TREASURIES",
    "Bond",
    "Booking",
    "Calendars",
    "Cash",
    "CashMovement",
    "Closing",
    "CouponPeriod",
    "CurrencyPair",
    "DayCount",
    "Equity",
    "Etf",
    "Fill",
    "Future",
    "FxForward",
    "FxSpot",
    "HolidayCalendar",
    "Instrument",
    "InstrumentError",
    "IssuerType",
    "MoneyMarketFund",
    "Option",
    "OptionRight",
    "QuantityRule",
    "Roll",
    "SettlementCycle",
    "Side",
    "TickTable",
    "UnderlyingKind",
    "Valuation",
    "add_months",
    "day_count",
    "fx_forward_value_date",
    "fx_spot_date",
    "joint_calendar",
    "minor_units",
    "price_from_32nds",
    "round_cash",
    "us_treasury",
    "year_fraction",
]
