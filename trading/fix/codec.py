"""FIX tag=value codec on bytes: message model, encoder, decoder and stream framer.

The codec knows nothing about sessions.  ``decode`` checks what a frame must
satisfy to be a FIX message at all (BeginString, BodyLength, MsgType as the
first three fields, a correct BodyLength and CheckSum, integer tags); anything
else raises :class:`GarbledMessage`, which a session ignores.  Semantic checks
against the data dictionary live in :mod:`trading.fix.dictionary`.

Values are ``str`` (the wire bytes decoded as Latin-1, so every byte round-trips).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from zlib import adler32 as _adler32

SOH = "\x01"
SOH_B = b"\x01"

# Header fields of FIX 4.2 and 4.4 (union), trailer fields.  Used to split a
# decoded message into header / body / trailer without a dictionary at hand.
HEADER_TAGS = frozenset(
    {8, 9, 35, 34, 43, 49, 50, 52, 56, 57, 90, 91, 97, 115, 116, 122, 128, 129, 142, 143, 144, 145}
    | {212, 213, 347, 369, 370, 627, 628, 629, 630}
)
TRAILER_TAGS = frozenset({93, 89, 10})

# Length field -> data field whose value may contain SOH.
DATA_LENGTH_TAGS = {
    90: 91,
    93: 89,
    95: 96,
    212: 213,
    348: 349,
    350: 351,
    352: 353,
    354: 355,
    356: 357,
    358: 359,
    360: 361,
    362: 363,
    364: 365,
    445: 446,
    618: 619,
    621: 622,
}
_DATA_TAGS = frozenset(DATA_LENGTH_TAGS.values())

ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})


class GarbledMessage(ValueError):
    """The bytes are not a well-formed FIX message (ignored by a session)."""


class Message:
    """A FIX message: BeginString, MsgType, and ordered header/body/trailer fields.

    ``header``, ``body`` and ``trailer`` are lists of ``(tag, value)``; they never
    contain BeginString (8), BodyLength (9), MsgType (35) or CheckSum (10).
    """

    __slots__ = ("begin_string", "msg_type", "header", "body", "trailer", "out_of_order", "_idx")

    def __init__(
        self,
        msg_type: str,
        body: Iterable[tuple[int, str]] = (),
        *,
        begin_string: str = "",
        header: Iterable[tuple[int, str]] = (),
        trailer: Iterable[tuple[int, str]] = (),
    ):
        self.begin_string = begin_string
        self.msg_type = msg_type
        self.header: list[tuple[int, str]] = list(header)
        self.body: list[tuple[int, str]] = [
            (t, v if isinstance(v, str) else str(v)) for t, v in body
        ]
        self.trailer: list[tuple[int, str]] = list(trailer)
        self.out_of_order = 0  # first tag found outside its section (0: none)
        self._idx: dict[int, str] | None = None

    @classmethod
    def of(cls, msg_type: str, body: list[tuple[int, str]], begin_string: str = "") -> Message:
        """A message from ``body`` as is: a list of ``(tag, str)`` that the
        message takes over (no copy, no conversion; the caller guarantees
        the values are ``str``)."""
        m = cls.__new__(cls)
        m.begin_string = begin_string
        m.msg_type = msg_type
        m.header = []
        m.body = body
        m.trailer = []
        m.out_of_order = 0
        m._idx = None
        return m

    # -- access -----------------------------------------------------------
    def _index(self) -> dict[int, str]:
        idx = self._idx
        if idx is None:
            idx = {}
            for part in (self.trailer, self.body, self.header):
                for t, v in reversed(part):
                    idx[t] = v
            idx[8] = self.begin_string
            idx[35] = self.msg_type
            self._idx = idx
        return idx

    def get(self, tag: int, default: str | None = None) -> str | None:
        idx = self._idx
        if idx is None:
            idx = self._index()
        return idx.get(tag, default)

    def __getitem__(self, tag: int) -> str:
        return self._index()[tag]

    def __contains__(self, tag: int) -> bool:
        return tag in self._index()

    def get_all(self, tag: int) -> list[str]:
        return [v for part in (self.header, self.body, self.trailer) for t, v in part if t == tag]

    def get_int(self, tag: int, default: int | None = None) -> int | None:
        v = self._index().get(tag)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            return default

    def set_header(self, tag: int, value: str) -> None:
        self._set(self.header, tag, value)

    def set(self, tag: int, value) -> None:
        self._set(self.body, tag, value if isinstance(value, str) else str(value))

    def remove_header(self, tag: int) -> None:
        self.header = [(t, v) for t, v in self.header if t != tag]
        self._idx = None

    def _set(self, part: list, tag: int, value: str) -> None:
        for i, (t, _) in enumerate(part):
            if t == tag:
                part[i] = (tag, value)
                break
        else:
            part.append((tag, value))
        self._idx = None

    @property
    def is_admin(self) -> bool:
        return self.msg_type in ADMIN_TYPES

    def copy(self) -> Message:
        m = Message(self.msg_type, begin_string=self.begin_string)
        m.header = list(self.header)
        m.body = list(self.body)
        m.trailer = list(self.trailer)
        return m

    def fields(self) -> list[tuple[int, str]]:
        """All fields in wire order, including 8, 35 (not 9/10)."""
        return [
            (8, self.begin_string),
            (35, self.msg_type),
            *self.header,
            *self.body,
            *self.trailer,
        ]

    def __repr__(self) -> str:
        return "Message(" + "|".join(f"{t}={v}" for t, v in self.fields()) + ")"

    # -- encoding ---------------------------------------------------------
    def encode(self, sort_header: bool = True) -> bytes:
        header = sorted(self.header, key=_tag_key) if sort_header else self.header
        return encode_fields(self.begin_string, self.msg_type, header, self.body, self.trailer)


def _tag_key(f: tuple[int, str]) -> int:
    return f[0]


_TAG_PREFIX = {i: f"{i}=" for i in range(1, 10000)}
_TAG_INT = {f"{i}": i for i in range(0, 10000)}


def _join_fields(fields: Iterable[tuple[int, str]]) -> list[str]:
    p = _TAG_PREFIX
    try:
        return [p[t] + v for t, v in fields]
    except (KeyError, TypeError):
        return [f"{t}={v}" for t, v in fields]


def encode_fields(
    begin_string: str,
    msg_type: str,
    header: Iterable[tuple[int, str]],
    body: Iterable[tuple[int, str]],
    trailer: Iterable[tuple[int, str]] = (),
) -> bytes:
    """Encode fields into a complete FIX message with BodyLength and CheckSum."""
    parts = ["35=" + msg_type]
    parts += _join_fields(header)
    parts += _join_fields(body)
    if trailer:
        parts += _join_fields(trailer)
    parts.append("")
    payload = SOH.join(parts).encode("latin-1")
    data = b"8=%s\x019=%d\x01%s" % (begin_string.encode("latin-1"), len(payload), payload)
    return data + _CKS[checksum(data)]


_CKS = [b"10=%03d\x01" % i for i in range(256)]


def checksum(data: bytes | bytearray | memoryview) -> int:
    """Sum of the bytes modulo 256 (FIX CheckSum).

    Computed with ``zlib.adler32`` over chunks of at most 256 bytes: the low
    16 bits of Adler-32 are ``1 + sum(bytes) mod 65521``, and the sum of 256
    bytes never exceeds 65280, so each chunk gives its exact byte sum, in C.
    """
    n = len(data)
    if n <= 256:
        return ((_adler32(data) & 0xFFFF) - 1) & 255
    mv = memoryview(data)
    total = 0
    for i in range(0, n, 256):
        total += (_adler32(mv[i : i + 256]) & 0xFFFF) - 1
    return total & 255


# Deletes every byte but '=' and SOH: what remains of a well-formed frame whose
# every field has exactly one '=' is "=\x01" repeated once per field.
_NOT_EQ_SOH = bytes(b for b in range(256) if b not in (0x3D, 0x01))


def decode(frame: bytes) -> Message:
    """Decode one complete frame.  Raises :class:`GarbledMessage` if malformed."""
    text = frame.decode("latin-1")
    if text[:2] != "8=" or text[-1:] != SOH:
        raise GarbledMessage("message must start with 8= and end with SOH")
    # Fast path: every field has exactly one '=' (checked in C), so replacing
    # '=' by SOH and splitting gives tag, value, tag, value, ...
    if frame.translate(None, _NOT_EQ_SOH) == b"=\x01" * frame.count(SOH_B):
        parts = text[:-1].replace("=", SOH).split(SOH)
        try:
            nums = list(map(_TAG_INT.__getitem__, parts[0::2]))
        except KeyError:
            nums = None  # unusual tag (negative, large, malformed): careful path
        if nums is not None and _DATA_TAGS.isdisjoint(nums):
            return _build(frame, text, list(zip(nums, parts[1::2], strict=True)), nums)
    pairs = _split_slow(text)
    return _build(frame, text, pairs, [t for t, _ in pairs])


def _split_slow(text: str) -> list[tuple[int, str]]:
    pairs: list[tuple[int, str]] = []
    pos = 0
    n = len(text)
    pending_len: dict[int, int] = {}
    while pos < n:
        eq = text.find("=", pos)
        if eq < 0:
            raise GarbledMessage("field without '='")
        tag_s = text[pos:eq]
        if (
            not (tag_s.isdigit() or (tag_s[:1] == "-" and tag_s[1:].isdigit()))
            or not tag_s.isascii()
        ):
            raise GarbledMessage(f"invalid tag {tag_s!r}")
        tag = int(tag_s)
        if tag in pending_len:
            length = pending_len.pop(tag)
            end = eq + 1 + length
            if end >= n or text[end] != SOH:
                raise GarbledMessage(f"data field {tag} length mismatch")
        else:
            end = text.find(SOH, eq + 1)
            if end < 0:
                raise GarbledMessage("missing SOH")
        value = text[eq + 1 : end]
        if tag in DATA_LENGTH_TAGS and value.isdigit() and value.isascii():
            pending_len[DATA_LENGTH_TAGS[tag]] = int(value)
        pairs.append((tag, value))
        pos = end + 1
    return pairs


def _build(frame: bytes, text: str, pairs: list[tuple[int, str]], nums: list[int]) -> Message:
    if len(pairs) < 4 or pairs[0][0] != 8 or pairs[1][0] != 9 or pairs[2][0] != 35:
        raise GarbledMessage("BeginString, BodyLength and MsgType must be the first three fields")
    last = pairs[-1]
    if last[0] != 10:
        raise GarbledMessage("CheckSum must be the last field")
    # BodyLength: from after the 9= field up to (not including) 10=
    body_start = text.index(SOH, text.index(SOH) + 1) + 1
    cks_pos = len(text) - len(last[1]) - 4
    length = pairs[1][1]
    if not (length.isdigit() and length.isascii()) or int(length) != cks_pos - body_start:
        raise GarbledMessage(f"BodyLength {length!r} != {cks_pos - body_start}")
    cks = last[1]
    if len(cks) != 3 or not (cks.isdigit() and cks.isascii()):
        raise GarbledMessage("CheckSum must be three digits")
    if int(cks) != checksum(memoryview(frame)[:cks_pos]):
        raise GarbledMessage("CheckSum mismatch")
    msg = Message.__new__(Message)
    msg.begin_string = pairs[0][1]
    msg.msg_type = pairs[2][1]
    msg._idx = None
    fields = pairs[3:-1]
    ht, tt = HEADER_TAGS, TRAILER_TAGS
    n = len(fields)
    i = 0
    while i < n and fields[i][0] in ht:
        i += 1
    header = fields[:i]
    rest = fields[i:]
    out_of_order = 0
    rest_tags = nums[3 + i : -1]
    if ht.isdisjoint(rest_tags) and tt.isdisjoint(rest_tags):
        body, trailer = rest, []
    else:
        body, trailer = [], []
        section = 1
        for f in rest:
            t = f[0]
            if t in ht:
                if not out_of_order:
                    out_of_order = t
                header.append(f)
            elif t in tt:
                section = 2
                trailer.append(f)
            else:
                if section == 2 and not out_of_order:
                    out_of_order = t
                body.append(f)
    msg.header = header
    msg.body = body
    msg.trailer = trailer
    msg.out_of_order = out_of_order
    return msg


def peek_header(frame: bytes) -> dict[int, str]:
    """Best-effort read of the first header fields of a frame (for routing)."""
    out: dict[int, str] = {}
    for f in frame.decode("latin-1").split(SOH)[:16]:
        t, sep, v = f.partition("=")
        if sep and t.isdigit() and t.isascii():
            out.setdefault(int(t), v)
    return out


class Framer:
    """Finds FIX message boundaries in a TCP byte stream.

    Like QuickFIX: look for ``8=``, read BodyLength, then find the CheckSum
    field at or after the declared end.  A frame with a wrong BodyLength is
    still delimited (by the next CheckSum) and later rejected by ``decode``.
    """

    def __init__(self, max_size: int = 1 << 20):
        self._buf = bytearray()
        self.max_size = max_size

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while True:
            start = buf.find(b"8=")
            if start < 0:
                # keep a trailing '8' that may start the next message
                del buf[: max(0, len(buf) - 1)]
                return out
            if start:
                del buf[:start]
            p9 = buf.find(b"\x019=")
            first_soh = buf.find(SOH_B)
            if p9 >= 0 and first_soh != p9:
                del buf[:2]  # '8=' that is not followed by BodyLength: not a message start
                continue
            if p9 < 0:
                if len(buf) > 64:
                    del buf[:2]  # no BodyLength near the start: resynchronise
                    continue
                return out
            len_end = buf.find(SOH_B, p9 + 3)
            if len_end < 0:
                if len(buf) - p9 > 16:
                    del buf[:2]
                    continue
                return out
            length_s = bytes(buf[p9 + 3 : len_end])
            if not length_s.isdigit() or len(length_s) > 9:
                del buf[:2]
                continue
            body_end = len_end + 1 + int(length_s)
            if len(buf) < body_end:
                if body_end > self.max_size:
                    del buf[:2]
                    continue
                return out
            cks = buf.find(b"\x0110=", body_end - 1)
            if cks < 0:
                if len(buf) > self.max_size:
                    del buf[:2]
                    continue
                return out
            end = buf.find(SOH_B, cks + 4)
            if end < 0:
                return out
            out.append(bytes(buf[: end + 1]))
            del buf[: end + 1]

    @property
    def pending(self) -> int:
        return len(self._buf)


# [((s, m, h, D, M, Y), "YYYYMMDD-HH:MM:SS")]: one tuple, replaced in one store,
# so that a thread never sees the key of one second with the text of another.
_ts_cache: list = [(None, "")]
_MS3 = [f".{i:03d}" for i in range(1000)]


def utc_timestamp(dt: datetime | None = None, precision: int = 3) -> str:
    """FIX UTCTimestamp: ``YYYYMMDD-HH:MM:SS[.sss|.ssssss]``.

    The part up to the second is formatted once per second and cached."""
    if dt is None:
        dt = datetime.now(UTC)
    key = (dt.second, dt.minute, dt.hour, dt.day, dt.month, dt.year)
    cached_key, s = _ts_cache[0]
    if cached_key != key:
        s = f"{dt.year:04d}{dt.month:02d}{dt.day:02d}-{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        _ts_cache[0] = (key, s)
    if precision == 3:
        return s + _MS3[dt.microsecond // 1000]
    if precision == 6:
        return f"{s}.{dt.microsecond:06d}"
    return s


_epoch_cache: dict[str, float] = {}


def utc_timestamp_epoch(value: str) -> float:
    """Seconds since the epoch of a FIX UTCTimestamp (ValueError if malformed).

    Accepts exactly what :func:`parse_utc_timestamp` accepts; the whole-second
    part is parsed once per distinct second and cached."""
    prefix = value[:17]
    base = _epoch_cache.get(prefix)
    if base is None:
        base = parse_utc_timestamp(prefix).timestamp()
        if len(_epoch_cache) >= 256:
            _epoch_cache.clear()
        _epoch_cache[prefix] = base
    if len(value) == 17:
        return base
    frac = value[18:]
    if value[17] != "." or not frac.isdigit() or len(frac) > 9:
        raise ValueError(f"bad UTCTimestamp {value!r}")
    return base + int((frac + "000000")[:6]) / 1e6


def parse_utc_timestamp(value: str) -> datetime:
    """Parse ``YYYYMMDD-HH:MM:SS[.fff...]`` (ValueError if malformed)."""
    if len(value) < 17 or value[8] != "-" or value[11] != ":" or value[14] != ":":
        raise ValueError(f"bad UTCTimestamp {value!r}")
    micro = 0
    if len(value) > 17:
        frac = value[18:]
        if value[17] != "." or not frac.isdigit() or len(frac) > 9:
            raise ValueError(f"bad UTCTimestamp {value!r}")
        micro = int((frac + "000000")[:6])
    return datetime(
        int(value[0:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[9:11]),
        int(value[12:14]),
        int(value[15:17]),
        micro,
        tzinfo=UTC,
    )
