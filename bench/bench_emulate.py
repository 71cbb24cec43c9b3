"""How fast the emulators are: a 30-minute simulated DC session through `emulate lab`, and the
per-message processing time of each stack (its state machine, without the EXI codec).

    python3 bench/bench_emulate.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.emulate import lab as lab_module
from ccssniff.emulate.physics import BatteryParams, SimulationParams


class Timed:
    """Wraps a machine method and adds up the time spent in it."""

    def __init__(self, function):
        self.function = function
        self.calls = 0
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def run(protocol: str, minutes: float, folder: Path) -> None:
    params = SimulationParams(battery=BatteryParams(capacity_kwh=150.0, start_soc=10.0, target_soc=95.0))
    config = lab_module.LabConfig(protocol=protocol, mode="dc", params=params, charge_time=minutes * 60)
    path = folder / f"{protocol}.pcapng"
    with PcapngWriter(path) as writer:
        lab = lab_module.Lab(config, lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment))
        evse = lab.evse_stack.on_message = Timed(lab.evse_stack.on_message)
        pev_message = lab.pev.on_message = Timed(lab.pev.on_message)
        pev_timer = lab.pev.on_timer = Timed(lab.pev.on_timer)
        started = time.perf_counter()
        result = lab.run()
        elapsed = time.perf_counter() - started
    assert result.ok, result.reason
    pev_seconds = pev_message.seconds + pev_timer.seconds
    print(f"{protocol:5s} DC: {result.duration / 60:5.1f} min simulated in {elapsed:5.2f} s "
          f"({result.duration / elapsed:6.0f}x real time); {result.frames} frames, "
          f"{len(result.messages)} V2G messages, {path.stat().st_size / 1e6:.1f} MB pcapng")
    print(f"       EVSE stack {evse.seconds / evse.calls * 1e6:6.1f} us per request ({evse.calls} requests); "
          f"PEV stack {pev_seconds / pev_message.calls * 1e6:6.1f} us per response "
          f"({pev_message.calls} responses, timers included); the rest is EXI, TCP framing and pcapng")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="simulated charge-loop minutes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for protocol in ("din", "iso2", "iso20"):
            run(protocol, args.minutes, Path(folder))


if __name__ == "__main__":
    main()
