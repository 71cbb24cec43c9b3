"""`ccssniff decode --json` with orjson against the json module, and against bare tshark, interleaved.

On the largest real capture: the JSON encoding alone (in this process, every event record of the
trace), then whole child runs of `ccssniff decode --json FILE` with each library and
`tshark -r FILE -T fields -e frame.number -e tcp.len`, taken in turn so that a machine shared with
others loads all three alike; medians of --runs runs.

    python3 bench/bench_jsonl.py [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LARGEST = REPO.parent / "shared" / "captures" / "pyplc" / "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng"

_CHILD = """
import sys
import ccssniff.ui.jsonl as jsonl
if sys.argv[2] == "json":
    jsonl.orjson = None
from ccssniff.cli import cli
try:
    cli(["decode", "--json", sys.argv[1]], prog_name="ccssniff")
except SystemExit:
    pass
"""


def child(library: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _CHILD, str(LARGEST), library], stdout=subprocess.DEVNULL, cwd=REPO,
                   check=True)
    return time.perf_counter() - started


def tshark() -> float:
    started = time.perf_counter()
    subprocess.run(["tshark", "-r", str(LARGEST), "-T", "fields", "-e", "frame.number", "-e", "tcp.len"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def encoding_only() -> dict[str, float]:
    import ccssniff.ui.jsonl as jsonl
    from ccssniff.capture.reader import read_packets
    from ccssniff.decode.trace import decode_trace

    records = []
    decode_trace(read_packets(LARGEST), on_event=lambda event, start: records.append(
        jsonl.event_record(event, start, False)))
    times = {}
    for library in ("json", "orjson"):
        saved = jsonl.orjson
        if library == "json":
            jsonl.orjson = None
        encode = jsonl._encoder()
        jsonl.orjson = saved
        started = time.perf_counter()
        for record in records:
            encode(record)
        times[library] = time.perf_counter() - started
    times["records"] = len(records)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    encoding = encoding_only()
    print(f"encoding {encoding['records']} event records: json module {encoding['json']:.3f} s, "
          f"orjson {encoding['orjson']:.3f} s ({encoding['json'] / encoding['orjson']:.1f}x)")
    runs: dict[str, list[float]] = {"json": [], "orjson": [], "tshark": []}
    for _ in range(args.runs):
        runs["json"].append(child("json"))
        runs["orjson"].append(child("orjson"))
        runs["tshark"].append(tshark())
    medians = {name: statistics.median(times) for name, times in runs.items()}
    print(f"whole runs on {LARGEST.name} (25,586 frames), medians of {args.runs}, decoder cache on:")
    for name in ("json", "orjson"):
        print(f"  ccssniff decode --json ({name:6}): {medians[name]:5.2f} s   "
              f"{medians[name] / medians['tshark']:.2f}x tshark")
    print(f"  tshark -T fields -e frame.number -e tcp.len: {medians['tshark']:5.2f} s")


if __name__ == "__main__":
    main()
