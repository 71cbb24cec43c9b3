"""ccssniff.capture.pcapng.PcapngWriter: read back by our reader, dpkt and real tshark."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from decimal import Decimal

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import read_packets


def read_clean(source):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return list(read_packets(source))


packets_strategy = st.lists(
    st.tuples(
        st.binary(max_size=200),
        # microsecond-resolution times, as captures have them
        st.integers(0, 4_000_000_000 * 10**6).map(lambda us: us / 10**6),
        st.none() | st.text(max_size=30).filter(lambda t: "\x00" not in t),
    ),
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(packets=packets_strategy)
def test_round_trip_through_our_reader(packets):
    buffer = io.BytesIO()
    with PcapngWriter(buffer) as writer:
        for data, timestamp, comment in packets:
            writer.write(data, timestamp=timestamp, comment=comment)
    buffer.seek(0)
    read = read_clean(buffer)
    assert [(p.data, p.comment or None) for p in read] == [(d, c or None) for d, _, c in packets]
    assert [p.timestamp for p in read] == pytest.approx([t for _, t, _ in packets], abs=1e-6)
    assert all(p.linktype == 1 and p.orig_len == len(p.data) for p in read)


def test_dpkt_reads_our_file():
    buffer = io.BytesIO()
    frames = [(1_700_000_000 + i * 0.001, os.urandom(60 + i)) for i in range(30)]
    with PcapngWriter(buffer) as writer:
        for timestamp, data in frames:
            writer.write(data, timestamp=timestamp, comment=f"frame {data[:2].hex()}")
    buffer.seek(0)
    theirs = list(dpkt.pcapng.Reader(buffer))
    assert [data for _, data in theirs] == [data for _, data in frames]
    assert [ts for ts, _ in theirs] == pytest.approx([ts for ts, _ in frames], abs=1e-6)


def test_tshark_reads_comments_interfaces_and_times(tmp_path, tshark):
    path = tmp_path / "written.pcapng"
    with PcapngWriter(path, interface_name="plc0") as writer:
        cooked = writer.add_interface(113, name="any")
        writer.write(b"\x11" * 60, timestamp=1_700_000_000.123456, comment="SLAC: CM_SLAC_PARAM.REQ")
        writer.write(b"\x22" * 40, timestamp=1_700_000_001.5, interface=cooked)
        writer.write(b"\x33" * 70, timestamp=Decimal("1700000002.000000001"), comment="zwei Zeilen, ü")
    lines = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-E", "separator=|", "-e", "frame.number",
         "-e", "frame.time_epoch", "-e", "frame.interface_id", "-e", "frame.interface_name",
         "-e", "frame.encap_type", "-e", "frame.len", "-e", "frame.comment"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert [line.split("|") for line in lines] == [
        ["1", "1700000000.123456000", "0", "plc0", "1", "60", "SLAC: CM_SLAC_PARAM.REQ"],
        ["2", "1700000001.500000000", "1", "any", "25", "40", ""],  # wiretap encap 25 = Linux SLL
        ["3", "1700000002.000000001", "0", "plc0", "1", "70", "zwei Zeilen, ü"],
    ]


def test_snaplen_cuts_data_and_keeps_wire_length():
    buffer = io.BytesIO()
    with PcapngWriter(buffer, snaplen=16) as writer:
        writer.write(bytes(range(100)))
        writer.write(bytes(10), orig_len=1514)
    buffer.seek(0)
    first, second = read_clean(buffer)
    assert first.data == bytes(range(16)) and first.orig_len == 100
    assert second.data == bytes(10) and second.orig_len == 1514


def test_every_packet_is_on_disk_before_close(tmp_path):
    path = tmp_path / "live.pcapng"
    writer = PcapngWriter(path)
    for count in range(1, 4):
        writer.write(b"frame %d" % count, comment="live")
        assert [p.data for p in read_clean(path)][-1] == b"frame %d" % count
    writer.close()
    with open(tmp_path / "buffered.pcapng", "wb") as handed_in:  # a buffered file object
        writer = PcapngWriter(handed_in)
        writer.write(b"flushed")
        assert [p.data for p in read_clean(tmp_path / "buffered.pcapng")] == [b"flushed"]
        writer.close()
        assert not handed_in.closed  # the caller owns it


def test_misuse_raises():
    writer = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match="interface 1 was not declared"):
        writer.write(b"x", interface=1)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")


def _record_until_signal(path, sig):
    """Run a writer in a child process, send it ``sig`` once the file has grown, wait."""
    script = textwrap.dedent(
        f"""
        import itertools
        from ccssniff.capture.pcapng import PcapngWriter
        writer = PcapngWriter({str(path)!r})
        for n in itertools.count():
            writer.write(bytes([n % 256]) * (60 + n % 50), comment=f"packet {{n}}")
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        process.send_signal(sig)
        process.communicate(timeout=30)
    assert process.returncode == -sig


def test_ctrl_c_leaves_a_complete_file_tshark_reads(tmp_path, tshark):
    path = tmp_path / "interrupted.pcapng"
    _record_until_signal(path, signal.SIGINT)
    ours = read_clean(path)  # no warning: Python stops between two writes
    assert len(ours) > 1000
    result = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.comment"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"packet {n}" for n in range(len(ours))]


def test_killed_writer_leaves_every_complete_packet_readable(tmp_path, tshark):
    # SIGKILL can stop the kernel in the middle of one write() at a page boundary, so the
    # last block may be cut: everything before it must still read, in tshark as in ours.
    path = tmp_path / "killed.pcapng"
    _record_until_signal(path, signal.SIGKILL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = list(read_packets(path))
    assert all("is cut off in the middle of a packet" in str(w.message) for w in caught)
    assert len(ours) > 1000
    assert [p.comment for p in ours] == [f"packet {n}" for n in range(len(ours))]
    result = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.comment"], capture_output=True, text=True
    )
    assert result.returncode == 0 or "cut short in the middle of a packet" in result.stderr
    assert result.stdout.splitlines() == [p.comment for p in ours]
