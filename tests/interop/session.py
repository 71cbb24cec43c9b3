"""One charging session between one of our emulators and one side of ``iso15118``, recorded.

Two fresh namespaces joined by a veth: the charger's side and the car's side. A recorder on the
charger's end captures every frame; our emulator runs as the real command line
(``ccssniff emulate evse|pev IFACE --no-slac --modem none``), the peer as iso15118 ships it (the
SECC with a power stage, see ``iso15118_secc``). Everything is bounded in time and stopped at
the end, and the capture is decoded with our own pipeline.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ccssniff.capture.reader import read_packets
from ccssniff.decode.events import Event
from ccssniff.decode.pipeline import Pipeline
from ccssniff.emulate.netns import Namespace, Namespaces, veth
from interop.iso15118_peer import SECC_READY, Iso15118Peer

RECORDER = Path(__file__).with_name("record.py")
# Our side gives up by itself after this; the test waits a little longer for it.
SESSION_TIMEOUT = 90
# Long enough for several charge loop rounds even with a slow peer.
CHARGE_TIME = 3
# iso15118 runs its EXI codec in a JVM through py4j: on a loaded machine its answers can miss
# V2G_EVCC_Msg_Timeout (0.25 s for CurrentDemand), so our side waits this many times longer.
RELAXED_TIMING = 4
PEER_START_TIMEOUT = 30
# Once the peer has given up, our side has this long to notice before it is stopped.
AFTER_PEER_GAVE_UP = 10


@dataclass
class Outcome:
    returncode: int | None  # our emulator's exit status (None: killed at the time limit)
    our_output: str
    peer_log: str
    capture: Path
    events: list[Event] = field(default_factory=list)


def our_command(side: str, interface: str, protocol: str) -> list[str]:
    command = [sys.executable, "-c", "from ccssniff.cli import main; main()", "emulate", side, interface,
               "--no-slac", "--modem", "none", "--protocol", protocol, "--mode", "dc",
               "--timeout", str(SESSION_TIMEOUT - 5), "--seed", "1", "--relaxed-timing", str(RELAXED_TIMING)]
    if side == "pev":
        command += ["--charge-time", str(CHARGE_TIME)]
    return command


class Recorder:
    def __init__(self, namespace: Namespace, interface: str, path: Path):
        self.process = namespace.popen([sys.executable, str(RECORDER), interface, str(path)],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = self.process.stdout.readline()
        if line.strip() != b"recording":
            self.stop()
            raise RuntimeError(f"the recorder did not start: {line!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process.stdout.close()


def decode(capture: Path) -> list[Event]:
    pipeline = Pipeline()
    events: list[Event] = []
    for packet in read_packets(capture):
        events.extend(pipeline.feed(packet))
    events.extend(pipeline.finish())
    return events


def wait_for_ours(ours: subprocess.Popen, peer: Iso15118Peer) -> int | None:
    """Our emulator's exit status; None when it had to be stopped (time limit, or long after the
    peer gave up: a session the peer abandoned early should not cost the whole time limit)."""
    deadline = time.monotonic() + SESSION_TIMEOUT
    while time.monotonic() < deadline:
        try:
            return ours.wait(1)
        except subprocess.TimeoutExpired:
            pass
        if peer.session_over():
            deadline = min(deadline, time.monotonic() + AFTER_PEER_GAVE_UP)
    ours.kill()
    ours.wait(5)
    return None


def run_session(our_side: str, protocol: str, workdir: Path) -> Outcome:
    """Our ``our_side`` ("evse" or "pev") against the other side of iso15118 for ``protocol``."""
    capture = workdir / f"{our_side}-{protocol}.pcapng"
    our_log = workdir / f"ccssniff-{our_side}.log"
    with Namespaces(2) as (charger, car):
        charger_if, car_if = veth(charger, car)
        ours_ns, ours_if = (charger, charger_if) if our_side == "evse" else (car, car_if)
        recorder = Recorder(charger, charger_if, capture)
        peer = None
        try:
            if our_side == "pev":
                peer = Iso15118Peer("secc", charger, charger_if, protocol, workdir / "secc")
                if not peer.wait_for_log(SECC_READY, PEER_START_TIMEOUT):
                    raise RuntimeError(f"iso15118's SECC did not start:\n{peer.log()[-3000:]}")
            with open(our_log, "wb") as log:
                ours = ours_ns.popen(our_command(our_side, ours_if, protocol), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
            if our_side == "evse":
                # The EV's SDP retries (50 x 250 ms) cover the moment our server needs to start.
                peer = Iso15118Peer("evcc", car, car_if, protocol, workdir / "evcc")
            returncode = wait_for_ours(ours, peer)
        finally:
            if peer is not None:
                peer.stop()
            recorder.stop()
    return Outcome(returncode, our_log.read_text(errors="replace"), peer.log() if peer else "", capture,
                   decode(capture))
