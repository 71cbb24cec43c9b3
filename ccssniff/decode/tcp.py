"""TCP stream reassembly, one direction of one connection at a time (sans-IO).

Feed segments in capture order; get back the byte stream in sequence order as a list of
``bytes`` chunks and ``Gap`` markers. A gap is declared only when it is certain that the
capture lost data: the peer acknowledged bytes we never saw, the out-of-order buffer is full,
or the stream ends (``flush``). Until then out-of-order segments wait in a bounded buffer.
"""
from __future__ import annotations

from typing import NamedTuple, Union

# Out-of-order data kept while waiting for a missing segment. V2G messages are small (the largest,
# certificate installation, stays below 20 kB); a stall beyond this is data the capture lost.
MAX_BUFFERED_BYTES = 256 * 1024
# An acknowledgement further ahead than this is garbage, not evidence of lost data.
MAX_ACK_JUMP = 16 * 1024 * 1024

_MOD = 1 << 32
_HALF = 1 << 31


class Gap(NamedTuple):
    size: int  # bytes missing from the stream


StreamItem = Union[bytes, Gap]


class StreamReassembler:
    """One direction of a TCP connection: sequence numbers in, ordered bytes and gaps out."""

    __slots__ = ("_next", "_next_seq", "_pending", "_pending_bytes", "_fin", "retransmitted_bytes")

    def __init__(self) -> None:
        self._next: int | None = None  # stream offset of the next byte to deliver
        self._next_seq = 0  # the same position as a 32-bit sequence number
        self._pending: dict[int, bytes] = {}
        self._pending_bytes = 0
        self._fin: int | None = None  # stream offset the FIN occupies
        self.retransmitted_bytes = 0

    @property
    def started(self) -> bool:
        return self._next is not None

    def syn(self, seq: int) -> None:
        """The SYN fixes where data starts; a repeated SYN changes nothing."""
        if self._next is None:
            self._next = 0
            self._next_seq = (seq + 1) % _MOD

    def _offset(self, seq: int) -> int:
        delta = (seq - self._next_seq) % _MOD
        if delta >= _HALF:
            delta -= _MOD
        return self._next + delta

    def segment(self, seq: int, payload: bytes, fin: bool = False) -> list[StreamItem]:
        if self._next is None:
            if not payload:
                return []
            # Mid-stream start (no SYN seen): the first data we see defines the stream start.
            self._next = 0
            self._next_seq = seq
        start = self._offset(seq)
        if fin:
            self._fin = start + len(payload)
        if not payload:
            return []
        end = start + len(payload)
        next_offset = self._next
        if end <= next_offset:
            self.retransmitted_bytes += len(payload)
            return []
        if start > next_offset:
            previous = self._pending.get(start)
            if previous is None or len(previous) < len(payload):
                self._pending_bytes += len(payload) - (len(previous) if previous else 0)
                self._pending[start] = payload
            if self._pending_bytes > MAX_BUFFERED_BYTES:
                return self._skip_to(min(self._pending))
            return []
        if start < next_offset:
            self.retransmitted_bytes += next_offset - start
            payload = payload[next_offset - start:]
        self._advance(len(payload))
        if not self._pending:
            return [payload]
        items: list[StreamItem] = [payload]
        self._drain(items)
        return items

    def acknowledged(self, ack: int) -> list[StreamItem]:
        """The peer acknowledged everything before ``ack``: whatever of it we lack is lost."""
        if self._next is None:
            return []
        target = self._offset(ack)
        if self._fin is not None:
            target = min(target, self._fin)
        if target <= self._next or target - self._next > MAX_ACK_JUMP:
            return []
        return self._skip_to(target)

    def flush(self) -> list[StreamItem]:
        """End of the stream: deliver what waits behind holes, holes reported as gaps."""
        if not self._pending:
            return []
        return self._skip_to(max(start + len(data) for start, data in self._pending.items()))

    def _skip_to(self, target: int) -> list[StreamItem]:
        items: list[StreamItem] = []
        while self._next < target:
            first = min(self._pending) if self._pending else None
            if first is not None and first <= self._next:
                self._drain(items)
                continue
            stop = target if first is None else min(first, target)
            items.append(Gap(stop - self._next))
            self._advance(stop - self._next)
            self._drain(items)
        return items

    def _drain(self, items: list[StreamItem]) -> None:
        while self._pending:
            first = min(self._pending)
            if first > self._next:
                return
            data = self._pending.pop(first)
            self._pending_bytes -= len(data)
            overlap = self._next - first
            if overlap >= len(data):
                self.retransmitted_bytes += len(data)
                continue
            if overlap:
                self.retransmitted_bytes += overlap
                data = data[overlap:]
            items.append(data)
            self._advance(len(data))

    def _advance(self, count: int) -> None:
        self._next += count
        self._next_seq = (self._next_seq + count) % _MOD
