"""SECC Discovery Protocol payloads (ISO 15118-2 clause 7.10, DIN 70121 clause 8.7.3), parse and build.

Request (EV, multicast to UDP 15118): security, transport protocol.
Response (EVSE): SECC IPv6 address, port, security, transport protocol.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from ccssniff.decode.net import format_address

SDP_PORT = 15118
V2G_TCP_PORT = 15118

SECURITY = {0x00: "TLS", 0x10: "none"}
TRANSPORT = {0x00: "TCP", 0x10: "UDP"}

_RESPONSE = struct.Struct("!16sHBB")


class SdpError(ValueError):
    pass


def _name(table: dict[int, str], value: int) -> str:
    return table.get(value, f"reserved ({value:#04x})")


class SdpRequest(NamedTuple):
    security: int
    transport: int
    extra: bytes = b""  # the wireless request (0x9002) appends identifiers

    def fields(self) -> dict:
        out = {"security": _name(SECURITY, self.security), "transport": _name(TRANSPORT, self.transport)}
        if self.extra:
            out["extra"] = self.extra.hex()
        return out

    def build(self) -> bytes:
        return bytes((self.security, self.transport)) + self.extra


class SdpResponse(NamedTuple):
    address: bytes
    port: int
    security: int
    transport: int
    extra: bytes = b""

    def fields(self) -> dict:
        out = {"address": format_address(self.address), "port": self.port,
               "security": _name(SECURITY, self.security), "transport": _name(TRANSPORT, self.transport)}
        if self.extra:
            out["extra"] = self.extra.hex()
        return out

    def build(self) -> bytes:
        return _RESPONSE.pack(self.address, self.port, self.security, self.transport) + self.extra


def parse_request(payload: bytes) -> SdpRequest:
    if len(payload) < 2:
        raise SdpError(f"SDP request needs 2 bytes (security, transport), got {len(payload)}")
    return SdpRequest(payload[0], payload[1], bytes(payload[2:]))


def parse_response(payload: bytes) -> SdpResponse:
    if len(payload) < _RESPONSE.size:
        raise SdpError(
            f"SDP response needs {_RESPONSE.size} bytes (address, port, security, transport), got {len(payload)}")
    address, port, security, transport = _RESPONSE.unpack_from(payload)
    return SdpResponse(address, port, security, transport, bytes(payload[_RESPONSE.size:]))
