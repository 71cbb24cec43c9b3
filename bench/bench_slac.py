"""SLAC machines and modem simulator: wall time of a whole in-memory matching, per-frame cost.

Prints figures; asserts nothing. Run: python3 bench/bench_slac.py
"""

from __future__ import annotations

import random
import time

from ccssniff.emulate.modem import Modem, Powerline
from ccssniff.emulate.slac import SendFrame, SlacEvse, SlacMatched, SlacPev

PEV_MAC, EVSE_MAC = "02:00:00:00:ee:01", "02:00:00:00:cc:01"


def one_matching(seed: int) -> tuple[int, float]:
    """Run PEV and EVSE to a match over a Powerline, timers fired in order; (frames, simulated s)."""
    line = Powerline()
    line.attach("pev", Modem("00:b0:52:00:0e:01", rng=random.Random(seed)), 4)
    line.attach("evse", Modem("00:b0:52:00:0c:01", rng=random.Random(seed + 1)), 6)
    machines = {"pev": SlacPev(PEV_MAC, rng=random.Random(seed)),
                "evse": SlacEvse(EVSE_MAC, rng=random.Random(seed + 2))}
    now, frames, matched = 0.0, 0, 0
    pending = [("evse", o) for o in machines["evse"].start(now)] + [("pev", o) for o in machines["pev"].start(now)]
    while matched < 2:
        while pending:
            station, output = pending.pop(0)
            if isinstance(output, SendFrame):
                frames += 1
                for delivery in line.from_host(station, output.frame):
                    pending += [(delivery.station, o)
                                for o in machines[delivery.station].receive_frame(delivery.frame, now)]
            elif isinstance(output, SlacMatched):
                matched += 1
        if matched == 2:
            break
        station, now = min(((s, m.next_deadline()) for s, m in machines.items() if m.next_deadline() is not None),
                           key=lambda item: item[1])
        pending += [(station, o) for o in machines[station].on_timer(now)]
    return frames, now


def main() -> None:
    runs = 200
    start = time.perf_counter()
    total_frames = 0
    for seed in range(runs):
        frames, simulated = one_matching(seed)
        total_frames += frames
    elapsed = time.perf_counter() - start
    print(f"in-memory SLAC matching (PEV + EVSE + 2 modems): {elapsed / runs * 1e3:.2f} ms wall per run, "
          f"{simulated:.2f} s simulated, {total_frames // runs} frames per run")
    print(f"per frame (machine + modem handling, both sides): {elapsed / total_frames * 1e6:.1f} us")


if __name__ == "__main__":
    main()
