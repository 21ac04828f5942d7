from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.fix.codec import (
    DATA_LENGTH_TAGS,
    HEADER_TAGS,
    TRAILER_TAGS,
    Framer,
    GarbledMessage,
    Message,
    checksum,
    decode,
    encode_fields,
    parse_utc_timestamp,
    utc_timestamp,
)

NOS = (
    b"8=FIX.4.4\x019=0\x0135=D\x0134=2\x0149=A\x0152=20260105-14:30:00.000\x0156=B\x01"
    b"11=ord1\x0121=1\x0138=100\x0140=2\x0144=10.5\x0154=1\x0155=IBM\x0160=20260105-14:30:00\x01"
)


def sample() -> bytes:
    return Message(
        "D",
        [(11, "ord1"), (38, "100"), (40, "2"), (44, "10.5"), (54, "1"), (55, "IBM")],
        begin_string="FIX.4.4",
        header=[(56, "B"), (49, "A"), (34, "2"), (52, "20260105-14:30:00.000")],
    ).encode()


def test_encode_computes_body_length_and_checksum():
    raw = sample()
    assert raw.startswith(b"8=FIX.4.4\x019=")
    body_start = raw.index(b"35=")
    cks_at = raw.rindex(b"10=")
    assert int(raw.split(b"\x01")[1][2:]) == cks_at - body_start
    assert int(raw[cks_at + 3 : cks_at + 6]) == checksum(raw[:cks_at])
    # header sorted after MsgType, as QuickFIX writes it
    assert b"35=D\x0134=2\x0149=A\x0152=" in raw


def test_decode_roundtrip_and_sections():
    m = decode(sample())
    assert m.begin_string == "FIX.4.4" and m.msg_type == "D"
    assert m[55] == "IBM" and m.get_int(38) == 100 and m.get(999) is None
    assert [t for t, _ in m.header] == [34, 49, 52, 56]
    assert [t for t, _ in m.body] == [11, 38, 40, 44, 54, 55]
    assert m.encode() == sample()
    assert m.out_of_order == 0


def test_header_field_after_body_is_flagged():
    raw = encode_fields("FIX.4.2", "D", [], [(11, "x"), (34, "2"), (49, "A")])
    assert decode(raw).out_of_order == 34


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.replace(b"10=", b"10=9", 1)[:-1] + b"\x01",
        lambda r: r[:-4] + b"%03d\x01" % ((int(r[-4:-1]) + 1) % 256),
        lambda r: r.replace(b"9=", b"9=1", 1),
        lambda r: r.replace(b"49=A", b"4x9=A"),
        lambda r: r.replace(b"35=D\x0134=2\x01", b"34=2\x0135=D\x01"),
        lambda r: b"9" + r[1:],
        lambda r: r[:-1],
    ],
    ids=[
        "cks-format",
        "cks-wrong",
        "bodylength",
        "bad-tag",
        "msgtype-not-third",
        "no-begin",
        "no-soh",
    ],
)
def test_garbled_messages_raise(mutate):
    raw = mutate(sample())
    assert raw != sample()
    with pytest.raises(GarbledMessage):
        decode(raw)


def test_data_field_may_contain_soh():
    raw = encode_fields("FIX.4.4", "B", [(34, "1")], [(148, "h"), (95, "5"), (96, "a\x01b=c")])
    m = decode(raw)
    assert m[96] == "a\x01b=c"


def test_negative_and_zero_tags_parse():
    raw = encode_fields("FIX.4.2", "0", [(34, "2")], [(-1, "HI"), (0, "X")])
    m = decode(raw)
    assert m.body == [(-1, "HI"), (0, "X")]


def test_framer_splits_stream_and_resyncs():
    a, b = sample(), sample().replace(b"ord1", b"ord2")
    a_fixed = decode(a).encode()
    assert b != a
    f = Framer()
    stream = b"garbage\x01" + a + b"xx" + encode_fields("FIX.4.4", "0", [(34, "3")], [])
    out = []
    for i in range(0, len(stream), 7):
        out += f.feed(stream[i : i + 7])
    assert out[0] == a_fixed
    assert decode(out[1]).msg_type == "0"
    assert f.pending <= 1


