"""Interop: our PEV SLAC against the EVSE SLAC of the PyPI package pyslac (SwitchEV).

pyslac runs in its own process inside the EVSE namespace, on a veth end, as its example does:
``SlacEvseSession`` sets a fresh key on "its modem" (CM_SET_KEY.REQ to 00:b0:52:00:00:01; it then
waits SLAC_SETTLE_TIME, 10 s), and ``process_cp_state(session, "B")`` starts the matching. It
counts the EV's sounds from the CM_ATTEN_PROFILE.IND its modem adds, so our modem simulator sits
between the two namespaces:

    [ns ev: SlacPev] veth ==== veth [ns line: Powerline, two Modems] veth ==== veth [ns evse: pyslac]
"""

from __future__ import annotations

import asyncio
import random
import sys

import pytest

from ccssniff.emulate import netns
from ccssniff.emulate.modem import Modem, Powerline, run_modem_bridge
from ccssniff.emulate.rawlink import open_link, run_machine
from ccssniff.emulate.slac import SlacFailed, SlacMatched, SlacPev
from ccssniff.homeplug import MacAddress

pyslac = pytest.importorskip("pyslac.session", reason="pyslac is not installed (pip install pyslac)")

STARTUP_TIMEOUT = 40.0  # pyslac's key setting includes a fixed 10 s settle time
SESSION_TIMEOUT = 30.0

# Runs inside the EVSE namespace: pyslac's EVSE session on argv[1], its key on stdout, then the
# state of its session once it is matched.
PYSLAC_EVSE = r"""
import asyncio, sys
from pyslac.environment import Config
from pyslac.enums import STATE_MATCHED
from pyslac.session import SlacEvseSession, SlacSessionController

async def main():
    config = Config(slac_init_timeout=30.0, slac_atten_results_timeout=None, log_level="DEBUG")
    session = SlacEvseSession("DE*CCS*E0001", sys.argv[1], config)
    await session.evse_set_key()
    controller = SlacSessionController()
    await controller.process_cp_state(session, "B")
    await asyncio.sleep(0.2)  # the matching task has opened its socket
    print("READY", session.nmk.hex(), session.nid.hex(), flush=True)
    for _ in range(600):
        if session.state == STATE_MATCHED:
            print("MATCHED", session.pev_mac.hex(), session.run_id.hex(), flush=True)
            return
        await asyncio.sleep(0.05)
    print("TIMEOUT", session.state, flush=True)

asyncio.run(main())
"""


@pytest.fixture
def namespaces():
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with netns.Namespaces(3) as spaces:
        yield spaces


def mac_of(namespace: netns.Namespace, interface: str) -> MacAddress:
    return MacAddress(namespace.run("cat", f"/sys/class/net/{interface}/address").stdout.strip())


def test_our_pev_matches_with_the_pyslac_evse(namespaces, tmp_path):
    ev, evse, line = namespaces
    ev_if, line_ev_if = netns.veth(ev, line)
    evse_if, line_evse_if = netns.veth(evse, line)
    ev_mac, evse_mac = mac_of(ev, ev_if), mac_of(evse, evse_if)
    with ev.entered():
        ev_sock = open_link(ev_if)
    with line.entered():
        ports = {"pev": open_link(line_ev_if), "evse": open_link(line_evse_if)}
    powerline = Powerline()
    powerline.attach("pev", Modem("00:b0:52:00:0e:01"), attenuation_db=4)
    powerline.attach("evse", Modem("00:b0:52:00:0c:01"), attenuation_db=6)
    pev = SlacPev(ev_mac, rng=random.Random(21))
    log_path = tmp_path / "pyslac.log"

    async def session():
        stop = asyncio.Event()
        bridge = asyncio.create_task(run_modem_bridge(powerline, ports, stop))
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", evse.name, sys.executable, "-c", PYSLAC_EVSE, evse_if,
            stdout=asyncio.subprocess.PIPE, stderr=log)
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT)
            assert ready.startswith(b"READY"), (ready, log_path.read_text()[-3000:])
            _, nmk, nid = ready.decode().split()
            result = await asyncio.wait_for(run_machine(
                pev, ev_sock, until=lambda o: isinstance(o, (SlacMatched, SlacFailed))), SESSION_TIMEOUT)
            verdict = await asyncio.wait_for(process.stdout.readline(), SESSION_TIMEOUT)
            return result, bytes.fromhex(nmk), bytes.fromhex(nid), verdict.decode().split()
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()
            stop.set()
            await bridge

    try:
        with open(log_path, "w") as log:
            result, nmk, nid, verdict = asyncio.run(session())
    finally:
        for sock in [ev_sock, *ports.values()]:
            sock.close()
    log = log_path.read_text()[-3000:]
    assert isinstance(result, SlacMatched), (result, log)
    assert result.nmk == nmk and result.nid == nid, log
    assert result.peer_mac == evse_mac
    assert verdict[:2] == ["MATCHED", ev_mac.hex()], (verdict, log)
    assert verdict[2] == result.run_id.hex()
    # pyslac's key reached its modem, ours reached the PEV modem: one network
    assert sorted(powerline.members(nmk)) == ["evse", "pev"]
