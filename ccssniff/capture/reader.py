"""Read pcap and pcapng files as a stream of packets, in constant memory.

The file is read in large chunks and parsed with precompiled ``struct`` objects; each packet
costs one ``unpack_from`` call and one slice. Damage is handled the way a user needs it:
a file that is no capture at all raises :class:`CaptureFormatError` before the first packet,
while a capture that is cut off or damaged part-way yields every complete packet before the
damage and then emits a :class:`CaptureWarning` (Python ``warnings``), so that a recording
interrupted by a crash or a full disk is still usable.
"""

from __future__ import annotations

import gzip
import itertools
import os
import struct
import warnings
import zlib
from typing import BinaryIO, Iterator, NamedTuple, Union

__all__ = ["Packet", "CaptureFormatError", "CaptureWarning", "read_packets", "require_decodable_link"]

_CHUNK = 1 << 20
# Bounds the memory one record may claim; a larger length field means the file is damaged.
_MAX_BLOCK = 1 << 24

_PCAPNG_IDB = 1
_PCAPNG_OPB = 2  # obsolete Packet Block
_PCAPNG_SPB = 3
_PCAPNG_EPB = 6
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_OPT_COMMENT = 1
_IF_TSRESOL = 9
_IF_TSOFFSET = 14

# pcap magic as it appears in the first four bytes -> (byte order, timestamp ticks per second)
_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_GZIP_MAGIC = b"\x1f\x8b"


class Packet(NamedTuple):
    """One captured frame.

    ``index`` is the 1-based frame number as Wireshark shows it; ``timestamp`` is seconds since
    the epoch (0.0 for pcapng Simple Packet Blocks, which carry no time); ``interface`` is the
    pcapng interface id (always 0 in pcap); ``orig_len`` is the length on the wire, which exceeds
    ``len(data)`` when the capture was cut to a snap length.
    """

    index: int
    timestamp: float
    linktype: int
    data: bytes
    interface: int
    comment: Union[str, None]
    orig_len: int


class CaptureFormatError(ValueError):
    """The input cannot be read as a pcap or pcapng capture at all."""


class CaptureWarning(UserWarning):
    """A capture is cut off or damaged part-way; the packets before the damage were read."""


_new_packet = tuple.__new__  # skips NamedTuple's Python-level __new__ in the hot loops