def test_framer_delimits_wrong_body_length_by_next_checksum():
    good = sample()
    declared = int(good.split(b"\x01")[1][2:])
    too_long = good.replace(b"\x019=%d" % declared, b"\x019=%d" % (declared + 20), 1)
    f = Framer()
    frames = f.feed(too_long + good)
    # declared length too long: the frame runs to the next checksum and is garbled
    assert len(frames) == 1
    with pytest.raises(GarbledMessage):
        decode(frames[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=30))
def test_framer_any_chunking(cuts):
    msgs = [sample(), encode_fields("FIX.4.2", "0", [(34, "9")], [(112, "x")]), sample()]
    stream = b"".join(msgs)
    f = Framer()
    out, pos = [], 0
    for c in cuts:
        out += f.feed(stream[pos : pos + c])
        pos += c
    out += f.feed(stream[pos:])
    assert out == msgs


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_decode_never_raises_anything_but_garbled(data):
    with contextlib.suppress(GarbledMessage):
        decode(data)
    f = Framer()
    for frame in f.feed(data):
        with contextlib.suppress(GarbledMessage):
            decode(frame)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=100, max_value=9999),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), min_size=1),
        ),
        max_size=20,
    )
)
def test_roundtrip_property(body):
    skip = HEADER_TAGS | TRAILER_TAGS | set(DATA_LENGTH_TAGS) | set(DATA_LENGTH_TAGS.values())
    body = [(t, v) for t, v in body if t not in skip]
    raw = encode_fields("FIX.4.4", "D", [(34, "1")], body)
    m = decode(raw)
    assert m.body == body


def test_timestamps():
    dt = datetime(2026, 1, 5, 14, 30, 1, 123456, tzinfo=UTC)
    assert utc_timestamp(dt) == "20260105-14:30:01.123"
    assert utc_timestamp(dt, 6) == "20260105-14:30:01.123456"
    assert utc_timestamp(dt, 0) == "20260105-14:30:01"
    assert parse_utc_timestamp("20260105-14:30:01.123456") == dt
    assert parse_utc_timestamp("20260105-14:30:01").second == 1


@pytest.mark.parametrize("field", [b"9=", b"10=", b"95="])
def test_non_ascii_digits_are_garbled_not_value_errors(field):
    # "\xb2" is SUPERSCRIPT TWO in Latin-1: str.isdigit() says yes, int() says no.
    raw = encode_fields("FIX.4.4", "B", [(34, "1")], [(148, "h"), (95, "1"), (96, "a")])
    at = raw.index(b"\x01" + field) + 1 + len(field)
    bad = raw[:at] + b"\xb2" + raw[at + 1 :]
    with pytest.raises(GarbledMessage):
        decode(bad)
    from trading.fix.codec import peek_header

    assert isinstance(peek_header(b"8=FIX.4.4\x01\xb2=1\x0135=A\x01"), dict)


def test_timestamp_cache_follows_the_clock():
    from datetime import timedelta

    dt = datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert utc_timestamp(dt) == "20261231-23:59:59.999"
    assert utc_timestamp(dt + timedelta(milliseconds=1)) == "20270101-00:00:00.000"
    assert utc_timestamp(dt.replace(year=2025)) == "20251231-23:59:59.999"
    assert utc_timestamp(dt, 6) == "20261231-23:59:59.999000"


@pytest.mark.parametrize(
    "value",
    [
        "20260105-14:30:01",
        "20260105-14:30:01.5",
        "20260105-14:30:01.123456789",
        "20261231-23:59:59",
    ],
)
def test_utc_timestamp_epoch_matches_parse(value):
    from trading.fix.codec import utc_timestamp_epoch

    assert utc_timestamp_epoch(value) == pytest.approx(parse_utc_timestamp(value).timestamp())
    assert utc_timestamp_epoch(value) == utc_timestamp_epoch(value)  # cached second


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2026",
        "20260105 14:30:01",
        "20260105-14:30:01.",
        "20260105-14:30:01x5",
        "20261305-14:30:01",
    ],
)
def test_utc_timestamp_epoch_rejects_what_parse_rejects(value):
    from trading.fix.codec import utc_timestamp_epoch

    with pytest.raises(ValueError):
        parse_utc_timestamp(value)
    with pytest.raises(ValueError):
        utc_timestamp_epoch(value)
