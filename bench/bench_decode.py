"""Whole-trace decode throughput of `ccssniff decode --json`, against tshark in the same run.

Prints frames/s, V2G messages/s and peak memory of the decoder, the time tshark takes for
`tshark -r FILE -T fields -e frame.number -e tcp.len` on the same file (a floor for Wireshark's
cost: it does not decode EXI), and the ratio. Inputs: the largest real capture in ../shared/captures
and a trace of at least 250,000 frames built here by repeating that capture with shifted timestamps.

    python3 bench/bench_decode.py [--repeat 10]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LARGEST = SHARED / "captures" / "pyplc" / "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng"
OUT = REPO / "bench" / "out"

# Runs the CLI in a child and reports its own peak RSS, so each measurement is of one run only.
_CHILD = """
import sys, types
import ccssniff.decode.schema as schema
from ccssniff.cli import cli
if sys.argv[2:] == ["uncached"]:  # every payload through the EXI decoder, repeated or not
    schema._CACHE = types.SimpleNamespace(decode=schema._decode_uncached)
try:
    cli(["decode", "--json", sys.argv[1]], prog_name="ccssniff")
except SystemExit as exit:
    code = exit.code
# VmHWM is this process image's own peak; ru_maxrss would include the parent's pages at fork
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
sys.stderr.write("maxrss_kib=%s\\n" % peak)
"""


def build_long_trace(source: Path, repeat: int) -> Path:
    sys.path.insert(0, str(REPO))
    from ccssniff.capture.pcapng import PcapngWriter
    from ccssniff.capture.reader import read_packets

    target = OUT / f"{source.stem}_x{repeat}.pcapng"
    if target.exists():
        return target
    OUT.mkdir(parents=True, exist_ok=True)
    packets = list(read_packets(source))
    span = packets[-1].timestamp - packets[0].timestamp + 60.0
    with PcapngWriter(target, linktype=packets[0].linktype) as writer:
        for copy in range(repeat):
            for packet in packets:
                writer.write(packet.data, timestamp=packet.timestamp + copy * span)
    return target


def measure_decode(path: Path, cache: str) -> dict:
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", _CHILD, str(path), cache], capture_output=True, text=True,
                           cwd=REPO)
    elapsed = time.perf_counter() - start
    frames = messages = 0
    for line in child.stdout.splitlines():
        record = json.loads(line)
        messages += record["kind"] == "v2g"
    maxrss = int(next(l for l in child.stderr.splitlines() if l.startswith("maxrss_kib=")).split("=")[1])
    frames = int(subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True, text=True)
                 .stdout.split()[-1])
    return {"seconds": elapsed, "frames": frames, "messages": messages, "maxrss_mib": maxrss / 1024}


def measure_tshark(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "tcp.len"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="copies of the capture in the long trace")
    args = parser.parse_args()
    if not LARGEST.exists():
        sys.exit(f"{LARGEST} is absent: the bench needs ../shared/captures")
    inputs = [("largest real capture", LARGEST), (f"capture x{args.repeat}", build_long_trace(LARGEST, args.repeat))]
    print(f"{'input':36} {'frames':>8} {'V2G msgs':>9} {'decode s':>9} {'frames/s':>10} {'msgs/s':>9} "
          f"{'peak MiB':>9} {'tshark s':>9} {'ratio':>6}")
    for (label, path), cache in ((item, cache) for item in inputs for cache in ("cached", "uncached")):
        decode = measure_decode(path, cache)
        tshark = measure_tshark(path)
        print(f"{label + ', ' + cache:36} {decode['frames']:8d} {decode['messages']:9d} {decode['seconds']:9.2f} "
              f"{decode['frames'] / decode['seconds']:10.0f} {decode['messages'] / decode['seconds']:9.0f} "
              f"{decode['maxrss_mib']:9.1f} {tshark:9.2f} {decode['seconds'] / tshark:6.2f}")
    print("ratio = decode time / tshark time (target <= 2); peak MiB = the decoder's peak RSS, "
          "process start-up included;\ncached = the decoder's cache of recently seen payloads on (the default: "
          "real sessions repeat many messages byte for byte), uncached = every payload decoded")


if __name__ == "__main__":
    main()
