"""The sealer's loop: seal what committed, sign the head now and then, again.

One process (`manage.py seal_audit`, in the Procfile and docker-compose) runs it.
A second one is harmless: a round that finds another sealer at work skips.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError, close_old_connections, connection

from .models import AuditSeal
from .services import SEAL_BATCH, audit_checkpoint, audit_seal

log = logging.getLogger(__name__)


def run_sealer(*, stop: threading.Event, every: float, checkpoint_every: float) -> int:
    """Seal every ``every`` seconds (at once again while a round finds a full batch),
    and sign a checkpoint at most every ``checkpoint_every`` seconds when the chain
    grew, until ``stop`` is set. A database that is away is waited for. Returns how
    many events were sealed."""
    sealed = 0
    last_checkpoint = float("-inf")
    seen: tuple[int, str] | None = None  # the head of the chain after this process's last round
    while not stop.is_set():
        close_old_connections()
        try:
            if seen is not None and not _still_there(seen):
                # The chain lost (or changed) what this sealer saw it hold: cut or rewritten
                # behind its back. Sign what it saw, so that verification names the cut
                # even when it happened since the last checkpoint.
                log.error(
                    "the audit chain no longer holds position %s as sealed: signing it", seen[0]
                )
                audit_checkpoint(head=seen)
                seen = None  # signed once; the chain as it is now is watched from here
            count = audit_seal()
            sealed += count
            if time.monotonic() - last_checkpoint >= checkpoint_every:
                audit_checkpoint()
                last_checkpoint = time.monotonic()
            # The head first, then whether what was seen is still there: a cut made in
            # between is not taken for the chain's new head.
            head = _head()
            if seen is None or _still_there(seen):
                seen = head or seen
        except DatabaseError:
            log.exception("sealing failed; trying again")
            connection.close()
            count = 0
        if count < SEAL_BATCH:
            stop.wait(every)
    with_last = audit_seal()  # what committed while stopping
    if with_last:
        audit_checkpoint()
    return sealed + with_last


def _head() -> tuple[int, str] | None:
    return AuditSeal.objects.order_by("-position").values_list("position", "hash").first()


def _still_there(head: tuple[int, str]) -> bool:
    position, digest = head
    return AuditSeal.objects.filter(position=position, hash=digest).exists()
