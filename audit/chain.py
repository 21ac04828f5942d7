"""The chain's rules: what of an event is hashed and how, and how a checkpoint is signed.

An event is hashed as the database stores it, never as the Python values the
writer handed over: PostgreSQL keeps JSON numbers as `numeric`, so `-0.0` comes
back as `0.0` and `1e30` as a 31-digit integer. The database itself writes the
event out as one text (`StoredEvent`: a JSON array of its columns, JSON columns
as the database's own text of them, the time in UTC to the microsecond), and the
hash is taken over that text. The sealer and verification read it the same way,
so they hash the same bytes whatever the driver, the session's settings or
Python would have made of the values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import NotSupportedError, connection
from django.db.models import F, Func, Q, TextField

log = logging.getLogger(__name__)

#: The event's columns that the chain covers, in the order they are written out.
EVENT_FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_name",
    "kind",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "reason",
    "origin",
)
SEAL_FORMAT = "oms-audit-seal/1"
CHECKPOINT_FORMAT = "oms-audit-checkpoint/1"

# How each database writes a column out: the time in UTC with microseconds whatever
# the session's time zone and date style; JSON as the database's text of it.
_WRITE_OUT = {
    "postgresql": {
        "wrap": "json_build_array({})::text",
        "occurred_at": "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",
    },
    "sqlite": {"wrap": "json_array({})", "before": "json({})", "after": "json({})"},
}


class StoredEvent(Func):
    """The event as the database stores it, written out by the database as one text."""

    output_field = TextField()

    def __init__(self, prefix: str = ""):
        super().__init__(*(F(prefix + name) for name in EVENT_FIELDS))

    def as_sql(self, compiler, connection, **extra_context):
        forms = _WRITE_OUT.get(connection.vendor)
        if forms is None:
            raise NotSupportedError(f"the audit chain is not defined on {connection.vendor}")
        columns, params = [], []
        for name, expression in zip(EVENT_FIELDS, self.get_source_expressions(), strict=True):
            sql, column_params = compiler.compile(expression)
            columns.append(forms.get(name, "{}").format(sql))
            params.extend(column_params)
        return forms["wrap"].format(", ".join(columns)), params


def seal_hash(position: int, previous_hash: str, event: str) -> str:
    """SHA-256 of a seal (its position, the hash before it) and its event's stored text."""
    return hashlib.sha256(
        f"{SEAL_FORMAT}\n{position}\n{previous_hash}\n{event}".encode()
    ).hexdigest()


def sealer_window(since: int) -> Q:
    """The events the sealer may still have to seal, given the ``horizon`` of the last
    seal: on PostgreSQL those whose transaction had not ended when that mark was
    taken, on SQLite (one writer at a time) those appended after it. Every event
    outside the window has its seal; those inside without one await the sealer."""
    if connection.vendor == "postgresql":
        return Q(xact__gte=since)
    return Q(pk__gte=since)


def sealer_order() -> tuple[str, ...]:
    """The order in which the sealer chains the events of its window: by transaction,
    then as appended, on PostgreSQL (so that a full batch still moves the horizon to
    its last transaction); as appended on SQLite."""
    return ("xact", "pk") if connection.vendor == "postgresql" else ("pk",)


def instant(moment: datetime) -> str:
    """A timestamp as checkpoints sign it: UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --- Checkpoints -------------------------------------------------------------------


def checkpoint_message(position: int, head_hash: str, signed_at: str) -> bytes:
    return f"{CHECKPOINT_FORMAT}:{position}:{head_hash}:{signed_at}".encode()


def sign(key: bytes, position: int, head_hash: str, signed_at: str) -> str:
    """HMAC-SHA256 of a checkpoint with the seal key."""
    return hmac.new(key, checkpoint_message(position, head_hash, signed_at), "sha256").hexdigest()


def signature_matches(key: bytes, position: int, head_hash: str, signed_at: str, signature: str):
    return hmac.compare_digest(sign(key, position, head_hash, signed_at), signature)


def key_id(key: bytes) -> str:
    """Names a key without giving it away: which key signed a checkpoint."""
    return hashlib.sha256(b"oms-audit-key-id:" + key).hexdigest()[:16]


def seal_key(*, create: bool = False) -> bytes | None:
    """The key that signs checkpoints: `OMS_AUDIT_SEAL_KEY`, else the file named by
    `OMS_AUDIT_SEAL_KEY_FILE`. With ``create`` (the sealer), a missing file is made
    with a new random key, readable by its owner only; None when there is no key."""
    if settings.OMS_AUDIT_SEAL_KEY:
        return settings.OMS_AUDIT_SEAL_KEY.encode()
    if not settings.OMS_AUDIT_SEAL_KEY_FILE:
        return None
    path = Path(settings.OMS_AUDIT_SEAL_KEY_FILE)
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another sealer made it first: use theirs
        else:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32) + "\n")
            log.warning("made a new audit seal key in %s: keep a copy outside this host", path)
    return path.read_text().strip().encode() or None
