"""Message stores: sequence numbers and sent application messages.

A store keeps the next sender and target sequence numbers and the bytes of
every application message sent, so that a ResendRequest can be answered.
Admin messages are not kept: a resend gap-fills over them.
"""

from __future__ import annotations

import os
from pathlib import Path


class MessageStore:
    """Interface."""

    next_sender: int
    next_target: int

    def set(self, seq: int, raw: bytes) -> None:
        raise NotImplementedError

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        raise NotImplementedError

    def set_next_sender(self, n: int) -> None:
        self.next_sender = n

    def set_next_target(self, n: int) -> None:
        self.next_target = n

    def incr_sender(self) -> None:
        self.set_next_sender(self.next_sender + 1)

    def incr_target(self) -> None:
        self.set_next_target(self.next_target + 1)

    def reset(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemoryStore(MessageStore):
    def __init__(self) -> None:
        self.next_sender = 1
        self.next_target = 1
        self._msgs: dict[int, bytes] = {}

    def set(self, seq: int, raw: bytes) -> None:
        self._msgs[seq] = raw

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        if end - begin < len(self._msgs):
            return [(s, self._msgs[s]) for s in range(begin, end + 1) if s in self._msgs]
        return sorted((s, m) for s, m in self._msgs.items() if begin <= s <= end)

    def reset(self) -> None:
        self.next_sender = 1
        self.next_target = 1
        self._msgs.clear()


class FileStore(MessageStore):
    """File-backed store that survives a process restart.

    ``<name>.seqnums`` holds ``sender target`` (rewritten atomically);
    ``<name>.body`` is an append-only log of ``seq length\\n<bytes>\\n`` records.
    """

    def __init__(self, directory: str | os.PathLike, name: str, fsync: bool = False):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.seq_path = self.dir / f"{name}.seqnums"
        self.body_path = self.dir / f"{name}.body"
        self.fsync = fsync
        self._msgs: dict[int, bytes] = {}
        self.next_sender = 1
        self.next_target = 1
        self._load()
        self._body = open(self.body_path, "ab")  # noqa: SIM115 - kept open for appends

    def _load(self) -> None:
        if self.seq_path.exists():
            parts = self.seq_path.read_text().split()
            if len(parts) == 2:
                self.next_sender, self.next_target = int(parts[0]), int(parts[1])
        if self.body_path.exists():
            data = self.body_path.read_bytes()
            pos = 0
            while pos < len(data):
                nl = data.find(b"\n", pos)
                if nl < 0:
                    break
                try:
                    seq_s, len_s = data[pos:nl].split(b" ")
                    seq, length = int(seq_s), int(len_s)
                except ValueError:
                    break  # torn record at the end of the log
                raw = data[nl + 1 : nl + 1 + length]
                if len(raw) < length:
                    break
                self._msgs[seq] = raw
                pos = nl + 2 + length

    def _write_seqnums(self) -> None:
        tmp = self.seq_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(f"{self.next_sender} {self.next_target}")
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.seq_path)

    def set(self, seq: int, raw: bytes) -> None:
        self._msgs[seq] = raw
        self._body.write(b"%d %d\n%s\n" % (seq, len(raw), raw))
        self._body.flush()
        if self.fsync:
            os.fsync(self._body.fileno())

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        return sorted((s, m) for s, m in self._msgs.items() if begin <= s <= end)

    def set_next_sender(self, n: int) -> None:
        self.next_sender = n
        self._write_seqnums()

    def set_next_target(self, n: int) -> None:
        self.next_target = n
        self._write_seqnums()

    def reset(self) -> None:
        self.next_sender = 1
        self.next_target = 1
        self._msgs.clear()
        self._body.close()
        self._body = open(self.body_path, "wb")  # noqa: SIM115
        self._write_seqnums()

    def close(self) -> None:
        self._body.close()
