"""``ccssniff emulate lab --netns``: the lab's session on the real thing.

The in-process lab moves bytes between two sans-IO stacks on a simulated clock. Here every piece
is a real process on real kernel networking: the powerline simulator
(``python -m ccssniff.emulate.powerline``) in a namespace of its own, bridging one veth per
station; ``ccssniff emulate evse`` and ``ccssniff emulate pev`` each in a namespace behind their
modem, running SLAC, SDP and V2G over kernel UDP and TCP; optionally ``ccssniff listen`` on a
third modem (full view or filtering). The EVSE records its interface, which is the session as a
sniffer on the charger's side of the cable sees it.

    [ns ev]    -- veth --+
    [ns evse]  -- veth --+-- [ns line: powerline simulator]
    [ns sniff] -- veth --+   (optional: ccssniff listen)

Namespace and interface names start with a prefix of the caller's (``ccs`` and the PID by
default), so that two labs never collide; they are removed at the end, on Ctrl-C and on SIGTERM.
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ccssniff.emulate import netns

# prefix + "evL" must fit an interface name (15 characters)
MAX_PREFIX = 12
PREFIX_PATTERN = re.compile(r"ccs[A-Za-z0-9]{0,%d}" % (MAX_PREFIX - 3))
START_TIMEOUT = 15.0  # s for the simulator to open its ports, and listen to find its modem
AFTER_SESSION = 15.0  # s the EVSE may take to see the car go after the car has finished
SETTLE = 1.0  # s for the last frames to reach listen before it stops
# what a side prints at the end: "PEV: session completed (session stopped); protocol ..."
SIDE_RESULT = re.compile(r"^(EVSE|PEV): session (completed|FAILED) \((.*?)\);", re.MULTILINE)
CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]


class LabInterrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP while the lab ran; everything has been stopped and removed."""


def default_prefix() -> str:
    return f"ccs{os.getpid()}"


def check_prefix(prefix: str) -> str | None:
    """Why ``prefix`` cannot name the lab's namespaces and interfaces, or None."""
    if not PREFIX_PATTERN.fullmatch(prefix):
        return (f"--netns-prefix {prefix!r}: 'ccs' and up to {MAX_PREFIX - 3} letters or digits "
                "(interface names are at most 15 characters)")
    return None


@dataclass
class NetnsLabConfig:
    output: Path
    protocol: str = "din"
    mode: str = "dc"
    charge_time: float | None = 60.0
    seed: int = 1
    listen: str | None = None  # None, "full" or "filtering": a third port with `ccssniff listen`
    prefix: str = field(default_factory=default_prefix)
    emulate_options: list[str] = field(default_factory=list)  # physics options for both sides
    timeout: float | None = None  # s for the whole session; None: from the charge time

    def session_timeout(self) -> float:
        if self.timeout is not None:
            return self.timeout
        return 300.0 if self.charge_time is None else self.charge_time + 120.0


@dataclass
class SideResult:
    returncode: int | None  # None: stopped at the time limit
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def reason(self) -> str:
        found = SIDE_RESULT.search(self.output)
        if found:
            return found.group(3)
        if self.returncode is None:
            return "stopped at the time limit"
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit status {self.returncode}"


@dataclass
class NetnsLabResult:
    ok: bool
    reason: str
    evse: SideResult
    pev: SideResult
    elapsed: float
    listen_records: list[dict[str, Any]] = field(default_factory=list)
    listen_recording: Path | None = None


@dataclass
class LabNames:
    """The names of the lab's namespaces (one per station, and the line) and veth ends."""
    prefix: str
    stations: tuple[str, ...]

    SHORT = {"ev": "ev", "evse": "se", "sniff": "sn"}

    def namespace(self, station: str) -> str:
        return f"{self.prefix}-{station}"

    @property
    def namespaces(self) -> list[str]:
        return [self.namespace(station) for station in self.stations + ("line",)]

    def veth(self, station: str) -> tuple[str, str]:
        """(the station's end, the line's end)"""
        return f"{self.prefix}{self.SHORT[station]}", f"{self.prefix}{self.SHORT[station]}L"


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP end the lab once, so that the namespaces go in every case."""
    interrupted = []

    def interrupt(number, _frame):
        if not interrupted:  # a second signal must not cut the clean-up short
            interrupted.append(number)
            raise KeyboardInterrupt(signal.Signals(number).name)

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def wait_for_ready(process: subprocess.Popen, errors: Path, timeout: float) -> None:
    """Until the simulator prints ``ready``; its error text when it stops first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        readable, _, _ = select.select([process.stdout], [], [], 0.1)
        if readable:
            line = process.stdout.readline()
            if line.strip() == "ready":
                return
            if not line:
                break
    process.terminate()
    process.wait(5)
    text = errors.read_text(errors="replace").strip()
    raise RuntimeError(f"the powerline simulator did not start: {text or 'not ready in time'}")


