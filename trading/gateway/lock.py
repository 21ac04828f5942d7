"""One gateway per session: the claim a gateway holds on its FIX session."""

from __future__ import annotations

import contextlib
import hashlib

from django.conf import settings
from django.db import DatabaseError, connection

from trading.models import FixSession


class GatewayBusy(RuntimeError):
    """Another gateway already owns this session."""


def _lock_key(fix_session: FixSession) -> int:
    digest = hashlib.blake2b(f"oms.fix_gateway:{fix_session.pk}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SessionLock:
    """The gateway's claim on its session: a PostgreSQL advisory lock, held by
    the database connection (so it goes when that connection goes), or on
    SQLite a file lock in OMS_VAR_DIR. ``acquire`` raises GatewayBusy when
    another gateway holds it; taking it again while held does nothing. Also a
    context manager: held for the block."""

    def __init__(self, fix_session: FixSession):
        self.fix_session = fix_session
        self.key = _lock_key(fix_session)
        self._file = None  # SQLite: the open, locked file
        self._advisory = False  # PostgreSQL: taken on the current connection

    @property
    def held(self) -> bool:
        return self._advisory or self._file is not None

    def acquire(self) -> None:
        if self.held:
            return  # advisory locks count: taking one twice would need two unlocks
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                if not cur.fetchone()[0]:
                    raise GatewayBusy(f"a gateway already runs FIX session {self.fix_session}")
            self._advisory = True
            return
        import fcntl

        path = settings.VAR_DIR / f"fix-gateway-{self.fix_session.pk}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "w")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise GatewayBusy(f"a gateway already runs FIX session {self.fix_session}") from None
        self._file = fh

    def connection_closed(self) -> None:
        """The database connection was closed: a PostgreSQL lock went with it
        (a file lock does not)."""
        self._advisory = False

    def release(self) -> None:
        if self._advisory:
            with contextlib.suppress(DatabaseError), connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            self._advisory = False
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
