"""V2GTP (ISO 15118-2 clause 7.8, ISO 15118-20 clause 12): header checks and stream framing (sans-IO).

A V2GTP header is 8 bytes: version 0x01, its inverse 0xFE, a 16-bit payload type and a 32-bit
payload length. ``V2gtpFramer`` cuts a reassembled TCP byte stream into PDUs; after a gap or a
broken header it reports the problem once and resynchronises at the next plausible header.
"""
from __future__ import annotations

from typing import NamedTuple, Union

from ccssniff.decode.tcp import Gap, StreamItem

HEADER_LENGTH = 8
VERSION = 0x01
INVERSE_VERSION = 0xFE
HEADER_MAGIC = b"\x01\xfe"

# Payload type -> (name, EXI grammar that decodes it or None). 0x8001 carries the application
# handshake and every DIN / ISO 15118-2 message; ISO 15118-20 names its namespace by the type.
PAYLOAD_TYPES: dict[int, tuple[str, str | None]] = {
    0x8001: ("EXI", None),
    0x8002: ("ISO 15118-20 CommonMessages", "iso20_CommonMessages"),
    0x8003: ("ISO 15118-20 AC", "iso20_AC"),
    0x8004: ("ISO 15118-20 DC", "iso20_DC"),
    0x8005: ("ISO 15118-20 ACDP", "iso20_ACDP"),
    0x8006: ("ISO 15118-20 WPT", "iso20_WPT"),
    0x8101: ("ISO 15118-20 schedule renegotiation", None),
    0x8102: ("ISO 15118-20 metering confirmation", None),
    0x8103: ("ISO 15118-20 ACDP system status", None),
    0x8104: ("ISO 15118-20 parking status", None),
    0x9000: ("SDP request", None),
    0x9001: ("SDP response", None),
    0x9002: ("SDP request (wireless)", None),
    0x9003: ("SDP response (wireless)", None),
}
EXI_PAYLOAD_TYPES = frozenset(t for t in PAYLOAD_TYPES if t < 0x9000)
SDP_PAYLOAD_TYPES = frozenset(t for t in PAYLOAD_TYPES if t >= 0x9000)

# The largest V2G message (ISO 15118-2 CertificateInstallationRes with a full chain) is far below
# this; a longer length field means we are not looking at a header.
MAX_PAYLOAD_LENGTH = 256 * 1024


class V2gtpHeader(NamedTuple):
    payload_type: int
    payload_length: int


class V2gtpError(ValueError):
    """A header that is not a valid V2GTP header; the message says which field is wrong."""


class Pdu(NamedTuple):
    payload_type: int
    payload: bytes


class StreamProblem(NamedTuple):
    """Something wrong in the byte stream: a gap, a broken header or a PDU cut short."""

    reason: str
    data: bytes  # the bytes skipped or the partial PDU, for the hex dump


FramerItem = Union[Pdu, StreamProblem]


def parse_header(data: bytes) -> V2gtpHeader:
    if len(data) < HEADER_LENGTH:
        raise V2gtpError(f"V2GTP header needs {HEADER_LENGTH} bytes, got {len(data)}")
    if data[0] != VERSION or data[1] != INVERSE_VERSION:
        raise V2gtpError(
            f"V2GTP version {data[0]:#04x} / inverse {data[1]:#04x}, expected 0x01 / 0xfe")
    payload_type = (data[2] << 8) | data[3]
    if payload_type not in PAYLOAD_TYPES:
        raise V2gtpError(f"unknown V2GTP payload type {payload_type:#06x}")
    length = int.from_bytes(data[4:8], "big")
    if length > MAX_PAYLOAD_LENGTH:
        raise V2gtpError(f"V2GTP payload length {length} exceeds {MAX_PAYLOAD_LENGTH}")
    return V2gtpHeader(payload_type, length)


def build_header(payload_type: int, payload_length: int) -> bytes:
    return bytes((VERSION, INVERSE_VERSION)) + payload_type.to_bytes(2, "big") + \
        payload_length.to_bytes(4, "big")


