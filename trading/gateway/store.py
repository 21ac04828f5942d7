"""The gateway's message store: sequence numbers on the FixSession row, the
messages it sent in FixMessage rows, so that a restarted gateway carries on where
the last one stopped and a resend after a disconnect replays from the database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import transaction
from django.db.models import Max

from trading.fix.store import MessageStore
from trading.models import FixMessage, FixSession
from trading.services.trading_day import session_day

__all__ = ["DatabaseStore", "session_day"]


class DatabaseStore(MessageStore):
    """Sequence numbers on the FixSession row, sent messages in FixMessage rows.

    Writes join the caller's transaction when there is one (the outbox pump
    sends inside one), and commit on their own otherwise."""

    def __init__(self, fix_session: FixSession):
        self.pk = fix_session.pk
        self._batch: list[FixMessage] | None = None
        self._target_written: int | None = None
        self._receiving = False
        self._target_stored: int | None = None
        self.reload()

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Inside the caller's transaction (the gateway's, for the messages of one
        read): the next target number the session sets while the block runs is
        written once, at its end, still before that transaction commits, instead of
        once per message. If the block raises, nothing of it is written (and the
        caller, whose transaction rolls back, reloads the numbers)."""
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("the store receives inside the receiver's transaction")
        self._receiving = True
        # what the row holds: the number now, or 1 once a reset inside the read wrote it
        self._target_stored = self.next_target
        try:
            yield
            if self.next_target != self._target_stored:
                FixSession.objects.filter(pk=self.pk).update(next_target_seq=self.next_target)
        finally:
            self._receiving = False

    def advance_target_with(self, n: int) -> None:
        """Inside the transaction that stores a received message: the next target
        number ``n`` is written with it, so that the session's `set_next_target(n)`
        just after that commits has nothing left to write (one commit per message,
        not two). If the transaction rolls back, the session sets nothing either
        (the message was not consumed), and a later write is not skipped. While
        `receiving`, the number is written at the end of the read instead."""
        if self._receiving:
            return
        FixSession.objects.filter(pk=self.pk).update(next_target_seq=n)
        self._target_written = None
        transaction.on_commit(lambda: setattr(self, "_target_written", n))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Inside the caller's transaction (the outbox pump's, for a batch of rows):
        the messages sent in the block are stored, and the next sender number
        written, once at its end, in one INSERT and one UPDATE, still before that
        transaction commits. If the block raises, nothing of it is written."""
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("a batch of the store runs inside the sender's transaction")
        self._batch = []
        try:
            yield
            stored, self._batch = self._batch, None
            if stored:
                # a clash with a stored number raises IntegrityError here, as set() does
                FixMessage.objects.bulk_create(stored)
            FixSession.objects.filter(pk=self.pk).update(next_sender_seq=self.next_sender)
        finally:
            self._batch = None

    def reload(self) -> None:
        self._target_written = None
        row = FixSession.objects.values("next_sender_seq", "next_target_seq", "generation").get(
            pk=self.pk
        )
        self.next_sender = row["next_sender_seq"]
        self.next_target = self._target_stored = row["next_target_seq"]
        self.generation = row["generation"]

    def set_next_sender(self, n: int) -> None:
        if self._batch is None:  # in a batch: written at its end
            FixSession.objects.filter(pk=self.pk).update(next_sender_seq=n)
        self.next_sender = n

    def set_next_target(self, n: int) -> None:
        if self._receiving:  # written once, at the end of the read
            pass
        elif self._target_written != n:  # else committed with the message it follows
            FixSession.objects.filter(pk=self.pk).update(next_target_seq=n)
        self._target_written = None
        self.next_target = n

    def set(self, seq: int, raw: bytes) -> None:
        """Keep a sent message, and advance the next sender number past it in the
        same transaction (the session advances it again just after: the same
        value), so that a message is never stored under a number still marked
        free. A number is used once: a clash means something else wrote it.
        In a batch (`batch`), kept to be written at the batch's end."""
        if self._batch is not None:
            self._batch.append(
                FixMessage(session_id=self.pk, generation=self.generation, seq_num=seq, raw=raw)
            )
            return
        with transaction.atomic():
            FixMessage.objects.create(
                session_id=self.pk, generation=self.generation, seq_num=seq, raw=raw
            )
            FixSession.objects.filter(pk=self.pk, next_sender_seq__lte=seq).update(
                next_sender_seq=seq + 1
            )

    def resync_sender(self) -> int:
        """After a clash: the next sender number goes past every stored message."""
        top = FixMessage.objects.filter(session_id=self.pk, generation=self.generation).aggregate(
            top=Max("seq_num")
        )["top"]
        self.set_next_sender(max(self.next_sender, (top or 0) + 1))
        return self.next_sender

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        rows = FixMessage.objects.filter(
            session_id=self.pk, generation=self.generation, seq_num__range=(begin, end)
        ).values_list("seq_num", "raw")
        return [(seq, bytes(raw)) for seq, raw in rows.order_by("seq_num")]

    def reset(self) -> None:
        """Both sequence numbers back to 1, in a new generation (the messages of
        earlier generations stay, as the record of what was sent)."""
        with transaction.atomic():
            row = FixSession.objects.select_for_update().get(pk=self.pk)
            row.generation += 1
            row.next_sender_seq = row.next_target_seq = 1
            row.save(update_fields=["generation", "next_sender_seq", "next_target_seq"])
        self.generation = row.generation
        self.next_sender = self.next_target = 1
        self._target_written = None
        self._target_stored = 1
