"""The gateway process for one FIX session: connect, keep connected, drain the
outbox, pause while the database is away. `manage.py fix_gateway CODE` runs it.

The ORM is used from the gateway's event loop, which is its only thread: the
management command sets DJANGO_ALLOW_ASYNC_UNSAFE for that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from django.db import DatabaseError, connection, connections

from trading.fix.session import Session, SessionSettings
from trading.fix.transport import Initiator
from trading.models import Broker, FixSession

from .inbound import UNAVAILABLE, GatewayApplication
from .lock import SessionLock
from .outbox import Outbox
from .store import DatabaseStore
from .wake import OutboxWake

log = logging.getLogger("trading.gateway")


class Gateway:
    """Runs one FIX session: connect, keep connected, drain the outbox."""

    #: seconds a wake-up waits for the rows committed just after it (decision 57)
    GATHER = 0.002

    def __init__(
        self,
        fix_session: FixSession,
        *,
        poll: float = 0.2,
        reconnect_cap: float = 30,
        gather: float = GATHER,
    ):
        self.fix_session = fix_session
        self.poll = poll
        self.gather = gather
        self.store = DatabaseStore(fix_session)
        self.app = GatewayApplication(fix_session, self.store)
        fs = fix_session
        self.session = Session(
            SessionSettings(
                fs.begin_string,
                fs.sender_comp_id,
                fs.target_comp_id,
                initiator=True,
                heartbeat_interval=fs.heartbeat_interval,
                reset_seq_num_flag=fs.reset_on_logon,
                # brokers add tags of their own (5000 and up) to execution
                # reports: accept them, as the messages' known fields are
                # still checked
                allow_unknown_fields=True,
            ),
            self.app,
            self.store,
        )
        self.initiator = Initiator(
            self.session, host=fs.host, port=fs.port, reconnect_cap=reconnect_cap
        )
        self.outbox = Outbox(fix_session, self.store, self.session)
        self.wake = OutboxWake(fix_session.pk)
        self.app.on_logon_wake = self.wake.event
        self.sent = 0
        self.gathers = 0  # wake-ups that waited `gather` for more rows
        self.recoveries = 0  # times the database came back after an outage

    @classmethod
    def for_broker(cls, code: str, **kw) -> Gateway:
        broker = Broker.objects.select_related("fix_session").get(code=code)
        if broker.adapter != Broker.Adapter.FIX or not hasattr(broker, "fix_session"):
            raise ValueError(f"broker {code} is not reached over FIX")
        return cls(broker.fix_session, **kw)

    #: outbox rows sent in one transaction
    BATCH = 200

    def drain_outbox(self, limit: int = BATCH) -> int:
        """Send pending outbox rows in order (see `Outbox.drain`)."""
        sent = self.outbox.drain(limit)
        self.sent += sent
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: hold the session's lock, keep the session
        connected, drain the outbox. If the database goes away, the session is
        disconnected (so the broker keeps what it has for us) until the
        database and the lock are back; if another gateway took the lock
        meanwhile, this one stops (GatewayBusy)."""
        # Inside the event loop Django keeps connections per context: open the
        # loop's one here, before any task starts, so that every task of the
        # gateway shares it and it is closed below.
        connection.ensure_connection()
        try:
            with SessionLock(self.fix_session) as lock:
                self.store.reload()  # what the last owner left, read under the lock
                self.app.generation_seen = self.store.generation
                await self.initiator.start()
                try:
                    while not stop.is_set():
                        if self._step(lock):
                            await asyncio.sleep(0)  # a full batch: more may be waiting
                        else:
                            await self._wait(stop)
                finally:
                    self.wake.close()
                    await self.initiator.stop()
                    if lock.held:  # not over the state of a gateway that took over
                        with contextlib.suppress(DatabaseError):
                            self.app._status(False, "")
        finally:
            # the ORM inside the event loop has connections of its own
            connections.close_all()

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until the poll interval is up, a row enters the outbox (on PostgreSQL,
        decision 53) or the gateway is stopped, whichever comes first. Woken by a
        row, it waits `gather` seconds more, reading the socket meanwhile, so that
        the rows committed just after it go in the same transaction (decision 57)."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.event.wait())]
        try:
            await asyncio.wait(waits, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self.gather > 0 and self.wake.event.is_set() and not stop.is_set():
            self.gathers += 1
            await asyncio.sleep(self.gather)

    def _step(self, lock: SessionLock) -> bool:
        """One turn: True when the outbox had more than one batch waiting."""
        self.initiator.restart_if_failed()
        if self.initiator.paused:
            self._recover(lock)
        elif self.app.database_unavailable:
            self._pause(lock, "the session could not store a message")
        else:
            # listen before reading: a row committed after the read wakes the next wait
            self.wake.listen()
            self.wake.clear()
            try:
                return self.drain_outbox() >= self.BATCH
            except UNAVAILABLE as exc:
                self._pause(lock, exc)
        return False

    def _pause(self, lock: SessionLock, why) -> None:
        log.error(
            "%s: database unavailable (%s); disconnecting until it is back", self.session.sid, why
        )
        self.initiator.pause("Database unavailable")
        self.wake.close()
        self.app.database_unavailable = False
        connection.close()  # a broken connection is not reused; on PostgreSQL the lock goes too
        lock.connection_closed()

    def _recover(self, lock: SessionLock) -> None:
        """While paused: once the database answers, take the lock again (it may
        have gone with the connection), reload the sequence numbers, resume."""
        try:
            connection.ensure_connection()
            lock.acquire()  # GatewayBusy: another gateway took over; stop
            self.store.reload()
        except UNAVAILABLE:
            connection.close()
            lock.connection_closed()
            return
        log.warning("%s: database back; reconnecting", self.session.sid)
        self.recoveries += 1
        self.initiator.resume()
