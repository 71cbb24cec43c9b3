"""ccssniff.capture.link: Ethernet, VLAN tags, Linux cooked captures; checked against tshark."""

from __future__ import annotations

import struct
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccssniff.capture.link import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    SLL_HOST,
    SLL_OUTGOING,
    decode_link,
)
from ccssniff.capture.pcapng import PcapngWriter

DST = bytes.fromhex("ffffffffffff")
SRC = bytes.fromhex("00b052000001")


def ethernet(ethertype, payload, tags=()):
    header = DST + SRC
    for tpid, vlan in tags:
        header += struct.pack(">HH", tpid, vlan)
    return header + struct.pack(">H", ethertype) + payload


def sll1(pkttype, protocol, payload, address=SRC):
    return struct.pack(">HHH8sH", pkttype, 1, len(address), address, protocol) + payload


def sll2(pkttype, protocol, payload, address=SRC, ifindex=3):
    return struct.pack(">HHIHBB8s", protocol, 0, ifindex, 1, pkttype, len(address), address) + payload


def test_plain_ethernet():
    frame = decode_link(LINKTYPE_ETHERNET, ethernet(0x88E1, b"\x01\x00\xa0"))
    assert frame == (SRC, DST, 0x88E1, b"\x01\x00\xa0", None, None)
    assert frame.src == SRC and frame.dst == DST and frame.payload == b"\x01\x00\xa0"


def test_vlan_and_qinq_tags():
    frame = decode_link(LINKTYPE_ETHERNET, ethernet(0x86DD, b"ip", [(0x8100, 0x2005)]))
    assert (frame.ethertype, frame.vlan, frame.payload) == (0x86DD, 5, b"ip")
    frame = decode_link(LINKTYPE_ETHERNET, ethernet(0x86DD, b"ip", [(0x88A8, 0x0064), (0x8100, 0x0007)]))
    assert (frame.ethertype, frame.vlan, frame.payload) == (0x86DD, 100, b"ip")


def test_8023_length_field_is_no_ethertype():
    frame = decode_link(LINKTYPE_ETHERNET, ethernet(46, b"\xaa\xaa\x03" + bytes(43)))
    assert frame.ethertype is None and frame.payload.startswith(b"\xaa\xaa\x03")


def test_linux_cooked_v1_and_v2():
    one = decode_link(LINKTYPE_LINUX_SLL, sll1(SLL_OUTGOING, 0x86DD, b"payload"))
    assert one == (SRC, None, 0x86DD, b"payload", None, SLL_OUTGOING)
    two = decode_link(LINKTYPE_LINUX_SLL2, sll2(SLL_HOST, 0x88E1, b"mme"))
    assert two == (SRC, None, 0x88E1, b"mme", None, SLL_HOST)
    tagged = decode_link(LINKTYPE_LINUX_SLL2, sll2(SLL_HOST, 0x8100, struct.pack(">HH", 12, 0x86DD) + b"x"))
    assert (tagged.ethertype, tagged.vlan, tagged.payload) == (0x86DD, 12, b"x")


@pytest.mark.parametrize(
    "linktype, data",
    [
        (LINKTYPE_ETHERNET, bytes(13)),
        (LINKTYPE_ETHERNET, ethernet(0x8100, b"")[:14] + b"\x00"),  # ends inside the tag
        (LINKTYPE_LINUX_SLL, bytes(15)),
        (LINKTYPE_LINUX_SLL2, bytes(19)),
        (228, bytes(40)),  # raw IPv4: not a link type we take apart
    ],
)
def test_short_frames_and_other_link_types_give_none(linktype, data):
    assert decode_link(linktype, data) is None


@given(linktype=st.sampled_from([1, 113, 276, 0, 101]), data=st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(linktype, data):
    frame = decode_link(linktype, data)
    if frame is not None:
        assert len(frame.payload) <= len(data)


def test_fields_agree_with_tshark(tmp_path, tshark):
    """Our writer puts hand-built frames of three link types in one file; tshark dissects them."""
    cases = [
        (LINKTYPE_ETHERNET, ethernet(0x88E1, bytes(46), [(0x8100, 0x0123)])),
        (LINKTYPE_LINUX_SLL, sll1(SLL_OUTGOING, 0x88E1, bytes(46))),
        (LINKTYPE_LINUX_SLL2, sll2(SLL_HOST, 0x88E1, bytes(46))),
    ]
    path = tmp_path / "links.pcapng"
    with PcapngWriter(path, linktype=LINKTYPE_ETHERNET) as writer:
        interfaces = {LINKTYPE_ETHERNET: 0}
        for linktype, _ in cases[1:]:
            interfaces[linktype] = writer.add_interface(linktype)
        for linktype, data in cases:
            writer.write(data, interface=interfaces[linktype])
    lines = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-E", "separator=|",
         "-e", "eth.src", "-e", "vlan.id", "-e", "vlan.etype",
         "-e", "sll.pkttype", "-e", "sll.src.eth", "-e", "sll.etype"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    ours = [decode_link(linktype, data) for linktype, data in cases]
    eth_src, vlan_id, vlan_etype, _, _, _ = lines[0].split("|")
    assert eth_src == ours[0].src.hex(":")
    assert int(vlan_id) == ours[0].vlan and int(vlan_etype, 16) == ours[0].ethertype
    for line, frame in zip(lines[1:], ours[1:], strict=True):
        _, _, _, pkttype, sll_src, sll_etype = line.split("|")
        assert int(pkttype) == frame.pkttype and sll_src == frame.src.hex(":")
        assert int(sll_etype, 16) == frame.ethertype
