"""The one interface every instrument kind implements, and the plain data it trades in.

An :class:`Instrument` is a frozen dataclass describing a security; its methods apply the
kind's rules:

- :meth:`Instrument.check_quantity` / :meth:`Instrument.round_quantity` -- what may be
  ordered (whole shares, lots, a bond's minimum piece and increment, whole contracts);
- :meth:`Instrument.check_price` -- an order's price: its sign and its tick;
- :meth:`Instrument.value` -> :class:`Valuation` -- market value and notional;
- :meth:`Instrument.settlement_date` -- trade date plus the market's cycle;
- :meth:`Instrument.book_fill` -> :class:`Booking` -- what a fill does to the books:
  the position change, the lot cost and the cash movements with their value dates.

Quantities are in the kind's own unit (shares, face value, contracts, base-currency
amount); prices are per unit in the instrument's currency, bonds in % of par. Money is
Decimal throughout; cash movements are rounded to the currency's minor unit, once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from enum import StrEnum
from typing import ClassVar

from .calendars import Calendars
from .errors import InstrumentError
from .money import ZERO, as_decimal, check_currency, round_cash

__all__ = [
    "Booking",
    "CashMovement",
    "Closing",
    "Fill",
    "Instrument",
    "QuantityRule",
    "Side",
    "TickTable",
    "Valuation",
]


class Side(StrEnum):
    """Buy or sell, as the fill says."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


@dataclass(frozen=True)
class TickTable:
    """A tick that depends on the price: ``bands`` is ((up to and including, tick), ...)
    in rising order and ``above`` the tick past the last band. E-mini S&P 500 options:
    ``TickTable(((Decimal("5.00"), Decimal("0.05")),), above=Decimal("0.25"))``."""

    bands: tuple[tuple[Decimal, Decimal], ...]
    above: Decimal

    def __post_init__(self) -> None:
        limits = [limit for limit, _ in self.bands]
        if limits != sorted(limits):
            raise InstrumentError("tick table bands must rise")
        if any(tick <= 0 for _, tick in self.bands) or self.above <= 0:
            raise InstrumentError("a tick must be more than zero")

    def tick_for(self, price: Decimal) -> Decimal:
        """The tick that applies at `price` (its size: the sign does not matter)."""
        size = abs(price)
        for limit, tick in self.bands:
            if size <= limit:
                return tick
        return self.above


@dataclass(frozen=True)
class QuantityRule:
    """What may be traded: at least ``minimum``, on a grid of ``step`` starting at
    ``anchor`` (0 for lots; the minimum piece for a bond: "100,000 and integral multiples
    of 1,000 in excess thereof"). ``unit`` names the unit in messages."""

    minimum: Decimal
    step: Decimal
    anchor: Decimal
    unit: str

    def describe(self) -> str:
        if self.step == 1 and not self.anchor:
            return f"whole {self.unit}"
        if self.anchor:
            return f"{self.anchor:,} plus multiples of {self.step:,} {self.unit}"
        return f"multiples of {self.step:,} {self.unit}"


@dataclass(frozen=True)
class Valuation:
    """A position valued at a price, in ``currency`` (the instrument's currency; an FX
    pair's quote currency).

    ``market_value``: what the position adds to the account's value -- for a future or an
    FX contract, the gain against its cost (nothing was paid for it); for the rest, what
    it would sell for, accrued interest included. ``clean_value``: the same without
    accrued interest. ``notional``: the signed exposure (a bond's face value; a future's
    quantity x price x multiplier; an option's premium value). ``underlying_notional``:
    an option's quantity x multiplier x underlying price, when the underlying price was
    given (delta-unadjusted; compliance's exposure limits use it)."""

    currency: str
    market_value: Decimal
    clean_value: Decimal
    notional: Decimal
    accrued_interest: Decimal = ZERO
    underlying_notional: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class Fill:
    """A fill as booked to one account: side, quantity (> 0, the kind's unit), price
    (the kind's quote: % of par for bonds, the all-in rate for FX) and trade date.
    ``settlement_date``: the date the broker confirmed (FIX SettlDate, tag 64), which
    overrides the market's cycle when given."""

    side: Side
    quantity: Decimal
    price: Decimal
    trade_date: dt.date
    settlement_date: dt.date | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "side", Side(self.side))
        except ValueError:
            raise InstrumentError(f"a fill's side is 'buy' or 'sell', not {self.side!r}") from None
        object.__setattr__(self, "quantity", as_decimal(self.quantity, "fill quantity"))
        object.__setattr__(self, "price", as_decimal(self.price, "fill price"))
        if self.quantity <= 0:
            raise InstrumentError(f"a fill's quantity must be more than zero, not {self.quantity}")


@dataclass(frozen=True)
class Closing:
    """The part of a fill that closes open lots: ``quantity`` (0 < q <= the fill's) and
    ``cost``, the signed cost of those lots in the instrument's currency (long lots > 0,
    short lots < 0), as :attr:`Booking.cost_change` recorded them. The Django side picks
    the lots (FIFO, ...); the engine works out the realised profit."""

    quantity: Decimal
    cost: Decimal


