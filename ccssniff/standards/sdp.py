"""SECC Discovery Protocol (ISO 15118-2 7.10.1, DIN 70121, ISO 15118-20): constants and layouts.

The EV multicasts a request (security, transport) to UDP port 15118; the EVSE answers with its
IPv6 address, TCP port, security and transport. Both travel in a V2GTP header.
"""

from __future__ import annotations

import enum
import struct

UDP_PORT = 15118
MULTICAST_ADDRESS = "ff02::1"  # all nodes, link-local: where the EV sends its request

PAYLOAD_TYPE_REQUEST = 0x9000
PAYLOAD_TYPE_RESPONSE = 0x9001

# [V2G2-159]/[V2G2-161]: wait at least 250 ms for a response, at most 50 consecutive requests
RESPONSE_TIMEOUT = 0.25
MAX_REQUESTS = 50

# the range the EVSE picks its TCP server port from (dynamic ports, [V2G2-642])
TCP_PORT_MIN = 49152
TCP_PORT_MAX = 65535


class Security(enum.IntEnum):
    TLS = 0x00
    NO_TLS = 0x10


class Transport(enum.IntEnum):
    TCP = 0x00
    UDP = 0x10  # reserved by the standards; never used by a V2G session


REQUEST_LENGTH = 2
REQUEST_FORMAT = struct.Struct("!BB")  # security, transport
RESPONSE_LENGTH = 20
RESPONSE_FORMAT = struct.Struct("!16sHBB")  # IPv6 address, TCP port, security, transport
