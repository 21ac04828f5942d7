"""The sealer's loop: seal what committed, sign the head now and then, again.

One process (`manage.py seal_audit`, in the Procfile and docker-compose) runs it.
A second one is harmless: a round that finds another sealer at work skips.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError, close_old_connections, connection

from .services import SEAL_BATCH, audit_checkpoint, audit_seal

log = logging.getLogger(__name__)


def run_sealer(*, stop: threading.Event, every: float, checkpoint_every: float) -> int:
    """Seal every ``every`` seconds (at once again while a round finds a full batch),
    and sign a checkpoint at most every ``checkpoint_every`` seconds when the chain
    grew, until ``stop`` is set. A database that is away is waited for. Returns how
    many events were sealed."""
    sealed = 0
    last_checkpoint = float("-inf")
    while not stop.is_set():
        close_old_connections()
        try:
            count = audit_seal()
            sealed += count
            if time.monotonic() - last_checkpoint >= checkpoint_every:
                audit_checkpoint()
                last_checkpoint = time.monotonic()
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
