"""Time per TCP segment when one-byte segments arrive in reverse order or behind a lost first byte.

The reassembler keeps waiting segments in a heap, so the time per segment must stay about the same
at 10,000 and 100,000 segments (a ratio near 1). Prints one line per case and size, then the ratio.

    PYTHONPATH=. python bench/bench_tcp.py [--sizes 10000 100000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccssniff.decode.tcp import StreamReassembler  # noqa: E402
from ccssniff.decode.v2gtp import Pdu, V2gtpFramer, build_header  # noqa: E402

ISN = 0xFFFF0000  # wraps around inside the larger runs


def stream_of(size: int) -> bytes:
    body = bytes(range(20))
    message = build_header(0x8001, len(body)) + body
    return (message * (size // len(message) + 1))[:size - size % len(message)]


def orders(size: int) -> dict[str, list[int]]:
    return {"reverse order": list(range(size - 1, -1, -1)),
            "first byte last": list(range(1, size)) + [0]}


def run(data: bytes, order: list[int]) -> tuple[float, int]:
    stream, framer = StreamReassembler(), V2gtpFramer()
    stream.syn(ISN)
    pdus = 0
    started = time.perf_counter()
    for offset in order:
        for item in framer.feed(stream.segment((ISN + 1 + offset) & 0xFFFFFFFF, data[offset:offset + 1])):
            pdus += isinstance(item, Pdu)
    for item in framer.feed(stream.flush()):
        pdus += isinstance(item, Pdu)
    return time.perf_counter() - started, pdus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000])
    args = parser.parse_args()
    for case in ("reverse order", "first byte last"):
        per_segment = []
        for size in args.sizes:
            data = stream_of(size)
            elapsed, pdus = run(data, orders(len(data))[case])
            per_segment.append(elapsed / len(data))
            print(f"{case:16s} {len(data):>8,d} one-byte segments: {elapsed:7.3f} s, "
                  f"{per_segment[-1] * 1e6:6.2f} us/segment, {pdus} messages")
        print(f"{case:16s} ratio of time per segment {args.sizes[1]:,d} / {args.sizes[0]:,d}: "
              f"{per_segment[1] / per_segment[0]:.2f}")


if __name__ == "__main__":
    main()
