"""A quick first pass over a capture that collects every TLS key it discloses.

Test systems send their key-log lines into the trace, sometimes after the handshake they belong
to; a pcapng file may carry Decryption Secrets Blocks. Reading them all before the real pass lets
a file be decoded with every key it contains, without holding the trace in memory. The pass
only looks closer at frames that contain a key-log label, so it costs little more than reading.
"""
from __future__ import annotations

import os
import warnings
from typing import Union

from ccssniff.capture.link import decode_link
from ccssniff.capture.pcapng import TLS_KEY_LOG
from ccssniff.capture.reader import CaptureWarning, read_packets
from ccssniff.decode.keylog import KeyLog, looks_like_keylog
from ccssniff.decode.net import ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_UDP, parse_ipv4, parse_ipv6, parse_udp

_MARKERS = (b"_SECRET", b"CLIENT_RANDOM ")


class TraceKeys:
    """What the first pass found: the keys, and how many came from packets and from secrets blocks."""

    def __init__(self) -> None:
        self.keys = KeyLog()
        self.from_packets = 0
        self.from_blocks = 0

    def _block(self, secrets_type: int, data: bytes) -> None:
        if secrets_type == TLS_KEY_LOG:
            self.from_blocks += self.keys.add_text(data)


def keys_in_capture(path: Union[str, os.PathLike]) -> TraceKeys:
    """Every key-log line in UDP payloads (any port) and every TLS Decryption Secrets Block."""
    found = TraceKeys()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)  # the real pass reports damage once
        for packet in read_packets(path, on_secrets=found._block):
            data = packet.data
            if _MARKERS[0] not in data and _MARKERS[1] not in data:
                continue
            payload = _udp_payload(packet.linktype, data)
            if payload is not None and looks_like_keylog(payload):
                found.from_packets += found.keys.add_text(payload)
    return found


def _udp_payload(linktype: int, data: bytes) -> bytes | None:
    link = decode_link(linktype, data)
    if link is None:
        return None
    if link.ethertype == ETHERTYPE_IPV6:
        ip = parse_ipv6(link.payload)
    elif link.ethertype == ETHERTYPE_IPV4:
        ip = parse_ipv4(link.payload)
    else:
        return None
    if ip is None or ip.fragment or ip.protocol != PROTO_UDP:
        return None
    datagram = parse_udp(ip.payload)
    return datagram.payload if datagram is not None else None
