from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.fix import dictionary
from trading.fix.codec import Message, decode, encode_fields
from trading.fix.dictionary import ValidationError, generate

from .conftest import require

TS = "20260105-14:30:00.000"
HDR = [(34, "2"), (49, "A"), (52, TS), (56, "B")]


def msg(begin, mt, body, header=HDR):
    return decode(encode_fields(begin, mt, header, body))


def reason(begin, mt, body, header=HDR):
    with pytest.raises(ValidationError) as e:
        dictionary.load(begin).validate(msg(begin, mt, body, header))
    return e.value.reason, e.value.tag


NOS42 = [
    (11, "x"),
    (21, "1"),
    (38, "100"),
    (40, "1"),
    (54, "1"),
    (55, "IBM"),
    (60, "20260105-14:30:00"),
]


def test_valid_message_passes():
    dictionary.load("FIX.4.2").validate(msg("FIX.4.2", "D", NOS42))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([f for f in NOS42 if f[0] != 55], (1, 55)),
        ([*NOS42, (999, "x")], (0, 999)),
        ([*NOS42, (112, "x")], (2, 112)),
        ([(11, ""), *NOS42[1:]], (4, 11)),
        ([*NOS42[:4], (54, "X"), *NOS42[5:]], (5, 54)),
        ([*NOS42[:2], (38, "1e5"), *NOS42[3:]], (6, 38)),
        ([*NOS42[:6], (60, "2026-01-05")], (6, 60)),
        ([*NOS42, (11, "again")], (13, 11)),
        ([*NOS42, (386, "2"), (336, "A")], (16, 386)),
    ],
    ids=[
        "required",
        "invalid-tag",
        "not-for-type",
        "no-value",
        "enum",
        "float",
        "timestamp",
        "repeated",
        "group-count",
    ],
)
def test_validation_reasons(body, expected):
    assert reason("FIX.4.2", "D", body) == expected


def test_invalid_msgtype_and_header_required():
    assert reason("FIX.4.4", "*", []) == (11, None)
    assert reason("FIX.4.4", "0", [], header=[(34, "2"), (49, "A"), (56, "B")]) == (1, 52)


def test_groups_and_nested_required():
    d = dictionary.load("FIX.4.4")
    # NoPartyIDs group in a 4.4 NewOrderSingle, two entries
    body = [
        (11, "x"),
        (453, "2"),
        (448, "P1"),
        (447, "D"),
        (452, "1"),
        (448, "P2"),
        (447, "D"),
        (452, "3"),
        (54, "1"),
        (55, "IBM"),
        (40, "1"),
        (60, "20260105-14:30:00"),
    ]
    d.validate(msg("FIX.4.4", "D", body))
    m = Message("D", body)
    order = [t for t, _ in d.sort_body("D", m.body)]
    assert order == [11, 40, 54, 55, 60, 453, 448, 447, 452, 448, 447, 452]
    bad = [
        (11, "x"),
        (453, "1"),
        (447, "D"),
        (448, "P1"),
        (54, "1"),
        (40, "1"),
        (60, "20260105-14:30:00"),
    ]
    # an entry starts at the delimiter or at a repeated member: here [447], [448],
    # two entries for a count of one, which QuickFIX rejects as reason 16 naming
    # the count tag (scenarios/fix44/RepeatingGroupEntryWithoutDelimiter.def)
    assert reason("FIX.4.4", "D", bad) == (16, 453)
    # one entry without its delimiter, for a count of one: QuickFIX takes it
    # (PartyID is not required in the entry), and so do we
    one_entry_no_delimiter = [(11, "x"), (453, "1"), (447, "D"), (452, "1"), (54, "1")]
    one_entry_no_delimiter += [(40, "1"), (60, "20260105-14:30:00")]
    d.validate(msg("FIX.4.4", "D", one_entry_no_delimiter))
    repeated_member = [(11, "x"), (453, "1"), (448, "P1"), (447, "D"), (447, "D"), (54, "1")]
    repeated_member += [(40, "1"), (60, "20260105-14:30:00")]
    assert reason("FIX.4.4", "D", repeated_member) == (16, 453)


