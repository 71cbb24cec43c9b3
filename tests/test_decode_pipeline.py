"""The pipeline on crafted frames: SDP-announced ports, several connections, RST, ICMPv6."""
from __future__ import annotations

import json
import struct
from types import SimpleNamespace

from click.testing import CliRunner

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.cli import cli
from ccssniff.decode import events as ev
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.v2gtp import build_header

EV_IP = bytes.fromhex("fe800000000000000000000000000001")
EVSE_IP = bytes.fromhex("fe800000000000000000000000000002")
EV_MAC, EVSE_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def ipv6_frame(src, dst, next_header, payload, src_mac=EV_MAC, dst_mac=EVSE_MAC):
    header = struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64, src, dst)
    return dst_mac + src_mac + b"\x86\xdd" + header + payload


def tcp_frame(src_port, dst_port, seq, payload=b"", flags=0x18, ack=0, from_ev=True):
    segment = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    src, dst = (EV_IP, EVSE_IP) if from_ev else (EVSE_IP, EV_IP)
    return ipv6_frame(src, dst, 6, segment)


def udp_frame(src_port, dst_port, payload, from_ev=True):
    datagram = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    src, dst = (EV_IP, EVSE_IP) if from_ev else (EVSE_IP, EV_IP)
    return ipv6_frame(src, dst, 17, datagram)


def feed(frames, **options):
    pipeline, out = Pipeline(decode_exi=False, **options), []
    for index, data in enumerate(frames, 1):
        out += pipeline.feed(SimpleNamespace(index=index, timestamp=float(index), linktype=1, data=data))
    return out + list(pipeline.finish()), pipeline


def v2gtp(body, payload_type=0x8001):
    return build_header(payload_type, len(body)) + body


def test_sdp_response_port_makes_a_tcp_stream_v2g_even_mid_message():
    response = v2gtp(EVSE_IP + struct.pack("!HBB", 61341, 0x10, 0x00), 0x9001)
    frames = [
        udp_frame(49152, 15118, v2gtp(b"\x10\x00", 0x9000)),
        udp_frame(15118, 49152, response, from_ev=False),
        # no SYN in the trace and the first segment starts inside a message
        tcp_frame(50000, 61341, 100, b"tail" + v2gtp(b"\x80\x01")),
    ]
    events, pipeline = feed(frames)
    kinds = [(e.kind, e.name) for e in events]
    assert kinds[:2] == [(ev.SDP, "SDP request"), (ev.SDP, "SDP response")]
    assert events[1].fields == {"src": "[fe80::2]:15118", "dst": "[fe80::1]:49152", "address": "fe80::2",
                                "port": 61341, "security": "none", "transport": "TCP"}
    assert 61341 in pipeline.v2g_ports
    v2g = [e for e in events if e.kind == ev.V2G]
    assert [e.payload for e in v2g] == [b"\x80\x01"] and v2g[0].direction == ev.EV_TO_EVSE
    assert [e.fields["reason"] for e in events if e.kind == ev.ERROR] == [
        "V2GTP version 0x74 / inverse 0x61, expected 0x01 / 0xfe; bytes skipped up to the next V2GTP header"]


def test_unannounced_port_is_v2g_when_payload_starts_with_a_header_and_other_tcp_is_ignored():
    frames = [
        tcp_frame(40000, 80, 1, b"GET / HTTP/1.1\r\n\r\n"),
        tcp_frame(40001, 7777, 1, v2gtp(b"\x80\x02")),
        tcp_frame(7777, 40001, 1, v2gtp(b"\x80\x03"), from_ev=False),
    ]
    events, _ = feed(frames)
    v2g = [e for e in events if e.kind == ev.V2G]
    assert [(e.payload, e.direction) for e in v2g] == [(b"\x80\x02", ev.EV_TO_EVSE), (b"\x80\x03", ev.EVSE_TO_EV)]


def test_several_connections_syn_and_rst():
    frames = [
        tcp_frame(40000, 15118, 10, flags=0x02),
        tcp_frame(15118, 40000, 500, flags=0x12, ack=11, from_ev=False),
        tcp_frame(40000, 15118, 11, v2gtp(b"\xaa"), ack=501),
        tcp_frame(40002, 15118, 70, flags=0x02),
        tcp_frame(40002, 15118, 71, v2gtp(b"\xbb")),
        tcp_frame(15118, 40000, 501, flags=0x14, from_ev=False),  # RST from the EVSE
        tcp_frame(40002, 15118, 71 + 9, v2gtp(b"\xcc")),
    ]
    events, _ = feed(frames)
    v2g = [(e.connection, e.payload) for e in events if e.kind == ev.V2G]
    assert v2g == [(1, b"\xaa"), (2, b"\xbb"), (2, b"\xcc")]
    ends = [(e.connection, e.name, e.fields.get("by")) for e in events if e.kind == ev.CONNECTION and e.name != "TCP connection"]
    assert ends == [(1, "TCP connection reset", "EVSE"), (2, "TCP connection open at end of capture", None)]


def test_neighbor_discovery():
    solicitation = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + EVSE_IP
    advertisement = bytes([136, 0, 0, 0, 0x60, 0, 0, 0]) + EVSE_IP
    events, _ = feed([ipv6_frame(EV_IP, EVSE_IP, 58, solicitation), ipv6_frame(EVSE_IP, EV_IP, 58, advertisement)])
    assert [(e.name, e.fields) for e in events] == [
        ("neighbor solicitation", {"src": "fe80::1", "target": "fe80::2"}),
        ("neighbor advertisement", {"src": "fe80::2", "target": "fe80::2", "solicited": True}),
    ]


def test_ipv6_extension_headers_are_walked():
    hop_by_hop = bytes([6, 0]) + bytes(6)  # next header TCP, 8 bytes
    segment = struct.pack("!HHIIBBHHH", 40000, 15118, 1, 0, 5 << 4, 0x18, 65535, 0, 0) + v2gtp(b"\x80")
    header = struct.pack("!IHBB16s16s", 6 << 28, len(hop_by_hop) + len(segment), 0, 64, EV_IP, EVSE_IP)
    frame = EVSE_MAC + EV_MAC + b"\x86\xdd" + header + hop_by_hop + segment
    events, _ = feed([frame])
    assert [e.payload for e in events if e.kind == ev.V2G] == [b"\x80"]


def test_bad_sdp_is_an_error_event():
    events, _ = feed([udp_frame(49152, 15118, b"\x01\xfe\x90\x01\x00\x00\x00\x14\x00")])
    [error] = events
    assert error.kind == ev.ERROR and error.fields["reason"] == "V2GTP payload length 20, datagram holds 1"


def test_undecodable_message_becomes_an_error_event_and_decoding_goes_on(tmp_path):
    path = tmp_path / "broken.pcapng"
    bad = b"\x01\xfe\x80\x01\x00\x00\x00\x03\xff\xff\xff"
    with PcapngWriter(path) as writer:
        writer.write(tcp_frame(1000, 15118, 1, bad), timestamp=1.0)
        writer.write(tcp_frame(1000, 15118, 1 + len(bad), bad), timestamp=2.0)
    result = CliRunner().invoke(cli, ["decode", str(path), "--json"])
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    errors = [r for r in records if r["kind"] == "error"]
    assert len(errors) == 2 and all(r["payload"] == "ffffff" and r["reason"] for r in errors)