@dataclass(frozen=True)
class CashMovement:
    """Cash in one currency on one value date: ``amount`` > 0 received, < 0 paid, rounded
    to the currency's minor unit. ``reason`` says what it is: ``principal``,
    ``accrued_interest``, ``premium``, ``fx_leg`` or ``realised_variation``."""

    currency: str
    amount: Decimal
    value_date: dt.date
    reason: str


@dataclass(frozen=True)
class Booking:
    """What a fill does to an account's books.

    ``position_change``: signed quantity (0 for FX, whose trade is its two cash legs).
    ``cost_change``: signed cost for the tax lot, in the instrument's currency: what was
    paid for a share, bond (accrued interest excluded) or option, the notional at the trade
    price for a future. ``cash``: the movements, each with its value date; until that date
    the cash is unsettled. ``realised``: the profit on the closed part when the fill closed
    lots (:class:`Closing`), else None; for a future it is also the cash that settles."""

    symbol: str
    kind: str
    side: Side
    trade_date: dt.date
    settlement_date: dt.date
    position_change: Decimal
    cost_change: Decimal
    cash: tuple[CashMovement, ...]
    realised: Decimal | None = None

    def cash_by_currency(self) -> dict[str, Decimal]:
        """Net cash per currency, all value dates together."""
        totals: dict[str, Decimal] = {}
        for movement in self.cash:
            totals[movement.currency] = totals.get(movement.currency, ZERO) + movement.amount
        return totals


_ROUNDINGS = (ROUND_DOWN, ROUND_UP, ROUND_HALF_EVEN)


