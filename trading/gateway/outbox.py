"""The session's outbox, drained by its gateway.

Routing writes a row for each message to a broker (`trading.brokers.fix`), which on
PostgreSQL wakes the gateway when it commits (`wake.py`); the gateway sends the pending rows in order, each numbered, stored for resends
and marked sent in one database transaction, with nothing reaching the socket
before that transaction commits. A row that can never be sent is set aside as
failed (with why) and the route it was for is settled by the route services.
Every write of an outbox row is here, checked against its transition map.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from oms.bulk import update_rows
from oms.context import origin
from oms.state import move
from trading.brokers import fixmap
from trading.fix.codec import Message
from trading.fix.session import Session
from trading.models import FixOutbox, FixSession
from trading.services import trading_day
from trading.services.routes import route_mark_unconfirmed, route_not_sent

from .store import DatabaseStore, session_day

log = logging.getLogger("trading.gateway")

#: The database is down or locked: nothing is wrong with the row.
UNAVAILABLE = (OperationalError, InterfaceError)


class Outbox:
    """The pending messages of one FIX session, and how they leave."""

    def __init__(self, fix_session: FixSession, store: DatabaseStore, session: Session):
        self.fix_session = fix_session
        self.store = store
        self.session = session

    def pending(self, limit: int) -> list[int]:
        return list(
            FixOutbox.objects.filter(
                session_id=self.fix_session.pk, status=FixOutbox.Status.PENDING
            ).values_list("pk", flat=True)[:limit]
        )

    def drain(self, limit: int = 200) -> int:
        """Send pending rows in order; how many went.

        The rows go in one transaction for the batch: locked, each numbered and
        stamped by the session, the messages stored and the rows marked sent, and
        only when that commits do the bytes of all of them leave. If anything in
        the batch fails, nothing of it was written and nothing left: the rows go
        again one by one, each in its own transaction, so that a row that can never
        be sent is set aside without holding up the others."""
        if not self.session.logged_on:
            return 0
        pks = self.pending(limit)
        if not pks:
            return 0
        try:
            return self._send_batch(pks)
        except UNAVAILABLE:
            raise  # rolled back, the peer saw nothing: the gateway waits for the database
        except Exception:
            self.store.reload()  # rolled back: the numbers the batch took are free again
            log.info("%s: a batch of %d rows went back to one by one", self.session.sid, len(pks))
        return self._drain_one_by_one(pks)

    def _send_batch(self, pks: list[int]) -> int:
        conn = self.session.transport
        with conn.held(), transaction.atomic(), self.store.batch():
            rows = list(
                FixOutbox.objects.select_for_update()
                .filter(pk__in=pks, status=FixOutbox.Status.PENDING)
                .order_by("pk")
            )
            sent = []
            for row in rows:
                if not self.session.logged_on or self.session.transport is not conn:
                    break
                self._stamp(row)
                sent.append(row)
            update_rows(FixOutbox, sent, ["status", "generation", "seq_num", "sent_at"])
        return len(sent)

    def _drain_one_by_one(self, pks: list[int]) -> int:
        conn = self.session.transport
        sent = 0
        for pk in pks:
            if not self.session.logged_on or self.session.transport is not conn:
                break
            try:
                with conn.held(), transaction.atomic():
                    if not self._send(pk):
                        continue
            except UNAVAILABLE:
                raise  # rolled back, the peer saw nothing: the gateway waits for the database
            except IntegrityError:
                # rolled back; the number was taken (a message stored outside the
                # outbox whose number did not advance): not this row's fault
                self.store.reload()
                taken = self.store.next_sender
                log.error(
                    "%s: sequence number %s was taken; next is now %s",
                    self.session.sid,
                    taken,
                    self.store.resync_sender(),
                )
                break
            except Exception as exc:
                # rolled back, and this row can never be sent: set it aside so that
                # it does not hold up the rows behind it, and say so
                self.store.reload()
                self._failed(pk, f"{type(exc).__name__}: {exc}")
                continue
            sent += 1
        return sent

    def _send(self, pk: int) -> bool:
        row = (
            FixOutbox.objects.select_for_update()
            .filter(pk=pk, status=FixOutbox.Status.PENDING)
            .first()
        )
        if row is None:
            return False
        self._stamp(row)
        row.save(update_fields=["status", "generation", "seq_num", "sent_at"])
        return True

    def _stamp(self, row: FixOutbox) -> None:
        """Number and send (held) the message of a locked pending row, and mark the
        row sent (the caller writes it)."""
        body = [(int(tag), str(value)) for tag, value in row.fields]
        if row.msg_type == "D":
            trading_day.check_may_send(
                time_in_force=fixmap.time_in_force_of(dict(body)),
                queued_at=row.created_at,
                now=timezone.now(),
                boundary=session_day(self.fix_session),
            )
        seq = self.store.next_sender
        msg = Message.of(row.msg_type, body, self.fix_session.begin_string)
        if not self.session.send(msg):
            raise RuntimeError("session would not send")
        move(row, FixOutbox.Status.SENT)
        row.generation = self.store.generation
        row.seq_num = seq
        row.sent_at = timezone.now()

    def _failed(self, pk: int, error: str) -> None:
        log.error("%s: outbox row %s cannot be sent: %s", self.session.sid, pk, error)
        with transaction.atomic():
            row = FixOutbox.objects.select_for_update().get(pk=pk)
            move(row, FixOutbox.Status.FAILED)
            row.error = error[:500]
            row.save(update_fields=["status", "error"])
        if row.route_id is None:
            return
        with origin("fix", str(self.session.sid)):
            if row.msg_type == "D":  # the order itself never left us
                route_not_sent(row.route_id, f"not sent to the broker: {error}")
            else:  # a cancel, replace or status request did not go out
                route_mark_unconfirmed(
                    row.route_id, f"{row.msg_type} request not sent to the broker: {error}"
                )
