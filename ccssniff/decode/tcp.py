"""TCP stream reassembly, one direction of one connection at a time (sans-IO).

Feed segments in capture order; get back the byte stream in sequence order as a list of
``bytes`` chunks and ``Gap`` markers. A gap is declared only when it is certain that the
capture lost data: the peer acknowledged bytes we never saw, the out-of-order buffer is full,
or the stream ends (``flush``). Until then out-of-order segments wait in a bounded buffer.

Out-of-order segments wait in a heap ordered by stream offset, so a segment costs O(log n)
whatever the number waiting. Where segments overlap, the bytes that arrived first are delivered;
a later copy is compared with them (as far as the recent-delivery window reaches) and, where it
differs, recorded in ``conflicts`` with both frame numbers (Wireshark's "overlapping data differs").
"""
from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from typing import NamedTuple, Union

# Out-of-order data kept while waiting for a missing segment. V2G messages are small (the largest,
# certificate installation, stays below 20 kB); a stall beyond this is data the capture lost.
MAX_BUFFERED_BYTES = 256 * 1024
# Tiny segments cost far more than their payload; beyond this many waiting, the hole is lost data.
MAX_BUFFERED_SEGMENTS = 128 * 1024
# What one waiting segment costs beyond its payload (heap slot, dict entry, tuple, bytes header).
SEGMENT_OVERHEAD = 200
# Waiting segments looked at, when one is delivered, for earlier-arrived data inside it.
_OVERLAP_LOOKAHEAD = 8
# An acknowledgement further ahead than this is garbage, not evidence of lost data.
MAX_ACK_JUMP = 16 * 1024 * 1024
# Delivered data kept to compare retransmissions with: retransmissions repeat recent segments.
RECENT_BYTES = 4 * 1024
RECENT_SEGMENTS = 32

_MOD = 1 << 32
_HALF = 1 << 31


class Gap(NamedTuple):
    size: int  # bytes missing from the stream


class Conflict(NamedTuple):
    """Bytes at ``offset`` arrived twice with different content; the first version was kept."""

    offset: int  # stream offset where the two copies start to overlap
    length: int  # bytes compared (they differ somewhere in between)
    kept_frame: int | None  # frame of the version delivered
    dropped_frame: int | None  # frame of the different copy


StreamItem = Union[bytes, Gap]


