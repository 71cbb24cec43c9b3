"""ccssniff.capture.reader against hand-built files, dpkt's writers, real captures and tshark."""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import tracemalloc
import warnings

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccssniff.capture.reader import CaptureFormatError, CaptureWarning, Packet, read_packets

# ---------------------------------------------------------------- hand-built files (test side)


def pcap_file(packets, endian="<", nanoseconds=False, linktype=1, snaplen=65535):
    """A pcap file; ``packets`` are (seconds, fraction, data, orig_len)."""
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for seconds, fraction, data, orig_len in packets:
        out.append(struct.pack(endian + "IIII", seconds, fraction, len(data), orig_len) + data)
    return b"".join(out)


def option(endian, code, value):
    return struct.pack(endian + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def options(endian, *items):
    return b"".join(option(endian, code, value) for code, value in items) + struct.pack(endian + "HH", 0, 0)


def block(endian, kind, body):
    body += bytes(-len(body) % 4)
    length = len(body) + 12
    return struct.pack(endian + "II", kind, length) + body + struct.pack(endian + "I", length)


def shb(endian, opts=b""):
    return block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts)


def idb(endian, linktype, snaplen=0, opts=b""):
    return block(endian, 1, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts)


def epb(endian, interface, ticks, data, orig_len=None, opts=b""):
    padded = data + bytes(-len(data) % 4)
    fields = struct.pack(
        endian + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
        len(data) if orig_len is None else orig_len,
    )
    return block(endian, 6, fields + padded + opts)


def spb(endian, data, orig_len=None):
    return block(endian, 3, struct.pack(endian + "I", len(data) if orig_len is None else orig_len) + data)


