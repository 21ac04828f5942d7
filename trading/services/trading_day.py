"""The trading day: when day and good-till-date orders end, and which day orders
may still go out to a broker.

Two clocks decide it, and neither is midnight UTC:

* **An exchange's close.** A day order ends at the close of its security's
  exchange on the session it was entered in (or the next session, if entered
  after the close or on a day the exchange is shut). Sessions, holidays and
  early closes come from `exchange_calendars` (the day after Thanksgiving
  closes at 13:00 New York; Christmas has no session), never from hard-coded
  hours. A good-till-date order ends at its date.
* **A FIX session's day.** A broker's FIX session rolls to a new trading day at
  a time of day in a time zone of its own (`FixSession.day_ends_at`,
  `time_zone`; a US broker commonly at 17:00 New York). A day order still
  waiting to be sent (in the outbox while the gateway or the broker was away)
  is not sent on a later session day, and one the broker asks us to send again
  (a resend) is not resent on a later day; orders good for longer go out
  whenever they can.

Pure: no Django here, so the gateway and the tests use the same rules.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = "day"
GTD = "gtd"
#: Orders the broker ends within the session (at the open, at the close, at once):
#: as the broker reports, and asked for their status at the close at the latest.
WITHIN_THE_DAY = frozenset({DAY, "opg", "cls", "ioc", "fok"})


class StaleDayOrder(ValueError):
    """A day order whose trading day is over."""


class UnknownExchange(ValueError):
    """An exchange code (MIC) that no calendar knows."""


@dataclass(frozen=True)
class DayBoundary:
    """Where one trading day ends and the next begins: a time of day in a zone.

    Midnight means the day is the local calendar date; any other time means a
    moment at or after it belongs to the next day (17:00 New York on a Monday
    starts Tuesday's trading day)."""

    ends_at: time = time(0)
    zone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.zone!r}") from None


UTC_MIDNIGHT = DayBoundary()


def session_day(fix_session) -> DayBoundary:
    """Where a FIX session's trading day ends (its own, not midnight UTC)."""
    return DayBoundary(fix_session.day_ends_at, fix_session.time_zone)


def broker_day(broker) -> DayBoundary:
    """Where a broker's trading day ends: its FIX session's, else midnight UTC (the
    in-worker simulated broker has no session)."""
    fix_session = getattr(broker, "fix_session", None)  # a missing one is an AttributeError
    return session_day(fix_session) if fix_session is not None else UTC_MIDNIGHT


def trading_day(moment: datetime, boundary: DayBoundary = UTC_MIDNIGHT) -> date:
    """The trading day a moment belongs to, on the given day boundary. A moment at or
    after the day's end belongs to the next weekday: Friday's (or the weekend's) roll
    starts Monday's trading day, not Saturday's (an FX session opens Sunday 17:00 New
    York for Monday)."""
    local = moment.astimezone(ZoneInfo(boundary.zone))
    day = local.date()
    if boundary.ends_at != time(0) and local.time() >= boundary.ends_at:
        day += timedelta(days=1)
        while day.weekday() >= 5:  # Saturday, Sunday
            day += timedelta(days=1)
    return day


def day_order_over(
    *,
    time_in_force: str,
    entered_at: datetime,
    now: datetime,
    boundary: DayBoundary = UTC_MIDNIGHT,
) -> bool:
    """True for a day order whose trading day ended before ``now``."""
    return time_in_force == DAY and trading_day(entered_at, boundary) < trading_day(now, boundary)


def check_may_send(
    *,
    time_in_force: str,
    queued_at: datetime,
    now: datetime,
    boundary: DayBoundary = UTC_MIDNIGHT,
) -> None:
    """Raise StaleDayOrder for a day order queued on an earlier trading day."""
    if day_order_over(
        time_in_force=time_in_force, entered_at=queued_at, now=now, boundary=boundary
    ):
        raise StaleDayOrder(
            f"a day order queued on {trading_day(queued_at, boundary)} is not sent on a "
            f"later day ({trading_day(now, boundary)})"
        )


# --- Exchange sessions -----------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _closes(mic: str) -> list[datetime]:
    """Every session close the calendar knows for ``mic``, in order, as UTC datetimes."""
    import warnings

    import exchange_calendars

    with warnings.catch_warnings():
        # the library reads its own Series.values, which pandas is deprecating
        warnings.simplefilter("ignore")
        try:
            calendar = exchange_calendars.get_calendar(mic)
        except exchange_calendars.errors.InvalidCalendarName:
            raise UnknownExchange(f"no exchange calendar for {mic!r}") from None
        closes = calendar.closes
    return [ts.to_pydatetime().astimezone(UTC) for ts in closes]


def known_exchange(mic: str) -> bool:
    """Whether an exchange calendar exists for ``mic``."""
    import exchange_calendars

    return mic in exchange_calendars.get_calendar_names(include_aliases=True)


def session_close(mic: str, moment: datetime) -> datetime:
    """The close of the exchange session that ``moment`` falls in, or of the next
    session when the exchange is shut at ``moment`` (after the close, a weekend,
    a holiday): when a day order entered at ``moment`` ends."""
    closes = _closes(mic)
    i = bisect.bisect_right(closes, moment.astimezone(UTC))
    if i == len(closes):
        raise UnknownExchange(f"the {mic} calendar ends before {moment:%Y-%m-%d}")
    return closes[i]


def order_ends_at(
    *, time_in_force: str, entered_at: datetime, mic: str, expire_at: datetime | None = None
) -> datetime | None:
    """When an order's life ends at the latest: a day order at its exchange's
    close (and so orders for the open, the close, or immediate ones, which the
    broker ends sooner), a good-till-date order at its date; None for a
    good-till-cancel order."""
    if time_in_force in WITHIN_THE_DAY:
        return session_close(mic, entered_at)
    if time_in_force == GTD:
        return expire_at
    return None
