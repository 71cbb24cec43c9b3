"""`emulate evse` and `emulate pev` in two network namespaces over a veth pair: real kernel IPv6,
UDP and TCP, SLAC frames crossing the veth directly (no modem: --modem none)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode.body import content_of
from ccssniff.decode.events import ERROR, HOMEPLUG, SDP, V2G
from ccssniff.decode.pipeline import Pipeline
from ccssniff.emulate import netns

pytestmark = pytest.mark.skipif(netns.unavailable_reason() is not None,
                                reason=str(netns.unavailable_reason()))
SESSION_TIMEOUT = 60
# small enough that two seconds of charging move the SOC visibly
CAPACITY_KWH = "0.5"
# a clock that starts at boot is far off; a wall clock agrees with the capture's timestamps
CLOCK_AGREEMENT = 60.0  # s


def emulator(side, interface, protocol, mode, record):
    return [sys.executable, "-c", "from ccssniff.cli import main; main()", "emulate", side, interface,
            "--protocol", protocol, "--mode", mode, "--modem", "none", "--charge-time", "2",
            "--timeout", str(SESSION_TIMEOUT), "--seed", "7", "--capacity", CAPACITY_KWH, "-w", str(record)]


def soc_change(output: str) -> tuple[float, float]:
    found = re.search(r"SOC ([\d.]+) -> ([\d.]+) %", output)
    assert found, output
    return float(found.group(1)), float(found.group(2))


def time_stamps(event) -> list[int]:
    """The wall-clock times a message carries: EVSETimeStamp, DateTimeNow, an ISO-20 Header's."""
    content = content_of(event.message)
    stamps = [content.get("EVSETimeStamp"), content.get("DateTimeNow"),
              (content.get("Header") or {}).get("TimeStamp")]
    return [stamp for stamp in stamps if stamp is not None]


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

    stamped = [(e.time, stamp) for e in events if e.kind == V2G for stamp in time_stamps(e)]
    assert stamped, "no message with a time stamp"
    assert all(abs(stamp - frame_time) <= CLOCK_AGREEMENT for frame_time, stamp in stamped), stamped[:3]
    # the car's battery took the current the charger reported
    start, end = soc_change(car_output)
    assert end > start