def opb(endian, interface, ticks, data):
    fields = struct.pack(endian + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return block(endian, 2, fields + data)


def read_all(data: bytes) -> list[Packet]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file must read without any warning
        return list(read_packets(io.BytesIO(data)))


# ---------------------------------------------------------------- pcap


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcap_both_byte_orders_and_resolutions(endian, nanoseconds):
    fraction = 123_456_789 if nanoseconds else 123_456
    raw = pcap_file(
        [(1_700_000_000, fraction, b"\x01" * 60, 60), (1_700_000_001, 0, b"\x02" * 10, 1514)],
        endian=endian, nanoseconds=nanoseconds, linktype=113,
    )
    first, second = read_all(raw)
    assert first.index == 1 and second.index == 2
    expected = 1_700_000_000.123456789 if nanoseconds else 1_700_000_000.123456
    assert first.timestamp == pytest.approx(expected, abs=1e-9)
    assert first.data == b"\x01" * 60 and first.orig_len == 60
    assert second.data == b"\x02" * 10 and second.orig_len == 1514
    assert first.linktype == second.linktype == 113
    assert first.interface == 0 and first.comment is None


def test_pcap_linktype_ignores_fcs_bits():
    raw = pcap_file([(1, 0, b"x" * 20, 20)], linktype=(1 << 28) | (1 << 26) | 1)
    assert read_all(raw)[0].linktype == 1


packet_lists = st.lists(
    st.tuples(
        st.integers(0, 2**32 - 1), st.integers(0, 999_999), st.binary(max_size=300), st.integers(0, 2**32 - 1)
    ),
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(packets=packet_lists, endian=st.sampled_from("<>"))
def test_pcap_round_trip_property(packets, endian):
    read = read_all(pcap_file(packets, endian=endian))
    assert [(p.data, p.orig_len) for p in read] == [(d, n) for _, _, d, n in packets]
    assert [p.timestamp for p in read] == [s + f / 1e6 for s, f, _, _ in packets]
    assert [p.index for p in read] == list(range(1, len(packets) + 1))


def test_pcap_from_dpkt_writer_matches_dpkt_reader():
    buffer = io.BytesIO()
    writer = dpkt.pcap.Writer(buffer, linktype=dpkt.pcap.DLT_EN10MB, nano=True)
    frames = [(1_600_000_000 + i * 0.25, bytes([i]) * (14 + i)) for i in range(50)]
    for ts, frame in frames:
        writer.writepkt(frame, ts=ts)
    raw = buffer.getvalue()
    theirs = list(dpkt.pcap.Reader(io.BytesIO(raw)))
    ours = read_all(raw)
    assert [p.data for p in ours] == [frame for _, frame in theirs] == [frame for _, frame in frames]
    assert [p.timestamp for p in ours] == pytest.approx([float(ts) for ts, _ in theirs], abs=1e-9)


# ---------------------------------------------------------------- pcapng


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_interfaces_resolutions_comments_and_block_kinds(endian):
    e = endian
    raw = b"".join([
        shb(e, options(e, (4, b"hand-built"))),
        idb(e, 1, 65535, options(e, (2, b"eth0"), (9, bytes([6])))),  # microseconds
        idb(e, 113, 0, options(e, (9, bytes([9])), (14, struct.pack(e + "q", 100)))),  # ns + offset
        idb(e, 276, 0, options(e, (9, bytes([0x80 | 10])))),  # 2^-10 s
        block(e, 0x0BAD, b"a block nobody knows"),
        epb(e, 0, 1_700_000_000_250_000, b"A" * 61, opts=options(e, (1, "first ü".encode()))),
        epb(e, 1, 5_000_000_001, b"B" * 42, orig_len=1000),
        epb(e, 2, 3 * 1024 + 512, b"C" * 3, opts=options(e, (1, b"one"), (1, b"two"), (2, b"x"))),
        spb(e, b"D" * 30),
        opb(e, 1, 7_000_000_000, b"E" * 16),
    ])
    packets = read_all(raw)
    assert [p.index for p in packets] == [1, 2, 3, 4, 5]
    assert [p.linktype for p in packets] == [1, 113, 276, 1, 113]
    assert [p.interface for p in packets] == [0, 1, 2, 0, 1]
    assert [p.data for p in packets] == [b"A" * 61, b"B" * 42, b"C" * 3, b"D" * 30, b"E" * 16]
    assert packets[0].timestamp == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert packets[1].timestamp == pytest.approx(105.000000001, abs=1e-9)
    assert packets[2].timestamp == 3.5
    assert packets[3].timestamp == 0.0  # simple packet blocks carry no time
    assert packets[4].timestamp == pytest.approx(107.0)
    assert packets[0].comment == "first ü"
    assert packets[1].comment is None and packets[1].orig_len == 1000
    assert packets[2].comment == "one\ntwo"


def test_pcapng_sections_of_both_byte_orders_in_one_file():
    raw = b"".join([
        shb("<"), idb("<", 1, 0, options("<", (9, bytes([9])))), epb("<", 0, 10**9, b"little"),
        shb(">"), idb(">", 276), epb(">", 0, 2 * 10**6, b"big"),
    ])
    packets = read_all(raw)
    assert [(p.index, p.linktype, p.data, p.timestamp) for p in packets] == [
        (1, 1, b"little", 1.0), (2, 276, b"big", 2.0),
    ]


def test_pcapng_simple_packet_block_is_cut_to_snaplen():
    raw = shb("<") + idb("<", 1, snaplen=8) + spb("<", b"0123456789AB", orig_len=12)
    (packet,) = read_all(raw)
    assert packet.data == b"01234567" and packet.orig_len == 12


def test_pcapng_from_dpkt_writer_matches_dpkt_reader():
    buffer = io.BytesIO()
    writer = dpkt.pcapng.Writer(buffer, snaplen=9000, linktype=dpkt.pcap.DLT_EN10MB)
    frames = [(1_650_000_000 + i / 7, os.urandom(20 + i % 100)) for i in range(200)]
    for ts, frame in frames:
        writer.writepkt(frame, ts=ts)
    raw = buffer.getvalue()
    theirs = list(dpkt.pcapng.Reader(io.BytesIO(raw)))
    ours = read_all(raw)
    assert [p.data for p in ours] == [frame for _, frame in theirs]
    assert [p.timestamp for p in ours] == pytest.approx([ts for ts, _ in theirs], abs=1e-6)


# ---------------------------------------------------------------- sources


def test_reads_path_gzip_and_unseekable_stream(tmp_path):
    raw = shb("<") + idb("<", 1) + b"".join(epb("<", 0, i, bytes([i]) * 20) for i in range(100))
    path = tmp_path / "plain.pcapng"
    path.write_bytes(raw)
    zipped = tmp_path / "zipped.pcapng.gz"
    zipped.write_bytes(gzip.compress(raw))
    expected = [bytes([i]) * 20 for i in range(100)]
    assert [p.data for p in read_packets(path)] == expected
    assert [p.data for p in read_packets(str(zipped))] == expected
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe_in:
        with os.fdopen(write_end, "wb") as pipe_out:
            pipe_out.write(raw)  # the pipe buffer holds this small file
        assert [p.data for p in read_packets(pipe_in)] == expected


def test_memory_stays_bounded_on_a_large_file(tmp_path):
    frame = bytes(range(256)) * 64  # 16 KiB
    path = tmp_path / "large.pcapng"
    with open(path, "wb") as out:
        out.write(shb("<") + idb("<", 1))
        for i in range(1500):  # about 24 MiB
            out.write(epb("<", 0, i, frame))
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_packets(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 1500
    assert peak < 8 * 2**20, f"reading used {peak} bytes at its peak"


# ---------------------------------------------------------------- damage and non-captures


def _complete_packets_before(offsets, cut):
    return sum(1 for end in offsets if end <= cut)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["pcap", "pcapng"]))
def test_cut_file_yields_complete_packets_and_warns(data, kind):
    frames = data.draw(st.lists(st.binary(min_size=1, max_size=80), min_size=1, max_size=8))
    if kind == "pcap":
        header = pcap_file([])
        records = [pcap_file([(0, 0, frame, len(frame))])[24:] for frame in frames]
    else:
        header = shb("<") + idb("<", 1)
        records = [epb("<", 0, 0, frame) for frame in frames]
    ends, total = [], len(header)
    for record in records:
        total += len(record)
        ends.append(total)
    raw = header + b"".join(records)
    cut = data.draw(st.integers(len(header), len(raw)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        packets = list(read_packets(io.BytesIO(raw[:cut])))
    expected = _complete_packets_before(ends, cut)
    assert [p.data for p in packets] == frames[:expected]
    capture_warnings = [w for w in caught if issubclass(w.category, CaptureWarning)]
    if cut in ends or cut == len(header):
        assert capture_warnings == []
    else:
        assert len(capture_warnings) == 1
        assert f"read the {expected} complete packets" in str(capture_warnings[0].message)


@pytest.mark.parametrize("length", [0, 13, 0x7FFFFFF0])
def test_damaged_block_length_stops_with_a_warning(length):
    good = epb("<", 0, 0, b"good")
    raw = shb("<") + idb("<", 1) + good + struct.pack("<II", 6, length) + bytes(40)
    with pytest.warns(CaptureWarning, match="damaged after packet 1"):
        packets = list(read_packets(io.BytesIO(raw)))
    assert [p.data for p in packets] == [b"good"]


def test_packet_on_undeclared_interface_stops_with_a_warning():
    raw = shb("<") + idb("<", 1) + epb("<", 0, 0, b"ok") + epb("<", 3, 0, b"orphan")
    with pytest.warns(CaptureWarning, match="undeclared interface 3"):
        assert [p.data for p in read_packets(io.BytesIO(raw))] == [b"ok"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"<!DOCTYPE html><html></html>", "is not a pcap or pcapng capture (it starts with 3c 21 44 4f"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "cut off within its pcap file header"),
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "no valid byte-order magic"),
        (gzip.compress(b"just some text in a gzip"), "is not a pcap or pcapng capture"),
        (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
    ],
)
def test_not_a_capture_raises_one_line(tmp_path, content, message):
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    with pytest.raises(CaptureFormatError) as raised:
        read_packets(path)
    text = str(raised.value)
    assert message in text and "\n" not in text and str(path) in text


def test_missing_file_raises_capture_format_error(tmp_path):
    with pytest.raises(CaptureFormatError, match="cannot read .*missing.pcap"):
        read_packets(tmp_path / "missing.pcap")


# ---------------------------------------------------------------- real captures and tshark


def _shared_captures(shared_dir):
    root = shared_dir / "captures"
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in (".pcap", ".pcapng", ".dump")
    )


