"""Frames as a real wire carries them: Ethernet, IPv6, ICMPv6 neighbour discovery, UDP, TCP.

Used by the lab to write reference traffic with valid checksums; no sockets here. Addresses are
bytes (6 for MACs, 16 for IPv6).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ETHERTYPE_IPV6 = 0x86DD
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    frame = dst + src + struct.pack("!H", ethertype) + payload
    return frame + bytes(max(0, 60 - len(frame)))


def link_local_from_mac(mac: bytes) -> bytes:
    """fe80::/64 with the modified EUI-64 interface identifier of the MAC."""
    eui = bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return bytes.fromhex("fe80000000000000") + eui


def solicited_node(address: bytes) -> bytes:
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


def multicast_mac(address: bytes) -> bytes:
    return b"\x33\x33" + address[12:]


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: bytes, dst: bytes, length: int, next_header: int) -> bytes:
    return src + dst + struct.pack("!IxxxB", length, next_header)


def ipv6(src: bytes, dst: bytes, next_header: int, payload: bytes, hop_limit: int = 64) -> bytes:
    return _IPV6.pack(0x60000000, len(payload), next_header, hop_limit, src, dst) + payload


def udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    header = _UDP.pack(sport, dport, length, 0)
    value = checksum(_pseudo_header(src, dst, length, PROTO_UDP) + header + payload) or 0xFFFF
    return ipv6(src, dst, PROTO_UDP, _UDP.pack(sport, dport, length, value) + payload)


def tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", window: int = 64240, options: bytes = b"") -> bytes:
    offset = (20 + len(options)) // 4
    header = _TCP.pack(sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options
    segment = header + payload
    value = checksum(_pseudo_header(src, dst, len(segment), PROTO_TCP) + segment)
    segment = segment[:16] + struct.pack("!H", value) + segment[18:]
    return ipv6(src, dst, PROTO_TCP, segment)


def icmpv6(src: bytes, dst: bytes, icmp_type: int, body: bytes) -> bytes:
    message = struct.pack("!BBH", icmp_type, 0, 0) + body
    value = checksum(_pseudo_header(src, dst, len(message), PROTO_ICMPV6) + message)
    message = message[:2] + struct.pack("!H", value) + message[4:]
    return ipv6(src, dst, PROTO_ICMPV6, message, hop_limit=255)


def neighbour_solicitation(src_mac: bytes, src_ip: bytes, target: bytes) -> bytes:
    body = b"\x00" * 4 + target + b"\x01\x01" + src_mac  # option: source link-layer address
    dst_ip = solicited_node(target)
    return ethernet(multicast_mac(dst_ip), src_mac, ETHERTYPE_IPV6, icmpv6(src_ip, dst_ip, 135, body))


def neighbour_advertisement(src_mac: bytes, src_ip: bytes, dst_mac: bytes, dst_ip: bytes) -> bytes:
    flags = 0x60000000  # solicited + override
    body = struct.pack("!I", flags) + src_ip + b"\x02\x01" + src_mac  # target link-layer address
    return ethernet(dst_mac, src_mac, ETHERTYPE_IPV6, icmpv6(src_ip, dst_ip, 136, body))


@dataclass
class Host:
    mac: bytes
    ip: bytes = b""

    def __post_init__(self):
        if not self.ip:
            self.ip = link_local_from_mac(self.mac)


@dataclass
class TcpConnection:
    """Both ends of one TCP connection, producing the frames a real exchange puts on the wire."""

    client: Host
    server: Host
    client_port: int
    server_port: int
    client_seq: int = 0x1000
    server_seq: int = 0x8000
    mss: int = 1440
    frames: list = field(default_factory=list)

    def _frame(self, from_client: bool, flags: int, payload: bytes = b"", options: bytes = b"") -> bytes:
        if from_client:
            a, b, sport, dport, seq, ack = (self.client, self.server, self.client_port, self.server_port,
                                            self.client_seq, self.server_seq)
        else:
            a, b, sport, dport, seq, ack = (self.server, self.client, self.server_port, self.client_port,
                                            self.server_seq, self.client_seq)
        packet = tcp(a.ip, b.ip, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, payload,
                     options=options)
        return ethernet(b.mac, a.mac, ETHERTYPE_IPV6, packet)

    def open(self) -> list[bytes]:
        mss_option = struct.pack("!BBH", 2, 4, self.mss)
        syn = self._frame(True, TCP_SYN, options=mss_option)
        self.client_seq += 1
        syn_ack = self._frame(False, TCP_SYN | TCP_ACK, options=mss_option)
        self.server_seq += 1
        ack = self._frame(True, TCP_ACK)
        return [syn, syn_ack, ack]

    def send(self, from_client: bool, payload: bytes) -> list[bytes]:
        """Data segments of at most one MSS each; the receiver's ACK follows the last one."""
        frames = []
        for start in range(0, len(payload), self.mss):
            chunk = payload[start:start + self.mss]
            frames.append(self._frame(from_client, TCP_PSH | TCP_ACK, chunk))
            if from_client:
                self.client_seq += len(chunk)
            else:
                self.server_seq += len(chunk)
        return frames

    def acknowledge(self, by_client: bool) -> bytes:
        return self._frame(by_client, TCP_ACK)

    def close(self, client_first: bool = True) -> list[bytes]:
        first = self._frame(client_first, TCP_FIN | TCP_ACK)
        self._advance(client_first)
        second = self._frame(not client_first, TCP_FIN | TCP_ACK)
        self._advance(not client_first)
        last = self._frame(client_first, TCP_ACK)
        return [first, second, last]

    def _advance(self, client: bool) -> None:
        if client:
            self.client_seq += 1
        else:
            self.server_seq += 1
