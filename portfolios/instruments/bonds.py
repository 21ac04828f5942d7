"""Fixed-coupon bonds: face-value quantities, prices in % of par, accrued interest.

Coupon dates are built from the maturity backwards in steps of 12/frequency months
(unadjusted: accrual ignores business days, payments roll; ICMA Rule 251), keeping month
ends as month ends when the bond is end-of-month. A first coupon date off that grid makes
the schedule run forwards from it instead, with an odd last period.

Accrued interest on face F to settlement date S, in the coupon period that contains S:

    accrued = F x coupon rate x year fraction(period start, S)

where the year fraction follows the bond's day count (:mod:`.daycount`). For ACT/ACT
ICMA the fraction is summed over the period's reference (quasi-coupon) periods, each part
counted as days / (frequency x days of that reference period); a regular period is its
own reference, so a full regular period is exactly 1/frequency of a year and the coupon
exactly rate/frequency. A period is [start, end): on a coupon date the accrued interest
of the new period is zero.

Clean price + accrued per 100 = dirty price; a trade pays face x clean / 100 plus the
accrued interest, each rounded to the currency's minor unit.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
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
from .calendars import Calendars, add_months, is_month_end
from .daycount import DayCount, year_fraction
from .errors import InstrumentError
from .money import ZERO, as_decimal, fraction_to_decimal, round_cash
from .settlement import US_TREASURIES, SettlementCycle

__all__ = ["Bond", "CouponPeriod", "IssuerType", "price_from_32nds", "us_treasury"]

_HUNDRED = Decimal(100)
_FREQUENCIES = (0, 1, 2, 4, 12)


class IssuerType(StrEnum):
    """Who issued the bond: compliance limits and the exposure view group by it."""

    GOVERNMENT = "government"
    CORPORATE = "corporate"


@dataclass(frozen=True)
class CouponPeriod:
    """One coupon period [start, end), paid on ``end``. ``references``: the regular
    (quasi-)coupon periods that cover it, for ACT/ACT ICMA; a regular period has itself
    only."""

    start: dt.date
    end: dt.date
    references: tuple[tuple[dt.date, dt.date], ...]

    @property
    def regular(self) -> bool:
        return self.references == ((self.start, self.end),)


@dataclass(frozen=True, kw_only=True)
class Bond(Instrument):
    """A fixed-coupon bond.

    ``coupon_rate``: annual rate as a fraction (0.0425 for 4.25%); ``frequency``: coupons
    a year (1, 2, 4, 12; 0 for a zero-coupon bond); ``day_count``: see
    :class:`~.daycount.DayCount`; ``issue_date``: the date interest accrues from (the dated
    date); ``first_coupon_date``: when the first period is odd (None: a regular schedule
    back from maturity); ``end_of_month``: coupons on month ends (None: when the maturity
    is a month end). Quantity is face value: at least ``min_piece`` and ``min_piece`` plus
    multiples of ``increment``. Prices are clean, in % of par."""

    kind: ClassVar[str] = "bond"

    issuer_type: IssuerType
    coupon_rate: Decimal
    frequency: int
    day_count: DayCount
    issue_date: dt.date
    maturity: dt.date
    min_piece: Decimal
    increment: Decimal
    settlement: SettlementCycle
    settlement_calendar: str
    first_coupon_date: dt.date | None = None
    end_of_month: bool | None = None
    tick_size: Decimal | TickTable | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        name = self.symbol
        try:
            object.__setattr__(self, "issuer_type", IssuerType(self.issuer_type))
        except ValueError:
            raise InstrumentError(
                f"{name}: issuer type is 'government' or 'corporate', not {self.issuer_type!r}"
            ) from None
        try:
            object.__setattr__(self, "day_count", DayCount(self.day_count))
        except ValueError:
            known = ", ".join(d.value for d in DayCount)
            raise InstrumentError(
                f"{name}: unknown day count {self.day_count!r} (known: {known})"
            ) from None
        rate = as_decimal(self.coupon_rate, f"coupon rate of {name}")
        if not 0 <= rate < 1:
            raise InstrumentError(
                f"coupon rate of {name} is a fraction (0.0425 for 4.25%), not {rate}"
            )
        object.__setattr__(self, "coupon_rate", rate)
        if self.frequency not in _FREQUENCIES:
            raise InstrumentError(
                f"{name}: coupon frequency is 1, 2, 4 or 12 a year (0: zero coupon), "
                f"not {self.frequency!r}"
            )
        if self.frequency == 0 and rate != 0:
            raise InstrumentError(f"{name}: a bond with a coupon needs a coupon frequency")
        if not self.issue_date < self.maturity:
            raise InstrumentError(f"{name}: the issue date must be before the maturity")
        first = self.first_coupon_date
        if first is not None and not self.issue_date < first <= self.maturity:
            raise InstrumentError(
                f"{name}: the first coupon date must be after the issue date and no later "
                "than the maturity"
            )
        for field_name in ("min_piece", "increment"):
            value = as_decimal(getattr(self, field_name), f"{field_name} of {name}")
            if value <= 0:
                raise InstrumentError(
                    f"{field_name.replace('_', ' ')} of {name} must be more than zero"
                )
            object.__setattr__(self, field_name, value)

    # --- the schedule --------------------------------------------------------------

    @property
    def eom(self) -> bool:
        """Whether coupon dates keep to month ends."""
        if self.end_of_month is not None:
            return self.end_of_month
        return is_month_end(self.maturity)

    @cached_property
    def periods(self) -> tuple[CouponPeriod, ...]:
        """The coupon periods from the issue date to the maturity."""
        if self.frequency == 0:
            return (
                CouponPeriod(self.issue_date, self.maturity, ((self.issue_date, self.maturity),)),
            )
        step = 12 // self.frequency
        back = [self.maturity]
        k = 1
        while back[-1] > self.issue_date:
            back.append(add_months(self.maturity, -k * step, end_of_month=self.eom))
            k += 1
        first = self.first_coupon_date
        if first is None or first in back:
            stop = first or min(d for d in back if d > self.issue_date)
            dates = sorted(d for d in back if stop <= d)
            periods = [self._first_period(dates[0], step)]
            periods += [
                CouponPeriod(a, b, ((a, b),)) for a, b in zip(dates, dates[1:], strict=False)
            ]
            return tuple(periods)
        # A first coupon off the grid from maturity: regular from it, odd at the end.
        forward = [first]
        k = 1
        while True:
            nxt = add_months(first, k * step, end_of_month=self.eom)
            if nxt >= self.maturity:
                break
            forward.append(nxt)
            k += 1
        periods = [self._first_period(first, step)]
        periods += [
            CouponPeriod(a, b, ((a, b),)) for a, b in zip(forward, forward[1:], strict=False)
        ]
        last = forward[-1]
        refs, k = [], 1
        ref_start = last
        while ref_start < self.maturity:
            ref_end = add_months(last, k * step, end_of_month=self.eom)
            refs.append((ref_start, ref_end))
            ref_start, k = ref_end, k + 1
        periods.append(CouponPeriod(last, self.maturity, tuple(refs)))
        return tuple(periods)

    def _first_period(self, first_coupon: dt.date, step: int) -> CouponPeriod:
        refs = []
        k = 1
        ref_end = first_coupon
        while ref_end > self.issue_date:
            ref_start = add_months(first_coupon, -k * step, end_of_month=self.eom)
            refs.append((ref_start, ref_end))
            ref_end, k = ref_start, k + 1
        return CouponPeriod(self.issue_date, first_coupon, tuple(reversed(refs)))

    @cached_property
    def _period_starts(self) -> tuple[dt.date, ...]:
        return tuple(p.start for p in self.periods)

    @property
    def coupon_dates(self) -> tuple[dt.date, ...]:
        """Every coupon payment date (unadjusted), the maturity last."""
        return tuple(p.end for p in self.periods)

    def period_on(self, day: dt.date) -> CouponPeriod:
        """The coupon period that contains `day` (start <= day < end)."""
        if day < self.issue_date:
            raise InstrumentError(
                f"{self.symbol} accrues interest from {self.issue_date.isoformat()}; "
                f"{day.isoformat()} is before it"
            )
        if day >= self.maturity:
            raise InstrumentError(
                f"{self.symbol} matured on {self.maturity.isoformat()}; no interest accrues "
                f"on {day.isoformat()}"
            )
        index = bisect.bisect_right(self._period_starts, day) - 1
        return self.periods[index]

    # --- accrued interest ------------------------------------------------------------

    def _fraction(self, period: CouponPeriod, until: dt.date) -> Fraction:
        if self.day_count is DayCount.ACT_ACT_ICMA:
            total = Fraction(0)
            for ref_start, ref_end in period.references:
                start, end = max(period.start, ref_start), min(until, ref_end)
                if end > start:
                    total += year_fraction(
                        DayCount.ACT_ACT_ICMA,
                        start,
                        end,
                        reference=(ref_start, ref_end),
                        frequency=self.frequency,
                    )
            return total
        return year_fraction(
            self.day_count, period.start, until, termination=self.maturity, end_of_month=self.eom
        )

    def accrual_fraction(self, settlement: dt.date) -> Fraction:
        """The year fraction of the current coupon period accrued by `settlement`."""
        period = self.period_on(settlement)
        if self.frequency == 0:
            return Fraction(0)
        return self._fraction(period, settlement)

    def _accrued_per_unit(self, settlement: dt.date) -> Decimal:
        # Accrued interest on one unit of face, kept per date: a book revalues many
        # positions in one bond on one day, and the exact fraction is slow to redo.
        cache = self.__dict__.setdefault("_accrued_per_unit_cache", {})
        factor = cache.get(settlement)
        if factor is None:
            factor = fraction_to_decimal(
                Fraction(self.coupon_rate) * self.accrual_fraction(settlement)
            )
            if len(cache) > 4096:
                cache.clear()
            cache[settlement] = factor
        return factor

    def accrued_per_100(self, settlement: dt.date) -> Decimal:
        """Accrued interest per 100 of face at `settlement`, unrounded."""
        return _HUNDRED * self._accrued_per_unit(settlement)

    def accrued_interest(self, face: object, settlement: dt.date) -> Decimal:
        """Accrued interest on `face` (signed) at `settlement`, unrounded (28 significant
        digits of the exact fraction per unit of face, times the face)."""
        return self._signed_quantity(face) * self._accrued_per_unit(settlement)

    def coupon_per_100(self, period: CouponPeriod) -> Decimal:
        """The coupon paid at the end of `period` per 100 of face."""
        if self.frequency == 0:
            return ZERO
        return fraction_to_decimal(
            Fraction(_HUNDRED) * Fraction(self.coupon_rate) * self._fraction(period, period.end)
        )

    def dirty_price(self, clean_price: object, settlement: dt.date) -> Decimal:
        """Clean price plus accrued interest per 100."""
        return self._price(clean_price, traded=False) + self.accrued_per_100(settlement)

    def clean_price(self, dirty_price: object, settlement: dt.date) -> Decimal:
        """Dirty price less accrued interest per 100."""
        return as_decimal(dirty_price, f"dirty price of {self.symbol}") - self.accrued_per_100(
            settlement
        )

    # --- the interface -------------------------------------------------------------

    def quantity_rule(self) -> QuantityRule:
        return QuantityRule(self.min_piece, self.increment, self.min_piece, "face")

    def check_tradeable(self, trade_date: dt.date) -> None:
        if trade_date >= self.maturity:
            raise InstrumentError(
                f"{self.symbol} matured on {self.maturity.isoformat()}; it cannot trade on "
                f"{trade_date.isoformat()}"
            )

    def value(self, quantity, price, *, on=None, cost=None, underlying_price=None) -> Valuation:
        if on is None:
            raise InstrumentError(f"valuing {self.symbol} needs the date interest accrues to")
        face = self._signed_quantity(quantity)
        clean = face * self._price(price, traded=False) / _HUNDRED
        accrued = ZERO if on < self.issue_date else self.accrued_interest(face, on)
        return Valuation(self.currency, clean + accrued, clean, face, accrued_interest=accrued)

    def notional(self, quantity, price=None) -> Decimal:
        """A bond's notional is its face value."""
        return self._signed_quantity(quantity)

    def settlement_date(self, trade_date: dt.date, calendars: Calendars) -> dt.date:
        return self.settlement.settlement_date(
            trade_date, calendars, self.settlement_calendar, what=self.symbol
        )

    def book_fill(
        self, fill: Fill, calendars: Calendars, *, closes: Closing | None = None
    ) -> Booking:
        face = self.check_quantity(fill.quantity)
        price = self._price(fill.price, traded=True)
        settles = self._settle(fill, calendars)
        if settles >= self.maturity:
            raise InstrumentError(
                f"{self.symbol} matures on {self.maturity.isoformat()}; a trade cannot settle "
                f"on {settles.isoformat()}"
            )
        if settles < self.issue_date:
            raise InstrumentError(
                f"{self.symbol} is issued on {self.issue_date.isoformat()}; a trade cannot "
                f"settle before it ({settles.isoformat()})"
            )
        principal = round_cash(face * price / _HUNDRED, self.currency)
        accrued = round_cash(self.accrued_interest(face, settles), self.currency)
        sign = fill.side.sign
        cash = [CashMovement(self.currency, -sign * principal, settles, "principal")]
        if accrued:
            cash.append(CashMovement(self.currency, -sign * accrued, settles, "accrued_interest"))
        cost_change = sign * principal
        return self._booking(
            fill,
            settles=settles,
            position_change=sign * face,
            cost_change=cost_change,
            cash=tuple(cash),
            realised=self._realised(fill, cost_change, closes),
        )


