"""`emulate evse` and `emulate pev` in two network namespaces over a veth pair: real kernel IPv6,
UDP and TCP, SLAC frames crossing the veth directly (no modem: --modem none)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode.events import ERROR, HOMEPLUG, SDP, V2G
from ccssniff.decode.pipeline import Pipeline
from ccssniff.emulate import netns

pytestmark = pytest.mark.skipif(netns.unavailable_reason() is not None,
                                reason=str(netns.unavailable_reason()))
SESSION_TIMEOUT = 60


def emulator(side, interface, protocol, mode, record):
    return [sys.executable, "-c", "from ccssniff.cli import main; main()", "emulate", side, interface,
            "--protocol", protocol, "--mode", mode, "--modem", "none", "--charge-time", "2", "--timeout", str(SESSION_TIMEOUT),
            "--seed", "7", "-w", str(record)]


@pytest.mark.parametrize("protocol,mode", [("din", "dc"), ("iso2", "dc"), ("iso20", "dc"), ("iso2", "ac")])
def test_evse_and_pev_complete_a_session_over_kernel_tcp(tmp_path, protocol, mode):
    with netns.Namespaces(2) as (ev, evse):
        ev_if, evse_if = netns.veth(ev, evse)
        charger = evse.popen(emulator("evse", evse_if, protocol, mode, tmp_path / "evse.pcapng"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        car = ev.popen(emulator("pev", ev_if, protocol, mode, tmp_path / "pev.pcapng"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        car_output, _ = car.communicate(timeout=SESSION_TIMEOUT + 10)
        charger_output, _ = charger.communicate(timeout=15)
    assert car.returncode == 0, car_output
    assert charger.returncode == 0, charger_output
    assert "session completed" in car_output and "session completed" in charger_output

    pipeline = Pipeline()
    events = []
    for packet in read_packets(tmp_path / "evse.pcapng"):
        events += pipeline.feed(packet)
    events += pipeline.finish()
    names = [e.name for e in events if e.kind == HOMEPLUG]
    assert "CM_SLAC_PARAM.REQ" in names and "CM_SLAC_MATCH.CNF" in names
    assert any(e.kind == SDP for e in events)
    v2g = [e.message.name for e in events if e.kind == V2G]
    assert v2g[0] == "supportedAppProtocolReq" and v2g[-1] == "SessionStopRes"
    assert [e for e in events if e.kind == ERROR] == []