class BufferBudget:
    """Out-of-order bytes (with per-segment overhead) held by all streams of one trace together."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class StreamReassembler:
    """One direction of a TCP connection: sequence numbers in, ordered bytes and gaps out."""

    __slots__ = ("_next", "_next_seq", "_heap", "_arrivals", "_pending_bytes", "_pending_cost", "_fin",
                 "_recent", "_recent_bytes", "_budget", "retransmitted_bytes", "conflicts", "overflows",
                 "first_seq")

    def __init__(self, budget: BufferBudget | None = None) -> None:
        self._next: int | None = None  # stream offset of the next byte to deliver
        self._next_seq = 0  # the same position as a 32-bit sequence number
        # Waiting segments as (offset, arrival number, data, frame): the heap orders by offset, and
        # by arrival among equal offsets, so the first copy of a retransmitted segment comes first.
        self._heap: list[tuple[int, int, bytes, int | None]] = []
        self._arrivals = 0
        self._pending_bytes = 0
        self._pending_cost = 0
        self._fin: int | None = None  # stream offset the FIN occupies
        self._recent: deque = deque()  # (offset, data, frame) of the latest delivered chunks
        self._recent_bytes = 0
        self._budget = budget
        self.retransmitted_bytes = 0
        self.conflicts: list[Conflict] = []  # taken and cleared by the owner
        self.overflows = 0  # times waiting data was given up because a buffer bound was reached
        self.first_seq: int | None = None  # sequence number of stream offset 0

    @property
    def started(self) -> bool:
        return self._next is not None

    @property
    def fin_seen(self) -> bool:
        return self._fin is not None

    def syn(self, seq: int) -> None:
        """The SYN fixes where data starts; a repeated SYN changes nothing."""
        if self._next is None:
            self._next = 0
            self._next_seq = (seq + 1) % _MOD
            self.first_seq = self._next_seq

    def _offset(self, seq: int) -> int:
        delta = (seq - self._next_seq) % _MOD
        if delta >= _HALF:
            delta -= _MOD
        return self._next + delta

    @property
    def end_offset(self) -> int:
        """Offset just past everything seen: delivered, waiting, and the FIN."""
        end = self._next or 0
        if self._heap:
            end = max(end, max(start + len(data) for start, _, data, _ in self._heap))
        if self._fin is not None:
            end = max(end, self._fin + 1)
        return end

    def segment(self, seq: int, payload: bytes, fin: bool = False, frame: int | None = None) -> list[StreamItem]:
        if self._next is None:
            if not payload:
                return []
            # Mid-stream start (no SYN seen): the first data we see defines the stream start.
            self._next = 0
            self._next_seq = seq
            self.first_seq = seq
        start = self._offset(seq)
        if fin:
            self._fin = start + len(payload)
        if not payload:
            return []
        end = start + len(payload)
        next_offset = self._next
        if end <= next_offset:
            self.retransmitted_bytes += len(payload)
            self._compare(start, payload, frame)
            return []
        if start > next_offset:
            return self._wait(start, payload, frame)
        if start < next_offset:
            self.retransmitted_bytes += next_offset - start
            self._compare(start, payload[:next_offset - start], frame)
            payload = payload[next_offset - start:]
        self._deliver(payload, frame)
        if not self._heap:
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
        if not self._heap:
            return []
        return self._skip_to(max(start + len(data) for start, _, data, _ in self._heap))

    def release(self) -> None:
        """Forget waiting data without delivering it (the connection is dropped)."""
        self._unbudget(self._pending_cost)
        self._heap.clear()
        self._pending_bytes = self._pending_cost = 0
        self._recent.clear()
        self._recent_bytes = 0

    # --- internals -----------------------------------------------------------------------------

    def _wait(self, start: int, payload: bytes, frame: int | None) -> list[StreamItem]:
        self._arrivals += 1
        heappush(self._heap, (start, self._arrivals, payload, frame))
        self._account(len(payload), len(payload) + SEGMENT_OVERHEAD)
        budget = self._budget
        if budget is not None and budget.used > budget.limit:
            # The trace holds too much waiting data: this stream gives up on its holes.
            self.overflows += 1
            return self.flush()
        if self._pending_bytes > MAX_BUFFERED_BYTES or len(self._heap) > MAX_BUFFERED_SEGMENTS:
            self.overflows += 1
            return self._skip_to(self._heap[0][0])
        return []

    def _account(self, payload_bytes: int, cost: int) -> None:
        self._pending_bytes += payload_bytes
        self._pending_cost += cost
        if self._budget is not None:
            self._budget.used += cost

    def _unbudget(self, cost: int) -> None:
        if self._budget is not None:
            self._budget.used -= cost

    def _skip_to(self, target: int) -> list[StreamItem]:
        items: list[StreamItem] = []
        heap = self._heap
        while self._next < target:
            if heap and heap[0][0] <= self._next:
                self._drain(items)
                continue
            stop = min(heap[0][0], target) if heap else target
            items.append(Gap(stop - self._next))
            self._advance(stop - self._next)
            self._drain(items)
        return items

    def _drain(self, items: list[StreamItem]) -> None:
        heap = self._heap
        while heap and heap[0][0] <= self._next:
            start, arrival, data, frame = heappop(heap)
            self._account(-len(data), -len(data) - SEGMENT_OVERHEAD)
            overlap = self._next - start
            if overlap:
                self.retransmitted_bytes += min(overlap, len(data))
                self._compare(start, data[:overlap], frame)
                if overlap >= len(data):
                    continue
                data = data[overlap:]
            cut = self._earlier_inside(arrival, len(data))
            if cut is not None:
                # Bytes that arrived before this segment start inside it: they win from there on.
                heappush(heap, (self._next + cut, arrival, data[cut:], frame))
                self._account(len(data) - cut, len(data) - cut + SEGMENT_OVERHEAD)
                data = data[:cut]
                if not data:
                    continue
            items.append(data)
            self._deliver(data, frame)

    def _earlier_inside(self, arrival: int, length: int) -> int | None:
        """Offset into the segment about to be delivered where earlier-arrived waiting data starts."""
        heap = self._heap
        if not heap or heap[0][0] >= self._next + length:
            return None
        end = self._next + length
        first = None
        for index in range(min(len(heap), _OVERLAP_LOOKAHEAD)):
            start, other_arrival, _, _ = heap[index]
            if start < end and other_arrival < arrival and (first is None or start < first):
                first = start
        return None if first is None else max(first - self._next, 0)

    def _deliver(self, data: bytes, frame: int | None) -> None:
        recent = self._recent
        recent.append((self._next, data, frame))
        self._recent_bytes += len(data)
        while len(recent) > RECENT_SEGMENTS or (self._recent_bytes > RECENT_BYTES and len(recent) > 1):
            self._recent_bytes -= len(recent.popleft()[1])
        self._advance(len(data))

    def _compare(self, start: int, data: bytes, frame: int | None) -> None:
        """``data`` at ``start`` repeats delivered bytes: record a conflict where it differs."""
        end = start + len(data)
        for offset, kept, kept_frame in reversed(self._recent):
            kept_end = offset + len(kept)
            if kept_end <= start:
                break
            if offset >= end:
                continue
            low, high = max(start, offset), min(end, kept_end)
            if kept[low - offset:high - offset] != data[low - start:high - start]:
                self.conflicts.append(Conflict(low, high - low, kept_frame, frame))
                return

    def _advance(self, count: int) -> None:
        self._next += count
        self._next_seq = (self._next_seq + count) % _MOD
