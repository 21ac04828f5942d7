"""FX spot and outright forwards: a trade is two cash legs on one value date.

A pair BASE/QUOTE is quoted as units of QUOTE per one BASE (EUR/USD 1.0850: one euro is
1.0850 dollars). The quantity of a trade is an amount of BASE; buying N at rate R receives
N BASE and pays N x R QUOTE (rounded to QUOTE's minor unit), both on the value date, and
sells the reverse. No security position is booked: until the value date the two legs are
unsettled cash in their currencies, which the account's valuation converts like any cash.

A forward's outright rate is the spot rate plus forward points x pip (0.0001, or 0.01 when
the quote currency is JPY): spot 1.4500 and 25 points give 1.4525.

Valued against its contract, a forward of N BASE struck at K is worth N x (F - K) in
QUOTE at today's outright F for the same value date, undiscounted (the engine has no
interest-rate curves). Valuing the two legs at the spot rate instead leaves out the
forward points between now and the value date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from .base import Booking, CashMovement, Closing, Fill, Instrument, QuantityRule, Valuation
from .calendars import Calendars, calendar_for
from .errors import InstrumentError
from .money import ZERO, as_decimal, check_currency, minor_units, round_cash
from .settlement import fx_forward_value_date, fx_spot_date

__all__ = ["CurrencyPair", "FxForward", "FxSpot"]


@dataclass(frozen=True)
class CurrencyPair:
    """BASE/QUOTE. ``pip``: the unit forward points are quoted in (default 0.0001, 0.01
    for JPY quotes); ``spot_lag``: overrides the market's spot lag (see
    :func:`~.settlement.fx_spot_date`)."""

    base: str
    quote: str
    pip: Decimal | None = None
    spot_lag: int | None = None

    def __post_init__(self) -> None:
        check_currency(self.base, "base currency")
        check_currency(self.quote, "quote currency")
        if self.base == self.quote:
            raise InstrumentError(f"{self.base}/{self.quote} is not a currency pair")
        if self.pip is None:
            object.__setattr__(
                self, "pip", Decimal("0.01") if self.quote == "JPY" else Decimal("0.0001")
            )
        else:
            object.__setattr__(self, "pip", as_decimal(self.pip, f"pip of {self}"))

    def __str__(self) -> str:
        return f"{self.base}/{self.quote}"

    @classmethod
    def parse(cls, text: str) -> CurrencyPair:
        """``"EUR/USD"`` or ``"EURUSD"``."""
        cleaned = text.replace("/", "").strip().upper() if isinstance(text, str) else ""
        if len(cleaned) != 6:
            raise InstrumentError(f"a currency pair looks like EUR/USD, not {text!r}")
        return cls(cleaned[:3], cleaned[3:])


@dataclass(frozen=True, kw_only=True)
class _FxTrade(Instrument):
    """What spot and forwards share. ``currency`` is the pair's quote currency (the
    currency of the rate and of valuations)."""

    pair: CurrencyPair
    currency: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.pair, CurrencyPair):
            object.__setattr__(self, "pair", CurrencyPair.parse(self.pair))
        if not self.currency:
            object.__setattr__(self, "currency", self.pair.quote)
        if self.currency != self.pair.quote:
            raise InstrumentError(
                f"{self.symbol}: an FX trade is valued in its quote currency "
                f"{self.pair.quote}, not {self.currency}"
            )
        super().__post_init__()

    def quantity_rule(self) -> QuantityRule:
        unit = Decimal(1).scaleb(-minor_units(self.pair.base))
        return QuantityRule(unit, unit, ZERO, self.pair.base)

    def notional(self, quantity, price) -> Decimal:
        """The signed amount of quote currency the base amount is worth at `price`."""
        return self._signed_quantity(quantity) * self._price(price, traded=False)

    def value(self, quantity, price, *, on=None, cost=None, underlying_price=None) -> Valuation:
        """Two legs of signed `quantity` BASE and -`cost` QUOTE (``cost`` = quantity x the
        contract rate), valued at `price` (the outright for their value date): worth
        quantity x price - cost in QUOTE."""
        if cost is None:
            raise InstrumentError(
                f"valuing {self.symbol} needs its cost: the quote amount at the contract rate"
            )
        notional = self.notional(quantity, price)
        gain = notional - as_decimal(cost, f"cost of {self.symbol}")
        return Valuation(self.currency, gain, gain, notional)

    def _value_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        raise NotImplementedError

    def settlement_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        return self._value_date(trade_date, calendars)

    def book_fill(
        self, fill: Fill, calendars: Calendars, *, closes: Closing | None = None
    ) -> Booking:
        if closes is not None:
            raise InstrumentError(
                f"{self.symbol}: an FX trade opens no lots to close; its legs are cash"
            )
        amount = self.check_quantity(fill.quantity)
        rate = self._price(fill.price, traded=True)
        value_date = self._settle(fill, calendars)
        sign = fill.side.sign
        quote_amount = round_cash(amount * rate, self.pair.quote)
        return self._booking(
            fill,
            settles=value_date,
            position_change=ZERO,
            cost_change=ZERO,
            cash=(
                CashMovement(self.pair.base, sign * amount, value_date, "fx_leg"),
                CashMovement(self.pair.quote, -sign * quote_amount, value_date, "fx_leg"),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class FxSpot(_FxTrade):
    """A spot trade in ``pair``: it settles on the pair's spot date."""

    kind: ClassVar[str] = "fx_spot"

    def _value_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        return fx_spot_date(
            self.pair.base, self.pair.quote, trade_date, calendars, spot_lag=self.pair.spot_lag
        )