def test_nested_group_kept_in_order_when_sorted():
    """The echo writes a body in QuickFIX's order: a nested group (PtysSubGrp
    inside Parties) stays inside its entry, as QuickFIX echoes it."""
    d = dictionary.load("FIX.4.4")
    body = [(11, "x"), (453, "1"), (448, "A"), (447, "D"), (452, "1"), (802, "2")]
    body += [(523, "X"), (803, "1"), (523, "Y"), (803, "2"), (54, "1"), (40, "1")]
    body += [(60, "20260105-14:30:00"), (38, "100")]
    d.validate(msg("FIX.4.4", "D", body))
    order = d.sort_body("D", body)
    assert [t for t, _ in order] == [11, 38, 40, 54, 60, 453, 448, 447, 452, 802] + [
        523,
        803,
        523,
        803,
    ]


def test_shipped_tables_cover_versions():
    for v in ("FIX.4.2", "FIX.4.4"):
        d = dictionary.load(v)
        assert d.version == v
        assert {"0", "1", "2", "3", "4", "5", "A"} <= d.admin_types
        assert {"D", "F", "G", "8", "9", "H", "Q", "j"} <= set(d.messages)
    with pytest.raises(ValueError):
        dictionary.load("FIX.5.0")


def test_generator_reproduces_shipped_files(tmp_path):
    src = None
    for base in (Path(sysconfig.get_path("data")), Path(sys.prefix)):
        if (base / "share" / "quickfix" / "FIX44.xml").exists():
            src = base / "share" / "quickfix"
    require(src is not None, "QuickFIX data dictionaries (quickfix package) not installed")
    written = generate.generate(src, tmp_path)
    for path in written:
        shipped = Path(generate.__file__).with_name(path.name)
        assert json.loads(path.read_text()) == json.loads(shipped.read_text()), path.name
    assert (Path(generate.__file__).parent / "LICENSE-QuickFIX.txt").exists()


_VALUES = ["", "1", "0", "2", "Y", "X", "100", "1.5", "-3", ".5", "1.", ".", "abc", "1 2", " "]
_VALUES += ["20260105-14:30:00", "20261305-14:30:00", "20260105-24:30:00", "20260132-14:30:00"]
_VALUES += ["20260105-14:30:60.5", "20260105-14:30:00.1234567891", "12:00:00", "202601", "1e5"]
_TAGS = [1, 6, 11, 14, 17, 18, 20, 21, 31, 32, 37, 38, 39, 40, 43, 44, 52, 54, 55, 58, 59, 60]
_TAGS += [97, 98, 108, 112, 122, 141, 150, 151, 386, 336, 453, 448, 627, 628, 999, 0, 34, 49, 115]
_FIELD = st.tuples(st.sampled_from(_TAGS), st.sampled_from(_VALUES))


@settings(max_examples=600, deadline=None)
@given(
    begin=st.sampled_from(["FIX.4.2", "FIX.4.4"]),
    msg_type=st.sampled_from(["D", "D", "D", "8", "G", "0", "j"]),
    drop=st.lists(st.integers(0, 11), max_size=1),
    extra=st.lists(st.tuples(st.integers(0, 12), _FIELD), max_size=3),
    header_extra=st.lists(_FIELD, max_size=2),
)
def test_fast_path_never_accepts_what_full_validation_rejects(
    begin, msg_type, drop, extra, header_extra
):
    """``validate`` first tries a fast path for plain messages; whenever it
    accepts, the full validation must accept too (and it must accept the
    common valid messages)."""
    d = dictionary.load(begin)
    base = NOS42 if msg_type == "D" else [(11, "x"), (55, "IBM"), (54, "1"), (38, "100")]
    body = [f for i, f in enumerate(base) if i not in drop]
    for pos, field in extra:
        body.insert(min(pos, len(body)), field)
    try:
        m = msg(begin, msg_type, body, header=HDR + header_extra)
    except Exception:
        return
    fast = d._valid_fast(m)
    try:
        d._validate_full(m)
        full = True
    except ValidationError:
        full = False
    assert full or not fast