def test_every_shared_capture_reads_with_capinfos_frame_count(shared_dir, tshark):
    files = _shared_captures(shared_dir)
    assert files, "no captures found under shared/captures"
    report = subprocess.run(
        ["capinfos", "-M", "-T", "-r", "-c", *map(str, files)], capture_output=True, text=True
    ).stdout
    counts = dict(line.split("\t")[:2] for line in report.splitlines() if "\t" in line)
    cut_off = []
    for path in files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            packets = list(read_packets(path))
        assert len(packets) == int(counts[str(path)]), path
        assert all(p.linktype == 1 and p.data for p in packets), path
        if caught:
            assert all(issubclass(w.category, CaptureWarning) for w in caught), path
            cut_off.append(path.name if path.name != "ethernet-traffic.dump" else path.parent.name)
    # The everest recordings below end inside a packet (capinfos says "cut short" too).
    assert "ampera_dc_din_3.dump" in cut_off
    assert "2023-04-18T15-33-10.987Z-3_config-ac-iso2_not_supported" in cut_off
    assert len(cut_off) == 7


@pytest.mark.parametrize(
    "relative",
    [
        "dsv2gshark/DIN_DC_DS5366_Josev.pcapng",
        "tux-evse/abb-normal-din.pcap",
        "pyplc/2022-11-17_Dehner_Alpitronic_until_SdpRequest.pcapng",
        "everest/Opel/Ampera-E/2023-01-13-din_spec_70121/session/ampera_dc_din.dump",
        "josev/iso20.pcapng",
    ],
)
def test_frames_match_tshark(shared_dir, tshark, relative):
    path = shared_dir / "captures" / relative
    fields = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch",
         "-e", "frame.len", "-e", "frame.cap_len"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    ours = list(read_packets(path))
    assert len(ours) == len(fields)
    for packet, line in zip(ours, fields, strict=True):
        number, epoch, wire_length, captured_length = line.split("\t")
        assert packet.index == int(number)
        assert packet.timestamp == pytest.approx(float(epoch), abs=1e-6)
        assert packet.orig_len == int(wire_length)
        assert len(packet.data) == int(captured_length)


def test_cut_gzip_file_yields_packets_before_the_cut_with_warnings():
    raw = shb("<") + idb("<", 1) + b"".join(epb("<", 0, i, os.urandom(200)) for i in range(400))
    zipped = gzip.compress(raw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        packets = list(read_packets(io.BytesIO(zipped[: len(zipped) // 2])))
    assert 0 < len(packets) < 400
    assert [p.data for p in packets] == [p.data for p in read_all(raw)[: len(packets)]]
    messages = [str(w.message) for w in caught if issubclass(w.category, CaptureWarning)]
    assert any("gzip compression is damaged or cut off" in m for m in messages)