@dataclass(frozen=True, kw_only=True)
class Instrument:
    """Fields every kind has: ``symbol`` (the desk's identifier, used in messages) and
    ``currency`` (ISO code of prices, values and cash). See the module docstring for the
    interface; subclasses supply :meth:`quantity_rule` and the kind's valuation."""

    kind: ClassVar[str] = "instrument"
    # A price of zero is a valid mark for a value (an option that expires worthless), not
    # for an order; negative prices only where the exchange allows them.
    zero_value_allowed: ClassVar[bool] = False

    symbol: str
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise InstrumentError(f"a {self.kind} needs a symbol")
        check_currency(self.currency, f"currency of {self.symbol}")

    # --- quantity ----------------------------------------------------------------

    def quantity_rule(self) -> QuantityRule:
        """The grid of quantities that may be traded."""
        raise NotImplementedError

    def check_quantity(self, quantity: object) -> Decimal:
        """`quantity` as a Decimal if it may be ordered, else :class:`InstrumentError`."""
        q = as_decimal(quantity, f"quantity of {self.symbol}")
        rule = self.quantity_rule()
        if q <= 0:
            raise InstrumentError(f"quantity of {self.symbol} must be more than zero, not {q}")
        if q < rule.minimum:
            raise InstrumentError(
                f"{q:,} {rule.unit} of {self.symbol} is below the minimum of "
                f"{rule.minimum:,} {rule.unit}"
            )
        if (q - rule.anchor) % rule.step != 0:
            raise InstrumentError(
                f"{q:,} {rule.unit} of {self.symbol} is not a tradeable quantity: {rule.describe()}"
            )
        return q

    def round_quantity(self, quantity: object, rounding: str = ROUND_DOWN) -> Decimal:
        """The tradeable quantity next to `quantity` (signed: a sale stays negative):
        down (default), up or to the nearest (ties to even) grid point; below the minimum
        it becomes zero, or the minimum when rounding up or when nearer to it."""
        if rounding not in _ROUNDINGS:
            raise InstrumentError("rounding must be ROUND_DOWN, ROUND_UP or ROUND_HALF_EVEN")
        q = as_decimal(quantity, f"quantity of {self.symbol}")
        sign = -1 if q < 0 else 1
        size = abs(q)
        if size == 0:
            return ZERO
        rule = self.quantity_rule()
        if size < rule.minimum:
            # Nearest: the minimum when the size is past half of it (ties go to zero).
            up = rounding == ROUND_UP or (rounding == ROUND_HALF_EVEN and 2 * size > rule.minimum)
            result = rule.minimum if up else ZERO
        else:
            steps = ((size - rule.anchor) / rule.step).to_integral_value(rounding=rounding)
            result = rule.anchor + steps * rule.step
        return sign * result

    # --- price -------------------------------------------------------------------

    @property
    def negative_prices_allowed(self) -> bool:
        return False

    @property
    def tick(self) -> Decimal | TickTable | None:
        """The minimum price increment of orders, or None when any price goes."""
        return getattr(self, "tick_size", None)

    def _price(self, price: object, *, traded: bool) -> Decimal:
        p = as_decimal(price, f"price of {self.symbol}")
        if p < 0 and not self.negative_prices_allowed:
            raise InstrumentError(f"price of {self.symbol} cannot be negative, not {p}")
        if p == 0 and not self.negative_prices_allowed and (traded or not self.zero_value_allowed):
            raise InstrumentError(f"price of {self.symbol} cannot be zero")
        return p

    def check_price(self, price: object) -> Decimal:
        """An order's limit price: its sign and its tick. Fills are not held to the tick
        (an average price across executions rarely is on it)."""
        p = self._price(price, traded=True)
        tick = self.tick
        if tick is not None:
            step = tick.tick_for(p) if isinstance(tick, TickTable) else tick
            if p % step != 0:
                raise InstrumentError(
                    f"price {p} of {self.symbol} is not a multiple of its tick {step}"
                )
        return p

    # --- value -------------------------------------------------------------------

    def value(
        self,
        quantity: object,
        price: object,
        *,
        on: dt.date | None = None,
        cost: object = None,
        underlying_price: object = None,
    ) -> Valuation:
        """A position of signed `quantity` valued at `price`. `on` is the date accrued
        interest runs to (bonds need it); `cost` the position's cost (futures and FX
        contracts need it: their value is the gain against it); `underlying_price` an
        option's underlying, for its underlying notional."""
        raise NotImplementedError

    def notional(self, quantity: object, price: object) -> Decimal:
        """The signed exposure of a position at `price` (see :class:`Valuation`)."""
        raise NotImplementedError

    # --- settlement and booking --------------------------------------------------

    def check_tradeable(self, trade_date: dt.date) -> None:
        """Raise when the instrument cannot trade on `trade_date` (expired, matured)."""

    def settlement_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        """When a trade on `trade_date` settles."""
        raise NotImplementedError

    def book_fill(
        self, fill: Fill, calendars: Calendars, *, closes: Closing | None = None
    ) -> Booking:
        """The :class:`Booking` of `fill`; `closes` the part of it that closes open lots."""
        raise NotImplementedError

    # --- helpers for the kinds ---------------------------------------------------

    def _signed_quantity(self, quantity: object) -> Decimal:
        return as_decimal(quantity, f"quantity of {self.symbol}")

    def _settle(self, fill: Fill, calendars: Calendars) -> dt.date:
        self.check_tradeable(fill.trade_date)
        if fill.settlement_date is None:
            return self.settlement_date(fill.trade_date, calendars)
        if fill.settlement_date < fill.trade_date:
            raise InstrumentError(
                f"{self.symbol}: settlement date {fill.settlement_date.isoformat()} is before "
                f"the trade date {fill.trade_date.isoformat()}"
            )
        return fill.settlement_date

    def _booking(self, fill: Fill, *, settles: dt.date, **figures) -> Booking:
        """This instrument's booking of `fill`, settling on `settles`; `figures` are the
        rest of the :class:`Booking`: position_change, cost_change, cash, realised."""
        return Booking(
            symbol=self.symbol,
            kind=self.kind,
            side=fill.side,
            trade_date=fill.trade_date,
            settlement_date=settles,
            **figures,
        )

    def _realised(self, fill: Fill, cost_change: Decimal, closes: Closing | None) -> Decimal | None:
        if closes is None:
            return None
        closed = as_decimal(closes.quantity, f"closed quantity of {self.symbol}")
        closed_cost = as_decimal(closes.cost, f"closed cost of {self.symbol}")
        if not 0 < closed <= fill.quantity:
            raise InstrumentError(
                f"{self.symbol}: the closed quantity {closed} must be more than zero and at "
                f"most the fill's {fill.quantity}"
            )
        if closed_cost * fill.side.sign > 0:
            raise InstrumentError(
                f"{self.symbol}: a {fill.side.value} closes "
                f"{'short' if fill.side is Side.BUY else 'long'} lots, whose cost is "
                f"{'negative' if fill.side is Side.BUY else 'positive'}, not {closed_cost}"
            )
        # Money: rounded like the cash it is (a future's realised profit is paid).
        return round_cash(-(cost_change * closed / fill.quantity + closed_cost), self.currency)

    def _paid_booking(
        self,
        fill: Fill,
        calendars: Calendars,
        closes: Closing | None,
        *,
        multiplier: Decimal,
        reason: str,
    ) -> Booking:
        """Booking of an instrument bought for cash: quantity x price x multiplier paid
        on the settlement date (shares, funds, option premium)."""
        quantity = self.check_quantity(fill.quantity)
        price = self._price(fill.price, traded=True)
        settles = self._settle(fill, calendars)
        principal = round_cash(quantity * price * multiplier, self.currency)
        cost_change = fill.side.sign * principal
        return self._booking(
            fill,
            settles=settles,
            position_change=fill.side.sign * quantity,
            cost_change=cost_change,
            cash=(CashMovement(self.currency, -cost_change, settles, reason),),
            realised=self._realised(fill, cost_change, closes),
        )
