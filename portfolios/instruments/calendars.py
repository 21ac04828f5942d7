"""Business days from holiday calendars the caller supplies.

The engine knows no holidays of its own: a :class:`HolidayCalendar` is plain data (a set of
holiday dates, the weekend days and the span of dates the list covers), built at the
Django side from a calendar library or the desk's own table. A date outside that span is
an error rather than a guess, so that an out-of-date holiday list never settles a trade
on a holiday without anyone noticing.

Calendars are passed around as a mapping from a name to a calendar (:data:`Calendars`):
securities name the calendar of their settlement system (``"US"``, ``"TARGET"``, ...),
FX looks calendars up by ISO currency code (``"USD"``, ``"EUR"``, ...).
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import InstrumentError

__all__ = [
    "Calendars",
    "HolidayCalendar",
    "Roll",
    "add_months",
    "calendar_for",
    "is_month_end",
    "joint_calendar",
    "month_end",
]

_ONE_DAY = dt.timedelta(days=1)
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Roll(StrEnum):
    """How a date that is not a business day moves (ISDA 2006 Definitions, Section 4.12)."""

    FOLLOWING = "following"
    MODIFIED_FOLLOWING = "modified_following"
    PRECEDING = "preceding"


@dataclass(frozen=True)
class HolidayCalendar:
    """The non-business days of one market or currency.

    ``holidays``: the dates that are closed although not weekend days (weekend dates in
    the list are harmless). ``weekend``: weekday numbers that are always closed, Monday = 0
    (default Saturday and Sunday; 4 and 5 for a Friday-Saturday weekend).
    ``first_day`` / ``last_day``: the span the holiday list is known to cover; asking
    about a date outside it raises :class:`InstrumentError`. None leaves that side open.
    """

    name: str
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    weekend: frozenset[int] = frozenset({5, 6})
    first_day: dt.date | None = None
    last_day: dt.date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InstrumentError("a holiday calendar needs a name")
        holidays = frozenset(self.holidays)
        for day in holidays:
            if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
                raise InstrumentError(f"calendar {self.name}: holidays must be dates, not {day!r}")
        weekend = frozenset(self.weekend)
        if not weekend <= set(range(7)):
            raise InstrumentError(
                f"calendar {self.name}: weekend days are numbers 0 (Monday) to 6 (Sunday)"
            )
        if len(weekend) == 7:
            raise InstrumentError(f"calendar {self.name}: every day of the week is a weekend")
        if self.first_day and self.last_day and self.first_day > self.last_day:
            raise InstrumentError(f"calendar {self.name}: first_day is after last_day")
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "weekend", weekend)

    @classmethod
    def weekends_only(cls, name: str, weekend: Iterable[int] = (5, 6)) -> HolidayCalendar:
        """A calendar with no holidays at all: say so explicitly when that is what you mean."""
        return cls(name=name, weekend=frozenset(weekend))

    def check_covers(self, day: dt.date) -> None:
        """Raise when `day` is outside the span the holiday list covers."""
        if (self.first_day and day < self.first_day) or (self.last_day and day > self.last_day):
            raise InstrumentError(
                f"the {self.name} holiday calendar covers "
                f"{self.first_day or '...'} to {self.last_day or '...'}; "
                f"{day.isoformat()} is outside it: load a calendar that covers that date"
            )

    def is_weekend(self, day: dt.date) -> bool:
        """True on this calendar's weekend days (holidays aside)."""
        return day.weekday() in self.weekend

    def is_business_day(self, day: dt.date) -> bool:
        """True when the market or currency settles on `day`."""
        self.check_covers(day)
        return day.weekday() not in self.weekend and day not in self.holidays

    def roll(self, day: dt.date, convention: Roll = Roll.FOLLOWING) -> dt.date:
        """`day` if it is a business day, else the business day the convention gives:
        following, modified following (following unless that leaves the month, then
        preceding) or preceding."""
        convention = Roll(convention)
        if self.is_business_day(day):
            return day
        if convention is Roll.PRECEDING:
            return self._step(day, -1)
        following = self._step(day, 1)
        if convention is Roll.MODIFIED_FOLLOWING and following.month != day.month:
            return self._step(day, -1)
        return following

    def _step(self, day: dt.date, direction: int) -> dt.date:
        day += direction * _ONE_DAY
        while not self.is_business_day(day):
            day += direction * _ONE_DAY
        return day

    def add_business_days(self, day: dt.date, count: int) -> dt.date:
        """The `count`-th business day after `day` (count 0: `day` rolled forward)."""
        if count < 0:
            raise InstrumentError("a settlement lag cannot be negative")
        if count == 0:
            return self.roll(day, Roll.FOLLOWING)
        for _ in range(count):
            day = self._step(day, 1)
        return day

    def business_days_between(self, start: dt.date, end: dt.date) -> int:
        """Business days d with start < d <= end (0 when end <= start)."""
        count, day = 0, start
        while day < end:
            day += _ONE_DAY
            if self.is_business_day(day):
                count += 1
        return count

    def describe(self, day: dt.date) -> str:
        """Why `day` is closed, for error messages."""
        if day.weekday() in self.weekend:
            return f"{day.isoformat()} is a {_DAY_NAMES[day.weekday()]}, a {self.name} weekend day"
        if day in self.holidays:
            return f"{day.isoformat()} is a {self.name} holiday"
        return f"{day.isoformat()} is a {self.name} business day"


Calendars = Mapping[str, HolidayCalendar]


def calendar_for(calendars: Calendars, name: str, needed_for: str) -> HolidayCalendar:
    """The calendar called `name`, or an error naming what needed it."""
    try:
        found = calendars[name]
    except KeyError:
        given = ", ".join(sorted(calendars)) or "none"
        raise InstrumentError(
            f"no holiday calendar {name!r} was given ({needed_for}); calendars given: {given}"
        ) from None
    if not isinstance(found, HolidayCalendar):
        raise InstrumentError(f"calendar {name!r} is not a HolidayCalendar")
    return found


def joint_calendar(*calendars: HolidayCalendar) -> HolidayCalendar:
    """A calendar open only when every one of `calendars` is open (FX value dates)."""
    if not calendars:
        raise InstrumentError("a joint calendar needs at least one calendar")
    firsts = [c.first_day for c in calendars if c.first_day]
    lasts = [c.last_day for c in calendars if c.last_day]
    return HolidayCalendar(
        name="+".join(c.name for c in calendars),
        holidays=frozenset().union(*(c.holidays for c in calendars)),
        weekend=frozenset().union(*(c.weekend for c in calendars)),
        first_day=max(firsts) if firsts else None,
        last_day=min(lasts) if lasts else None,
    )


def month_end(year: int, month: int) -> dt.date:
    """The last calendar day of a month."""
    return dt.date(year, month, _stdlib_calendar.monthrange(year, month)[1])


def is_month_end(day: dt.date) -> bool:
    """True on the last calendar day of its month."""
    return (day + _ONE_DAY).month != day.month


def add_months(day: dt.date, months: int, *, end_of_month: bool = False) -> dt.date:
    """`day` moved by whole months; a day past the target month's end becomes its last
    day, and with `end_of_month` a month-end stays a month-end (31 Aug - 6M = 28/29 Feb,
    28 Feb + 6M = 31 Aug)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = month_end(year, month)
    if end_of_month and is_month_end(day):
        return last
    return dt.date(year, month, min(day.day, last.day))
