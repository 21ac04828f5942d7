"""Calendars and instruments the instrument tests share.

Holiday lists are only the dates each test needs, each with its source; a calendar's
first_day/last_day keep a test from straying outside the dates it lists.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from portfolios.instruments import HolidayCalendar

D = Decimal


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def calendar(name: str, *holidays: str, weekend=(5, 6), first="1990-01-01", last="2035-12-31"):
    return HolidayCalendar(
        name=name,
        holidays=frozenset(day(h) for h in holidays),
        weekend=frozenset(weekend),
        first_day=day(first),
        last_day=day(last),
    )


# Federal Reserve holidays used below (Federal Reserve Bank Services holiday schedule):
# Memorial Day 27 May 2024, Juneteenth 19 June 2023 and 19 June 2024, Independence Day
# 4 July 2006, 2013, 2024 and 2025, Labor Day 1 September 2025.
US = calendar(
    "US",
    "2006-07-04",
    "2013-07-04",
    "2023-06-19",
    "2024-05-27",
    "2024-06-19",
    "2024-07-04",
    "2025-07-04",
    "2025-09-01",
)
CALENDARS = {
    "US": US,
    "USD": US,
    "EUR": calendar("EUR"),
    "GBP": calendar("GBP"),
    "CAD": calendar("CAD"),
    "MXN": calendar("MXN"),
    "JPY": calendar("JPY"),
    "XTKS": calendar("XTKS"),
    "TARGET": calendar("TARGET"),
}
