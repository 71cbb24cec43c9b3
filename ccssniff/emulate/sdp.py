"""SECC Discovery Protocol, sans-IO: the EV's client and the EVSE's server.

Datagrams (V2GTP header included) and times go in; datagrams to send and events come out.
Retransmissions are deadlines: ask ``next_deadline()``, call ``on_timer(now)`` when it passes.
No sockets and no clock inside; the driver owns both.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterable, Union

from ccssniff.standards import sdp as std
from ccssniff.standards.sdp import Security, Transport

_V2GTP_HEADER = struct.Struct("!BBHI")
_V2GTP_VERSION = 0x01


class SdpError(ValueError):
    """A datagram that is not a well-formed SDP message; the text says what is wrong."""


@dataclass(frozen=True)
class SdpRequest:
    security: Security = Security.NO_TLS
    transport: Transport = Transport.TCP

    def to_bytes(self) -> bytes:
        payload = std.REQUEST_FORMAT.pack(self.security, self.transport)
        return _V2GTP_HEADER.pack(_V2GTP_VERSION, _V2GTP_VERSION ^ 0xFF,
                                  std.PAYLOAD_TYPE_REQUEST, len(payload)) + payload


@dataclass(frozen=True)
class SdpResponse:
    address: ipaddress.IPv6Address
    port: int
    security: Security = Security.NO_TLS
    transport: Transport = Transport.TCP

    def to_bytes(self) -> bytes:
        payload = std.RESPONSE_FORMAT.pack(self.address.packed, self.port, self.security,
                                           self.transport)
        return _V2GTP_HEADER.pack(_V2GTP_VERSION, _V2GTP_VERSION ^ 0xFF,
                                  std.PAYLOAD_TYPE_RESPONSE, len(payload)) + payload


SdpMessage = Union[SdpRequest, SdpResponse]


def _code(enum_type, value: int, what: str):
    try:
        return enum_type(value)
    except ValueError:
        raise SdpError(f"unknown SDP {what} code {value:#04x}") from None


def parse(datagram: bytes) -> SdpMessage:
    """A UDP payload -> SdpRequest or SdpResponse; SdpError when it is not one."""
    if len(datagram) < _V2GTP_HEADER.size:
        raise SdpError(f"SDP datagram of {len(datagram)} bytes is shorter than a V2GTP header")
    version, inverse, payload_type, length = _V2GTP_HEADER.unpack_from(datagram)
    if version != _V2GTP_VERSION or inverse != _V2GTP_VERSION ^ 0xFF:
        raise SdpError(f"V2GTP version {version:#04x}/{inverse:#04x}, expected 0x01/0xfe")
    payload = datagram[_V2GTP_HEADER.size:]
    if length != len(payload):
        raise SdpError(f"V2GTP length field says {length} bytes, the datagram holds {len(payload)}")
    if payload_type == std.PAYLOAD_TYPE_REQUEST:
        if length != std.REQUEST_LENGTH:
            raise SdpError(f"SDP request payload is {length} bytes, expected {std.REQUEST_LENGTH}")
        security, transport = std.REQUEST_FORMAT.unpack(payload)
        return SdpRequest(_code(Security, security, "security"),
                          _code(Transport, transport, "transport"))
    if payload_type == std.PAYLOAD_TYPE_RESPONSE:
        if length != std.RESPONSE_LENGTH:
            raise SdpError(f"SDP response payload is {length} bytes, expected {std.RESPONSE_LENGTH}")
        address, port, security, transport = std.RESPONSE_FORMAT.unpack(payload)
        return SdpResponse(ipaddress.IPv6Address(address), port,
                           _code(Security, security, "security"),
                           _code(Transport, transport, "transport"))
    raise SdpError(f"V2GTP payload type {payload_type:#06x} is not SDP")


# --- what the machines emit ------------------------------------------------------------------


@dataclass(frozen=True)
class SendDatagram:
    data: bytes
    destination: str  # IPv6 address; the client multicasts, the server answers the sender


@dataclass(frozen=True)
class Discovered:
    response: SdpResponse


@dataclass(frozen=True)
class DiscoveryFailed:
    reason: str


@dataclass(frozen=True)
class Ignored:
    """A datagram the machine dropped, with the reason (for logs and the live view)."""

    reason: str


Event = Union[SendDatagram, Discovered, DiscoveryFailed, Ignored]


class SdpClient:
    """The EV side: multicast a request, retransmit on the schedule, accept one response."""

    IDLE, WAITING, DISCOVERED, FAILED = "idle", "waiting", "discovered", "failed"

    def __init__(self, security: Security = Security.NO_TLS, transport: Transport = Transport.TCP,
                 acceptable_security: Iterable[Security] | None = None,
                 response_timeout: float = std.RESPONSE_TIMEOUT,
                 max_requests: int = std.MAX_REQUESTS) -> None:
        self.request = SdpRequest(security, transport)
        # by default the EV takes what it asked for or, failing that, any security the EVSE offers
        self.acceptable_security = frozenset(acceptable_security or Security)
        self.response_timeout = response_timeout
        self.max_requests = max_requests
        self.state = self.IDLE
        self.requests_sent = 0
        self.response: SdpResponse | None = None
        self._deadline: float | None = None

    def start(self, now: float) -> list[Event]:
        if self.state != self.IDLE:
            return []
        self.state = self.WAITING
        return self._send(now)

    def next_deadline(self) -> float | None:
        return self._deadline if self.state == self.WAITING else None

    def on_timer(self, now: float) -> list[Event]:
        if self.state != self.WAITING or self._deadline is None or now < self._deadline:
            return []
        if self.requests_sent >= self.max_requests:
            self.state = self.FAILED
            self._deadline = None
            return [DiscoveryFailed(f"no SDP response to {self.requests_sent} requests")]
        return self._send(now)

    def on_datagram(self, data: bytes, now: float) -> list[Event]:
        if self.state != self.WAITING:
            return [Ignored(f"SDP datagram while {self.state}")]
        try:
            message = parse(data)
        except SdpError as error:
            return [Ignored(str(error))]
        if isinstance(message, SdpRequest):
            return [Ignored("an SDP request (our own multicast or another EV)")]
        if message.transport != Transport.TCP:
            return [Ignored(f"SDP response offers transport {message.transport.name}")]
        if message.security not in self.acceptable_security:
            return [Ignored(f"SDP response offers security {message.security.name}")]
        self.state = self.DISCOVERED
        self.response = message
        self._deadline = None
        return [Discovered(message)]

    def _send(self, now: float) -> list[Event]:
        self.requests_sent += 1
        self._deadline = now + self.response_timeout
        return [SendDatagram(self.request.to_bytes(), std.MULTICAST_ADDRESS)]


class SdpServer:
    """The EVSE side: answer every valid request with where and how to reach the SECC."""

    def __init__(self, address: str | ipaddress.IPv6Address, port: int,
                 security_offered: Iterable[Security] = (Security.NO_TLS,)) -> None:
        self.address = ipaddress.IPv6Address(address)
        if not 0 < port < 65536:
            raise ValueError(f"TCP port {port} out of range")
        self.port = port
        self.security_offered = tuple(security_offered)
        if not self.security_offered:
            raise ValueError("the SDP server must offer at least one security mode")
        self.requests_answered = 0

    def response_for(self, request: SdpRequest) -> SdpResponse:
        # honour the EV's wish where we can, otherwise offer our first mode and let it decide
        security = request.security if request.security in self.security_offered \
            else self.security_offered[0]
        return SdpResponse(self.address, self.port, security, Transport.TCP)

    def on_datagram(self, data: bytes, source: str) -> list[Event]:
        try:
            message = parse(data)
        except SdpError as error:
            return [Ignored(str(error))]
        if isinstance(message, SdpResponse):
            return [Ignored("an SDP response (another SECC on the link)")]
        if message.transport != Transport.TCP:
            return [Ignored(f"SDP request for transport {message.transport.name}")]
        self.requests_answered += 1
        return [SendDatagram(self.response_for(message).to_bytes(), source)]
