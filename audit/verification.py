"""Verification of the audit trail: every broken link named, not only the first.

The walk goes through the seals in position order and recomputes each hash from
the event as the database stores it. After a break it carries on from the stored
hash, so that one changed row is one finding and a later change is still named.
Checkpoints (signed heads of the chain, from the database and from the files an
auditor keeps) catch what the chain alone cannot: a trail cut short, or rehashed
from some point on.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min

from .chain import (
    StoredEvent,
    instant,
    key_id,
    seal_hash,
    seal_key,
    sealer_window,
    signature_matches,
)
from .models import GENESIS_HASH, AuditCheckpoint, AuditEvent, AuditSeal

#: Findings named one by one; past this many the report only counts them.
MAX_NAMED = 1000
_PAGE = 10_000


@dataclass(frozen=True)
class ChainBreak:
    """One finding: what is wrong, and where (a chain position, an event)."""

    problem: str
    position: int | None = None
    event_id: int | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A signed head of the chain, from the database or from a kept file."""

    source: str
    position: int
    head_hash: str
    signed_at: str
    key_id: str
    signature: str
    kept: bool = False  # an auditor's own copy: its head is trusted even unsigned

    @classmethod
    def stored(cls, checkpoint: AuditCheckpoint) -> Checkpoint:
        return cls(
            source=f"checkpoint #{checkpoint.pk}",
            position=checkpoint.position,
            head_hash=checkpoint.head_hash,
            signed_at=instant(checkpoint.signed_at),
            key_id=checkpoint.key_id,
            signature=checkpoint.signature,
        )

    def line(self) -> str:
        """One line of JSON, as an auditor keeps it (`kept_checkpoints` reads it back)."""
        return json.dumps(
            {
                "position": self.position,
                "head_hash": self.head_hash,
                "signed_at": self.signed_at,
                "key_id": self.key_id,
                "signature": self.signature,
            },
            sort_keys=True,
        )


@dataclass
class ChainReport:
    """What a verification found. ``ok`` when nothing is broken; events awaiting
    their seal are normal (the sealer reaches them within seconds)."""

    checked: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    unnamed_breaks: int = 0
    awaiting: int = 0
    oldest_awaiting: datetime | None = None
    head_position: int = 0
    head_event_id: int | None = None
    head_sealed_at: datetime | None = None
    checkpoints_checked: int = 0
    latest_checkpoint: Checkpoint | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.unnamed_breaks

    @property
    def broken(self) -> int:
        return len(self.breaks) + self.unnamed_breaks

    @property
    def first_broken_id(self) -> int | None:
        return self.breaks[0].event_id if self.breaks else None

    @property
    def problem(self) -> str:
        return self.breaks[0].problem if self.breaks else ""

    def add(self, problem: str, position: int | None = None, event_id: int | None = None):
        if len(self.breaks) < MAX_NAMED:
            self.breaks.append(ChainBreak(problem, position, event_id))
        else:
            self.unnamed_breaks += 1


