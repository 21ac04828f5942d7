"""Record the tax lots closed by sells allocated before this version stored closings:
`manage.py backfill_lot_closings [--dry-run]`, once after upgrading (docs/trading.md,
*Tax lots*). Safe to run again: what is done is passed over."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from trading.services.allocations import allocations_backfill_closings


class Command(BaseCommand):
    help = "Store the lot closings of sells booked before closings were recorded."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be stored; store nothing."
        )

    def handle(self, *args, dry_run: bool = False, **options):
        results = allocations_backfill_closings(store=not dry_run)
        done = [r for r in results if not r["reason"]]
        for r in results:
            what = (
                f"left alone: {r['reason']}"
                if r["reason"]
                else f"{r['closings']} closings, realised {r['realised']}"
            )
            self.stdout.write(f"{r['account']} {r['security']}: {r['sales']} sales, {what}")
        verb = "would store" if dry_run else "stored"
        self.stdout.write(
            f"{len(done)} of {len(results)} account-securities {verb} "
            f"({sum(r['closings'] for r in done)} closings); "
            f"{len(results) - len(done)} left alone."
        )
