"""V2GTP (ISO 15118-2 clause 7.8, ISO 15118-20 clause 12): header checks and stream framing (sans-IO).

A V2GTP header is 8 bytes: version 0x01, its inverse 0xFE, a 16-bit payload type and a 32-bit
payload length. ``V2gtpFramer`` cuts a reassembled TCP byte stream into PDUs; after a gap or a
broken header it reports the problem once and resynchronises at the next plausible header.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Union

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
# Payload types whose content is small by definition: a longer length is a lie, not a message.
# SDP requests are 2 bytes, responses 20; the ISO 15118-20 status payloads are a few dozen bytes.
_SMALL_PAYLOAD_LENGTH = {0x9000: 2, 0x9001: 20, 0x9002: 2, 0x9003: 20,
                         0x8101: 4096, 0x8102: 4096, 0x8103: 4096, 0x8104: 4096}


def plausible_length(payload_type: int) -> int:
    """The longest payload a V2GTP message of this type can sensibly carry."""
    return _SMALL_PAYLOAD_LENGTH.get(payload_type, MAX_PAYLOAD_LENGTH)


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


def parse_header(data: bytes, in_stream: bool = False) -> V2gtpHeader:
    """``in_stream``: the header is inside a TCP stream, where each payload type's own length bound holds."""
    if len(data) < HEADER_LENGTH:
        raise V2gtpError(f"V2GTP header needs {HEADER_LENGTH} bytes, got {len(data)}")
    if data[0] != VERSION or data[1] != INVERSE_VERSION:
        raise V2gtpError(
            f"V2GTP version {data[0]:#04x} / inverse {data[1]:#04x}, expected 0x01 / 0xfe")
    payload_type = (data[2] << 8) | data[3]
    if payload_type not in PAYLOAD_TYPES:
        raise V2gtpError(f"unknown V2GTP payload type {payload_type:#06x}")
    length = int.from_bytes(data[4:8], "big")
    limit = plausible_length(payload_type) if in_stream else MAX_PAYLOAD_LENGTH
    if length > limit:
        kind = f" for payload type {payload_type:#06x}" if limit < MAX_PAYLOAD_LENGTH else ""
        raise V2gtpError(f"V2GTP payload length {length} exceeds {limit}{kind}")
    return V2gtpHeader(payload_type, length)


def build_header(payload_type: int, payload_length: int) -> bytes:
    return bytes((VERSION, INVERSE_VERSION)) + payload_type.to_bytes(2, "big") + \
        payload_length.to_bytes(4, "big")


def is_header_at(data: bytes, offset: int) -> bool:
    """A plausible V2GTP header of a TCP stream starts at ``offset``."""
    if len(data) - offset < HEADER_LENGTH or data[offset] != VERSION or data[offset + 1] != INVERSE_VERSION:
        return False
    payload_type = (data[offset + 2] << 8) | data[offset + 3]
    length = int.from_bytes(data[offset + 4:offset + 8], "big")
    return payload_type in PAYLOAD_TYPES and length <= _SMALL_PAYLOAD_LENGTH.get(payload_type, MAX_PAYLOAD_LENGTH)


def parse_datagram(data: bytes) -> Pdu:
    """A whole V2GTP message in one UDP datagram (SDP); raises V2gtpError."""
    header = parse_header(data)
    if len(data) - HEADER_LENGTH < header.payload_length:
        raise V2gtpError(
            f"V2GTP payload length {header.payload_length}, datagram holds {len(data) - HEADER_LENGTH}")
    return Pdu(header.payload_type, data[HEADER_LENGTH:HEADER_LENGTH + header.payload_length])


# A claimed length beyond this is rare enough to be checked while the PDU is still arriving:
# a lying length would otherwise hold back every message behind it until the stream ends.
_EARLY_CHECK_LENGTH = 16 * 1024

# Bytes skipped while out of sync are held back to be reported in one piece, up to this many.
_MAX_SKIPPED_HELD = 8 * 1024

# Headers inside a long PDU whose messages are still arriving, remembered to be checked later.
_MAX_CANDIDATES = 8

PayloadCheck = Callable[[int, bytes], bool]


