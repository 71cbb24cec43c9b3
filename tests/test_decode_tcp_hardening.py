"""TCP and V2GTP under hostile or unlucky traces (issues 18 and 13): reordering at scale, conflicting
overlaps, lying lengths, retransmissions after FIN, and how a connection ended."""
from __future__ import annotations

import struct
import subprocess
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode import events as ev
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.tcp import Conflict, Gap, StreamReassembler
from ccssniff.decode.v2gtp import Pdu, StreamProblem, V2gtpFramer, build_header

REPO = Path(__file__).resolve().parents[1]
LAB_DIN = REPO / "captures" / "din_dc.pcapng"  # our own emulators' session, 386 V2G messages

EV_IP = bytes.fromhex("fe800000000000000000000000000001")
EVSE_IP = bytes.fromhex("fe800000000000000000000000000002")
EV_MAC, EVSE_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
ISN = 0xFFFFF000


def pdu(body: bytes) -> bytes:
    return build_header(0x8001, len(body)) + body


def one_byte_run(order, data):
    stream, framer = StreamReassembler(), V2gtpFramer()
    stream.syn(ISN)
    out = []
    for offset in order:
        out += framer.feed(stream.segment((ISN + 1 + offset) & 0xFFFFFFFF, data[offset:offset + 1]))
    out += framer.feed(stream.flush())
    out += framer.flush()
    return out


def many_messages(count):
    bodies = [bytes([n % 251]) * (5 + n % 13) for n in range(count)]
    return bodies, b"".join(pdu(b) for b in bodies)


# --- reordering at scale ----------------------------------------------------------------------

def test_twelve_thousand_one_byte_segments_in_reverse_order_decode_completely():
    bodies, data = many_messages(700)
    assert len(data) > 12_000
    out = one_byte_run(range(len(data) - 1, -1, -1), data)
    assert [item.payload for item in out if isinstance(item, Pdu)] == bodies
    assert not [item for item in out if isinstance(item, StreamProblem)]


def test_one_byte_segments_behind_a_lost_first_byte_decode_once_it_comes():
    bodies, data = many_messages(1200)
    assert len(data) > 20_000
    out = one_byte_run(list(range(1, len(data))) + [0], data)  # the first byte is retransmitted last
    assert [item.payload for item in out if isinstance(item, Pdu)] == bodies
    assert not [item for item in out if isinstance(item, StreamProblem)]


def test_first_byte_never_comes_one_gap_then_every_later_message():
    bodies, data = many_messages(1200)
    out = one_byte_run(range(1, len(data)), data)
    assert [item.payload for item in out if isinstance(item, Pdu)] == bodies[1:]
    problems = [item for item in out if isinstance(item, StreamProblem)]
    assert problems[0].reason == "1 bytes missing from the capture"
    assert len(problems) == 2  # the gap, then the rest of the first message skipped


# --- overlapping segments with different bytes ------------------------------------------------

def test_in_order_retransmission_with_different_bytes_is_reported_first_copy_kept():
    stream = StreamReassembler()
    stream.syn(0)
    assert stream.segment(1, b"abcdef", frame=10) == [b"abcdef"]
    assert stream.segment(1, b"abXdef", frame=11) == []
    assert stream.conflicts == [Conflict(0, 6, 10, 11)]
    assert stream.segment(4, b"defgh", frame=12) == [b"gh"]  # same bytes: no conflict
    assert len(stream.conflicts) == 1


def test_bogus_copy_first_stays_and_is_reported_when_the_real_one_follows():
    stream = StreamReassembler()
    stream.syn(0)
    # both wait behind a hole: the bogus copy (frame 2) before the real one (frame 3)
    assert stream.segment(5, b"EFGH", frame=2) == []
    assert stream.segment(5, b"efgh", frame=3) == []
    assert stream.segment(1, b"abcd", frame=4) == [b"abcd", b"EFGH"]
    assert stream.conflicts == [Conflict(4, 4, 2, 3)]


def test_earlier_arrived_data_wins_over_a_later_overlapping_segment_that_starts_before_it():
    stream = StreamReassembler()
    stream.syn(0)
    stream.segment(5, b"efgh", frame=1)  # offset 4..8, first
    stream.segment(3, b"cdXY", frame=2)  # offset 2..6, later, differs on offset 4..6
    items = stream.segment(1, b"ab", frame=3)
    assert b"".join(i for i in items if isinstance(i, bytes)) == b"abcdefgh"
    assert stream.conflicts == [Conflict(4, 2, 1, 2)]


