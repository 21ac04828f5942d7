"""Send again the lost work of rebalance runs that made no progress (what Celery beat's
`recover-rebalance-runs` does every minute): for a desk whose broker was flushed or
restarted, without waiting for the beat."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from oms.context import origin
from orchestration.services import MAX_REISSUES, rebalance_runs_recover


class Command(BaseCommand):
    help = (
        "Send the chunks of running rebalance runs that made no progress for a while "
        "(OMS_REBALANCE_STALL_SECONDS by default) to the workers again; a chunk already "
        f"sent again {MAX_REISSUES} times fails its run. A chunk sent twice writes nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--stalled-for",
            type=float,
            default=None,
            help="Seconds without progress that make a run stalled "
            f"(default {settings.OMS_REBALANCE_STALL_SECONDS:.0f})",
        )

    def handle(self, *args, **options):
        seconds = options["stalled_for"]
        if seconds is not None and seconds < 0:
            raise CommandError("--stalled-for must be 0 or more seconds.")
        with origin("command", "recover_rebalance_runs"):
            done = rebalance_runs_recover(stalled_for=seconds)
        for verb, runs in done.items():
            for run_id in runs:
                self.stdout.write(f"Rebalance #{run_id}: {verb}")
        total = sum(len(runs) for runs in done.values())
        self.stdout.write(f"{total} stalled run(s) recovered." if total else "No stalled run.")
