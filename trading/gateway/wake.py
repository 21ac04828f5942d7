"""Woken when a row enters the session's outbox: PostgreSQL LISTEN/NOTIFY.

A trigger on the outbox (trading migration 0014) NOTIFYs ``oms_fix_outbox_<id>``
for each row inserted, delivered when the inserting transaction commits. The
gateway LISTENs on its own connection (not the ORM's, which is in transactions)
and its loop's reader sets `event` when a notification arrives. Anything wrong
with that connection closes it and the gateway polls until it listens again;
on SQLite there is no listener and the poll is all there is.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.db import connection

log = logging.getLogger("trading.gateway")


def channel(session_id: int) -> str:
    return f"oms_fix_outbox_{session_id}"


class OutboxWake:
    """The outbox's wake-up: `event` is set when a row committed since `clear`."""

    #: seconds between attempts to listen again after the listener failed
    RETRY = 5.0

    def __init__(self, session_id: int):
        self.channel = channel(session_id)
        self.event = asyncio.Event()
        self._conn = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._next_try = 0.0
        self.wakes = 0  # notifications received

    @property
    def listening(self) -> bool:
        return self._conn is not None

    def listen(self) -> None:
        """Listen if not listening yet (and not tried in the last RETRY s). Called
        before the outbox is read, so that no row committed after that read goes
        unnoticed."""
        if self._conn is not None or connection.vendor != "postgresql":
            return
        now = time.monotonic()
        if now < self._next_try:
            return
        self._next_try = now + self.RETRY
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        conn = None
        try:
            conn = psycopg.connect(**params, autocommit=True)
            conn.execute(f'LISTEN "{self.channel}"')
        except psycopg.Error as exc:
            log.warning("%s: not listening (%s); polling", self.channel, exc)
            if conn is not None:
                conn.close()
            return
        self._conn = conn
        self._fd = conn.pgconn.socket
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        import psycopg

        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise psycopg.OperationalError("the listening connection is closed")
        except psycopg.Error as exc:
            log.warning("%s: listener lost (%s); polling", self.channel, exc)
            self.close()
            self.event.set()  # read the outbox now rather than at the next poll
            return
        while pgconn.notifies() is not None:
            self.wakes += 1
            self.event.set()

    def clear(self) -> None:
        self.event.clear()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._loop.remove_reader(self._fd)
        conn.close()
