"""The simulated broker's order book on disk, so that it survives a restart.

A broker does not forget its orders when its process dies.  ``BookFile`` keeps
every order of every session in one file of JSON lines, one line per change
of an order (the whole order: terms, state, fills, a pending cancel or
replace); the last line for an order is its state.

* **Written before the report leaves.**  The simulator records an order's new
  state before it hands the execution report that announces it to the
  session, so a report the peer has seen is never ahead of the file: after a
  kill -9 an order reported cancelled is still cancelled, a fill reported is
  still booked.  (The converse can happen: a change on file whose report was
  never sent; the peer learns it by asking for the order's status.)
* **Atomic.**  A change is one line written with a single ``write`` to a file
  opened for appending, which a killed process cannot leave half done; a line
  cut short by a crash of the machine itself (or a full disk) is the last one
  and is ignored when the file is read.  The file is compacted (one line per
  order, orders that ended more than a day ago left out) into a temporary file
  that replaces it by rename, at start and whenever it has grown to several
  times the number of orders.  With ``fsync=True`` every line is also forced
  to disk (a machine crash then loses nothing either; slower).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger("trading.fix.simulator")


class BookFile:
    """Orders as plain dicts, per session, in an append-only JSON-lines file."""

    def __init__(self, path: str | os.PathLike, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lines = 0
        self._orders = 0
        self._fd: int | None = None

    # --------------------------------------------------------------- reading
    def load(self) -> dict[str, dict[str, dict]]:
        """``{session: {order_id: order}}`` as last written; {} if no file."""
        books: dict[str, dict[str, dict]] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return books
        lines = data.split(b"\n")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                books.setdefault(rec["session"], {})[rec["order"]["order_id"]] = rec["order"]
            except (ValueError, KeyError, TypeError) as exc:
                if n >= len(lines) - 1:  # the last line, cut short by a crash: ignored
                    log.warning("%s: last line unreadable, ignored (%s)", self.path, exc)
                    break
                raise ValueError(f"{self.path}: line {n} is not an order record: {exc}") from None
        return books

    # --------------------------------------------------------------- writing
    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def save(self, session: str, order: dict) -> None:
        """Record one order's state (one line, one write)."""
        line = json.dumps({"session": session, "order": order}, separators=(",", ":"))
        fd = self._open()
        os.write(fd, line.encode() + b"\n")
        if self.fsync:
            os.fsync(fd)
        self._lines += 1

    def needs_compaction(self, orders: int) -> bool:
        return self._lines > 4 * orders + 1000

    def compact(self, books: dict[str, dict[str, dict]]) -> None:
        """Rewrite the file with one line per order, atomically (temp + rename)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        count = 0
        with open(tmp, "wb") as f:
            for session, orders in books.items():
                for order in orders.values():
                    rec = {"session": session, "order": order}
                    f.write(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
                    count += 1
            f.flush()
            os.fsync(f.fileno())
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        os.replace(tmp, self.path)
        self._lines = count
        self._orders = count

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
