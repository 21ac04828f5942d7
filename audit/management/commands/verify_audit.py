"""Verify the audit trail's hash chain: print OK, or the first broken link and exit 1."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from audit.services import verify_audit_chain


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain; exit 1 naming the first broken link."

    def handle(self, *args, **options) -> None:
        report = verify_audit_chain()
        if report.ok:
            self.stdout.write(f"OK: {report.checked} events, chain intact")
            return
        self.stdout.write(
            f"BROKEN at event #{report.first_broken_id}: {report.problem} "
            f"({report.checked} events before it are intact)"
        )
        sys.exit(1)
