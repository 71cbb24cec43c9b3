"""Bit-packed reading and writing, most significant bit first (EXI 1.0 section 7.1)."""

from __future__ import annotations

from .errors import DecodeError


class BitReader:
    __slots__ = ("data", "pos", "limit", "violated")

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos
        self.limit = len(data) * 8
        #: set by a value that the bits carry but the schema's facets forbid (lenient decoding)
        self.violated = False

    def bits(self, n: int) -> int:
        if n == 0:
            return 0
        start = self.pos
        end = start + n
        if end > self.limit:
            raise DecodeError("stream ends early", start, f"{n} more bits")
        first = start >> 3
        last = (end + 7) >> 3
        value = int.from_bytes(self.data[first:last], "big") >> ((last << 3) - end)
        self.pos = end
        return value & ((1 << n) - 1)

    def unsigned(self) -> int:
        """EXI Unsigned Integer: 7-bit groups, least significant first, high bit = more follow."""
        value = 0
        shift = 0
        start = self.pos
        while True:
            octet = self.bits(8)
            value |= (octet & 0x7F) << shift
            if octet < 0x80:
                return value
            shift += 7
            if shift > 7 * 64 and (self.limit - self.pos) < 8:
                raise DecodeError("unterminated unsigned integer", start)

    def integer(self) -> int:
        if self.bits(1):
            return -self.unsigned() - 1
        return self.unsigned()

    def remaining(self) -> int:
        return self.limit - self.pos


class SmallBitReader(BitReader):
    """For short streams (V2G messages are mostly under 100 bytes): the whole stream as one
    integer, so a read is a shift and a mask instead of a slice and a conversion. A shift costs
    time in proportion to the stream, hence only below SMALL_STREAM bytes."""

    __slots__ = ("value",)

    def __init__(self, data: bytes, pos: int = 0):
        super().__init__(data, pos)
        self.value = int.from_bytes(data, "big")

    def bits(self, n: int) -> int:
        end = self.pos + n
        if end > self.limit:
            raise DecodeError("stream ends early", self.pos, f"{n} more bits")
        self.pos = end
        return (self.value >> (self.limit - end)) & ((1 << n) - 1)


#: streams up to this many bytes are read with SmallBitReader
SMALL_STREAM = 512


def bit_reader(data: bytes) -> BitReader:
    return SmallBitReader(data) if len(data) <= SMALL_STREAM else BitReader(data)


class BitWriter:
    """Accumulates bits in a small integer and moves whole bytes out, so long streams stay linear."""

    __slots__ = ("out", "acc", "pending")

    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.pending = 0

    def bits(self, n: int, value: int) -> None:
        self.acc = (self.acc << n) | value
        self.pending += n
        if self.pending >= 64:
            spare = self.pending & 7
            self.out += (self.acc >> spare).to_bytes(self.pending >> 3, "big")
            self.acc &= (1 << spare) - 1
            self.pending = spare

    def unsigned(self, value: int) -> None:
        while value > 0x7F:
            self.bits(8, (value & 0x7F) | 0x80)
            value >>= 7
        self.bits(8, value)

    def integer(self, value: int) -> None:
        if value < 0:
            self.bits(1, 1)
            self.unsigned(-value - 1)
        else:
            self.bits(1, 0)
            self.unsigned(value)

    @property
    def length(self) -> int:
        return len(self.out) * 8 + self.pending

    def to_bytes(self) -> bytes:
        pad = (-self.pending) % 8
        tail = (self.acc << pad).to_bytes((self.pending + pad) // 8, "big")
        return bytes(self.out) + tail
