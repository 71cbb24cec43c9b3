"""Frames the lab writes are what tshark expects from a real wire: right fields, valid checksums."""

from __future__ import annotations

import subprocess

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.emulate import wire

EV = wire.Host(bytes.fromhex("020000000001"))
EVSE = wire.Host(bytes.fromhex("020000000002"))


def test_link_local_address_uses_modified_eui64():
    assert wire.link_local_from_mac(bytes.fromhex("001122334455")).hex() == \
        "fe80000000000000021122fffe334455"


def test_checksum_of_known_bytes():
    # RFC 1071 example words 0001 f203 f4f5 f6f7 sum to 0xddf2, complement 0x220d
    assert wire.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def build_conversation() -> list[bytes]:
    frames = [wire.neighbour_solicitation(EV.mac, EV.ip, EVSE.ip),
              wire.neighbour_advertisement(EVSE.mac, EVSE.ip, EV.mac, EV.ip),
              wire.ethernet(b"\x33\x33\x00\x00\x00\x01", EV.mac, wire.ETHERTYPE_IPV6,
                            wire.udp(EV.ip, wire.ALL_NODES, 50000, 15118, bytes.fromhex("01fe9000000000021000")))]
    connection = wire.TcpConnection(EV, EVSE, 50001, 61851)
    frames += connection.open()
    frames += connection.send(True, b"\x01\xfe\x80\x01\x00\x00\x00\x03abc")
    frames.append(connection.acknowledge(False))
    frames += connection.send(False, bytes(3000))
    frames.append(connection.acknowledge(True))
    frames += connection.close()
    return frames


def test_tshark_reads_every_frame_with_valid_checksums(tmp_path, tshark):
    path = tmp_path / "wire.pcapng"
    frames = build_conversation()
    with PcapngWriter(path) as writer:
        for number, frame in enumerate(frames):
            writer.write(frame, timestamp=1_700_000_000 + number * 0.01)
    fields = ["frame.number", "icmpv6.type", "udp.checksum.status", "tcp.checksum.status",
              "icmpv6.checksum.status", "tcp.flags.str", "tcp.len", "_ws.expert.severity"]
    out = subprocess.run(
        [tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-T", "fields", "-E", "separator=|", *sum((["-e", f] for f in fields), [])],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(frames)
    rows = [dict(zip(fields, line.split("|"))) for line in out]
    assert rows[0]["icmpv6.type"] == "135" and rows[1]["icmpv6.type"] == "136"
    for row in rows:
        for status in ("udp.checksum.status", "tcp.checksum.status", "icmpv6.checksum.status"):
            assert row[status] in ("", "1"), row  # 0 bad, 1 good, 2 unverified
    for status in ("udp.checksum.status", "tcp.checksum.status", "icmpv6.checksum.status"):
        assert any(row[status] == "1" for row in rows), status  # really verified, not skipped
    tcp_rows = [r for r in rows if r["tcp.flags.str"]]
    assert tcp_rows[0]["tcp.flags.str"].strip("·").replace("·", "") == "S"
    assert sum(int(r["tcp.len"] or 0) for r in tcp_rows) == 11 + 3000
    warnings = subprocess.run([tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE",
                               "-Y", "_ws.expert.severity >= 6291456 || _ws.malformed"],
                              capture_output=True, text=True, check=True).stdout
    assert warnings.strip() == ""