def us_treasury(
    symbol: str,
    *,
    coupon_rate: object,
    issue_date: dt.date,
    maturity: dt.date,
    first_coupon_date: dt.date | None = None,
    settlement_calendar: str = "US",
) -> Bond:
    """A US Treasury note or bond: semiannual, ACT/ACT ICMA, $100 minimum and
    increments (TreasuryDirect), T+1."""
    return Bond(
        symbol=symbol,
        currency="USD",
        issuer_type=IssuerType.GOVERNMENT,
        coupon_rate=as_decimal(coupon_rate, f"coupon rate of {symbol}"),
        frequency=2,
        day_count=DayCount.ACT_ACT_ICMA,
        issue_date=issue_date,
        maturity=maturity,
        first_coupon_date=first_coupon_date,
        min_piece=_HUNDRED,
        increment=_HUNDRED,
        settlement=US_TREASURIES,
        settlement_calendar=settlement_calendar,
    )


_EIGHTHS = {
    "": Fraction(0),
    "0": Fraction(0),
    "2": Fraction(1, 4),
    "+": Fraction(1, 2),
    "5": Fraction(1, 2),
    "7": Fraction(3, 4),
}


def price_from_32nds(quote: str) -> Decimal:
    """A price quoted in points and 32nds as a decimal: "95-16" is 95 16/32 = 95.5,
    "126-165" and "126-16+" are 126 16.5/32, "119-162" 119 16.25/32, "119-167" 119 16.75/32
    (the CME's notation for Treasury futures; Hull quotes Treasury bonds the same way)."""
    text = quote.strip() if isinstance(quote, str) else ""
    points, sep, rest = text.partition("-")
    if not sep or not points.isdigit() or len(rest) < 2 or not rest[:2].isdigit():
        raise InstrumentError(f"a price in 32nds looks like 99-16 or 99-16+, not {quote!r}")
    thirty_seconds, extra = int(rest[:2]), rest[2:]
    if thirty_seconds > 31 or extra not in _EIGHTHS:
        raise InstrumentError(f"a price in 32nds looks like 99-16 or 99-16+, not {quote!r}")
    value = int(points) + (thirty_seconds + _EIGHTHS[extra]) / 32
    return fraction_to_decimal(Fraction(value))