def read_packets(source: Union[str, os.PathLike, BinaryIO]) -> Iterator[Packet]:
    """Yield the packets of a pcap or pcapng file (optionally gzip-compressed).

    ``source`` is a path or a binary file object opened for reading (read from its current
    position and left open). Raises :class:`CaptureFormatError` at once when the input is not a
    capture; damage later in the file ends the iteration with a :class:`CaptureWarning`.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            stream = open(source, "rb")
        except OSError as exc:
            raise CaptureFormatError(f"cannot read {name}: {exc.strerror or exc}") from None
        owned = True
    else:
        stream = source
        name = getattr(source, "name", "<stream>")
        owned = False
    source_stream = stream  # closed at the end when we opened it, also under a gzip layer
    try:
        head = _read_at_least(stream, b"", 4)
        if head[:2] == _GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=_Prefixed(head, source_stream), mode="rb")
            try:
                head = _read_at_least(stream, b"", 4)
            except (OSError, EOFError, zlib.error) as exc:
                raise CaptureFormatError(f"{name} is a damaged gzip file: {exc}") from None
            stream = _TolerantGzip(stream, name)
        magic = head[:4]
        if magic in _PCAP_MAGIC:
            endian, ticks = _PCAP_MAGIC[magic]
            packets = _pcap_packets(stream, head, name, endian, ticks)
        elif magic == _PCAPNG_MAGIC:
            packets = _pcapng_packets(stream, head, name)
        elif not head:
            raise CaptureFormatError(f"{name} is empty, not a pcap or pcapng capture")
        else:
            raise CaptureFormatError(
                f"{name} is not a pcap or pcapng capture (it starts with {head.hex(' ')})"
            )
        return _closing(packets, source_stream if owned else None)
    except BaseException:
        if owned:
            source_stream.close()
        raise


def _closing(packets: Iterator[Packet], stream) -> Iterator[Packet]:
    try:
        yield from packets
    finally:
        if stream is not None:
            stream.close()


def require_decodable_link(packets: Iterator[Packet]) -> Iterator[Packet]:
    """``packets`` unchanged, after making sure the first one has a link type we can take apart.

    Raises :class:`CaptureFormatError` ("link type 105 (IEEE 802.11) is not supported") at once,
    instead of letting a decoder show an empty timeline for a capture it cannot read.
    """
    from ccssniff.capture.link import SUPPORTED_LINKTYPES, link_type_name

    first = next(packets, None)
    if first is None:
        return iter(())
    if first.linktype not in SUPPORTED_LINKTYPES:
        close = getattr(packets, "close", None)
        if close is not None:
            close()
        raise CaptureFormatError(f"link type {link_type_name(first.linktype)} is not supported")
    return itertools.chain((first,), packets)


class _Prefixed:
    """A read-only file that first returns bytes already consumed from the real stream."""

    def __init__(self, prefix: bytes, stream):
        self._prefix = prefix
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0:
                data, self._prefix = self._prefix + self._stream.read(), b""
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._stream.read(size)


class _TolerantGzip:
    """Ends a damaged or cut-off gzip stream like a cut-off file, with a warning, not an error."""

    def __init__(self, stream: gzip.GzipFile, name: str):
        self._stream = stream
        self._name = name
        self._broken = False

    def read(self, size: int) -> bytes:
        # read1 in a loop keeps what was decompressed before the damage; read() would drop it.
        parts, have = [], 0
        while have < size and not self._broken:
            try:
                part = self._stream.read1(size - have)
            except (OSError, EOFError, zlib.error) as exc:
                self._broken = True
                warnings.warn(
                    CaptureWarning(f"{self._name}: the gzip compression is damaged or cut off ({exc})"),
                    stacklevel=2,
                )
                break
            if not part:
                break
            parts.append(part)
            have += len(part)
        return b"".join(parts)


def _read_at_least(stream, buf: bytes, need: int, chunk: int = 0) -> bytes:
    """Return ``buf`` extended from ``stream`` to ``need`` bytes (fewer only at end of file),
    reading at least ``chunk`` bytes at once."""
    parts, have = [buf], len(buf)
    want = max(need - have, chunk)
    while have < need:
        data = stream.read(want)
        if not data:
            break
        parts.append(data)
        have += len(data)
        want = need - have
    return b"".join(parts)


def _warn_cut(name: str, count: int) -> None:
    warnings.warn(
        CaptureWarning(
            f"{name} is cut off in the middle of a packet; read the {count} complete packets before the cut"
        ),
        stacklevel=3,
    )


def _warn_damaged(name: str, count: int, what: str) -> None:
    warnings.warn(
        CaptureWarning(f"{name} is damaged after packet {count} ({what}); stopped reading there"),
        stacklevel=3,
    )


def _pcap_packets(stream, buf: bytes, name: str, endian: str, ticks: int) -> Iterator[Packet]:
    buf = _read_at_least(stream, buf, 24, _CHUNK)
    if len(buf) < 24:
        raise CaptureFormatError(f"{name} is cut off within its pcap file header")
    network = struct.unpack_from(endian + "I", buf, 20)[0]
    linktype = network & 0xFFFF  # the upper bits carry FCS information
    return _pcap_records(stream, buf, name, endian, ticks, linktype)


def _pcap_records(stream, buf, name, endian, ticks, linktype) -> Iterator[Packet]:
    unpack_record = struct.Struct(endian + "IIII").unpack_from
    new, cls = _new_packet, Packet
    pos = 24
    size = len(buf)
    index = 0
    while True:
        start = pos + 16
        if start > size:
            buf = _read_at_least(stream, buf[pos:], 16, _CHUNK)
            pos, start, size = 0, 16, len(buf)
            if size < 16:
                if size:
                    _warn_cut(name, index)
                return
        seconds, fraction, caplen, orig_len = unpack_record(buf, pos)
        end = start + caplen
        if end > size:
            if caplen > _MAX_BLOCK:
                _warn_damaged(name, index, f"record length {caplen}")
                return
            buf = _read_at_least(stream, buf[pos:], 16 + caplen, _CHUNK)
            pos, start, end, size = 0, 16, 16 + caplen, len(buf)
            if end > size:
                _warn_cut(name, index)
                return
        index += 1
        yield new(cls, (index, seconds + fraction / ticks, linktype, buf[start:end], 0, None, orig_len))
        pos = end


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    ticks: int
    offset: int


def _options(buf: bytes, start: int, end: int, endian: str) -> Iterator[tuple[int, bytes]]:
    """Yield (code, value) of a pcapng option list, stopping at opt_endofopt or damage."""
    header = struct.Struct(endian + "HH").unpack_from
    while start + 4 <= end:
        code, length = header(buf, start)
        if code == 0:
            return
        value_end = start + 4 + length
        if value_end > end:
            return
        yield code, buf[start + 4 : value_end]
        start += 4 + ((length + 3) & ~3)


def _interface(body: bytes, start: int, end: int, endian: str) -> _Interface:
    linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", body, start)
    ticks, offset = 1_000_000, 0
    for code, value in _options(body, start + 8, end, endian):
        if code == _IF_TSRESOL and value:
            exponent = value[0] & 0x7F
            ticks = (2 if value[0] & 0x80 else 10) ** exponent
        elif code == _IF_TSOFFSET and len(value) == 8:
            offset = struct.unpack(endian + "q", value)[0]
    return _Interface(linktype, snaplen, ticks, offset)


def _comment(buf: bytes, start: int, end: int, endian: str) -> Union[str, None]:
    comments = [
        value.decode("utf-8", "replace").rstrip("\x00")
        for code, value in _options(buf, start, end, endian)
        if code == _OPT_COMMENT
    ]
    return "\n".join(comments) if comments else None


_ENDIAN_OF_BOM = {
    _BYTE_ORDER_MAGIC.to_bytes(4, "little"): "<",
    _BYTE_ORDER_MAGIC.to_bytes(4, "big"): ">",
}


def _pcapng_packets(stream, buf: bytes, name: str) -> Iterator[Packet]:
    buf = _read_at_least(stream, buf, 28, _CHUNK)
    if len(buf) < 28:
        raise CaptureFormatError(f"{name} is cut off within its pcapng section header")
    if buf[8:12] not in _ENDIAN_OF_BOM:
        raise CaptureFormatError(f"{name} starts like pcapng but has no valid byte-order magic")
    return _pcapng_blocks(stream, buf, name)


def _pcapng_blocks(stream, buf: bytes, name: str) -> Iterator[Packet]:
    new, cls = _new_packet, Packet
    pos = 0
    size = len(buf)  # bytes of real data in buf; buf may carry zero padding beyond it
    index = 0
    interfaces: list[_Interface] = []
    endian = "<"  # the first block is a section header, which sets the real byte order
    unpack_block = unpack_opb = None
    while True:
        if pos + 28 > size:
            buf = _read_at_least(stream, buf[pos:size], 28, _CHUNK)
            pos, size = 0, len(buf)
            if size < 28:
                if size < 12:
                    if size:
                        _warn_cut(name, index)
                    return
                # A short last block: pad so the one unpack below works; size stays the truth.
                buf += bytes(28 - size)
        if buf[pos] == 0x0A and buf[pos : pos + 4] == _PCAPNG_MAGIC:
            # A section header sets the byte order of every block up to the next one.
            endian = _ENDIAN_OF_BOM.get(buf[pos + 8 : pos + 12])
            if endian is None:
                _warn_damaged(name, index, "a section header without byte-order magic")
                return
            # Block header and the five EPB fields in one unpack: the common case costs one call.
            unpack_block = struct.Struct(endian + "IIIIIII").unpack_from
            unpack_opb = struct.Struct(endian + "HHIIII").unpack_from
            interfaces = []
        kind, length, interface, high, low, caplen, orig_len = unpack_block(buf, pos)
        end = pos + length
        if end > size:
            if length > _MAX_BLOCK or length < 12 or length & 3:
                _warn_damaged(name, index, f"block length {length}")
                return
            buf = _read_at_least(stream, buf[pos:size], length, _CHUNK)
            pos, end, size = 0, length, len(buf)
            if end > size:
                _warn_cut(name, index)
                return
        elif length < 12 or length & 3:
            _warn_damaged(name, index, f"block length {length}")
            return

        if kind == _PCAPNG_EPB or kind == _PCAPNG_OPB:
            if length < 32:
                _warn_damaged(name, index, "a packet block shorter than its fields")
                return
            if kind == _PCAPNG_OPB:
                interface, _drops, high, low, caplen, orig_len = unpack_opb(buf, pos + 8)
            data_start = pos + 28
            options_start = data_start + ((caplen + 3) & ~3)
            if options_start > end - 4:
                _warn_damaged(name, index, f"captured length {caplen} exceeds its block")
                return
            if interface >= len(interfaces):
                _warn_damaged(name, index, f"a packet on undeclared interface {interface}")
                return
            linktype, _snaplen, ticks, offset = interfaces[interface]
            index += 1
            yield new(
                cls,
                (index, ((high << 32) | low) / ticks + offset, linktype, buf[data_start : data_start + caplen],
                 interface, _comment(buf, options_start, end - 4, endian) if options_start < end - 4 else None,
                 orig_len),
            )
        elif kind == _PCAPNG_IDB:
            if length < 20:
                _warn_damaged(name, index, "an interface block shorter than its fields")
                return
            interfaces.append(_interface(buf, pos + 8, end - 4, endian))
        elif kind == _PCAPNG_SPB:
            if not interfaces:
                _warn_damaged(name, index, "a simple packet block before any interface")
                return
            linktype, snaplen = interfaces[0].linktype, interfaces[0].snaplen
            orig_len = interface  # an SPB's first field is the length on the wire
            caplen = min(orig_len, length - 16, snaplen or orig_len)
            index += 1
            yield new(cls, (index, 0.0, linktype, buf[pos + 12 : pos + 12 + caplen], 0, None, orig_len))
        pos = end