def wait_for_modem(listener: subprocess.Popen, records: Path, timeout: float) -> None:
    """Until listen has found its local modem (its first join output), so no frame is missed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and listener.poll() is None:
        if records.exists() and '"kind":"listen"' in records.read_text(errors="replace"):
            return
        time.sleep(0.1)


def wait_sides(evse: subprocess.Popen, pev: subprocess.Popen, timeout: float) -> tuple[int | None, int | None]:
    """Both sides' exit statuses (None: stopped at the time limit). A side that fails leaves the
    other AFTER_SESSION to notice, not the whole session time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pev.poll() is None:
        if evse.poll() not in (None, 0):
            deadline = min(deadline, time.monotonic() + AFTER_SESSION)
        time.sleep(0.1)
    pev_code = wait_side(pev, max(0.0, deadline - time.monotonic()))
    return wait_side(evse, AFTER_SESSION), pev_code


def wait_side(process: subprocess.Popen, timeout: float) -> int | None:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
        return None


def read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut by the stop
    return records


def run_netns_lab(config: NetnsLabConfig, on_step=lambda text: None) -> NetnsLabResult:
    """Run one session in fresh namespaces; the EVSE's recording goes to ``config.output``.

    Raises :class:`LabInterrupted` on Ctrl-C, SIGTERM or SIGHUP, RuntimeError or OSError when the
    namespaces or the simulator cannot be set up; the namespaces are gone in every case."""
    names = LabNames(config.prefix, ("ev", "evse") + (("sniff",) if config.listen else ()))
    output = config.output.resolve()
    listen_recording = output.with_name(output.stem + "-listen.pcapng") if config.listen else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccssniff-lab-") as scratch, stop_signals_interrupt():
        scratch = Path(scratch)
        try:
            with netns.Namespaces(len(names.namespaces), names=names.namespaces) as spaces:
                stations = dict(zip(names.stations, spaces))
                interfaces = start_medium(config, names, stations, spaces[-1], scratch, on_step)
                listener = None
                if config.listen:
                    on_step(f"starting ccssniff listen ({config.listen} view) on {interfaces['sniff']}")
                    listener = start_side(stations["sniff"], ["listen", interfaces["sniff"], "-w",
                                                              str(listen_recording), "--json"], scratch / "listen")
                    wait_for_modem(listener, scratch / "listen.out", START_TIMEOUT)
                side_options = ["--protocol", config.protocol, "--mode", config.mode, "--seed", str(config.seed),
                                "--charge-time", str(config.charge_time or 0),
                                "--timeout", str(config.session_timeout()), *config.emulate_options]
                on_step("starting ccssniff emulate evse and pev")
                evse = start_side(stations["evse"], ["emulate", "evse", interfaces["evse"], *side_options,
                                                     "-w", str(output)], scratch / "evse")
                pev = start_side(stations["ev"], ["emulate", "pev", interfaces["ev"], *side_options], scratch / "pev")
                evse_code, pev_code = wait_sides(evse, pev, config.session_timeout() + AFTER_SESSION)
                if listener is not None:
                    time.sleep(SETTLE)
                    listener.send_signal(signal.SIGINT)
                    wait_side(listener, AFTER_SESSION)
        except KeyboardInterrupt as exc:
            raise LabInterrupted(str(exc) or "SIGINT") from None
        evse_result = SideResult(evse_code, (scratch / "evse.out").read_text(errors="replace"))
        pev_result = SideResult(pev_code, (scratch / "pev.out").read_text(errors="replace"))
        records = read_records(scratch / "listen.out") if config.listen else []
    ok = evse_result.ok and pev_result.ok
    reason = pev_result.reason if ok or not pev_result.ok else f"EVSE: {evse_result.reason}"
    return NetnsLabResult(ok, reason, evse_result, pev_result, time.monotonic() - started, records,
                          listen_recording)


def start_medium(config: NetnsLabConfig, names: LabNames, stations: dict[str, netns.Namespace],
                 line: netns.Namespace, scratch: Path, on_step) -> dict[str, str]:
    """One veth from each station to the line, the simulator on the line's ends; returns each
    station's interface once the simulator is ready."""
    ports, interfaces = [], {}
    for station, namespace in stations.items():
        inside, line_end = netns.veth(namespace, line, names=names.veth(station), checksum_offload=False)
        interfaces[station] = inside
        ports += ["--port", f"{station}={line_end}:{config.listen if station == 'sniff' else 'filtering'}"]
    on_step(f"namespaces {', '.join(names.namespaces)}; starting the powerline simulator")
    with open(scratch / "medium.err", "w") as errors:
        medium = line.popen([sys.executable, "-m", "ccssniff.emulate.powerline", *ports, "--seed", str(config.seed)],
                            stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    wait_for_ready(medium, scratch / "medium.err", START_TIMEOUT)
    return interfaces


def start_side(namespace: netns.Namespace, arguments: list[str], log: Path) -> subprocess.Popen:
    """A ccssniff command in ``namespace``, its output to ``log``.out, in a session of its own (the
    lab decides when it stops; the terminal's Ctrl-C reaches only the lab)."""
    with open(log.with_suffix(".out"), "w") as out:
        return namespace.popen(CLI + arguments, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