def is_header_at(data: bytes, offset: int) -> bool:
    if len(data) - offset < HEADER_LENGTH or data[offset] != VERSION or data[offset + 1] != INVERSE_VERSION:
        return False
    payload_type = (data[offset + 2] << 8) | data[offset + 3]
    return payload_type in PAYLOAD_TYPES and int.from_bytes(data[offset + 4:offset + 8], "big") <= MAX_PAYLOAD_LENGTH


def parse_datagram(data: bytes) -> Pdu:
    """A whole V2GTP message in one UDP datagram (SDP); raises V2gtpError."""
    header = parse_header(data)
    if len(data) - HEADER_LENGTH < header.payload_length:
        raise V2gtpError(
            f"V2GTP payload length {header.payload_length}, datagram holds {len(data) - HEADER_LENGTH}")
    return Pdu(header.payload_type, data[HEADER_LENGTH:HEADER_LENGTH + header.payload_length])


class V2gtpFramer:
    """Cuts one direction's byte stream into V2GTP PDUs."""

    __slots__ = ("_buffer", "_synced", "_skip_reason")

    _LOOKING = "bytes skipped while looking for the next V2GTP header"

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._synced = True
        self._skip_reason = self._LOOKING

    def feed(self, items: list[StreamItem]) -> list[FramerItem]:
        out: list[FramerItem] = []
        for item in items:
            if isinstance(item, Gap):
                self._gap(item.size, out)
            else:
                self._buffer += item
                self._cut(out)
        return out

    def flush(self) -> list[FramerItem]:
        """End of stream: leftover bytes are a PDU cut short (or junk)."""
        if not self._buffer:
            return []
        reason = "stream ended inside a V2GTP message" if self._synced else self._skip_reason
        problem = StreamProblem(reason, bytes(self._buffer))
        self._buffer.clear()
        return [problem]

    def _gap(self, size: int, out: list[FramerItem]) -> None:
        if self._buffer and self._synced:
            out.append(StreamProblem(
                f"{size} bytes missing from the capture inside a V2GTP message", bytes(self._buffer)))
        else:
            out.append(StreamProblem(f"{size} bytes missing from the capture", bytes(self._buffer)))
        self._buffer.clear()
        self._synced = False
        self._skip_reason = self._LOOKING

    def _cut(self, out: list[FramerItem]) -> None:
        buffer = self._buffer
        position = 0
        while len(buffer) - position >= HEADER_LENGTH:
            if not self._synced:
                found = self._find_header(position)
                # Without a header, keep the last 7 bytes: a header may straddle the next chunk.
                stop = found if found >= 0 else len(buffer) - HEADER_LENGTH + 1
                if stop > position:
                    out.append(StreamProblem(self._skip_reason, bytes(buffer[position:stop])))
                position = stop
                if found < 0:
                    break
                self._synced = True
                self._skip_reason = self._LOOKING
            if not is_header_at(buffer, position):
                try:
                    parse_header(bytes(buffer[position:position + HEADER_LENGTH]))
                except V2gtpError as error:
                    self._skip_reason = f"{error}; bytes skipped up to the next V2GTP header"
                self._synced = False
                continue
            payload_type = (buffer[position + 2] << 8) | buffer[position + 3]
            end = position + HEADER_LENGTH + int.from_bytes(buffer[position + 4:position + 8], "big")
            if end > len(buffer):
                break
            out.append(Pdu(payload_type, bytes(buffer[position + HEADER_LENGTH:end])))
            position = end
        if position:
            del buffer[:position]

    def _find_header(self, start: int) -> int:
        buffer = self._buffer
        position = buffer.find(HEADER_MAGIC, start)
        while 0 <= position <= len(buffer) - HEADER_LENGTH:
            if is_header_at(buffer, position):
                return position
            position = buffer.find(HEADER_MAGIC, position + 1)
        return -1