class V2gtpFramer:
    """Cuts one direction's byte stream into V2GTP PDUs.

    ``accept(payload_type, payload)`` says whether a payload decodes. When given, a header whose
    length is a lie is found out: its payload does not decode (or has not arrived at all) while a
    valid V2GTP message with a decodable payload starts inside it; the framer reports the header
    and resynchronises at that message.
    """

    __slots__ = ("_buffer", "_synced", "_skip_reason", "_accept", "_scan_from", "_candidates", "_search_from")

    _LOOKING = "bytes skipped while looking for the next V2GTP header"

    def __init__(self, accept: PayloadCheck | None = None) -> None:
        self._buffer = bytearray()
        self._synced = True
        self._skip_reason = self._LOOKING
        self._accept = accept
        self._scan_from = HEADER_LENGTH  # where the search for a message hidden in a long PDU goes on
        self._candidates: list[int] = []  # headers inside it whose message has not all arrived
        self._search_from = 0  # where the search for the next header goes on while out of sync

    def feed(self, items: list[StreamItem]) -> list[FramerItem]:
        out: list[FramerItem] = []
        for item in items:
            if isinstance(item, Gap):
                self._gap(item.size, out)
            else:
                self._buffer += item
                self._cut(out)
        return out

    @property
    def buffered(self) -> int:
        """Bytes held: a message still arriving, or skipped bytes not yet reported."""
        return len(self._buffer)

    def drop(self, reason: str) -> StreamProblem:
        """Give up what is held (a memory bound is reached) and look for the next header."""
        problem = StreamProblem(f"{len(self._buffer)} bytes dropped: {reason}", bytes(self._buffer[:64]))
        self._resynchronise()
        return problem

    def flush(self) -> list[FramerItem]:
        """End of stream: leftover bytes are a PDU cut short (or junk)."""
        out: list[FramerItem] = []
        self._rescue_partial(out)
        if not self._buffer:
            return out
        reason = "stream ended inside a V2GTP message" if self._synced else self._skip_reason
        out.append(StreamProblem(reason, bytes(self._buffer)))
        self._empty()
        return out

    def _gap(self, size: int, out: list[FramerItem]) -> None:
        self._rescue_partial(out)
        if self._buffer and self._synced:
            out.append(StreamProblem(
                f"{size} bytes missing from the capture inside a V2GTP message", bytes(self._buffer)))
        else:
            out.append(StreamProblem(f"{size} bytes missing from the capture", bytes(self._buffer)))
        self._resynchronise()

    def _empty(self) -> None:
        """Forget the bytes held and where the header search stood."""
        self._buffer.clear()
        self._next_pdu()
        self._search_from = 0

    def _resynchronise(self) -> None:
        """Forget the bytes held and look for the next valid header."""
        self._empty()
        self._synced = False
        self._skip_reason = self._LOOKING

    def _cut(self, out: list[FramerItem]) -> None:
        buffer = self._buffer
        position = 0
        while len(buffer) - position >= HEADER_LENGTH:
            if not self._synced:
                found = self._find_header(max(position, self._search_from))
                if found < 0:
                    # Skipped bytes are reported in one piece when the next header comes (or the
                    # stream ends), unless they pile up; a header may straddle the next chunk.
                    if len(buffer) - position > _MAX_SKIPPED_HELD:
                        stop = len(buffer) - HEADER_LENGTH + 1
                        out.append(StreamProblem(self._skip_reason, bytes(buffer[position:stop])))
                        position = stop
                    self._search_from = len(buffer) - HEADER_LENGTH + 1
                    break
                if found > position:
                    out.append(StreamProblem(self._skip_reason, bytes(buffer[position:found])))
                position = found
                self._search_from = 0
                self._synced = True
                self._skip_reason = self._LOOKING
                self._next_pdu()
            if not is_header_at(buffer, position):
                try:
                    parse_header(bytes(buffer[position:position + HEADER_LENGTH]), in_stream=True)
                except V2gtpError as error:
                    self._skip_reason = f"{error}; bytes skipped up to the next V2GTP header"
                self._synced = False
                continue
            payload_type = (buffer[position + 2] << 8) | buffer[position + 3]
            length = int.from_bytes(buffer[position + 4:position + 8], "big")
            start = position + HEADER_LENGTH
            end = start + length
            if end > len(buffer):
                if self._accept is not None and length > _EARLY_CHECK_LENGTH:
                    inner = self._hidden_message(position, len(buffer))
                    if inner >= 0:
                        out.append(self._lie(length, position, inner, "has not arrived"))
                        position = inner
                        continue
                break
            if self._accept is not None:
                inner = self._hidden_message(position, end)
                if inner >= 0 and not self._accept(payload_type, bytes(buffer[start:end])):
                    out.append(self._lie(length, position, inner, "does not decode"))
                    position = inner
                    continue
            out.append(Pdu(payload_type, bytes(buffer[start:end])))
            position = end
            self._next_pdu()
        if position:
            del buffer[:position]
            self._search_from = max(0, self._search_from - position)

    def _next_pdu(self) -> None:
        """A new PDU starts: the search for messages hidden inside one starts over."""
        self._scan_from = HEADER_LENGTH
        self._candidates = []

    def _lie(self, length: int, header: int, inner: int, what: str) -> StreamProblem:
        self._next_pdu()
        return StreamProblem(
            f"V2GTP header claims {length} bytes but its payload {what} while a valid V2GTP message "
            f"starts {inner - header - HEADER_LENGTH} bytes into it; resynchronised there",
            bytes(self._buffer[header:inner]))

    def _rescue_partial(self, out: list[FramerItem]) -> None:
        """Before giving up on a PDU cut short, look for whole messages its length swallowed."""
        while self._accept is not None and self._synced and is_header_at(self._buffer, 0):
            length = int.from_bytes(self._buffer[4:8], "big")
            inner = self._hidden_message(0, len(self._buffer))
            if inner < 0:
                return
            out.append(self._lie(length, 0, inner, "has not arrived"))
            del self._buffer[:inner]
            self._cut(out)

    def _hidden_message(self, header: int, end: int) -> int:
        """Offset of a valid V2GTP message with a decodable payload, wholly inside [header + 8, end).

        While the PDU at ``header`` is still arriving (``end`` is the buffer's end), each byte is
        searched once: ``_scan_from`` is where the search goes on, and headers whose message has
        not arrived yet wait in ``_candidates`` (a few; more are not worth the work).
        """
        buffer = self._buffer
        incremental = end == len(buffer)
        if incremental:
            waiting, self._candidates = self._candidates, []
            for relative in waiting:
                found = self._check_inner(header + relative, end)
                if found is True:
                    return header + relative
                if found is None:
                    self._candidates.append(relative)
            position = buffer.find(HEADER_MAGIC, header + self._scan_from, end)
        else:
            position = buffer.find(HEADER_MAGIC, header + HEADER_LENGTH, end)
        while 0 <= position <= end - HEADER_LENGTH:
            found = self._check_inner(position, end)
            if found is True:
                return position
            if found is None and incremental and len(self._candidates) < _MAX_CANDIDATES:
                self._candidates.append(position - header)
            position = buffer.find(HEADER_MAGIC, position + 1, end)
        if incremental:
            self._scan_from = max(HEADER_LENGTH, end - HEADER_LENGTH + 1 - header)
        return -1

    def _check_inner(self, position: int, end: int) -> bool | None:
        """True: a decodable message starts at ``position``; None: maybe, it has not all arrived."""
        buffer = self._buffer
        if not is_header_at(buffer, position):
            return False
        inner_end = position + HEADER_LENGTH + int.from_bytes(buffer[position + 4:position + 8], "big")
        if inner_end > end:
            return None
        payload_type = (buffer[position + 2] << 8) | buffer[position + 3]
        return self._accept(payload_type, bytes(buffer[position + HEADER_LENGTH:inner_end]))

    def _find_header(self, start: int) -> int:
        buffer = self._buffer
        position = buffer.find(HEADER_MAGIC, start)
        while 0 <= position <= len(buffer) - HEADER_LENGTH:
            if is_header_at(buffer, position):
                return position
            position = buffer.find(HEADER_MAGIC, position + 1)
        return -1
