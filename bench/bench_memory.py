"""Peak memory of the hostile traces of tests/test_decode_memory.py (issue 18, item 3), printed.

The test asserts the bound; this prints the figures BENCHMARKS.md quotes. Each trace is made and
decoded with ``decode_trace`` in a child process that reports its own VmHWM.

    python3 bench/bench_memory.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_decode_memory import (EVERY_BOUND_AT_ONCE, LARGE_MESSAGES, OUT_OF_ORDER, SYN_FLOOD,  # noqa: E402
                                UNFINISHED_MESSAGES, peak_of)

TRACES = (("100,000 SYNs (no data)", SYN_FLOOD),
          ("1,000 connections, 200 kB out of order behind a lost byte", OUT_OF_ORDER),
          ("700 connections, each an unfinished 230 kB V2GTP message", UNFINISHED_MESSAGES),
          ("2,040 connections, every buffer holding data at once", EVERY_BOUND_AT_ONCE),
          ("20 distinct 143 kB ISO 15118-2 messages", LARGE_MESSAGES))


def main() -> None:
    print(f"{'trace':60} peak (VmHWM)")
    for label, body in TRACES:
        print(f"{label:60} {peak_of(body)['peak_kib'] / 1024:6.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