def test_pipeline_reports_conflicting_overlap_with_both_frame_numbers_in_both_orders():
    first, second = pdu(b"\x80\x01\x02"), pdu(b"\x80\x99\x02")
    for kept, dropped in ((first, second), (second, first)):
        frames = [tcp(40000, 15118, 10, flags=0x02), tcp(15118, 40000, 70, flags=0x12, ack=11, from_ev=False),
                  tcp(40000, 15118, 11, kept), tcp(40000, 15118, 11, dropped)]
        events = run(frames, decode_exi=False)
        [overlap] = [e for e in events if e.kind == ev.ERROR and e.name == "TCP overlap"]
        assert (overlap.fields["kept_frame"], overlap.fields["conflicting_frame"]) == (3, 4)
        assert overlap.connection == 1 and overlap.direction == ev.EV_TO_EVSE
        assert [e.payload for e in events if e.kind == ev.V2G] == [kept[8:]]


# --- the lab session as TCP frames ---------------------------------------------------------------

@lru_cache(maxsize=1)
def lab_messages():
    """(from_ev, V2GTP bytes) of the lab DIN session, in order."""
    pipeline, out = Pipeline(decode_exi=False), []
    for packet in read_packets(LAB_DIN):
        out += pipeline.feed(packet)
    out += pipeline.finish()
    return tuple((e.direction == ev.EV_TO_EVSE, build_header(e.payload_type, len(e.payload)) + e.payload)
                 for e in out if e.kind == ev.V2G)


def ipv6(src, dst, next_header, payload):
    header = struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64, src, dst)
    macs = EVSE_MAC + EV_MAC if src == EV_IP else EV_MAC + EVSE_MAC
    return macs + b"\x86\xdd" + header + payload


def tcp(src_port, dst_port, seq, payload=b"", flags=0x18, ack=0, from_ev=True):
    segment = struct.pack("!HHIIBBHHH", src_port, dst_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                          65535, 0, 0) + payload
    return ipv6(EV_IP, EVSE_IP, 6, segment) if from_ev else ipv6(EVSE_IP, EV_IP, 6, segment)


def udp(payload=b"x"):
    return ipv6(EV_IP, EVSE_IP, 17, struct.pack("!HHHH", 514, 514, 8 + len(payload), 0) + payload)


class Connection:
    """Builds the frames of one EV-EVSE TCP connection with consistent sequence numbers."""

    def __init__(self, port=50000):
        self.port, self.ev_seq, self.evse_seq = port, 1000, 900_000
        self.frames = [tcp(port, 15118, self.ev_seq - 1, flags=0x02),
                       tcp(15118, port, self.evse_seq - 1, flags=0x12, ack=self.ev_seq, from_ev=False),
                       tcp(port, 15118, self.ev_seq, flags=0x10, ack=self.evse_seq)]
        self.sent = []  # every data frame, for retransmissions

    def send(self, from_ev, data):
        if from_ev:
            frame = tcp(self.port, 15118, self.ev_seq, data, ack=self.evse_seq)
            self.ev_seq += len(data)
        else:
            frame = tcp(15118, self.port, self.evse_seq, data, ack=self.ev_seq, from_ev=False)
            self.evse_seq += len(data)
        self.frames.append(frame)
        self.sent.append(frame)

    def fin(self, from_ev):
        if from_ev:
            self.frames.append(tcp(self.port, 15118, self.ev_seq, flags=0x11, ack=self.evse_seq))
            self.ev_seq += 1
        else:
            self.frames.append(tcp(15118, self.port, self.evse_seq, flags=0x11, ack=self.ev_seq, from_ev=False))
            self.evse_seq += 1

    def rst(self, from_ev):
        if from_ev:
            self.frames.append(tcp(self.port, 15118, self.ev_seq, flags=0x14, ack=self.evse_seq))
        else:
            self.frames.append(tcp(15118, self.port, self.evse_seq, flags=0x14, ack=self.ev_seq, from_ev=False))


def run(frames, step=0.05, **options):
    pipeline, out = Pipeline(**options), []
    for index, data in enumerate(frames, 1):
        out += pipeline.feed(SimpleNamespace(index=index, timestamp=1000.0 + index * step, linktype=1, data=data))
    out += pipeline.finish()
    return out


def ends(events):
    return [(e.connection, e.name, e.fields.get("by")) for e in events
            if e.kind == ev.CONNECTION and e.name != "TCP connection"]