def kept_checkpoints(path: str | Path) -> list[Checkpoint]:
    """Read a file of checkpoints (JSON lines, as `checkpoint_line` writes them)."""
    found = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            found.append(
                Checkpoint(
                    source=f"the checkpoint kept in {path}, line {number},",
                    position=int(data["position"]),
                    head_hash=str(data["head_hash"]),
                    signed_at=str(data["signed_at"]),
                    key_id=str(data.get("key_id", "")),
                    signature=str(data.get("signature", "")),
                    kept=True,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not a checkpoint ({exc})") from exc
    return found


def _exported_checkpoints(report: ChainReport) -> list[Checkpoint]:
    """The checkpoints the sealer appended to `OMS_AUDIT_CHECKPOINT_FILE`, outside the
    database: read by every verification (the page and the API too), so that a trail
    emptied with its checkpoints is still named there."""
    path = settings.OMS_AUDIT_CHECKPOINT_FILE
    if not path:
        return []
    try:
        return kept_checkpoints(path)
    except FileNotFoundError:
        report.notes.append(f"The checkpoint file {path} does not exist yet")
    except (OSError, ValueError) as exc:
        report.add(f"The checkpoint file {path} cannot be read: {exc}")
    return []


def _distinct(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    """Each checkpoint once, when a file is both kept and the sealer's."""
    seen, distinct = set(), []
    for checkpoint in checkpoints:
        if (line := checkpoint.line()) not in seen:
            seen.add(line)
            distinct.append(checkpoint)
    return distinct


def _stored_checkpoints() -> list[Checkpoint]:
    return [Checkpoint.stored(c) for c in AuditCheckpoint.objects.order_by("pk")]


def _trusted_heads(report: ChainReport, checkpoints: list[Checkpoint]) -> dict[int, list]:
    """Checkpoints whose signature holds (or that an auditor kept), by position."""
    key = seal_key()
    mine = key_id(key) if key else None
    unchecked = 0
    heads: dict[int, list[Checkpoint]] = defaultdict(list)
    for checkpoint in checkpoints:
        if key is not None and checkpoint.key_id == mine:
            if not signature_matches(
                key,
                checkpoint.position,
                checkpoint.head_hash,
                checkpoint.signed_at,
                checkpoint.signature,
            ):
                report.add(
                    f"{checkpoint.source.capitalize()} (position {checkpoint.position}) does not "
                    "carry a valid signature: it was forged or changed",
                    checkpoint.position,
                )
                continue
        elif not checkpoint.kept:
            unchecked += 1
            continue  # a signature we cannot check proves nothing
        heads[checkpoint.position].append(checkpoint)
        if not checkpoint.kept and (
            report.latest_checkpoint is None
            or checkpoint.position >= report.latest_checkpoint.position
        ):
            report.latest_checkpoint = checkpoint
    if unchecked:
        report.notes.append(
            f"{unchecked} checkpoint(s) signed with a key this process does not hold were not "
            "checked" + ("" if key else ": set OMS_AUDIT_SEAL_KEY (or its file)")
        )
    return heads


def verify_audit_chain(*, kept: Iterable[Checkpoint] = ()) -> ChainReport:
    """Walk the whole chain; name every broken link, missing position, changed event,
    stray unsealed event and checkpoint the chain no longer matches. ``kept``:
    checkpoints an auditor kept outside the database (`kept_checkpoints`)."""
    report = ChainReport()
    # Files first, the database's snapshot after: a checkpoint in a file was committed
    # before it was written, so the chain it signed is in the snapshot.
    kept = _distinct([*kept, *_exported_checkpoints(report)])
    with transaction.atomic():
        if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1:
            # One consistent view of seals, events and checkpoints for the whole walk.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        heads = _trusted_heads(report, _stored_checkpoints() + list(kept))
        _walk(report, heads)
        _unsealed(report)
    for position in sorted(p for p in heads if p > report.head_position):
        for checkpoint in heads[position]:
            report.add(
                f"The trail ends at position {report.head_position}, but {checkpoint.source} "
                f"signed position {position} on {checkpoint.signed_at}: the events sealed at "
                f"positions {report.head_position + 1}–{position} were cut off",
                position,
            )
    if report.latest_checkpoint is None:
        report.notes.append("No signed checkpoint yet: a cut tail could not be detected")
    return report


def _rows(seals) -> Iterator[tuple]:
    """The seals in position order, in one pass (pages by position would each sort what
    is left of the chain). On PostgreSQL a server-side cursor read by a thread of its
    own, so that the database writes out the next rows while this one hashes."""
    if connection.vendor != "postgresql":
        yield from seals.iterator(_PAGE)
        return
    sql, params = seals.query.sql_with_params()
    pages: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    cursor = connection.connection.cursor(name="audit_walk")

    def read() -> None:
        try:
            cursor.execute(sql, params)
            while not stop.is_set() and (rows := cursor.fetchmany(_PAGE)):
                pages.put(rows)
            pages.put(None)
        except BaseException as exc:  # handed to the walk, which raises it
            pages.put(exc)

    reader = threading.Thread(target=read, name="audit-walk", daemon=True)
    reader.start()
    try:
        while (rows := pages.get()) is not None:
            if isinstance(rows, BaseException):
                raise rows
            yield from rows
    finally:
        stop.set()
        while reader.is_alive():  # a walk that stopped early: let the reader finish
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.1)
        cursor.close()


def _walk(report: ChainReport, heads: dict[int, list[Checkpoint]]) -> None:
    expected, previous, last = 1, GENESIS_HASH, 0
    seals = AuditSeal.objects.order_by("position").values_list(
        "position", "previous_hash", "hash", "event_id", StoredEvent("event__")
    )
    last_good = 0  # the last position a trusted checkpoint vouches for
    for position, previous_hash, stored_hash, event_id, stored in _rows(seals):
        if position != expected:
            _missing(report, expected, position - 1)
        elif previous_hash != previous:
            report.add(
                f"Event #{event_id} (position {position}) does not link to the seal "
                "before it: a seal was changed, inserted or removed",
                position,
                event_id,
            )
        if seal_hash(position, previous_hash, stored) != stored_hash:
            report.add(
                f"Event #{event_id} (position {position}) does not match its seal: the "
                "event or its seal was changed",
                position,
                event_id,
            )
        for checkpoint in heads.get(position, ()):
            if checkpoint.head_hash == stored_hash:
                last_good = position
            else:
                report.add(
                    f"The chain at position {position} is not what {checkpoint.source} "
                    f"signed on {checkpoint.signed_at}: it was rewritten after position "
                    f"{last_good} (hashes recomputed from there on)",
                    position,
                    event_id,
                )
            report.checkpoints_checked += 1
        previous, expected, last = stored_hash, position + 1, position
        report.checked += 1
        report.head_position, report.head_event_id = position, event_id
    # The walk joins each seal to its event: seals past the last event it saw lost theirs.
    sealed = AuditSeal.objects.aggregate(last=Max("position"))["last"] or 0
    if sealed > last:
        _missing(report, last + 1, sealed)
    if last:
        report.head_sealed_at = AuditSeal.objects.values_list("sealed_at", flat=True).get(
            position=last
        )


def _missing(report: ChainReport, first: int, last: int) -> None:
    """Positions the walk found no event for: name the events whose seals are still
    there (the event was deleted), and say so when the seals went too."""
    orphans = list(
        AuditSeal.objects.filter(position__range=(first, last))
        .order_by("position")
        .values_list("event_id", flat=True)[:MAX_NAMED]
    )
    if not orphans:
        deleted = "their events and seals were deleted"
    elif len(orphans) == last - first + 1:
        deleted = _events_deleted(orphans)
    else:
        deleted = f"their seals were deleted, and {_events_deleted(orphans)}"
    report.add(
        f"Positions {first}–{last} are missing from the chain: {deleted}",
        first,
        orphans[0] if len(orphans) == 1 else None,
    )


def _events_deleted(ids: list[int]) -> str:
    shown = ", ".join(f"#{pk}" for pk in ids[:20]) + (" …" if len(ids) > 20 else "")
    return f"event{'s' if len(ids) > 1 else ''} {shown} {'were' if len(ids) > 1 else 'was'} deleted"


def _unsealed(report: ChainReport) -> None:
    """Events without a seal: awaiting the sealer (normal), or appended where the sealer
    had already passed (inserted behind the application's back)."""
    since = AuditSeal.objects.order_by("-position").values_list("horizon", flat=True).first()
    window = sealer_window(since or 0)
    unsealed = AuditEvent.objects.filter(seal__isnull=True)
    waiting = unsealed.filter(window).aggregate(count=Count("pk"), oldest=Min("occurred_at"))
    report.awaiting, report.oldest_awaiting = waiting["count"], waiting["oldest"]
    for event_id in unsealed.exclude(window).order_by("pk").values_list("pk", flat=True):
        report.add(
            f"Event #{event_id} is not in the chain, though the sealer had passed its place: "
            "it was inserted behind the application's back",
            None,
            event_id,
        )