def test_fast_path_accepts_plain_valid_messages():
    assert dictionary.load("FIX.4.2")._valid_fast(msg("FIX.4.2", "D", NOS42))
    # a repeating group is left to the full validation (which accepts it)
    d = dictionary.load("FIX.4.4")
    grp = [(11, "x"), (453, "1"), (448, "P1"), (447, "D"), (452, "1"), (54, "1")]
    grp += [(55, "IBM"), (40, "1"), (60, "20260105-14:30:00")]
    m = msg("FIX.4.4", "D", grp)
    assert not d._valid_fast(m)
    d.validate(m)


@pytest.mark.parametrize(
    ("body", "header_extra"),
    [
        ([*NOS42, (386, "1")], []),  # group count without its entries
        ([*NOS42, (386, "0")], []),
        ([*NOS42, (78, "2"), (79, "A")], []),
        ([*NOS42, (11, "again")], []),  # repeated tag
        ([*NOS42, (999, "x")], []),  # undefined tag
        ([*NOS42, (112, "x")], []),  # not defined for the message type
        ([(11, ""), *NOS42[1:]], []),  # empty value
        ([f for f in NOS42 if f[0] != 55], []),  # required field missing
        (NOS42, [(627, "1")]),  # header group count without entries (4.4 NoHops)
        (NOS42, [(34, "3")]),  # header tag repeated
        (NOS42, [(43, "X")]),  # bad enum in the header
        ([*NOS42, (93, "1"), (89, "x")], []),  # trailer fields
    ],
)
def test_fast_path_defers_every_problem_case(body, header_extra):
    for begin in ("FIX.4.2", "FIX.4.4"):
        d = dictionary.load(begin)
        try:
            m = msg(begin, "D", body, header=HDR + header_extra)
        except Exception:
            continue
        try:
            d._validate_full(m)
        except ValidationError:
            assert not d._valid_fast(m), (begin, body, header_extra)


def test_fast_path_patterns_accept_exactly_what_the_field_checks_accept():
    import random
    import re

    rng = random.Random(7)
    values = ["", "1", "0", "Y", "N", "X", "100", "1.5", "-3", ".5", "5.", ".", "-", "abc"]
    values += ["1 2", "A B", " ", "1  2", "1 ", "1e5", "\xb2", "\n", "202601", "202601w3"]
    values += ["202601w6", "20260101", "2026010", "12:00:00", "12:00:00.5", "20260105-14:30:00"]
    values += ["20261305-14:30:00", "20260105-24:30:00", "20260132-14:30:00", "20260100-14:30:00"]
    values += ["20260105-14:30:60", "20260105-14:30:61", "20260105-14:60:00", "20260105-14:30:00."]
    values += ["20260105-14:30:00.123456789", "20260105-14:30:00.1234567891"]
    values += ["".join(rng.choices("0123456789.-: w", k=rng.randint(1, 18))) for _ in range(100)]
    for begin in ("FIX.4.2", "FIX.4.4"):
        d = dictionary.load(begin)
        patterns = dict(d._header_patterns)
        for block_patterns, _, _ in d._fast.values():
            patterns.update(block_patterns)
        for tag, pattern in patterns.items():
            _, enum, _ = d._checks[tag]
            samples = values + sorted(enum or ())[:20]
            if enum and len(enum) > 2:
                samples.append(" ".join(sorted(enum)[:3]))
            for v in samples:
                try:
                    d._check_field(tag, v, False)
                    ok = True
                except ValidationError:
                    ok = False
                assert (re.fullmatch(pattern, v) is not None) == ok, (begin, tag, v)