def test_retransmission_after_fin_is_no_new_connection_and_numbers_stay_consecutive():
    messages = lab_messages()[:12]
    refused = [tcp(49999, 15118, 5, flags=0x02), tcp(15118, 49999, 0, flags=0x14, ack=6, from_ev=False)]
    first = Connection(50000)
    for from_ev, data in messages:
        first.send(from_ev, data)
    first.fin(True)
    first.fin(False)
    first.frames += [tcp(50000, 15118, first.ev_seq, flags=0x10, ack=first.evse_seq),
                     first.sent[-1], first.sent[-2],  # late retransmissions of both sides
                     tcp(15118, 50000, first.evse_seq - 1, flags=0x11, ack=first.ev_seq, from_ev=False)]
    second = Connection(50001)
    for from_ev, data in messages:
        second.send(from_ev, data)
    second.rst(False)
    events = run(refused + first.frames + second.frames)
    opened = [e.connection for e in events if e.kind == ev.CONNECTION and e.name == "TCP connection"]
    assert opened == [1, 2]
    assert not [e for e in events if e.kind == ev.SCHEMA and e.name == "schema assumed"]
    assert len([e for e in events if e.kind == ev.V2G]) == 2 * len(messages)
    assert ends(events) == [(1, "TCP connection closed", "EV"), (2, "TCP connection reset", "EVSE")]


def test_a_new_syn_on_the_same_ports_after_fin_is_a_new_connection():
    messages = lab_messages()[:4]
    first = Connection(50000)
    for from_ev, data in messages:
        first.send(from_ev, data)
    first.fin(False)
    first.fin(True)
    again = Connection(50000)  # even with the same initial sequence numbers: its SYN opens it
    for from_ev, data in messages:
        again.send(from_ev, data)
    events = run(first.frames + again.frames)
    assert [e.connection for e in events if e.kind == ev.CONNECTION and e.name == "TCP connection"] == [1, 2]
    assert ends(events)[0] == (1, "TCP connection closed", "EVSE")
    assert ends(events)[1][:2] == (2, "TCP connection open at end of capture")


def test_capture_cut_mid_loop_is_open_at_end_and_the_last_request_no_violation():
    messages = lab_messages()
    loop = [n for n, (from_ev, data) in enumerate(messages) if from_ev and b"" != data and n > 40][0]
    connection = Connection()
    for from_ev, data in messages[:loop + 1]:  # ends with a request the capture saw no answer to
        connection.send(from_ev, data)
    events = run(connection.frames)
    [end] = [e for e in events if e.kind == ev.CONNECTION and e.name != "TCP connection"]
    assert end.name == "TCP connection open at end of capture"
    assert end.fields["last_frame_time"] == end.fields["connection_last_time"] == 1000.0 + len(connection.frames) * 0.05
    assert not [e for e in events if e.kind == ev.SEQUENCE and e.name == "missing_response"]
    # the same cut, but the capture went on for a minute without an answer: that is a timeout
    events = run(connection.frames + [udp()] * 1, step=30.0)
    [missing] = [e for e in events if e.kind == ev.SEQUENCE and e.name == "missing_response"]
    assert "before the capture ended" in missing.fields["detail"]


def test_fin_closed_connection_still_reports_an_unanswered_request():
    messages = lab_messages()
    connection = Connection()
    for from_ev, data in messages[:43]:
        connection.send(from_ev, data)
    if not messages[42][0]:
        connection.send(*messages[43])
    connection.fin(False)
    connection.fin(True)
    events = run(connection.frames)
    assert ends(events) == [(1, "TCP connection closed", "EVSE")]
    assert [e.name for e in events if e.kind == ev.SEQUENCE] == ["missing_response"]


# --- lying V2GTP lengths --------------------------------------------------------------------------

def lying_session(claim):
    messages = list(lab_messages())
    ev_indices = [n for n, (from_ev, _) in enumerate(messages) if from_ev]
    victim = ev_indices[5]
    from_ev, data = messages[victim]
    messages[victim] = (from_ev, data[:4] + claim(len(data) - 8).to_bytes(4, "big") + data[8:])
    connection = Connection()
    for from_ev, data in messages:
        connection.send(from_ev, data)
    connection.fin(True)
    connection.fin(False)
    return messages, victim, run(connection.frames)


def test_length_claiming_262144_bytes_does_not_swallow_the_rest_of_the_direction():
    messages, victim, events = lying_session(lambda real: 262_144)
    decoded = [e for e in events if e.kind == ev.V2G and e.direction == ev.EV_TO_EVSE]
    sent = sum(1 for from_ev, _ in messages if from_ev)
    assert len(decoded) == sent - 1  # only the message behind the lying header is lost
    [lie] = [e for e in events if e.kind == ev.ERROR and "claims 262144 bytes" in e.fields.get("reason", "")]
    assert lie.direction == ev.EV_TO_EVSE
    assert len([e for e in events if e.kind == ev.V2G]) == len(messages) - 1


