"""Where a change came from, for the audit trail.

The request middleware and the Celery task wrapper set it; services read it
when they append an audit event, so that no service needs a request object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    channel: str  # "web", "api", "task", "command", "admin", "fix"
    address: str = ""  # client IP, task name or command name

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}" if self.address else self.channel


_origin: ContextVar[Origin] = ContextVar("oms_origin", default=Origin("system"))  # noqa: B039 (frozen)


def current_origin() -> Origin:
    return _origin.get()


@contextlib.contextmanager
def origin(channel: str, address: str = "") -> Iterator[Origin]:
    value = Origin(channel, address)
    token = _origin.set(value)
    try:
        yield value
    finally:
        _origin.reset(token)
