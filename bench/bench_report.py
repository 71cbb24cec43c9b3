"""How long `ccssniff report` takes, and how much memory, for a two-hour lab session.

The session comes from `emulate lab` (DIN DC, a battery large enough not to fill in two hours)
and is kept in the temporary folder between runs, so that only the first run pays for it.
The report runs in a fresh process each time: its peak RSS (ru_maxrss) is the whole program's,
Python, matplotlib and all, not an increment; a process that only imports the report is measured
beside it for comparison.

    python3 bench/bench_report.py [--minutes 120] [--protocol din]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.emulate.lab import LabConfig, run_lab
from ccssniff.emulate.physics import BatteryParams, SimulationParams

_REPORT = """
import json, sys, time
started = time.perf_counter()
from ccssniff.report.analyse import analyse_file
from ccssniff.report.page import render_page
imported = time.perf_counter()
report = analyse_file(sys.argv[1])
analysed = time.perf_counter()
html, plots = render_page([report])
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    handle.write(html)
done = time.perf_counter()
sessions = report.summary["sessions"]
print(json.dumps({"import": imported - started, "decode": analysed - imported, "render": done - analysed,
                  "total": done - started, "messages": sum(s["messages"] for s in sessions),
                  "frames": report.summary["frames"], "html_bytes": len(html), "figures": len(plots),
                  "points": max((len(series) for s in report.sessions for series in s.data.series.values()),
                                default=0)}))
"""
_IMPORT_ONLY = "import ccssniff.report.analyse, ccssniff.report.page"


def capture(folder: Path, protocol: str, minutes: float) -> Path:
    path = folder / f"ccssniff_bench_report_{protocol}_{minutes:g}min.pcapng"
    if path.exists():
        return path
    params = SimulationParams(battery=BatteryParams(capacity_kwh=500.0, start_soc=10.0, target_soc=100.0))
    config = LabConfig(protocol=protocol, mode="dc", params=params, charge_time=minutes * 60)
    partial = path.with_suffix(".partial")
    started = time.perf_counter()
    with PcapngWriter(partial) as writer:
        result = run_lab(config, lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment))
    partial.rename(path)
    print(f"made {path.name}: {result.frames} frames, {len(result.messages)} V2G messages, "
          f"{result.duration:.0f} s simulated, in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def child(code: str, *args: str) -> tuple[str, float, float]:
    """Run ``code`` in a fresh Python; (its stdout, its peak RSS in MiB, its CPU seconds)."""
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.stdout.close()
    if status != 0:
        raise SystemExit(f"the child failed with status {status}")
    return output, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="charge-loop time of the session")
    parser.add_argument("--protocol", default="din", choices=("din", "iso2", "iso20"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    folder = Path(tempfile.gettempdir())
    if arguments.make_only:
        capture(folder, arguments.protocol, arguments.minutes)
        return
    # Made in a process of its own: a child forked from a big parent inherits its ru_maxrss.
    subprocess.run([sys.executable, __file__, "--make-only", "--minutes", str(arguments.minutes),
                    "--protocol", arguments.protocol], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    path = capture(folder, arguments.protocol, arguments.minutes)
    _, import_mib, import_cpu = child(_IMPORT_ONLY)
    results = []
    for _ in range(arguments.runs):
        output, peak, cpu = child(_REPORT, str(path), str(folder / "ccssniff_bench_report.html"))
        results.append((json.loads(output), peak, cpu))
    best = min(results, key=lambda item: item[0]["total"])[0]
    print(f"input: {path.name}, {path.stat().st_size / 2**20:.1f} MiB, {best['frames']} frames, "
          f"{best['messages']} V2G messages")
    print(f"{'run':<5}{'import s':>10}{'decode s':>10}{'render s':>10}{'total s':>10}{'CPU s':>8}{'peak MiB':>10}")
    for number, (figures, peak_mib, cpu) in enumerate(results, 1):
        print(f"{number:<5}{figures['import']:>10.2f}{figures['decode']:>10.2f}{figures['render']:>10.2f}"
              f"{figures['total']:>10.2f}{cpu:>8.2f}{peak_mib:>10.1f}")
    print(f"a process that only imports the report: {import_cpu:.2f} CPU s, peak RSS {import_mib:.1f} MiB")
    print(f"page: {best['html_bytes'] / 1024:.0f} KiB, {best['figures']} figures, "
          f"longest series drawn: {best['points']} points")
    fastest = min(min(figures["total"], cpu) for figures, _, cpu in results)
    heaviest = max(peak for _, peak, _ in results) * 1.048576
    print(f"targets: under 10 s (wall or, on a loaded machine, CPU) -> {'met' if fastest < 10 else 'MISSED'}; "
          f"under 500 MB -> {'met' if heaviest < 500 else 'MISSED'} ({heaviest:.0f} MB)")

if __name__ == "__main__":
    main()
