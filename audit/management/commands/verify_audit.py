"""Verify the audit trail: print OK, or every finding and exit 1."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from audit.services import checkpoint_export
from audit.verification import kept_checkpoints, verify_audit_chain


class Command(BaseCommand):
    help = (
        "Walk the audit trail's chain and check it against its signed checkpoints (and "
        "those you kept, --checkpoints FILE); exit 1 naming every broken link."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints",
            action="append",
            default=[],
            metavar="FILE",
            help="a file of checkpoints kept outside the database (JSON lines); repeatable",
        )
        parser.add_argument(
            "--keep",
            metavar="FILE",
            help="when the trail verifies, append its latest checkpoint to FILE",
        )

    def handle(self, *args, checkpoints: list[str], keep: str | None, **options) -> None:
        kept = []
        for path in checkpoints:
            try:
                kept += kept_checkpoints(path)
            except (OSError, ValueError) as exc:
                raise CommandError(str(exc)) from None
        report = verify_audit_chain(kept=kept)
        head = (
            f"position {report.head_position} (event #{report.head_event_id})"
            if report.head_position
            else "no event sealed yet"
        )
        if report.ok:
            chain = (
                f"{report.checked} events in the chain, intact up to {head}"
                if report.checked
                else "no event sealed yet"
            )
            self.stdout.write(
                f"OK: {chain}; {report.awaiting} awaiting their seal; "
                f"{report.checkpoints_checked} checkpoint(s) match"
            )
        else:
            self.stdout.write(
                f"BROKEN: {report.broken} finding(s) in {report.checked} events (up to {head})"
            )
            for found in report.breaks:
                self.stdout.write(f"  - {found.problem}")
            if report.unnamed_breaks:
                self.stdout.write(f"  ... and {report.unnamed_breaks} more")
        for note in report.notes:
            self.stdout.write(f"Note: {note}")
        if not report.ok:
            sys.exit(1)
        if keep:
            latest = report.latest_checkpoint
            if latest is None:
                raise CommandError("no checkpoint to keep yet: run the sealer first")
            checkpoint_export(latest, keep)
            self.stdout.write(f"Kept in {keep}: {latest.line()}")
