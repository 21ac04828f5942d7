"""The days the payment systems settle a currency: Fedwire for the US dollar, TARGET for
the euro. FX value dates are the days both currencies' payment systems are open, not
their stock exchanges' (the NYSE shuts on Good Friday and Fedwire does not; Fedwire
shuts on Columbus Day and Veterans Day and the NYSE does not; Frankfurt's exchange
shuts on Christmas Eve and New Year's Eve and TARGET does not).

The rules, from the operators' published calendars:

- Fedwire (the Federal Reserve Banks' holiday schedule, frbservices.org): New Year's
  Day, Martin Luther King Jr. Day (third Monday of January), Washington's Birthday
  (third Monday of February), Memorial Day (last Monday of May), Juneteenth (19 June,
  from 2022: the Reserve Banks stayed open on 18 June 2021, the law being a day old),
  Independence Day, Labor Day (first Monday of September), Columbus Day (second Monday
  of October), Veterans Day (11 November), Thanksgiving (fourth Thursday of November),
  Christmas Day. A holiday on a Sunday is kept the Monday after; on a Saturday the
  Reserve Banks are open the Friday before (nothing is moved).
- TARGET (the ECB's TARGET2 and, from March 2023, T2 closing days, fixed in 2000 for
  2002 on): New Year's Day, Good Friday, Easter Monday, 1 May, Christmas Day and 26
  December. Nothing is moved off a weekend.

Rules give the days for as long as the law stands; the calendars cover 2002 to 2099
and a new holiday (as Juneteenth was in 2021) is a change here. Every other currency
settles on its home exchange's days (``portfolios.terms.CURRENCY_EXCHANGE``)."""

from __future__ import annotations

import datetime as dt
import functools

from portfolios.instruments import HolidayCalendar

__all__ = ["FIRST_DAY", "LAST_DAY", "PAYMENT_SYSTEMS", "easter_sunday", "payment_calendar"]

FIRST_DAY = dt.date(2002, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)
_DAY = dt.timedelta(days=1)


def easter_sunday(year: int) -> dt.date:
    """Western Easter Sunday of a Gregorian year, by the anonymous Gregorian computus
    (Nature, 1876; Meeus, *Astronomical Algorithms*, ch. 8): the paschal full moon from
    the 19-year Metonic cycle with the century's solar and lunar corrections, then the
    Sunday after it."""
    golden = year % 19
    century, within = divmod(year, 100)
    leap_c, rest_c = divmod(century, 4)
    moon_fix = (century - (century + 8) // 25 + 1) // 3
    epact = (19 * golden + century - leap_c - moon_fix + 15) % 30
    leap_y, rest_y = divmod(within, 4)
    weekday = (32 + 2 * rest_c + 2 * leap_y - epact - rest_y) % 7
    skip = (golden + 11 * epact + 22 * weekday) // 451
    month, day = divmod(epact + weekday - 7 * skip + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th `weekday` (Monday 0) of a month; n = -1 for the last."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - _DAY
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _fedwire_year(year: int) -> set[dt.date]:
    fixed = [dt.date(year, 1, 1), dt.date(year, 7, 4), dt.date(year, 11, 11)]
    fixed.append(dt.date(year, 12, 25))
    if year >= 2022:
        fixed.append(dt.date(year, 6, 19))
    days = {d + _DAY if d.weekday() == 6 else d for d in fixed if d.weekday() != 5}
    days |= {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    }
    return days


def _target_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    return {
        dt.date(year, 1, 1),
        easter - 2 * _DAY,  # Good Friday
        easter + _DAY,  # Easter Monday
        dt.date(year, 5, 1),
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    }


#: The currencies settled by a payment system whose closing days are ruled here.
PAYMENT_SYSTEMS = {"USD": ("Fedwire", _fedwire_year), "EUR": ("TARGET", _target_year)}


@functools.lru_cache(maxsize=8)
def payment_calendar(currency: str) -> HolidayCalendar | None:
    """The settlement days of `currency` by its payment system's rules, as a calendar
    named by the currency's code, or None when no system's rules are kept here."""
    system = PAYMENT_SYSTEMS.get(currency)
    if system is None:
        return None
    _, closed = system
    holidays: set[dt.date] = set()
    for year in range(FIRST_DAY.year, LAST_DAY.year + 1):
        holidays |= closed(year)
    return HolidayCalendar(currency, frozenset(holidays), first_day=FIRST_DAY, last_day=LAST_DAY)
