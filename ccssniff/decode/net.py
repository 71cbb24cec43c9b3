"""IPv6/IPv4, ICMPv6 neighbour discovery, UDP and TCP headers: plain parsing of untrusted bytes.

Every parser returns None for a packet too short or not of its kind instead of raising: a capture
is full of traffic we do not care about, and the per-packet path must stay cheap.
"""
from __future__ import annotations

import socket
import struct
from typing import NamedTuple

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD

PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

# IPv6 extension headers that use the generic (next header, length in 8-octet units) layout.
_GENERIC_EXTENSIONS = frozenset((0, 43, 60, 135, 139, 140))
_FRAGMENT = 44
_AUTHENTICATION = 51

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10

_TCP_HEADER = struct.Struct("!HHIIBB")
_UDP_HEADER = struct.Struct("!HHH")


class IpPacket(NamedTuple):
    src: bytes
    dst: bytes
    protocol: int
    payload: bytes
    # True when this is a non-first IPv6/IPv4 fragment or a first fragment of a larger datagram:
    # its transport header cannot be trusted to describe a whole datagram.
    fragment: bool = False


class TcpSegment(NamedTuple):
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    payload: bytes


class UdpDatagram(NamedTuple):
    src_port: int
    dst_port: int
    payload: bytes


class NeighborDiscovery(NamedTuple):
    kind: str  # "NS" or "NA"
    target: bytes
    flags: int  # NA: router/solicited/override bits (high 3 bits); NS: 0


def parse_ipv6(data: bytes) -> IpPacket | None:
    if len(data) < 40 or data[0] >> 4 != 6:
        return None
    payload_length = (data[4] << 8) | data[5]
    next_header = data[6]
    end = 40 + payload_length
    if payload_length == 0 or end > len(data):
        # Jumbograms (length 0) do not occur on Green PHY; a truncated packet keeps what is there.
        end = len(data)
    offset = 40
    fragment = False
    while True:
        if next_header in _GENERIC_EXTENSIONS:
            if offset + 8 > end:
                return None
            header_length = (data[offset + 1] + 1) * 8
        elif next_header == _FRAGMENT:
            if offset + 8 > end:
                return None
            offset_and_more = (data[offset + 2] << 8) | data[offset + 3]
            if offset_and_more & 0xFFF9:
                fragment = True
            header_length = 8
        elif next_header == _AUTHENTICATION:
            if offset + 8 > end:
                return None
            header_length = (data[offset + 1] + 2) * 4
        else:
            break
        next_header = data[offset]
        offset += header_length
        if offset > end:
            return None
    return IpPacket(data[8:24], data[24:40], next_header, data[offset:end], fragment)


def parse_ipv4(data: bytes) -> IpPacket | None:
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    header_length = (data[0] & 0x0F) * 4
    total_length = (data[2] << 8) | data[3]
    if header_length < 20 or total_length < header_length:
        return None
    end = min(total_length, len(data))
    flags_and_offset = (data[6] << 8) | data[7]
    fragment = bool(flags_and_offset & 0x3FFF)
    return IpPacket(data[12:16], data[16:20], data[9], data[header_length:end], fragment)


def parse_tcp(data: bytes) -> TcpSegment | None:
    if len(data) < 20:
        return None
    src_port, dst_port, seq, ack, offset_byte, flags = _TCP_HEADER.unpack_from(data)
    header_length = (offset_byte >> 4) * 4
    if header_length < 20 or header_length > len(data):
        return None
    return TcpSegment(src_port, dst_port, seq, ack, flags, data[header_length:])


def parse_udp(data: bytes) -> UdpDatagram | None:
    if len(data) < 8:
        return None
    src_port, dst_port, length = _UDP_HEADER.unpack_from(data)
    end = length if 8 <= length <= len(data) else len(data)
    return UdpDatagram(src_port, dst_port, data[8:end])


def parse_neighbor_discovery(icmpv6: bytes) -> NeighborDiscovery | None:
    """ICMPv6 neighbour solicitation (135) or advertisement (136); None for other ICMPv6 types."""
    if len(icmpv6) < 24 or icmpv6[0] not in (135, 136):
        return None
    if icmpv6[0] == 135:
        return NeighborDiscovery("NS", icmpv6[8:24], 0)
    return NeighborDiscovery("NA", icmpv6[8:24], icmpv6[4] & 0xE0)


def format_address(address: bytes) -> str:
    if len(address) == 16:
        return socket.inet_ntop(socket.AF_INET6, address)
    if len(address) == 4:
        return socket.inet_ntop(socket.AF_INET, address)
    return address.hex()
