"""Strip the link layer of a captured frame: Ethernet (with 802.1Q/802.1ad tags), Linux
cooked capture v1/v2 (what ``tcpdump -i any`` records), raw IP (``tcpdump -i tun0``, VPNs,
IP-only exporters) and BSD loopback.

Everything above the link layer only needs the addresses, the ethertype and the payload, so
all link types map to one :class:`LinkFrame`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Union

__all__ = [
    "LinkFrame",
    "decode_link",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_RAW",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "SUPPORTED_LINKTYPES",
    "link_type_name",
    "SLL_HOST",
    "SLL_BROADCAST",
    "SLL_MULTICAST",
    "SLL_OTHERHOST",
    "SLL_OUTGOING",
]

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_LOOP = 108  # OpenBSD loopback: the same in network byte order
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, told apart by the version nibble
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
# DLT_RAW as libpcap numbers it on some systems (12 on most, 14 on OpenBSD); same content as 101.
_DLT_RAW = (12, 14)

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_RAW_LINKTYPES = frozenset((LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) + _DLT_RAW)
# BSD address family values for IPv4 and IPv6 (IPv6 differs between the BSDs and macOS).
_AF_INET = 2
_AF_INET6 = frozenset((10, 24, 28, 30))

SUPPORTED_LINKTYPES = frozenset((LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL,
                                 LINKTYPE_LOOP)) | _RAW_LINKTYPES

# Names of link types a user may meet, for the error that says we cannot read them.
_LINKTYPE_NAMES = {
    0: "BSD loopback", 1: "Ethernet", 6: "IEEE 802.5 Token Ring", 8: "SLIP", 9: "PPP", 10: "FDDI",
    12: "raw IP", 14: "raw IP", 50: "PPP in HDLC framing", 51: "PPPoE", 101: "raw IP", 104: "Cisco HDLC",
    105: "IEEE 802.11", 108: "OpenBSD loopback", 113: "Linux cooked capture", 119: "Prism 802.11",
    127: "IEEE 802.11 radiotap", 147: "user 0", 163: "AVS 802.11", 187: "Bluetooth HCI H4",
    189: "USB Linux", 195: "IEEE 802.15.4", 201: "Bluetooth HCI H4 with direction", 215: "IEEE 802.15.4 non-ASK PHY",
    220: "USB Linux memory-mapped", 227: "SocketCAN", 228: "raw IPv4", 229: "raw IPv6", 230: "IEEE 802.15.4 no FCS",
    249: "USBPcap", 251: "Bluetooth LE link layer", 252: "Wireshark upper PDU", 276: "Linux cooked capture v2",
}


def link_type_name(linktype: int) -> str:
    """``105 (IEEE 802.11)``: the number and, where known, what it is."""
    name = _LINKTYPE_NAMES.get(linktype)
    return f"{linktype} ({name})" if name else str(linktype)

# Linux packet types of cooked captures: who the frame was for, seen from the capturing host.
SLL_HOST = 0
SLL_BROADCAST = 1
SLL_MULTICAST = 2
SLL_OTHERHOST = 3
SLL_OUTGOING = 4

_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
# Values up to 1500 in the type field are an 802.3 length, not an ethertype.
_MAX_8023_LENGTH = 1500

_tag = struct.Struct(">HH").unpack_from
_sll1 = struct.Struct(">HHH8sH").unpack_from
_sll2 = struct.Struct(">HHIHBB8s").unpack_from


class LinkFrame(NamedTuple):
    """A frame with its link layer taken apart.

    ``src`` is the source MAC (Ethernet) or the link-layer source address of a cooked capture;
    ``dst`` is the destination MAC, or None for cooked captures, which do not record it.
    ``ethertype`` is None for 802.3 frames whose type field holds a length (LLC follows).
    ``vlan`` is the VLAN id of the outermost 802.1Q/802.1ad tag, or None.
    ``pkttype`` is the Linux packet type of cooked captures (``SLL_HOST`` ... ``SLL_OUTGOING``),
    which tells incoming from outgoing frames; None for Ethernet.
    """

    src: bytes
    dst: Union[bytes, None]
    ethertype: Union[int, None]
    payload: bytes
    vlan: Union[int, None]
    pkttype: Union[int, None]


_new_frame = tuple.__new__


def decode_link(linktype: int, data: bytes) -> Union[LinkFrame, None]:
    """Take apart the link layer of ``data``; None for other link types or a frame too short."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        ethertype = (data[12] << 8) | data[13]
        if ethertype not in _VLAN_TPIDS:
            return _new_frame(
                LinkFrame,
                (data[6:12], data[0:6], ethertype if ethertype > _MAX_8023_LENGTH else None,
                 data[14:], None, None),
            )
        ethertype, payload_start, vlan = _skip_vlan_tags(data, 14, ethertype)
        if ethertype is None:
            return None
        return LinkFrame(
            data[6:12], data[0:6], ethertype if ethertype > _MAX_8023_LENGTH else None,
            data[payload_start:], vlan, None,
        )
    if linktype in _RAW_LINKTYPES:
        if not data:
            return None
        version = data[0] >> 4
        ethertype = _ETHERTYPE_IPV6 if version == 6 else _ETHERTYPE_IPV4 if version == 4 else None
        if ethertype is None:
            return None
        return _new_frame(LinkFrame, (b"", None, ethertype, data, None, None))
    if linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if len(data) < 5:
            return None
        if linktype == LINKTYPE_LOOP:
            family = int.from_bytes(data[:4], "big")
        else:  # host byte order of the capturing machine: whichever reading is small
            family = min(int.from_bytes(data[:4], "little"), int.from_bytes(data[:4], "big"))
        if family == _AF_INET:
            ethertype = _ETHERTYPE_IPV4
        elif family in _AF_INET6:
            ethertype = _ETHERTYPE_IPV6
        else:
            return None
        return _new_frame(LinkFrame, (b"", None, ethertype, data[4:], None, None))
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return None
        pkttype, _arphrd, address_length, address, protocol = _sll1(data, 0)
        header_length = 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return None
        protocol, _reserved, _ifindex, _arphrd, pkttype, address_length, address = _sll2(data, 0)
        header_length = 20
    else:
        return None
    # libpcap re-inserts the VLAN tags the kernel stripped right after the cooked header.
    ethertype, payload_start, vlan = _skip_vlan_tags(data, header_length, protocol)
    if ethertype is None:
        return None
    return LinkFrame(
        address[: min(address_length, 8)],
        None,
        ethertype if ethertype > _MAX_8023_LENGTH else None,
        data[payload_start:],
        vlan,
        pkttype,
    )


def _skip_vlan_tags(data: bytes, offset: int, ethertype: int):
    """Return (inner ethertype, payload offset, outer VLAN id) for tags starting at ``offset``.

    The inner ethertype is None when the frame ends inside a tag.
    """
    vlan = None
    while ethertype in _VLAN_TPIDS:
        if len(data) < offset + 4:
            return None, offset, vlan
        tci, ethertype = _tag(data, offset)
        if vlan is None:
            vlan = tci & 0x0FFF
        offset += 4
    return ethertype, offset, vlan
