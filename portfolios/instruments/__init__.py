"""Instrument engine: the rules of quantity, price, value, settlement and booking of each
asset class the desk trades. A pure library (Decimal and the standard library, no Django).

See docs/instruments.md for every rule and its source.
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
