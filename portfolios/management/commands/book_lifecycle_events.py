"""Book the instruments' life-cycle events of a day: coupons, redemptions, futures'
final settlements, options' exercise, assignment and expiry
(portfolios.services.lifecycle; the beat task runs it every day after the close)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portfolios.instruments.money import round_cash
from portfolios.services.lifecycle import LifecycleRefused, lifecycle_book


def _cash(amount, currency: str) -> str:
    return f"{round_cash(amount, currency):,} {currency}"


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date: give it as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = (
        "Book the coupons, maturities and expiries due on a day (today by default) on "
        "every account's holdings; a day booked twice books nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="The day, YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--since", help="Book the days from this one (YYYY-MM-DD) to --date as well"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be booked; book nothing"
        )

    def handle(self, *args, **options):
        on = _day(options["date"]) if options["date"] else timezone.now().date()
        since = _day(options["since"]) if options["since"] else on
        if since > on:
            raise CommandError("--since must not be after --date.")
        try:
            run = lifecycle_book(on=on, since=since, dry_run=options["dry_run"])
        except LifecycleRefused as exc:
            raise CommandError(str(exc)) from None
        for plan in run.planned:
            due = plan.due
            self.stdout.write(
                f"would book {due.event_date} {due.security.ticker} account #{due.portfolio_id}: "
                f"{plan.outcome} of {due.quantity.normalize():f}, "
                f"{_cash(plan.amount, due.security.currency)} "
                f"value {plan.value_date}"
            )
        for event in run.booked:
            self.stdout.write(
                f"booked {event.event_date} {event.security.ticker} {event.portfolio.code}: "
                f"{event.get_outcome_display().lower()} of {event.quantity.normalize():f}, "
                f"{_cash(event.amount, event.currency)} value {event.value_date}"
            )
        for due, reason in run.refused:
            self.stderr.write(
                f"not booked {due.event_date} {due.security.ticker} account #{due.portfolio_id}: "
                f"{reason}"
            )
        verb = "to book" if options["dry_run"] else "booked"
        count = len(run.planned) if options["dry_run"] else len(run.booked)
        self.stdout.write(
            f"{count} event(s) {verb} from {since} to {on}; {len(run.refused)} refused."
        )
