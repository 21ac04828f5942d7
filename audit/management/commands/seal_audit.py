"""Seal the audit trail: `manage.py seal_audit` once, or `--loop` as a process."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.sealer import run_sealer
from audit.services import audit_checkpoint, audit_seal


class Command(BaseCommand):
    help = (
        "Chain the committed audit events that have no seal yet, and sign the head of "
        "the chain. With --loop, keep doing so (the sealer process of the Procfile)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="run until stopped")
        parser.add_argument(
            "--every",
            type=float,
            default=settings.OMS_AUDIT_SEAL_EVERY,
            help="seconds between rounds (OMS_AUDIT_SEAL_EVERY)",
        )
        parser.add_argument(
            "--checkpoint-every",
            type=float,
            default=settings.OMS_AUDIT_CHECKPOINT_EVERY,
            help="seconds between signed checkpoints at least (OMS_AUDIT_CHECKPOINT_EVERY)",
        )

    def handle(self, *args, loop: bool, every: float, checkpoint_every: float, **options):
        if not loop:
            sealed = 0
            while count := audit_seal():
                sealed += count
            checkpoint = audit_checkpoint()
            signed = f", checkpoint at position {checkpoint.position}" if checkpoint else ""
            self.stdout.write(f"Sealed {sealed} events{signed}")
            return
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"Audit sealer: a round every {every}s")
        self.stdout.flush()
        sealed = run_sealer(stop=stop, every=every, checkpoint_every=checkpoint_every)
        self.stdout.write(f"Audit sealer stopped ({sealed} events sealed)")
