"""Strip the link layer of a captured frame: Ethernet (with 802.1Q/802.1ad tags) and Linux
cooked capture v1/v2 (what ``tcpdump -i any`` records).

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
    "SLL_HOST",
    "SLL_BROADCAST",
    "SLL_MULTICAST",
    "SLL_OTHERHOST",
    "SLL_OUTGOING",
]

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

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
