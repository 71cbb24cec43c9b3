"""Run the SECC or the EVCC of the PyPI package ``iso15118`` inside a network namespace.

The package reads its settings from a ``.env`` file in its working directory (and the EVCC its
car from a JSON file named there), logs to stdout and runs until killed: its SECC waits for the
next car, its EVCC hangs once its SDP retries are spent. So each run gets a fresh working
directory with those files, its own process group (the JVM of its EXI codec is a child) and a
log file; ``stop()`` ends the whole group.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ccssniff.emulate.netns import Namespace

# Our protocol names -> the names of iso15118's Protocol enum.
PROTOCOLS = {"din": "DIN_SPEC_70121", "iso2": "ISO_15118_2", "iso20": "ISO_15118_20_DC"}
SECC_READY = "UDP server started"
# What each logs when its session is over, whatever the outcome (the EVCC: SDP retries spent).
SESSION_OVER = {"secc": "Session ended in", "evcc": "Shutting down high-level communication"}
# The SECC runs with a power stage behind it (see that module); the EVCC as the package ships it.
ENTRY_POINTS = {"secc": [str(Path(__file__).with_name("iso15118_secc.py"))], "evcc": ["-m", "iso15118.evcc.main"]}


def secc_settings(interface: str, protocol: str) -> str:
    return "\n".join([
        f"NETWORK_INTERFACE={interface}",
        "LOG_LEVEL=INFO",
        f"PROTOCOLS={PROTOCOLS[protocol]}",
        "AUTH_MODES=EIM",
        "SECC_ENFORCE_TLS=False",
        "FREE_CHARGING_SERVICE=False",
        "ALLOW_CERT_INSTALL_SERVICE=False",
        "MESSAGE_LOG_JSON=False",
        "",
    ])


def evcc_car(protocol: str, charge_loop_cycles: int) -> dict:
    """A DC car with external identification (EIM), no TLS, that leaves after a few loops."""
    return {
        "supportedProtocols": [PROTOCOLS[protocol]],
        "supportedEnergyServices": ["DC"],
        "energyTransferMode": "DC_extended",
        "isCertInstallNeeded": False,
        "useTls": False,
        "sdpRetryCycles": 1,
        "chargeLoopCycle": charge_loop_cycles,
    }


class Iso15118Peer:
    """One iso15118 process (``role`` "secc" or "evcc") on ``interface`` inside ``namespace``."""

    def __init__(self, role: str, namespace: Namespace, interface: str, protocol: str, workdir: Path,
                 charge_loop_cycles: int = 5):
        self.role = role
        self.workdir = workdir
        self.log_path = workdir / f"iso15118-{role}.log"
        workdir.mkdir(parents=True, exist_ok=True)
        if role == "secc":
            (workdir / ".env").write_text(secc_settings(interface, protocol))
        else:
            car = workdir / "evcc_config.json"
            car.write_text(json.dumps(evcc_car(protocol, charge_loop_cycles)))
            (workdir / ".env").write_text(f"NETWORK_INTERFACE={interface}\nLOG_LEVEL=INFO\n"
                                          f"EVCC_CONFIG_PATH={car}\nMESSAGE_LOG_JSON=False\n")
        with open(self.log_path, "wb") as log:
            self.process = namespace.popen(
                [sys.executable, *ENTRY_POINTS[role]], cwd=workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> bool:
        """True once ``text`` appears in the log; False if the process died or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def session_over(self) -> bool:
        return SESSION_OVER[self.role] in self.log() or self.process.poll() is not None

    def stop(self) -> None:
        if self.process.poll() is None:
            for sig, grace in ((signal.SIGINT, 3), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # The JVM may outlive its Python parent by a moment; the group id is still ours.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
