"""Decode throughput of a TLS 1.3 lab session against the same session in plain TCP.

Both traces come from `ccssniff emulate lab --protocol iso20` with the same seed and charge time,
one with --tls (TLS 1.3, AES-256-GCM, keys in a Decryption Secrets Block); the messages are the
same, so the difference is the cost of the key pre-pass, the record layer and decryption. Each
file is decoded as `ccssniff decode` does it (key pre-pass, then the pipeline into the session
model), best of --repeat runs, in this process. Times are CPU seconds of this process
(time.process_time), so that other work on a shared machine does not count.

    python3 bench/bench_tls.py [--charge-time 300] [--repeat 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ccssniff.capture.pcapng import PcapngWriter  # noqa: E402
from ccssniff.capture.reader import read_packets  # noqa: E402
from ccssniff.decode.events import V2G  # noqa: E402
from ccssniff.decode.pipeline import Pipeline  # noqa: E402
from ccssniff.decode.trace import decode_trace  # noqa: E402
from ccssniff.decode.trace_keys import keys_in_capture  # noqa: E402
from ccssniff.emulate.lab import LabConfig, run_lab  # noqa: E402


def make_session(path: Path, tls: bool, charge_time: float) -> None:
    config = LabConfig(protocol="iso20", mode="dc", charge_time=charge_time, seed=3, tls=tls)
    with PcapngWriter(path) as writer:
        result = run_lab(config, lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment),
                         writer.write_secrets)
    if not result.ok:
        raise SystemExit(f"lab session failed: {result.reason}")


def decode_once(path: Path) -> tuple[float, int, int]:
    start = time.process_time()
    keys = keys_in_capture(path).keys
    trace = decode_trace(read_packets(path), pipeline=Pipeline(keys=keys))
    elapsed = time.process_time() - start
    messages = sum(1 for connection in trace.to_dict()["sessions"] for _ in range(connection.get("messages", 0)))
    return elapsed, messages, sum(1 for _ in read_packets(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charge-time", type=float, default=300.0)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for label, tls in (("plain TCP", False), ("TLS 1.3", True)):
            paths[label] = Path(folder) / f"{label.replace(' ', '_')}.pcapng"
            make_session(paths[label], tls, options.charge_time)
        runs: dict[str, list] = {label: [] for label in paths}
        for _ in range(options.repeat):  # alternate, so that load from others hits both alike
            for label, path in paths.items():
                runs[label].append(decode_once(path))
        per_message = {}
        for label, measured in runs.items():
            best, messages, frames = min(measured)
            per_message[label] = best / messages
            print(f"{label:10} {frames:6d} frames {messages:5d} V2G messages  best {best * 1000:8.1f} ms  "
                  f"{messages / best:8.0f} messages/s  {frames / best:8.0f} frames/s")
        overhead = per_message["TLS 1.3"] / per_message["plain TCP"] - 1
        print(f"decryption adds {overhead * 100:.1f} % to the decode time per message (target: at most 30 %)")


if __name__ == "__main__":
    main()
