"""Which day orders may still go out to a broker.

A day order lives for the trading day it was entered on: one still waiting to
be sent (in a FIX session's outbox, while the gateway or the broker was away)
is not sent on a later day, and one the broker asks us to send again after a
disconnect (a resend) is not resent on a later day; orders good for longer
(GTC, GTD...) go out whenever they can. The trading day is the UTC date for now.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

DAY = "day"


class StaleDayOrder(ValueError):
    """A day order whose trading day is over."""


def trading_day(moment: datetime) -> date:
    """The trading day a moment belongs to."""
    return moment.astimezone(UTC).date()


def day_order_over(*, time_in_force: str, entered_at: datetime, now: datetime) -> bool:
    """True for a day order whose trading day ended before ``now``."""
    return time_in_force == DAY and trading_day(entered_at) < trading_day(now)


def check_may_send(*, time_in_force: str, queued_at: datetime, now: datetime) -> None:
    """Raise StaleDayOrder for a day order queued on an earlier trading day."""
    if day_order_over(time_in_force=time_in_force, entered_at=queued_at, now=now):
        raise StaleDayOrder(
            f"a day order queued on {trading_day(queued_at)} is not sent on a later day"
        )
