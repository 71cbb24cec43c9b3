"""tshark's time on a ~25,000-frame lab trace with and without the Lua dissectors of
lua_dissectors/, in three modes: plain (summary lines), -V (full trees) and -Y with a field
comparison (what the GUI's first pass costs when a display filter is set). Runs on Debian's
tshark (4.0) and, when scripts/fetch_wireshark44.sh unpacked it, Wireshark 4.4.

    python3 bench/bench_wireshark_lua.py [--frames-trace FILE]

The trace is made once with `ccssniff emulate lab --protocol din --mode dc --charge-time 1620
--start-soc 5 --target-soc 100 --capacity 200` (about 25,000 frames).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from tshark_versions import tshark_command  # noqa: E402

SCRIPT = REPO / "lua_dissectors" / "ccs15118.lua"
TRACE_ARGS = ["--protocol", "din", "--mode", "dc", "--charge-time", "1620", "--start-soc", "5",
              "--target-soc", "100", "--capacity", "200"]
MODES = {
    "plain": ([], []),
    "-V": (["-V"], ["-V"]),
    # the same kind of work: a double comparison on a field of the top protocol
    "-Y": (["-Y", "tcp.window_size > 1000"], ["-Y", "v2g.EVTargetCurrent > 100"]),
}


def make_trace(path: Path) -> None:
    subprocess.run([sys.executable, "-c", "from ccssniff.cli import main; main()", "emulate", "lab",
                    *TRACE_ARGS, "-w", str(path)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                   stdout=subprocess.DEVNULL)
    os.chmod(path, 0o644)


def timed(command, env) -> tuple[float, float]:
    """(wall seconds, CPU seconds of tshark): on a shared machine the CPU time is the steadier figure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=Path(tempfile.gettempdir()) / "ccssniff-bench-lab25k.pcapng")
    args = parser.parse_args()
    if not args.trace.exists():
        make_trace(args.trace)
    frames = int(subprocess.run(["capinfos", "-c", "-M", str(args.trace)], capture_output=True, text=True)
                 .stdout.split()[-1])
    empty_config = Path(tempfile.mkdtemp(prefix="ccssniff-bench-config-"))
    os.chmod(empty_config, 0o755)
    print(f"trace: {args.trace} ({frames} frames)")
    print(f"{'version':8} {'mode':6} {'without: wall s':>16} {'cpu s':>6} {'with ours: wall s':>18} {'cpu s':>6}"
          f" {'speed (cpu)':>12}")
    import pytest  # tshark_command skips through pytest when a version is absent
    for version in ("4.0", "4.4"):
        try:
            command, env = tshark_command(version)
        except pytest.skip.Exception as reason:
            print(f"{version:8} skipped: {reason}")
            continue
        env = {**env, "WIRESHARK_CONFIG_DIR": str(empty_config)}  # no personal plugins either way
        for mode, (plain_args, our_args) in MODES.items():
            base = [*command, "-n", "-r", str(args.trace)]
            without = timed(base + plain_args, env)
            with_ours = timed(base[:-2] + ["-X", f"lua_script:{SCRIPT}"] + base[-2:] + our_args, env)
            print(f"{version:8} {mode:6} {without[0]:16.2f} {without[1]:6.2f} {with_ours[0]:18.2f} {with_ours[1]:6.2f}"
                  f" {without[1] / with_ours[1]:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
