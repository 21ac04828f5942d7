"""Session state machine, driven sans-IO with a fake clock and transport."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trading.fix.codec import Message, encode_fields, utc_timestamp
from trading.fix.session import Application, DoNotSend
from trading.fix.store import FileStore

from .conftest import FakeTransport, Peer, RecordingApp, logged_on_acceptor, make_session


def types(msgs):
    return [m.msg_type for m in msgs]


def test_acceptor_logon_adopts_heartbeat_interval():
    s, t, peer, clock, app = make_session()
    s.connect(t)
    peer.send("A", [(98, "0"), (108, "17")])
    (resp,) = t.take()
    assert resp.msg_type == "A" and resp[108] == "17" and resp[34] == "1"
    assert resp[49] == "US" and resp[56] == "THEM"
    assert s.logged_on and s.heartbeat_interval == 17 and app.logons == 1
    assert s.next_target == 2 and s.next_sender == 2


def test_first_message_not_logon_disconnects():
    s, t, peer, *_ = make_session()
    s.connect(t)
    peer.send("0")
    assert t.closed and not t.sent


def test_acceptor_logon_timeout():
    s, t, peer, clock, _ = make_session(logon_timeout=5)
    s.connect(t)
    clock.advance(4.9)
    s.on_timer()
    assert not t.closed
    clock.advance(0.2)
    s.on_timer()
    assert t.closed


def test_heartbeat_after_silence_then_test_request_then_disconnect():
    s, t, peer, clock, _ = logged_on_acceptor(hb=10)
    clock.advance(9.9)
    s.on_timer()
    assert t.take() == []
    clock.advance(0.1)
    s.on_timer()
    assert types(t.take()) == ["0"]
    clock.advance(2.0)  # 12s since last received = 1.2 * hb
    s.on_timer()
    (tr,) = t.take()
    assert tr.msg_type == "1" and tr[112] == "TEST"
    clock.advance(11.9)
    s.on_timer()
    assert not t.closed
    clock.advance(0.2)  # 24s = 2.4 * hb without anything received
    s.on_timer()
    assert t.closed and not s.logged_on


def test_answering_test_request_resets_timeout():
    s, t, peer, clock, _ = logged_on_acceptor(hb=10)
    clock.advance(12)
    s.on_timer()
    assert types(t.take()) == ["1"]
    peer.send("0", [(112, "TEST")])
    clock.advance(13)
    s.on_timer()
    assert not t.closed


def test_test_request_is_answered_with_its_id():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("1", [(112, "abc")])
    (hb,) = t.take()
    assert hb.msg_type == "0" and hb[112] == "abc"


def test_gap_is_detected_queued_and_replayed_in_order():
    s, t, peer, clock, app = logged_on_acceptor()
    nos = [
        (11, "x"),
        (21, "1"),
        (38, "1"),
        (40, "1"),
        (54, "1"),
        (55, "A"),
        (60, utc_timestamp(clock.utcnow())),
    ]
    peer.send("D", nos, seq=4)
    (rr,) = t.take()
    assert rr.msg_type == "2" and rr[7] == "2" and rr[16] == "0"
    peer.send("D", [(11, "y"), *nos[1:]], seq=5)
    assert t.take() == []  # no redundant ResendRequest
    assert app.app_msgs == []
    ts = utc_timestamp(clock.utcnow())
    peer.send("4", [(36, "3"), (123, "Y")], seq=2, header=[(43, "Y"), (122, ts)])
    peer.send("D", [(11, "w"), *nos[1:]], seq=3, header=[(43, "Y"), (122, ts)])
    assert [m[11] for m in app.app_msgs] == ["w", "x", "y"]
    assert s.next_target == 6 and s.resend_range is None


def test_too_low_without_possdup_logs_out_and_disconnects():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("0")
    peer.send("0", seq=2)
    (lo,) = t.take()
    assert lo.msg_type == "5" and lo[58] == "MsgSeqNum too low, expecting 3 but received 2"
    assert t.closed


def test_possdup_duplicate_is_ignored_and_orig_sending_time_checked():
    s, t, peer, clock, _ = logged_on_acceptor()
    peer.send("0")
    ts = utc_timestamp(clock.utcnow())
    peer.send("0", seq=2, header=[(43, "Y"), (122, ts)])
    assert t.take() == [] and s.next_target == 3
    later = utc_timestamp(clock.utcnow() + timedelta(seconds=5))
    peer.send("0", seq=2, header=[(43, "Y"), (122, later)])
    rej, lo = t.take()
    assert rej.msg_type == "3" and rej[373] == "10" and lo.msg_type == "5"


def test_possdup_without_orig_sending_time_is_rejected():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("0")
    peer.send("0", seq=2, header=[(43, "Y")])
    (rej,) = t.take()
    assert rej[373] == "1" and rej[371] == "122"
    assert s.next_target == 3


def test_resend_replays_app_messages_and_gap_fills_admin():
    s, t, peer, clock, _ = logged_on_acceptor()
    s.send(
        Message(
            "D",
            [
                (11, "a"),
                (21, "1"),
                (38, "5"),
                (40, "1"),
                (54, "1"),
                (55, "X"),
                (60, "20260105-14:30:00"),
            ],
        )
    )
    peer.send("1", [(112, "t")])  # we answer with heartbeat seq 3
    s.send(
        Message(
            "D",
            [
                (11, "b"),
                (21, "1"),
                (38, "5"),
                (40, "1"),
                (54, "1"),
                (55, "X"),
                (60, "20260105-14:30:00"),
            ],
        )
    )
    originals = t.take()
    assert [m[34] for m in originals] == ["2", "3", "4"]
    clock.advance(1)
    peer.send("2", [(7, "1"), (16, "0")])
    out = t.take()
    assert [(m.msg_type, m[34]) for m in out] == [("4", "1"), ("D", "2"), ("4", "3"), ("D", "4")]
    assert out[0][36] == "2" and out[0][123] == "Y" and out[0][43] == "Y"
    assert out[2][36] == "4"
    assert out[1][43] == "Y" and out[1][122] == originals[0][52] and out[1][52] != originals[0][52]
    assert out[1][11] == "a" and out[3][11] == "b"
    assert s.next_sender == 5  # resends do not consume sequence numbers


def test_resend_veto_turns_message_into_gap_fill():
    class Veto(RecordingApp):
        def to_app(self, msg, session, resend):
            if resend:
                raise DoNotSend()

    s, t, peer, clock, _ = logged_on_acceptor(app=Veto())
    s.send(
        Message(
            "D", [(11, "a"), (21, "1"), (40, "1"), (54, "1"), (55, "X"), (60, "20260105-14:30:00")]
        )
    )
    t.take()
    peer.send("2", [(7, "2"), (16, "0")])
    (gf,) = t.take()
    assert gf.msg_type == "4" and gf[34] == "2" and gf[36] == "3"


def test_sequence_reset_modes():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("4", [(36, "10")], seq=0)  # reset mode: no sequence check
    assert s.next_target == 10
    peer.send("4", [(36, "5")], seq=0)
    (rej,) = t.take()
    assert rej.msg_type == "3" and rej[373] == "5"
    assert s.next_target == 10
    peer.send("4", [(36, "20"), (123, "Y")], seq=10)
    assert s.next_target == 20


def test_sequence_reset_too_low_names_no_tag():
    """QuickFIX rejects a low NewSeqNo with reason 5 and no RefTagID (371);
    checked against it in scenarios/*/SequenceResetNewSeqNoTooLow.def."""
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("0")
    peer.send("0")
    peer.send("4", [(36, "2")], seq=9)
    (rej,) = t.take()
    assert (rej.msg_type, rej[45], rej[372], rej[373]) == ("3", "9", "4", "5")
    assert rej[58] == "Value is incorrect (out of range) for this tag" and 371 not in rej
    assert s.next_target == 4


@pytest.mark.parametrize("shift", [-121, 121])
def test_logon_with_bad_sending_time_closes_the_connection_without_a_reject(shift):
    """No Reject may go out before a Logon is accepted (QuickFIX: "Tried to
    send a reject while not logged on"): the connection is closed."""
    s, t, peer, clock, app = make_session()
    s.connect(t)
    bad = utc_timestamp(clock.utcnow() + timedelta(seconds=shift))
    peer.send("A", [(98, "0"), (108, "30")], sending_time=bad)
    assert t.closed and t.take() == [] and not s.logged_on and app.logons == 0


def test_no_reject_before_logon_from_an_initiator_either():
    s, t, peer, clock, app = make_session(initiator=True, heartbeat_interval=30)
    s.connect(t)
    assert types(t.take()) == ["A"]
    bad = utc_timestamp(clock.utcnow() - timedelta(seconds=200))
    peer.send("A", [(98, "0"), (108, "30")], sending_time=bad)
    assert t.closed and t.take() == [] and app.logons == 0


@pytest.mark.parametrize("mt, body", [("1", [(112, "X")]), ("0", []), ("D", [(11, "a")])])
@pytest.mark.parametrize("seq", [None, "X", "-1", "+2", ""])
def test_msg_seq_num_missing_or_not_a_number_closes_the_connection(mt, body, seq):
    s, t, peer, clock, _ = logged_on_acceptor()
    ts = utc_timestamp(clock.utcnow())
    header = [(49, "THEM"), (52, ts), (56, "US")]
    if seq is not None:
        header.insert(0, (34, seq))
    s.on_frame(encode_fields("FIX.4.4", mt, header, body))
    assert t.closed and t.take() == []


def test_sequence_reset_without_msg_seq_num_is_rejected():
    s, t, peer, clock, _ = logged_on_acceptor()
    ts = utc_timestamp(clock.utcnow())
    s.on_frame(encode_fields("FIX.4.4", "4", [(49, "THEM"), (52, ts), (56, "US")], [(36, "5")]))
    s.on_frame(
        encode_fields("FIX.4.4", "4", [(34, ""), (49, "THEM"), (52, ts), (56, "US")], [(36, "5")])
    )
    missing, empty = t.take()
    assert (missing[373], missing[371], 45 in missing) == ("1", "34", False)
    assert (empty[373], empty[371], 45 in empty) == ("4", "34", False)
    assert not t.closed and s.next_target == 2
    peer.send("1", [(112, "ok")], seq="02")  # a leading zero is a number
    assert t.take()[0][112] == "ok" and s.next_target == 3


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
@pytest.mark.parametrize("missing", [49, 56])
def test_application_message_without_comp_id_gets_a_business_reject(begin, missing):
    s, t, peer, clock, app = logged_on_acceptor(begin=begin)
    ts = utc_timestamp(clock.utcnow())
    header = [(f, v) for f, v in [(34, "2"), (49, "THEM"), (52, ts), (56, "US")] if f != missing]
    s.on_frame(encode_fields(begin, "D", header, [(11, "a"), (21, "1")]))
    (bmr,) = t.take()
    assert (bmr.msg_type, bmr[45], bmr[372], bmr[380]) == ("j", "2", "D", "5")
    assert bmr[58] == f"Conditionally Required Field Missing ({missing})"
    assert app.app_msgs == [] and s.next_target == 3
    header = [(f, v) for f, v in [(34, "3"), (49, "THEM"), (52, ts), (56, "US")] if f != missing]
    s.on_frame(encode_fields(begin, "1", header, [(112, "x")]))
    (rej,) = t.take()
    assert (rej.msg_type, rej[371], rej[372]) == ("3", str(missing), "1")
    assert s.next_target == 4


def test_reject_reasons_quickfix_has_no_text_for_carry_no_text_or_tag():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("0")
    msg = Message("0", [], header=[(34, "2"), (49, "THEM"), (56, "US")])
    s.generate_reject(msg, 15, 448)  # repeating group fields out of order
    (rej,) = t.take()
    assert rej[373] == "15" and 58 not in rej and 371 not in rej


def test_logout_handshake_initiated_by_us_and_timeout():
    s, t, peer, clock, app = logged_on_acceptor()
    s.logout("bye")
    (lo,) = t.take()
    assert lo.msg_type == "5" and lo[58] == "bye"
    clock.advance(1.9)
    s.on_timer()
    assert not t.closed
    clock.advance(0.2)
    s.on_timer()
    assert t.closed and app.logouts == 1


def test_logout_answered():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("5")
    (lo,) = t.take()
    assert lo.msg_type == "5" and t.closed


def test_sending_time_accuracy():
    s, t, peer, clock, _ = logged_on_acceptor()
    old = utc_timestamp(clock.utcnow() - timedelta(seconds=121))
    peer.send("0", sending_time=old)
    rej, lo = t.take()
    assert rej[373] == "10" and rej[45] == "2" and lo.msg_type == "5"


def test_comp_id_problem():
    s, t, peer, *_ = logged_on_acceptor()
    ts = utc_timestamp(s.clock.utcnow())
    s.on_frame(encode_fields("FIX.4.4", "0", [(34, "2"), (49, "XXXX"), (52, ts), (56, "US")], []))
    rej, lo = t.take()
    assert rej[373] == "9" and rej[58] == "CompID problem" and lo.msg_type == "5"


def test_second_logon_refused():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send("A", [(98, "0"), (108, "30")])
    assert t.closed


def test_logon_with_reset_seq_num_flag_resets_both_sides():
    s, t, peer, *_ = logged_on_acceptor()
    for _ in range(5):
        peer.send("0")
    peer.seq = 1
    peer.send("A", [(98, "0"), (108, "30"), (141, "Y")])
    (resp,) = t.take()
    assert resp[34] == "1" and resp[141] == "Y" and s.next_target == 2


def test_validation_reject_increments_and_answers():
    s, t, peer, *_ = logged_on_acceptor()
    peer.send(
        "D", [(11, "x"), (21, "9"), (40, "1"), (54, "1"), (55, "A"), (60, "20260105-14:30:00")]
    )
    (rej,) = t.take()
    assert (rej[371], rej[372], rej[373]) == ("21", "D", "5")
    assert s.next_target == 3


def test_unsupported_app_message_gets_business_reject():
    s, t, peer, clock, _ = logged_on_acceptor(app=Application())
    peer.send("D", [(11, "x"), (40, "1"), (54, "1"), (55, "A"), (60, "20260105-14:30:00")])
    (bmr,) = t.take()
    assert bmr.msg_type == "j" and bmr[380] == "3" and bmr[372] == "D"
    assert s.next_target == 3


def test_application_exception_never_escapes():
    class Boom(RecordingApp):
        def from_app(self, msg, session):
            raise RuntimeError("bug")

        def on_logon(self, session):
            raise RuntimeError("bug in on_logon")

    s, t, peer, *_ = logged_on_acceptor(app=Boom())
    peer.send("D", [(11, "x"), (40, "1"), (54, "1"), (55, "A"), (60, "20260105-14:30:00")])
    (bmr,) = t.take()
    assert bmr.msg_type == "j" and bmr[380] == "4"
    assert s.next_target == 3 and not t.closed


def test_garbled_message_ignored_when_logged_on():
    s, t, peer, *_ = logged_on_acceptor()
    s.on_frame(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")
    assert not t.closed and t.take() == [] and s.next_target == 2


def test_initiator_logon_flow_and_timeout():
    s, t, peer, clock, app = make_session(
        initiator=True, heartbeat_interval=15, reset_seq_num_flag=True
    )
    s.connect(t)
    (logon,) = t.take()
    assert logon.msg_type == "A" and logon[108] == "15" and logon[141] == "Y"
    clock.advance(11)
    s.on_timer()
    assert t.closed
    t2 = FakeTransport()
    s.connect(t2)
    t2.take()
    peer.send("A", [(98, "0"), (108, "15"), (141, "Y")])
    assert s.logged_on and app.logons == 1 and t2.take() == []


def test_messages_sent_while_disconnected_are_stored_for_resend():
    s, t, peer, clock, _ = make_session(initiator=True)
    nos = Message(
        "D", [(11, "q"), (21, "1"), (40, "1"), (54, "1"), (55, "A"), (60, "20260105-14:30:00")]
    )
    assert s.send(nos) is False
    assert s.next_sender == 2
    s.connect(t)
    (logon,) = t.take()
    assert logon[34] == "2"
    peer.send("A", [(98, "0"), (108, "30")])
    peer.send("2", [(7, "1"), (16, "0")])
    out = t.take()
    assert [(m.msg_type, m[34]) for m in out] == [("D", "1"), ("4", "2")]


def test_file_store_survives_restart(tmp_path):
    store = FileStore(tmp_path, "sess")
    s, t, peer, clock, _ = make_session(store=store)
    s.connect(t)
    peer.send("A", [(98, "0"), (108, "30")])
    s.send(
        Message(
            "D", [(11, "p"), (21, "1"), (40, "1"), (54, "1"), (55, "A"), (60, "20260105-14:30:00")]
        )
    )
    store.close()
    store2 = FileStore(tmp_path, "sess")
    assert (store2.next_sender, store2.next_target) == (3, 2)
    (seq, raw) = store2.get_range(1, 10)[0]
    assert seq == 2 and b"11=p\x01" in raw
    store2.reset()
    store3 = FileStore(tmp_path, "sess")
    assert (store3.next_sender, store3.next_target, store3.get_range(1, 9)) == (1, 1, [])


def test_microsecond_sending_time():
    s, t, peer, clock, _ = logged_on_acceptor(timestamp_precision=6)
    peer.send("1", [(112, "x")])
    (hb,) = t.take()
    assert len(hb[52]) == 24


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_reject_reason_field_by_version(begin):
    s, t, peer, *_ = logged_on_acceptor(begin=begin)
    # header field after a body field: structure error 14
    ts = utc_timestamp(s.clock.utcnow())
    bad = encode_fields(begin, "0", [(34, "2")], [(112, "x"), (49, "THEM"), (52, ts), (56, "US")])
    s.on_frame(bad)
    (rej,) = t.take()
    assert rej[58] == "Tag specified out of required order"
    assert (373 in rej) == (begin == "FIX.4.4")


def test_peer_helper_is_consistent():
    s, t, peer, *_ = make_session()
    assert isinstance(peer, Peer)


def test_initiator_logon_refused_with_logout():
    s, t, peer, clock, app = make_session(initiator=True)
    s.connect(t)
    t.take()
    peer.send("5", [(58, "unknown account")])
    assert t.closed and not s.logged_on
    assert any("unknown account" in e for e in s.events)


def test_application_can_refuse_a_logon():
    from trading.fix.session import RejectLogon

    class Gate(RecordingApp):
        def from_admin(self, msg, session):
            if msg.msg_type == "A" and msg.get(554) != "secret":
                raise RejectLogon("bad password")

    s, t, peer, clock, app = make_session(app=Gate())
    s.connect(t)
    peer.send("A", [(98, "0"), (108, "30"), (554, "wrong")])
    (lo,) = t.take()
    assert lo.msg_type == "5" and lo[58] == "bad password"
    assert t.closed and not s.logged_on and app.logons == 0


def test_zero_heartbeat_interval_sends_no_heartbeats():
    s, t, peer, clock, _ = logged_on_acceptor(hb=0)
    clock.advance(3600)
    s.on_timer()
    assert t.take() == [] and not t.closed


def test_an_application_that_cannot_take_a_message_gets_it_again_after_reconnecting():
    from trading.fix.session import ApplicationUnavailable

    class Flaky(RecordingApp):
        down = True

        def from_app(self, msg, session):
            if self.down:
                raise ApplicationUnavailable("database unavailable")
            super().from_app(msg, session)

    app = Flaky()
    s, t, peer, *_ = logged_on_acceptor(app=app)
    order = [(11, "x"), (40, "1"), (54, "1"), (55, "A"), (60, "20260105-14:30:00")]
    peer.send("D", order)  # MsgSeqNum 2
    assert t.closed and not s.connected
    assert t.take() == []  # neither a reject nor a business reject
    assert s.next_target == 2 and app.app_msgs == []  # not consumed

    app.down = False
    t2 = FakeTransport()
    s.connect(t2)
    peer.send("A", [(98, "0"), (108, "30")])  # MsgSeqNum 3: a gap from 2
    (logon, resend) = t2.take()
    assert logon.msg_type == "A"
    assert resend.msg_type == "2" and resend[7] == "2"
