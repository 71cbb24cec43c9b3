"""Raw-IP and loopback link types decode like Ethernet; any other link type is refused with one
line and exit status 2 (issue 13, item 7). The raw-IP files are the lab DIN session re-framed,
and tshark reads the same files to confirm they are what their link type says."""
from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccssniff.capture.link import SUPPORTED_LINKTYPES, decode_link, link_type_name
from ccssniff.capture.reader import read_packets
from ccssniff.cli import cli

REPO = Path(__file__).resolve().parents[1]
LAB_DIN = REPO / "captures" / "din_dc.pcapng"


def ip_packets():
    """The IPv6 packets of the lab DIN session (its HomePlug frames have no IP form)."""
    return [(packet.timestamp, packet.data[14:]) for packet in read_packets(LAB_DIN)
            if packet.data[12:14] == b"\x86\xdd"]


def write_pcap(path: Path, linktype: int, frames) -> Path:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for timestamp, data in frames:
            seconds = int(timestamp)
            out.write(struct.pack("<IIII", seconds, int((timestamp - seconds) * 1e6), len(data), len(data)))
            out.write(data)
    return path


def decode_json(path: Path):
    result = CliRunner().invoke(cli, ["decode", "--json", str(path)], prog_name="ccssniff")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def ethernet_messages():
    return [(r["name"], r["direction"]) for r in decode_json(LAB_DIN) if r["kind"] == "v2g"]


@pytest.mark.parametrize("linktype", [101, 229, 12, 14])
def test_raw_ipv6_captures_decode_every_v2g_message(tmp_path, linktype, ethernet_messages):
    path = write_pcap(tmp_path / f"raw{linktype}.pcap", linktype, ip_packets())
    messages = [(r["name"], r["direction"]) for r in decode_json(path) if r["kind"] == "v2g"]
    assert len(messages) == 386 and messages == ethernet_messages


def test_tshark_reads_the_raw_ip_file_as_ipv6(tmp_path, tshark):
    path = write_pcap(tmp_path / "raw.pcap", 101, ip_packets())
    fields = subprocess.run([tshark, "-r", str(path), "-c", "1", "-T", "fields", "-e", "frame.protocols"],
                            capture_output=True, text=True, timeout=60).stdout
    assert fields.startswith("raw:ipv6")


def test_raw_ipv4_and_bsd_loopback_frames_are_taken_apart():
    ipv4 = bytes([0x45]) + bytes(19)
    assert decode_link(228, ipv4).ethertype == 0x0800 and decode_link(228, ipv4).payload == ipv4
    assert decode_link(101, ipv4).ethertype == 0x0800
    ipv6 = bytes([0x60]) + bytes(39)
    assert decode_link(0, struct.pack("<I", 30) + ipv6).ethertype == 0x86DD  # macOS AF_INET6, little-endian host
    assert decode_link(0, struct.pack(">I", 24) + ipv6).payload == ipv6  # NetBSD AF_INET6, big-endian host
    assert decode_link(108, struct.pack(">I", 2) + ipv4).ethertype == 0x0800
    assert decode_link(101, b"\x10abc") is None  # neither IPv4 nor IPv6


@pytest.mark.parametrize("linktype, text", [(105, "link type 105 (IEEE 802.11) is not supported"),
                                            (127, "link type 127 (IEEE 802.11 radiotap) is not supported"),
                                            (4242, "link type 4242 is not supported")])
def test_other_link_types_give_one_line_and_exit_status_2(tmp_path, linktype, text):
    assert linktype not in SUPPORTED_LINKTYPES
    path = write_pcap(tmp_path / "wifi.pcap", linktype, [(1.0, bytes(60))] * 3)
    result = CliRunner().invoke(cli, ["decode", str(path)], prog_name="ccssniff")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: {text}"]
    assert link_type_name(linktype) in text