def test_length_covering_the_next_message_that_does_not_decode_resynchronises_inside_it():
    messages, victim, events = lying_session(lambda real: real + 40)
    decoded = [e for e in events if e.kind == ev.V2G]
    assert len(decoded) == len(messages) - 1
    assert [e for e in events if e.kind == ev.ERROR and "does not decode" in e.fields.get("reason", "")]


def test_sdp_payload_type_with_a_long_length_in_a_tcp_stream_is_a_broken_header():
    framer = V2gtpFramer()
    lie = build_header(0x9001, 5000) + bytes(30)
    good = pdu(b"\x80\x01")
    out = framer.feed([lie + good])
    assert [item.payload for item in out if isinstance(item, Pdu)] == [b"\x80\x01"]
    [problem] = [item for item in out if isinstance(item, StreamProblem)]
    assert "exceeds 20 for payload type 0x9001" in problem.reason


def test_gap_items_are_unchanged_for_consumers():
    assert Gap(5) == (5,)


# --- real captures against tshark's conversations ------------------------------------------------

@pytest.mark.parametrize("name", [
    # EVSE sends FIN (frame 2729), the EV still sends data (2735), then RST: one connection, as tshark says
    "pyplc/2022-12-20_alpi_currentDemandSequenceErrorShutdown.pcapng",
    # dozens of refused connection attempts between the V2G connections: they get no number
    "everest/Audi/Q4/ac_iso2-1.dump",
    "pyplc/2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng",
    "pyplc/2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng",
    "everest/VW/id.3/iso_15118-2_AC/2023-04-14T12-45-39.624Z-3_config-ac-iso2/ethernet-traffic.dump",
    "tux-evse/2024-03-28_iso15118-20_ac3ph_6_tls1.3.pcapng",  # TLS connections count too
])
def test_v2g_connections_are_tsharks_conversations_numbered_consecutively(shared_dir, tshark, name):
    path = shared_dir / "captures" / name
    streams = subprocess.run(
        [tshark, "-r", str(path), "-Y", "tcp.len > 7 && (tcp.payload[0:2] == 01:fe || tls)", "-T", "fields",
         "-e", "tcp.stream"], capture_output=True, text=True, timeout=120).stdout.split()
    pipeline, events = Pipeline(decode_exi=False), []
    for packet in read_packets(path):
        events += pipeline.feed(packet)
    events += pipeline.finish()
    opened = [e.connection for e in events if e.kind == ev.CONNECTION and e.name == "TCP connection"]
    assert opened == list(range(1, len(set(streams)) + 1))
    ended = [e.connection for e in events if e.kind == ev.CONNECTION and e.name != "TCP connection"]
    assert sorted(ended) == opened


def test_out_of_order_data_beyond_the_bound_is_reported_and_decoding_resynchronises():
    message = pdu(b"\x80\x01\x02")
    stream = message * (300_000 // len(message))
    frames = [tcp(40000, 15118, 10, flags=0x02), tcp(15118, 40000, 70, flags=0x12, ack=11, from_ev=False)]
    # the first message's first byte never comes; the rest arrives in order, 1,000 bytes a segment
    frames += [tcp(40000, 15118, 11 + offset, stream[offset:offset + 1000]) for offset in range(1, len(stream), 1000)]
    events = run(frames, decode_exi=False)
    [bound] = [e for e in events if e.kind == ev.ERROR and e.name == "TCP buffer"]
    assert "256 kB per direction" in bound.fields["reason"]
    decoded = [e for e in events if e.kind == ev.V2G]
    assert len(decoded) == len(stream) // len(message) - 1 and all(e.payload == message[8:] for e in decoded)


def test_lying_length_is_found_out_while_the_stream_is_still_arriving():
    def decodes(payload_type, payload):
        return payload.startswith(b"\x80")

    framer = V2gtpFramer(decodes)
    out = framer.feed([build_header(0x8001, 100_000) + b"\x80\x01"])  # its real message is 2 bytes
    assert out == []  # nothing to say yet: the claimed length may be true
    trap = build_header(0x8001, 200_000)  # a header inside whose message never completes
    for byte in trap + pdu(b"\x80\x02\x03"):
        out += framer.feed([bytes([byte])])
    [lie, message] = out
    assert isinstance(lie, StreamProblem) and "claims 100000 bytes" in lie.reason
    assert message == Pdu(0x8001, b"\x80\x02\x03")