@dataclass(frozen=True, kw_only=True)
class FxForward(_FxTrade):
    """An outright forward in ``pair`` for ``value_date``; its price is the outright
    rate (:meth:`outright_rate` from a spot rate and forward points)."""

    kind: ClassVar[str] = "fx_forward"

    value_date: dt.date

    def outright_rate(self, spot_rate: object, forward_points: object) -> Decimal:
        """Spot rate plus forward points x pip (points may be negative)."""
        spot = as_decimal(spot_rate, f"spot rate of {self.symbol}")
        points = as_decimal(forward_points, f"forward points of {self.symbol}")
        return spot + points * self.pair.pip

    @classmethod
    def for_tenor(
        cls, pair: CurrencyPair, tenor: str, trade_date: dt.date, calendars: Calendars, **fields
    ) -> FxForward:
        """A forward whose value date is `tenor` ("1M", "3M", ...) after spot."""
        value_date = fx_forward_value_date(
            pair.base, pair.quote, trade_date, tenor, calendars, spot_lag=pair.spot_lag
        )
        fields.setdefault("symbol", f"{pair} {value_date.isoformat()}")
        return cls(pair=pair, value_date=value_date, **fields)

    def check_tradeable(self, trade_date: dt.date) -> None:
        if trade_date > self.value_date:
            raise InstrumentError(
                f"{self.symbol} is for value {self.value_date.isoformat()}; it cannot be "
                f"traded on {trade_date.isoformat()}, after that date"
            )

    def _value_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        self.check_tradeable(trade_date)
        for ccy in (self.pair.base, self.pair.quote):
            cal = calendar_for(calendars, ccy, f"value date of {self.symbol}")
            if not cal.is_business_day(self.value_date):
                raise InstrumentError(
                    f"{self.symbol} cannot settle on {self.value_date.isoformat()}: "
                    f"{cal.describe(self.value_date)}"
                )
        return self.value_date

    def _settle(self, fill: Fill, calendars: Calendars) -> dt.date:
        settles = super()._settle(fill, calendars)
        if settles != self.value_date:
            raise InstrumentError(
                f"{self.symbol} settles on its value date {self.value_date.isoformat()}, "
                f"not {settles.isoformat()}"
            )
        self._value_date(fill.trade_date, calendars)
        return settles
