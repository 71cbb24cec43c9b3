"""The real-interface driver's V2G part (``converse``) for both sides in one event loop, joined
by a kernel socket pair: the progress the live view shows, and the car's battery charging with
what the charger reports. No root needed (SLAC, SDP and the interface are tested in
test_netns_emulate.py)."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from ccssniff.emulate.driver import EmulatorConfig, Progress, converse
from ccssniff.emulate.physics import BatteryParams, DcCircuit, PowerStageParams, SimulationParams
from ccssniff.emulate.v2g_evse import V2gEvse
from ccssniff.emulate.v2g_messages import LOOP_REQUESTS
from ccssniff.emulate.v2g_pev import V2gPev

# a quick cable check and precharge; a small battery, so that a second of charging shows
PARAMS = SimulationParams(evse=PowerStageParams(isolation_check_duration=0.5, voltage_ramp=1000.0),
                          battery=BatteryParams(capacity_kwh=0.5, start_soc=20.0))
CHARGE_TIME = 1.0  # s of charge loop
SAMPLE_PERIOD = 0.01  # s
SETTLED = 4  # charge loop messages after which every progress update has happened at least once
RELAXED_TIMING = 4.0  # both sides share one process: a loaded machine must not fail the session


async def session(protocol: str, mode: str) -> dict[str, list]:
    """Run both sides; sample each side's progress while the charge loop runs."""
    config = EmulatorConfig(interface="none", protocols=(protocol,), mode=mode, params=PARAMS,
                            charge_time=CHARGE_TIME, timeout=60.0)
    evse_socket, pev_socket = socket.socketpair()
    evse_streams = await asyncio.open_connection(sock=evse_socket)
    pev_streams = await asyncio.open_connection(sock=pev_socket)
    evse_circuit, pev_circuit = DcCircuit(PARAMS), DcCircuit(PARAMS)
    evse = V2gEvse(evse_circuit, protocols=(protocol,), mode=mode, relaxed_timing=RELAXED_TIMING)
    pev = V2gPev(pev_circuit, protocols=(protocol,), mode=mode, rng=random.Random(5),
                 relaxed_timing=RELAXED_TIMING)
    progress = {"evse": Progress(soc=PARAMS.battery.start_soc), "pev": Progress(soc=PARAMS.battery.start_soc)}
    samples: dict[str, list] = {"evse": [], "pev": []}
    first_loop_message: dict[str, int] = {}

    async def sample():
        while True:
            await asyncio.sleep(SAMPLE_PERIOD)
            for side, seen in progress.items():
                if seen.last_message.removesuffix("Req").removesuffix("Res") in LOOP_REQUESTS:
                    first = first_loop_message.setdefault(side, seen.messages)
                    if seen.messages - first >= SETTLED:
                        samples[side].append((seen.voltage, seen.current))

    sampler = asyncio.create_task(sample())
    try:
        results = await asyncio.gather(
            converse(evse, *evse_streams, evse_circuit, progress["evse"], False, config),
            converse(pev, *pev_streams, pev_circuit, progress["pev"], True, config))
    finally:
        sampler.cancel()
    assert all(result.ok for result in results), results
    samples["soc"] = [progress["pev"].soc, pev_circuit.battery.soc]
    return samples


@pytest.mark.parametrize("protocol", ["iso2", "iso20"])
def test_ac_progress_shows_what_flows_between_messages(protocol):
    samples = asyncio.run(session(protocol, "ac"))
    # 3 x 230 V; the car's on-board charger takes 16 A per phase of the EVSE's 32 A
    for side in ("evse", "pev"):
        assert len(samples[side]) > 5
        assert all(voltage == 230.0 and current == pytest.approx(16.0)
                   for voltage, current in samples[side]), (side, samples[side])
    soc, battery_soc = samples["soc"]
    assert soc == battery_soc > PARAMS.battery.start_soc


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_dc_car_charges_with_the_current_the_charger_reports(protocol):
    samples = asyncio.run(session(protocol, "dc"))
    assert len(samples["pev"]) > 5
    assert all(current > 0.0 and voltage > 300.0 for voltage, current in samples["pev"])
    # the car shows currents the charger's stage had (it ramps up through the loop)
    assert max(c for _, c in samples["pev"]) <= max(c for _, c in samples["evse"])
    soc, battery_soc = samples["soc"]
    assert soc == battery_soc > PARAMS.battery.start_soc


def test_relaxed_timing_option_is_checked():
    from click.testing import CliRunner

    from ccssniff.cli import cli
    for side in ("evse", "pev"):
        run = CliRunner().invoke(cli, ["emulate", side, "lo", "--relaxed-timing", "0.5"])
        assert run.exit_code == 2 and "--relaxed-timing" in run.output
        assert "--relaxed-timing FACTOR" in CliRunner().invoke(cli, ["emulate", side, "--help"]).output
