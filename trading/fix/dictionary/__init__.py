"""FIX data dictionaries (4.2, 4.4) and message validation.

The tables are generated from QuickFIX's XML data dictionaries by
``generate.py`` (see there for credit and license) and shipped as JSON.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from ..codec import Message

HERE = Path(__file__).resolve().parent
FILES = {"FIX.4.2": "fix42.json", "FIX.4.4": "fix44.json"}


class Reason:
    """SessionRejectReason (373) values."""

    INVALID_TAG_NUMBER = 0
    REQUIRED_TAG_MISSING = 1
    TAG_NOT_DEFINED_FOR_MESSAGE_TYPE = 2
    UNDEFINED_TAG = 3
    TAG_SPECIFIED_WITHOUT_A_VALUE = 4
    VALUE_IS_INCORRECT = 5
    INCORRECT_DATA_FORMAT = 6
    DECRYPTION_PROBLEM = 7
    SIGNATURE_PROBLEM = 8
    COMPID_PROBLEM = 9
    SENDINGTIME_ACCURACY_PROBLEM = 10
    INVALID_MSGTYPE = 11
    XML_VALIDATION_ERROR = 12
    TAG_APPEARS_MORE_THAN_ONCE = 13
    TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER = 14
    REPEATING_GROUP_FIELDS_OUT_OF_ORDER = 15
    INCORRECT_NUMINGROUP_COUNT = 16
    NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER = 17


REASON_TEXT = {
    0: "Invalid tag number",
    1: "Required tag missing",
    2: "Tag not defined for this message type",
    3: "Undefined Tag",
    4: "Tag specified without a value",
    5: "Value is incorrect (out of range) for this tag",
    6: "Incorrect data format for value",
    7: "Decryption problem",
    8: "Signature problem",
    9: "CompID problem",
    10: "SendingTime accuracy problem",
    11: "Invalid MsgType",
    12: "XML Validation error",
    13: "Tag appears more than once",
    14: "Tag specified out of required order",
    15: "Repeating group fields out of order",
    16: "Incorrect NumInGroup count for repeating group",
    17: "Non Data value includes field delimiter",
}


class ValidationError(Exception):
    """A message fails the data dictionary: answer with a session Reject."""

    def __init__(self, reason: int, tag: int | None = None):
        self.reason = reason
        self.tag = tag
        super().__init__(f"{REASON_TEXT.get(reason, reason)} (tag {tag})")


_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_TS = re.compile(r"[0-9]{8}-[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?")
_DATE = re.compile(r"[0-9]{8}")
_MONTHYEAR = re.compile(r"[0-9]{6}(?:[0-9]{2}|w[1-5])?")


def _ts_ok(v: str) -> bool:
    if not _TS.fullmatch(v):
        return False
    prefix = v[:17]  # YYYYMMDD-HH:MM:SS, the same for every message within a second
    ok = _ts_seen.get(prefix)
    if ok is None:
        mo, d, h, mi, s = int(v[4:6]), int(v[6:8]), int(v[9:11]), int(v[12:14]), int(v[15:17])
        ok = 1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60
        if len(_ts_seen) >= 256:
            _ts_seen.clear()
        _ts_seen[prefix] = ok
    return ok


_ts_seen: dict[str, bool] = {}


def _date_ok(v: str) -> bool:
    return bool(_DATE.fullmatch(v)) and 1 <= int(v[4:6]) <= 12 and 1 <= int(v[6:8]) <= 31


_FORMATS = {
    "INT": _INT.fullmatch,
    "LENGTH": _INT.fullmatch,
    "SEQNUM": _INT.fullmatch,
    "NUMINGROUP": _INT.fullmatch,
    "DAYOFMONTH": _INT.fullmatch,
    "TAGNUM": _INT.fullmatch,
    "FLOAT": _FLOAT.fullmatch,
    "QTY": _FLOAT.fullmatch,
    "PRICE": _FLOAT.fullmatch,
    "PRICEOFFSET": _FLOAT.fullmatch,
    "AMT": _FLOAT.fullmatch,
    "PERCENTAGE": _FLOAT.fullmatch,
    "CHAR": lambda v: len(v) == 1,
    "BOOLEAN": lambda v: v in ("Y", "N"),
    "UTCTIMESTAMP": _ts_ok,
    "UTCTIMEONLY": _TIME.fullmatch,
    "UTCDATE": _date_ok,
    "UTCDATEONLY": _date_ok,
    "LOCALMKTDATE": _date_ok,
    "MONTHYEAR": _MONTHYEAR.fullmatch,
}
_MULTI = {"MULTIPLEVALUESTRING", "MULTIPLECHARVALUE", "MULTIPLESTRINGVALUE"}

# The same formats as regular expressions over one value (for the fast path,
# where all values of a message are matched at once, joined by SOH).  Each
# accepts exactly what the check in ``_FORMATS`` accepts, SOH excepted.
_P_INT = "-?[0-9]+"
_P_FLOAT = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_P_DATE = "[0-9]{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_P_TS = _P_DATE + r"-(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?"
_NO_FORMAT = "[^\x01]+"  # any non-empty value
_TYPE_PATTERNS: dict[str, str | None] = {
    "INT": _P_INT,
    "LENGTH": _P_INT,
    "SEQNUM": _P_INT,
    "NUMINGROUP": _P_INT,
    "DAYOFMONTH": _P_INT,
    "TAGNUM": _P_INT,
    "FLOAT": _P_FLOAT,
    "QTY": _P_FLOAT,
    "PRICE": _P_FLOAT,
    "PRICEOFFSET": _P_FLOAT,
    "AMT": _P_FLOAT,
    "PERCENTAGE": _P_FLOAT,
    "CHAR": "[^\x01]",
    "BOOLEAN": "[YN]",
    "UTCTIMESTAMP": _P_TS,
    "UTCTIMEONLY": r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?",
    "UTCDATE": _P_DATE,
    "UTCDATEONLY": _P_DATE,
    "LOCALMKTDATE": _P_DATE,
    "MONTHYEAR": "[0-9]{6}(?:[0-9]{2}|w[1-5])?",
}
_MAX_SHAPES = 2048  # distinct (MsgType, header tags, body tags) remembered per dictionary


class _Block:
    """Fields allowed at one level (message body or a group entry)."""

    __slots__ = ("fields", "order", "required", "groups", "delim")

    def __init__(self, data: dict):
        self.order: list[int] = data["fields"]
        self.fields = frozenset(self.order)
        self.required: list[int] = sorted(data["required"])
        self.groups: dict[int, _Block] = {int(k): _Block(v) for k, v in data["groups"].items()}
        self.delim = self.order[0] if self.order else 0


class DataDictionary:
    def __init__(self, data: dict):
        self.version: str = data["version"]
        self.field_names: dict[int, str] = {}
        self.field_types: dict[int, str] = {}
        self._checks: dict[int, tuple] = {}
        for k, (name, ftype, values) in data["fields"].items():
            tag = int(k)
            self.field_names[tag] = name
            self.field_types[tag] = ftype
            fmt = _FORMATS.get(ftype)
            enum = frozenset(values) if values else None
            self._checks[tag] = (fmt, enum, ftype in _MULTI)
        self.header = _Block(data["header"])
        self.trailer = _Block(data["trailer"])
        self.messages: dict[str, _Block] = {}
        self.message_names: dict[str, str] = {}
        self.admin_types: set[str] = set()
        for mt, m in data["messages"].items():
            self.messages[mt] = _Block(m)
            self.message_names[mt] = m["name"]
            if m["admin"]:
                self.admin_types.add(mt)
        self.tag_by_name = {v: k for k, v in self.field_names.items()}
        # Fast path (see ``_valid_fast``): for each block, tag -> value regex.
        self._header_patterns = self._patterns(self.header)
        self._header_required = frozenset(self.header.required) - {8, 9, 35}
        self._fast: dict[str, tuple[dict[int, str], frozenset[int], frozenset[int]]] = {
            mt: (self._patterns(b), frozenset(b.required), frozenset(b.groups))
            for mt, b in self.messages.items()
        }
        self._shapes: dict[tuple, re.Pattern | None] = {}

    def _patterns(self, block: _Block) -> dict[int, str]:
        """For the tags allowed in ``block``: a regular expression that matches
        (fully) exactly the values ``_iterate`` accepts for that tag, among
        values without SOH (it never matches SOH).  Tags without one (group
        counts, undefined tags, unusual enumerations) are left to the full
        validation."""
        out: dict[int, str] = {}
        for tag in block.fields:
            chk = self._checks.get(tag)
            if chk is None or tag in block.groups:
                continue
            fmt, enum, multi = chk
            if enum is not None:
                values = sorted(v for v in enum if v)
                if not values or (fmt is not None and not all(fmt(v) for v in values)):
                    continue
                if multi and any(" " in v or "\x01" in v for v in values):
                    continue
                alt = "(?:" + "|".join(re.escape(v) for v in values) + ")"
                out[tag] = f"{alt}(?: {alt})*" if multi else alt
            else:
                pattern = _TYPE_PATTERNS.get(self.field_types[tag], _NO_FORMAT)
                if pattern is not None:
                    out[tag] = pattern
        return out

    def _shape(self, msg_type: str, htags: tuple, btags: tuple) -> re.Pattern | None:
        """The regex for the values of messages with this MsgType and these
        header and body tags, or None when such a message needs the full
        validation (repeated or missing tags, groups, tags without pattern)."""
        fast = self._fast.get(msg_type)
        if fast is None:
            return None
        patterns, required, group_tags = fast
        tag_set = set(htags)
        if len(tag_set) != len(htags) or not self._header_required <= tag_set:
            return None
        tag_set = set(btags)
        if (
            len(tag_set) != len(btags)
            or not required <= tag_set
            or not group_tags.isdisjoint(tag_set)
        ):
            return None
        hp = self._header_patterns
        parts = [hp.get(t) for t in htags] + [patterns.get(t) for t in btags]
        if None in parts:
            return None
        return re.compile("\x01".join(parts))

    def _valid_fast(self, msg: Message) -> bool:
        """True when ``msg`` certainly passes: the common case of a message
        without repeating groups, trailer fields or unknown tags.  Its tags
        (the "shape") are checked once per shape; the values are then checked
        by one regular expression over all of them.  False means "not sure":
        the full validation then finds the exact problem (or none)."""
        if msg.out_of_order or msg.trailer or not msg.header:
            return False
        htags, hvalues = zip(*msg.header, strict=True)
        if msg.body:
            btags, bvalues = zip(*msg.body, strict=True)
        else:
            btags = bvalues = ()
        key = (msg.msg_type, htags, btags)
        shapes = self._shapes
        rx = shapes.get(key, False)
        if rx is False:
            rx = self._shape(msg.msg_type, htags, btags)
            if len(shapes) < _MAX_SHAPES:
                shapes[key] = rx
        return rx is not None and rx.fullmatch("\x01".join(hvalues + bvalues)) is not None

    # ------------------------------------------------------------------
    def is_header_field(self, tag: int) -> bool:
        return tag in self.header.fields

    def group_block(self, msg_type: str, count_tag: int) -> _Block | None:
        m = self.messages.get(msg_type)
        return m.groups.get(count_tag) if m else None

    def validate(self, msg: Message, allow_unknown_fields: bool = False) -> None:
        """Raise :class:`ValidationError` for the first problem found."""
        if self._valid_fast(msg):
            return
        self._validate_full(msg, allow_unknown_fields)

    def _validate_full(self, msg: Message, allow_unknown_fields: bool = False) -> None:
        if msg.out_of_order:
            raise ValidationError(Reason.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, msg.out_of_order)
        block = self.messages.get(msg.msg_type)
        if block is None:
            raise ValidationError(Reason.INVALID_MSGTYPE)
        present = {t for t, _ in msg.header}
        present.update((8, 9, 35))
        for t in self.header.required:
            if t not in present:
                raise ValidationError(Reason.REQUIRED_TAG_MISSING, t)
        body_top = self._top_level(msg.body, block)
        for t in block.required:
            if t not in body_top:
                raise ValidationError(Reason.REQUIRED_TAG_MISSING, t)
        self._iterate(msg.header, self.header, allow_unknown_fields, header=True)
        self._iterate(msg.trailer, self.trailer, allow_unknown_fields, header=True)
        self._iterate(msg.body, block, allow_unknown_fields)

    def _top_level(self, fields: list[tuple[int, str]], block: _Block) -> set[int]:
        """Tags present at the top level (group members are skipped)."""
        tags = {t for t, _ in fields}
        if not block.groups or block.groups.keys().isdisjoint(tags):
            return tags
        out: set[int] = set()
        i, n = 0, len(fields)
        while i < n:
            t = fields[i][0]
            out.add(t)
            i += 1
            g = block.groups.get(t)
            if g is not None:
                i = _group_end(fields, i, g)
        return out

    def _check_field(self, tag: int, value: str, allow_unknown: bool) -> bool:
        """Value checks; returns False for an unknown tag that is allowed."""
        if value == "":
            raise ValidationError(Reason.TAG_SPECIFIED_WITHOUT_A_VALUE, tag)
        chk = self._checks.get(tag)
        if chk is None:
            if allow_unknown and tag > 0:
                return False
            raise ValidationError(Reason.INVALID_TAG_NUMBER, tag)
        fmt, enum, multi = chk
        if fmt is not None and not fmt(value):
            raise ValidationError(Reason.INCORRECT_DATA_FORMAT, tag)
        if enum is not None:
            if multi:
                if any(v not in enum for v in value.split(" ")):
                    raise ValidationError(Reason.VALUE_IS_INCORRECT, tag)
            elif value not in enum:
                raise ValidationError(Reason.VALUE_IS_INCORRECT, tag)
        return True

    def _iterate(
        self,
        fields: list[tuple[int, str]],
        block: _Block,
        allow_unknown: bool,
        header: bool = False,
    ) -> int:
        """Validate ``fields`` against ``block``; returns how many fields were consumed."""
        checks = self._checks
        allowed = block.fields
        groups = block.groups
        seen: set[int] = set()
        add = seen.add
        i, n = 0, len(fields)
        while i < n:
            tag, value = fields[i]
            i += 1
            if tag in seen:
                raise ValidationError(Reason.TAG_APPEARS_MORE_THAN_ONCE, tag)
            add(tag)
            if not value:
                raise ValidationError(Reason.TAG_SPECIFIED_WITHOUT_A_VALUE, tag)
            chk = checks.get(tag)
            if chk is None:
                if allow_unknown and tag > 0:
                    continue
                raise ValidationError(Reason.INVALID_TAG_NUMBER, tag)
            fmt, enum, multi = chk
            if fmt is not None and not fmt(value):
                raise ValidationError(Reason.INCORRECT_DATA_FORMAT, tag)
            if (
                enum is not None
                and value not in enum
                and (not multi or any(v not in enum for v in value.split(" ")))
            ):
                raise ValidationError(Reason.VALUE_IS_INCORRECT, tag)
            if tag not in allowed:
                raise ValidationError(Reason.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, tag)
            if groups:
                g = groups.get(tag)
                if g is not None:
                    i = self._group(fields, i, tag, int(value), g, allow_unknown)
        return i

    def _group(
        self,
        fields: list[tuple[int, str]],
        i: int,
        count_tag: int,
        count: int,
        g: _Block,
        allow_unknown: bool,
    ) -> int:
        # Entries are split as QuickFIX splits them: a new entry starts at the
        # delimiter, or at a member already present in the current entry; the
        # group ends at the first field that is not a member.  A number of
        # entries other than the count is reason 16 naming the count tag (a
        # member before the delimiter thus makes an entry of its own), which is
        # what QuickFIX answers.
        n = len(fields)
        members = g.fields
        spans: list[tuple[int, int]] = []
        while i < n and fields[i][0] in members:
            j = i
            in_entry: set[int] = set()
            while j < n:
                t = fields[j][0]
                if t not in members or t in in_entry or (j > i and t == g.delim):
                    break
                in_entry.add(t)
                j += 1
                sub = g.groups.get(t)
                if sub is not None:  # a nested group belongs to this entry
                    j = _group_end(fields, j, sub)
            spans.append((i, j))
            i = j
        if len(spans) != count:
            raise ValidationError(Reason.INCORRECT_NUMINGROUP_COUNT, count_tag)
        for a, b in spans:
            entry = fields[a:b]
            present = self._top_level(entry, g)
            for t in g.required:
                if t not in present:
                    raise ValidationError(Reason.REQUIRED_TAG_MISSING, t)
            self._iterate(entry, g, allow_unknown)
        return i

    # ------------------------------------------------------------------
    def sort_body(self, msg_type: str, body: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """Body fields in QuickFIX's canonical order: ascending by tag, each
        repeating group (count field and its entries) kept together in order."""
        block = self.messages.get(msg_type)
        if block is None:
            return sorted(body, key=lambda f: f[0])
        chunks: list[tuple[int, list]] = []
        i, n = 0, len(body)
        while i < n:
            t = body[i][0]
            j = i + 1
            g = block.groups.get(t)
            if g is not None:
                j = _group_end(body, j, g)
            chunks.append((t, body[i:j]))
            i = j
        chunks.sort(key=lambda c: c[0])
        return [f for _, c in chunks for f in c]


def _group_end(fields: list[tuple[int, str]], i: int, g: _Block) -> int:
    """Index just past the members of group ``g`` starting at ``i``, the
    members of its nested groups included."""
    n = len(fields)
    while i < n and fields[i][0] in g.fields:
        sub = g.groups.get(fields[i][0])
        i += 1
        if sub is not None:
            i = _group_end(fields, i, sub)
    return i


@cache
def load(version: str) -> DataDictionary:
    try:
        name = FILES[version]
    except KeyError:
        raise ValueError(f"no data dictionary for {version}") from None
    return DataDictionary(json.loads((HERE / name).read_text()))
