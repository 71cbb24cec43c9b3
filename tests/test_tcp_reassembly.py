"""TCP reassembly and V2GTP framing under the pathologies real captures show."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ccssniff.decode.tcp import MAX_BUFFERED_BYTES, Gap, StreamReassembler
from ccssniff.decode.v2gtp import Pdu, StreamProblem, V2gtpFramer, build_header

ISN = 0xFFFFFF00  # close to the wrap-around on purpose


def pdu(payload: bytes, payload_type: int = 0x8001) -> bytes:
    return build_header(payload_type, len(payload)) + payload


def run(segments, isn=ISN, syn=True, acks=()):
    """Feed (offset, bytes) segments; returns framer output. ``acks`` are (after_index, ack_offset)."""
    stream, framer = StreamReassembler(), V2gtpFramer()
    if syn:
        stream.syn(isn)
    out = []
    ack_at = dict(acks)
    for index, (offset, data) in enumerate(segments):
        out += framer.feed(stream.segment((isn + 1 + offset) % (1 << 32), data))
        if index in ack_at:
            out += framer.feed(stream.acknowledged((isn + 1 + ack_at[index]) % (1 << 32)))
    out += framer.feed(stream.flush())
    out += framer.flush()
    return out, stream


MESSAGES = [pdu(b"\x80\x98\x02" + bytes(range(i, i + 20))) for i in range(5)]
STREAM = b"".join(MESSAGES)


def payloads(items):
    return [item.payload for item in items if isinstance(item, Pdu)]


def problems(items):
    return [item for item in items if isinstance(item, StreamProblem)]


EXPECTED = [m[8:] for m in MESSAGES]


def test_one_message_per_segment():
    offsets = [sum(map(len, MESSAGES[:i])) for i in range(5)]
    out, _ = run(list(zip(offsets, MESSAGES)))
    assert payloads(out) == EXPECTED and not problems(out)


def test_several_messages_in_one_segment():
    out, _ = run([(0, STREAM)])
    assert payloads(out) == EXPECTED


def test_header_split_across_segments():
    out, _ = run([(0, STREAM[:3]), (3, STREAM[3:9]), (9, STREAM[9:])])
    assert payloads(out) == EXPECTED


def test_retransmission_is_delivered_once():
    out, stream = run([(0, STREAM[:40]), (0, STREAM[:40]), (20, STREAM[20:60]), (40, STREAM[40:])])
    assert payloads(out) == EXPECTED and not problems(out)
    assert stream.retransmitted_bytes == 40 + 20 + 20  # the duplicate, then two overlaps


def test_out_of_order_segments_wait_for_the_missing_one():
    pieces = [(0, STREAM[:30]), (60, STREAM[60:]), (30, STREAM[30:60])]
    out, _ = run(pieces)
    assert payloads(out) == EXPECTED and not problems(out)


def test_sequence_numbers_wrap_around():
    out, _ = run([(0, STREAM[:100]), (100, STREAM[100:])], isn=0xFFFFFFF0)
    assert payloads(out) == EXPECTED


def test_gap_acknowledged_by_peer_is_reported_and_decoding_resumes_at_next_header():
    second = len(MESSAGES[0])
    third = second + len(MESSAGES[1])
    # The middle of message 2 is lost; the peer's ACK proves it was sent.
    segments = [(0, STREAM[:second + 10]), (third, STREAM[third:])]
    out, _ = run(segments, acks=[(0, third)])
    assert payloads(out) == [EXPECTED[0]] + EXPECTED[2:]
    [problem] = problems(out)
    assert problem.reason == f"{third - second - 10} bytes missing from the capture inside a V2GTP message"
    assert problem.data == STREAM[second:second + 10]


def test_gap_at_end_of_capture_is_flushed_with_the_buffered_rest():
    second = len(MESSAGES[0])
    out, _ = run([(0, STREAM[:second]), (second + 5, STREAM[second + 5:])])
    assert payloads(out) == [EXPECTED[0]] + EXPECTED[2:]
    [gap, skipped] = problems(out)
    assert gap.reason == "5 bytes missing from the capture"
    assert skipped.reason == "bytes skipped while looking for the next V2GTP header"
    assert skipped.data == MESSAGES[1][5:]


def test_mid_stream_start_without_syn():
    start = len(MESSAGES[0]) + 4  # inside message 2
    stream, framer = StreamReassembler(), V2gtpFramer()
    out = framer.feed(stream.segment(1000, STREAM[start:]))
    out += framer.flush()
    # The framer was told nothing about a gap: it sees a broken header first.
    assert payloads(out) == EXPECTED[2:]
    assert problems(out)[0].data == MESSAGES[1][4:]


def test_broken_header_is_reported_once_and_skipped():
    junk = b"\x01\xfe\x12\x34\x00\x00\x00\x02xx"
    out, _ = run([(0, MESSAGES[0] + junk + MESSAGES[1])])
    assert payloads(out) == EXPECTED[:2]
    [problem] = problems(out)
    assert problem.reason == "unknown V2GTP payload type 0x1234; bytes skipped up to the next V2GTP header"
    assert problem.data == junk


def test_message_cut_at_end_of_stream():
    out, _ = run([(0, STREAM[:-3])])
    assert payloads(out) == EXPECTED[:-1]
    [problem] = problems(out)
    assert problem.reason == "stream ended inside a V2GTP message"
    assert problem.data == MESSAGES[-1][:-3]


def test_out_of_order_buffer_is_bounded():
    stream = StreamReassembler()
    stream.syn(0)
    items = []
    chunk = bytes(1000)
    for n in range(MAX_BUFFERED_BYTES // 1000 + 2):
        items += stream.segment(1 + 5000 + n * 1000, chunk)  # never the first 5000 bytes
    assert items[0] == Gap(5000)
    assert sum(len(i) for i in items if isinstance(i, bytes)) >= MAX_BUFFERED_BYTES


def test_fin_acknowledgement_is_not_a_gap():
    stream = StreamReassembler()
    stream.syn(100)
    assert stream.segment(101, b"abc", fin=True) == [b"abc"]
    assert stream.acknowledged(105) == []  # 101 + 3 data + 1 FIN


def test_garbage_ack_far_ahead_is_ignored():
    stream = StreamReassembler()
    stream.syn(0)
    stream.segment(1, b"abc")
    assert stream.acknowledged(1 << 30) == []


@st.composite
def recoverable_deliveries(draw):
    """A stream of V2GTP messages cut into segments, reordered, duplicated and overlapped."""
    bodies = draw(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=8))
    stream = b"".join(pdu(b) for b in bodies)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=12))))
    bounds = [0] + [c for c in cuts if c < len(stream)] + [len(stream)]
    segments = [(a, stream[a:b]) for a, b in zip(bounds, bounds[1:])]
    extra = draw(st.lists(st.tuples(st.integers(0, len(stream) - 1), st.integers(1, 30)), max_size=6))
    segments += [(start, stream[start:start + length]) for start, length in extra]
    order = draw(st.permutations(segments))
    return bodies, order


@settings(max_examples=300, deadline=None)
@given(recoverable_deliveries(), st.integers(0, (1 << 32) - 1))
def test_any_recoverable_delivery_gives_the_same_messages(delivery, isn):
    bodies, segments = delivery
    out, stream = run(segments, isn=isn)
    assert payloads(out) == bodies
    assert not problems(out)
    assert not stream.conflicts  # every copy carried the same bytes


@settings(max_examples=200, deadline=None)
@given(recoverable_deliveries(), st.data())
def test_a_corrupted_copy_after_the_original_changes_nothing_and_is_reported(delivery, data):
    bodies, segments = delivery
    segments = list(segments)
    index = data.draw(st.integers(0, len(segments) - 1))
    offset, original = segments[index]
    if not original:
        return
    flip = data.draw(st.integers(0, len(original) - 1))
    corrupted = original[:flip] + bytes([original[flip] ^ 0xFF]) + original[flip + 1:]
    segments.insert(index + 1 + data.draw(st.integers(0, len(segments) - index - 1)), (offset, corrupted))
    out, stream = run(segments)
    assert payloads(out) == bodies
    assert stream.conflicts
