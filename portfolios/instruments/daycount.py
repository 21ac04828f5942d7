"""Day-count conventions: the days between two dates and the fraction of a year they are.

Every fraction is an exact :class:`fractions.Fraction`, so that accrued interest is
rounded once, when it becomes cash, and never in between. The rules, from the 2006 ISDA
Definitions, Section 4.16 (paragraph letters below) and, for 30/360 US, the SIFMA
(formerly SIA) *Standard Securities Calculation Methods*:

- ``30/360 US`` (SIFMA; US corporate, agency and municipal bonds): with D1/D2 the days
  of the start and end dates, in this order: if the bond is end-of-month and both dates
  are the last day of February, D2 = 30; if the bond is end-of-month and D1 is the last
  day of February, D1 = 30; if D2 = 31 and D1 >= 30, D2 = 30; if D1 = 31, D1 = 30.
  Days = 360(Y2-Y1) + 30(M2-M1) + (D2-D1); fraction = days / 360.
- ``30/360`` bond basis (ISDA (f)): D1 = 31 becomes 30; D2 = 31 becomes 30 when D1 > 29.
- ``30E/360`` Eurobond basis (ISDA (g)): a 31st becomes the 30th, on either date.
- ``30E/360 ISDA`` (ISDA (h)): a last day of a month becomes 30, except D2 when it is the
  termination (maturity) date and falls in February.
- ``ACT/360`` (ISDA (e)), ``ACT/365F`` (ISDA (d)): actual days over 360 or 365.
- ``ACT/ACT ISDA`` (ISDA (b)): days falling in a leap year over 366 plus the rest over 365.
- ``ACT/ACT ICMA`` (ISDA (c), ICMA Rule 251; US Treasuries): actual days over
  (coupons a year x actual days of the reference coupon period). A period spanning
  several reference periods (an odd first or last coupon) is the sum over them; that
  split lives in :mod:`portfolios.instruments.bonds`, which knows the coupon dates.

Dates count from the first (included) to the second (excluded), as every convention here
does.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from fractions import Fraction

from .calendars import is_month_end
from .errors import InstrumentError

__all__ = ["DayCount", "day_count", "year_fraction"]


class DayCount(StrEnum):
    """The day-count conventions the engine knows. The value is the market's name."""

    THIRTY_360_US = "30/360 US"
    THIRTY_360_BOND_BASIS = "30/360"
    THIRTY_E_360 = "30E/360"
    THIRTY_E_360_ISDA = "30E/360 ISDA"
    ACT_360 = "ACT/360"
    ACT_365F = "ACT/365F"
    ACT_ACT_ISDA = "ACT/ACT ISDA"
    ACT_ACT_ICMA = "ACT/ACT ICMA"

    @property
    def is_thirty_360(self) -> bool:
        return self.value.startswith("30")


def _last_of_february(day: dt.date) -> bool:
    return day.month == 2 and is_month_end(day)


def _thirty_360_days(
    convention: DayCount,
    start: dt.date,
    end: dt.date,
    *,
    termination: dt.date | None,
    end_of_month: bool,
) -> int:
    d1, d2 = start.day, end.day
    if convention is DayCount.THIRTY_360_US:
        if end_of_month and _last_of_february(start) and _last_of_february(end):
            d2 = 30
        if end_of_month and _last_of_february(start):
            d1 = 30
        if d2 == 31 and d1 >= 30:
            d2 = 30
        if d1 == 31:
            d1 = 30
    elif convention is DayCount.THIRTY_360_BOND_BASIS:
        if d1 == 31:
            d1 = 30
        if d2 == 31 and d1 > 29:
            d2 = 30
    elif convention is DayCount.THIRTY_E_360:
        d1, d2 = min(d1, 30), min(d2, 30)
    elif convention is DayCount.THIRTY_E_360_ISDA:
        if is_month_end(start):
            d1 = 30
        if is_month_end(end) and not (end == termination and end.month == 2):
            d2 = 30
    else:  # pragma: no cover - every 30/360 member is handled above
        raise AssertionError(convention)
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def _check_order(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise InstrumentError(
            f"a day count runs forward: {end.isoformat()} is before {start.isoformat()}"
        )


def day_count(
    convention: DayCount | str,
    start: dt.date,
    end: dt.date,
    *,
    termination: dt.date | None = None,
    end_of_month: bool = True,
) -> int:
    """The days from `start` to `end` under `convention` (30/360 family: the adjusted
    count; every ACT convention: calendar days). `termination` is the maturity, which
    30E/360 ISDA treats apart in February; `end_of_month` turns the February rules of
    30/360 US on (SIFMA applies them to end-of-month bonds)."""
    convention = DayCount(convention)
    _check_order(start, end)
    if convention.is_thirty_360:
        return _thirty_360_days(
            convention, start, end, termination=termination, end_of_month=end_of_month
        )
    return (end - start).days


def year_fraction(
    convention: DayCount | str,
    start: dt.date,
    end: dt.date,
    *,
    termination: dt.date | None = None,
    end_of_month: bool = True,
    reference: tuple[dt.date, dt.date] | None = None,
    frequency: int | None = None,
) -> Fraction:
    """The fraction of a year from `start` to `end` under `convention`, exactly.

    ACT/ACT ICMA needs the reference coupon period that contains both dates
    (`reference`, as ``(period start, period end)``) and the coupons a year
    (`frequency`); a bond's accrued interest across an odd coupon period sums this over
    its quasi-coupon periods (see :func:`portfolios.instruments.bonds.accrual_fraction`).
    """
    convention = DayCount(convention)
    _check_order(start, end)
    if convention.is_thirty_360:
        days = _thirty_360_days(
            convention, start, end, termination=termination, end_of_month=end_of_month
        )
        return Fraction(days, 360)
    if convention is DayCount.ACT_360:
        return Fraction((end - start).days, 360)
    if convention is DayCount.ACT_365F:
        return Fraction((end - start).days, 365)
    if convention is DayCount.ACT_ACT_ISDA:
        total = Fraction(0)
        cursor = start
        while cursor < end:
            next_year = dt.date(cursor.year + 1, 1, 1)
            stop = min(end, next_year)
            basis = 366 if _is_leap(cursor.year) else 365
            total += Fraction((stop - cursor).days, basis)
            cursor = stop
        return total
    # ACT/ACT ICMA
    if reference is None or not frequency:
        raise InstrumentError(
            "ACT/ACT ICMA needs the reference coupon period and the coupons a year"
        )
    ref_start, ref_end = reference
    if ref_end <= ref_start:
        raise InstrumentError("ACT/ACT ICMA: the reference coupon period is empty")
    if not ref_start <= start <= end <= ref_end:
        raise InstrumentError(
            f"ACT/ACT ICMA: {start.isoformat()} to {end.isoformat()} is not inside the "
            f"reference period {ref_start.isoformat()} to {ref_end.isoformat()}"
        )
    return Fraction((end - start).days, frequency * (ref_end - ref_start).days)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
